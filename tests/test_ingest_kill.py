"""SIGKILL an import at each point where it writes, run it again, compare with an uninterrupted
import: same records (count, keys, fields), same mask files, nothing left over.

The import runs as a real ``rorem-data import`` process; a small driver wraps the function that
performs one write so the process kills itself (SIGKILL, no cleanup) right before or after it,
and the commit works 3 documents at a time so there are several commit steps to die between.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import KILL_HOOKS, run_cli


pytestmark = pytest.mark.slow  # real processes, killed and rerun: ~1 min in all

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = r"""
import json, os, signal, sys
point, nth, argv = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
from rorem_data.core import images as media
from rorem_data.dataset import ingest, store

ingest.COMMIT_CHUNK = 3
# KILL_HOOKS: hit, die, after, before
if point == "mask-tmp":          # a mask's temporary file is written, not yet renamed in place
    os.replace = before(os.replace, lambda src, dst, *a, **k: "/masks/" in str(dst))
elif point == "mask-written":    # some canonical masks are written, no record yet
    media.write_bytes_atomic = after(media.write_bytes_atomic)
elif point == "chunk-inserted":  # some commit steps are in the database
    store.insert_documents = after(store.insert_documents)
elif point == "round-record":    # every record is in, the round record is not updated yet
    store.update_round_record = before(store.update_round_record)
else:
    raise SystemExit(f"unknown point {point}")
from rorem_data import cli
cli.main(argv)
"""
DRIVER = DRIVER.replace("# KILL_HOOKS: hit, die, after, before\n", KILL_HOOKS)


def run_killed(point, nth, argv):
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, point, str(nth), json.dumps(argv)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])


@pytest.fixture
def projects(tmp_path):
    import fiftyone as fo

    import rorem_data
    from rorem_data.dataset import store

    made = []

    def make(name):
        p = rorem_data.init_project(str(tmp_path / name), name=f"kill-{name}")
        made.append(p)
        return p

    yield make
    for p in made:
        if fo.dataset_exists(p.dataset_name):
            fo.delete_dataset(p.dataset_name)
        store.delete_round_records(p.dataset_name)


def _rgb_mask(m):
    return np.dstack([np.where(m, 255, 0).astype(np.uint8)] * 3)  # not canonical: rewritten


def _seed_data(root, n=8, size=24):
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        name = f"{i}.png"
        for sub in ("source", "GT"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(os.path.join(root, sub, name))
        m = np.zeros((size, size), bool)
        m[2 + i : 14, 3:15] = True
        os.makedirs(os.path.join(root, "mask"), exist_ok=True)
        Image.fromarray(_rgb_mask(m)).save(os.path.join(root, "mask", name))
        entries.append({"source": f"source/{name}", "mask": f"mask/{name}", "GT": f"GT/{name}",
                        "score": i % 2})
    path = os.path.join(root, "meta.json")
    with open(path, "w") as fh:
        json.dump(entries, fh)
    return path


def _pool_data(root, n=4, size=24):
    rng = np.random.default_rng(1)
    for i in range(n):
        os.makedirs(os.path.join(root, "images"), exist_ok=True)
        os.makedirs(os.path.join(root, "masks"), exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            os.path.join(root, "images", f"im_{i}.png"))
        for k in range(2):
            m = np.zeros((size, size), bool)
            m[2 + i : 12 + k, 3:15] = True
            Image.fromarray(_rgb_mask(m)).save(os.path.join(root, "masks", f"im_{i}_{k}.png"))
    return root


def _state(project):
    from rorem_data.dataset import store

    coll = project.dataset._sample_collection
    records = sorted(
        (d["key"], d["kind"], d["filepath"], os.path.basename(d["mask"]["mask_path"]), d.get("status"),
         d.get("license"), d.get("mask_area"), d.get("import_ref"), len(d.get("decisions") or []))
        for d in coll.find({}))
    masks_dir = project.media_path("masks")
    files = sorted(os.listdir(masks_dir)) if os.path.isdir(masks_dir) else []
    rec = [r for r in store.get_round_records(project.dataset_name) if r["round"] == 0]
    imported = rec[0]["phases"]["seed"]["imported"] if rec else None
    return records, files, imported


def _assert_consistent_after_kill(project):
    """Whatever a kill leaves: every record's mask file exists (masks are written first)."""
    for d in project.dataset._sample_collection.find({}, {"mask.mask_path": 1}):
        assert os.path.isfile(d["mask"]["mask_path"])


@pytest.mark.parametrize("point,nth", [("mask-tmp", 1), ("mask-written", 2), ("chunk-inserted", 1),
                                       ("chunk-inserted", 2), ("round-record", 1)])
def test_killed_seed_import_reruns_to_the_uninterrupted_state(projects, tmp_path, capsys, point, nth):
    meta = _seed_data(str(tmp_path / "data"))
    ref, victim = projects("ref"), projects("victim")
    assert run_cli(capsys, "-p", ref.root, "import", "seeds", meta)[0] == 0
    argv = ["-p", victim.root, "import", "seeds", meta]
    run_killed(point, nth, argv)
    _assert_consistent_after_kill(victim)
    partial = victim.dataset.count()
    assert partial < 8 or point == "round-record"
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"imported {8 - partial}" in out
    a, b = _state(ref), _state(victim)
    assert a == b
    assert len(a[0]) == 8 and a[2] == 8 and len(a[1]) == 8
    assert not [f for f in b[1] if ".tmp-" in f]
    assert not os.path.exists(os.path.join(victim.root, "reports"))


@pytest.mark.parametrize("point,nth", [("mask-tmp", 2), ("mask-written", 3), ("chunk-inserted", 1)])
def test_killed_pool_import_reruns_to_the_uninterrupted_state(projects, tmp_path, capsys, point, nth):
    pool = _pool_data(str(tmp_path / "pool"))
    ref, victim = projects("ref"), projects("victim")
    assert run_cli(capsys, "-p", ref.root, "import", "pool", pool)[0] == 0
    argv = ["-p", victim.root, "import", "pool", pool]
    run_killed(point, nth, argv)
    _assert_consistent_after_kill(victim)
    assert run_cli(capsys, *argv)[0] == 0
    a, b = _state(ref), _state(victim)
    assert a == b and len(a[0]) == 8 and len(a[1]) == 8
    assert not [f for f in b[1] if ".tmp-" in f]

