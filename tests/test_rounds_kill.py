"""SIGKILL the round commands at each point where they write, run them again, and compare with
an uninterrupted run: same records, same files, nothing left over.

Each command runs as a real ``rorem-data`` process; a small driver wraps the function that
performs one write (a database bulk write, a round-record update, a feature chunk, a report
file) so that the process kills itself (SIGKILL: no cleanup, no ``finally``) right after the
n-th call. Then the same command runs again to completion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from helpers import add_candidates, scored_round, simulated_version

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = r"""
import importlib, json, os, signal, sys
target, nth, argv, settings = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
for dotted, value in settings.items():              # e.g. smaller chunks: more write points
    mod, _, name = dotted.rpartition(".")
    setattr(importlib.import_module(mod), name, value)
if target.startswith("pymongo:"):                   # every bulk write of the process
    from pymongo.collection import Collection as owner
    attr = target.split(":", 1)[1]
elif target.startswith("class:"):                   # a method (or a module attribute of a module)
    path, cls, attr = target.split(":", 1)[1].rsplit(".", 2)
    owner = getattr(importlib.import_module(path), cls)
else:                                               # a module-level function
    mod, _, attr = target.rpartition(".")
    owner = importlib.import_module(mod)
real = getattr(owner, attr)
calls = {"n": 0}
def wrapped(*a, **k):
    out = real(*a, **k)
    calls["n"] += 1
    if calls["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)      # right after the write: no cleanup at all
    return out
setattr(owner, attr, wrapped)
from rorem_data.cli import main
main(argv)
"""


def _cli(argv):
    out = subprocess.run([sys.executable, "-m", "rorem_data.cli", *argv], capture_output=True,
                         text=True, cwd=REPO, env={**os.environ, "ROREM_PROGRESS": "0"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _killed_then_rerun(argv, target, nth, settings=None):
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    killed = subprocess.run([sys.executable, "-c", DRIVER, target, str(nth), json.dumps(argv),
                             json.dumps(settings or {})],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    again = subprocess.run([sys.executable, "-m", "rorem_data.cli", *argv], capture_output=True,
                           text=True, cwd=REPO, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    return again


def _state(project):
    """Every candidate's queue and decision state, by key (what a rerun must reproduce)."""
    out = {}
    for d in project.dataset._sample_collection.find(
            {"kind": {"$in": ["candidate", "gold"]}},
            {"key": 1, "status": 1, "decided_by": 1, "queue_round": 1, "queue_rank": 1,
             "queue_purpose": 1, "review_quota": 1, "estimate_sample": 1, "reviews": 1,
             "decisions": 1}):
        out[d["key"]] = (d.get("status"), d.get("decided_by"), d.get("queue_round"),
                         d.get("queue_rank"), d.get("queue_purpose"), d.get("review_quota"),
                         d.get("estimate_sample"),
                         tuple((r["reviewer"], r["status"]) for r in d.get("reviews") or []),
                         tuple((x.get("by"), x.get("status"), x.get("discriminator"))
                               for x in d.get("decisions") or []))
    return out


def _leftovers(root):
    return sorted(os.path.join(dp, f) for dp, dn, fns in os.walk(root) for f in fns + dn
                  if ".tmp-" in f or ".partial-" in f or ".old-" in f)


def _twin_projects(tmp_path, build):
    """Two identical projects (same files, same keys): one runs uninterrupted, one is killed."""
    import rorem_data

    out = []
    for name in ("clean", "killed"):
        p = rorem_data.init_project(str(tmp_path / name), name=name)
        build(p, str(tmp_path / "files"))
        out.append(p)
    return out


def _drop(*projects):
    import fiftyone as fo

    for p in projects:
        if fo.dataset_exists(p.dataset_name):
            fo.delete_dataset(p.dataset_name)


@pytest.mark.parametrize("target,nth", [
    ("rorem_data.dataset.store.update_round_record", 1),   # selection recorded, nothing queued
    ("pymongo:bulk_write", 1),                              # queue written, not marked done
])
def test_select_killed_at_each_write(tmp_path, target, nth):
    def build(p, files):
        add_candidates(p, 1, ["clean", "residue"] * 6, seed=2, base=files)

    clean, killed = _twin_projects(tmp_path, build)
    try:
        argv = ["select", "--round", "1", "--budget", "6", "--strategy", "random", "--double-share", "0.5"]
        _cli(["-p", clean.root, *argv])
        _killed_then_rerun(["-p", killed.root, *argv], target, nth)
        assert _state(killed) == _state(clean)
        assert _leftovers(killed.root) == []
    finally:
        _drop(clean, killed)


@pytest.mark.parametrize("nth", [1, 2])
def test_label_import_killed_between_bulk_writes(tmp_path, nth):
    """A labels file applied by a process killed after its first (or second) bulk write: the
    rerun of the same import ends in the records of one uninterrupted import - no judgment twice."""
    from rorem_data.rounds.review.queue import build_queue

    def build(p, files):
        add_candidates(p, 1, ["clean", "residue", "blur", "clean"] * 5, seed=3, base=files)
        build_queue(p, 1, 20, strategy="random", rng=0, previews=False)

    clean, killed = _twin_projects(tmp_path, build)
    try:
        rows = []
        for p in (clean, killed):
            keys = {d["_id"]: d["key"] for d in p.dataset._sample_collection.find({"queue_round": 1}, {"key": 1})}
            rows.append(sorted(keys.items(), key=lambda kv: kv[1]))
        labels = tmp_path / "labels.csv"
        with open(labels, "w") as fh:
            fh.write("key,decision,reviewer,reason\n")
            for i, (_oid, key) in enumerate(rows[0]):
                fh.write(f"{key},{'accept' if i % 3 else 'reject'},ana,{'' if i % 3 else 'object_visible'}\n")
        argv = ["labels", "import", str(labels), "--round", "1"]
        _cli(["-p", clean.root, *argv])
        # killed after the ledger's n-th bulk write: smaller chunks make several of them
        _killed_then_rerun(["-p", killed.root, *argv], "pymongo:bulk_write", nth,
                           settings={"rorem_data.dataset.ledger.BATCH_SIZE": 4})
        assert _state(killed) == _state(clean)
    finally:
        _drop(clean, killed)


@pytest.mark.parametrize("target,nth", [
    ("pymongo:bulk_write", 1),                              # some automatic decisions written
    ("rorem_data.dataset.store.update_round_record", 1),   # decisions and audit queued, record not
])
def test_auto_label_killed_at_each_write(tmp_path, target, nth):
    def build(p, files):
        simulated_version(p)
        scored_round(p, n=40, seed=5, base=files)

    clean, killed = _twin_projects(tmp_path, build)
    try:
        argv = ["auto-label", "--round", "1", "--version", "sim_r1", "--target-precision", "0.9",
                "--confidence", "0.9", "--audit", "0.3", "--method", "holdout"]
        _cli(["-p", clean.root, *argv])
        _killed_then_rerun(["-p", killed.root, *argv], target, nth,
                           settings={"rorem_data.dataset.ledger.BATCH_SIZE": 8})
        assert _state(killed) == _state(clean)
    finally:
        _drop(clean, killed)


def test_featurize_killed_after_a_chunk(tmp_path):
    from rorem_data.features.base import get_featurizer
    from rorem_data.features.cache import FeatureCache

    def build(p, files):
        add_candidates(p, 1, ["clean", "residue", "blur", "hallucination"] * 5, seed=4, base=files)

    clean, killed = _twin_projects(tmp_path, build)
    try:
        argv = ["featurize", "--featurizer", "stats", "--batch-size", "4", "--workers", "0"]
        _cli(["-p", clean.root, *argv])
        _killed_then_rerun(["-p", killed.root, *argv],
                           "class:rorem_data.features.cache.FeatureCache.write_chunk", 1)
        f = get_featurizer("stats")
        by_key = []
        for p in (clean, killed):
            docs = list(p.dataset._sample_collection.find({"kind": "candidate"}, {"key": 1}).sort("key", 1))
            cache = FeatureCache(p.media_path("features"), f.key, f.key_config)
            by_key.append(cache.read([str(d["_id"]) for d in docs]))
        # every item once, the features of the uninterrupted run (to float32 rounding: OpenCV's
        # multi-threaded filters may round the last bit differently in another process)
        assert by_key[0].shape == by_key[1].shape and np.isfinite(by_key[1]).all()
        np.testing.assert_allclose(by_key[1], by_key[0], rtol=1e-6, atol=1e-7)
        assert _leftovers(killed.root) == []
    finally:
        _drop(clean, killed)


def test_report_killed_while_writing(tmp_path):
    def build(p, files):
        add_candidates(p, 1, ["clean", "residue"] * 4, seed=6, base=files)

    clean, killed = _twin_projects(tmp_path, build)
    try:
        out = str(tmp_path / "report")
        argv = ["-p", killed.root, "report", "--out", out]
        _cli(argv)
        before = open(os.path.join(out, "index.html")).read()
        _killed_then_rerun(argv, "class:rorem_data.rounds.report.outputs.staging_folder", 1)
        assert os.path.isfile(os.path.join(out, "index.html"))  # old or new, never neither
        assert open(os.path.join(out, "index.html")).read().startswith(before[:40])
        assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]  # the killed run's staging is gone
    finally:
        _drop(clean, killed)
