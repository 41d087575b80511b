"""Helpers shared by tests: synthetic candidates written straight into a project."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from rorem_data.core import schema
from rorem_data.dataset import documents
from rorem_data.dataset import store
from rorem_data.testing import synthetic
from rorem_data.rounds.versions import write_version_meta
from rorem_data.dataset import ledger, queues


def add_candidates(project, round: int, modes, *, size: int = 48, seed: int = 0,
                   origin: str = "synthetic-pool", base: str | None = None):
    """Insert one pool item + one candidate per mode (``"clean"``, ``"residue"``, ...).

    Returns (candidate sample ids, modes). Files are written under the project's media folder.
    """
    rng = np.random.default_rng(seed)
    pool_docs, cand_docs = [], []
    base = base or project.media_path("test-candidates", f"r{round}-{seed}")
    os.makedirs(base, exist_ok=True)
    for i, mode in enumerate(modes):
        sc = synthetic.make_scene(rng, size=size)
        src = os.path.join(base, f"{i}_src.png")
        msk = os.path.join(base, f"{i}_mask.png")
        res = os.path.join(base, f"{i}_res_{mode}.png")
        Image.fromarray(sc.source).save(src)
        Image.fromarray(np.where(sc.masks[0], 255, 0).astype(np.uint8)).save(msk)
        Image.fromarray(synthetic.degrade(sc.source, sc.truths[0], sc.masks[0], mode, seed=i)).save(res)
        # keys from paths relative to the project: the same test draws the same candidates in
        # every run (candidates are read in key order; the temporary root differs per run)
        pkey = schema.make_key(schema.KIND_POOL, os.path.relpath(src, project.root),
                               os.path.relpath(msk, project.root))
        pdoc = documents.sample_doc(key=pkey, kind=schema.KIND_POOL, filepath=src, width=size,
                                 height=size, mask_path=msk, mask_area=float(sc.masks[0].mean()),
                                 origin=origin)
        pool_docs.append(pdoc)
        cand_docs.append(documents.sample_doc(
            key=schema.make_key(schema.KIND_CANDIDATE, pkey, "test", str(round)),
            kind=schema.KIND_CANDIDATE, filepath=src, width=size, height=size, mask_path=msk,
            mask_area=float(sc.masks[0].mean()), origin=origin, target_path=res, round=round,
            pool_item_id=str(pdoc["_id"]), candidate_index=0,
            generator={"remover": "test", "seed": i},
        ))
        cand_docs[-1]["status"] = schema.PENDING
    ds = project.dataset
    store.insert_documents(ds, pool_docs)
    store.insert_documents(ds, cand_docs)
    return [str(d["_id"]) for d in cand_docs], list(modes)


def judge_by_mode(project, round, ids, modes, *, by=schema.BY_HUMAN, phase=schema.PHASE_HUMAN):
    """Accept clean candidates, reject the others: as a reviewer "tester" of the round's queue
    (human; the candidates are queued first), or as discriminator "tester" (``by``)."""
    ds = project.dataset
    acc = [i for i, m in zip(ids, modes) if m == "clean"]
    rej = [i for i, m in zip(ids, modes) if m != "clean"]
    if by == schema.BY_HUMAN:
        queues.enqueue(ds, round, list(ids), purpose=schema.QUEUE_ACTIVE)
        ledger.record_reviews(ds, [(i, schema.ACCEPTED, "tester", None, False) for i in acc]
                              + [(i, schema.REJECTED, "tester", "object_visible", False) for i in rej],
                              round=round)
    else:
        docs = [schema.decision_doc(round=round, phase=phase, status=st, by=by, discriminator="tester")
                for st in [schema.ACCEPTED] * len(acc) + [schema.REJECTED] * len(rej)]
        ledger.decide_automatically(ds, acc + rej, docs)
    return acc, rej


def simulated_version(project, version="sim_r1", n=600, seed=0, generators=("test",)):
    """Held-out human labels of a good discriminator: P(success | s) rises steeply with s."""
    rng = np.random.default_rng(seed)
    s = rng.beta(2, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-14 * (s - 0.5)))).astype(int)
    write_version_meta(project, version, {"trained_at": "2026-11-25T00:00:00", "round": 1,
                                          "holdout": {"scores": s.tolist(), "labels": y.tolist()},
                                          "generators": list(generators)})
    return version


def scored_round(project, n=40, seed=1, version="sim_r1", round=1, base=None):
    modes = ["clean" if i % 2 == 0 else "residue" for i in range(n)]
    ids, modes = add_candidates(project, round, modes, seed=seed, size=32, base=base)
    rng = np.random.default_rng(seed)
    truth = np.array([m == "clean" for m in modes])
    # good discriminator: high scores for successes, low for failures
    scores = np.where(truth, rng.uniform(0.75, 1.0, n), rng.uniform(0.0, 0.4, n))
    store.set_field_values(project.dataset, f"scores.{version}", ids, scores.tolist())
    return ids, truth, scores


def run_cli(capsys, *argv):
    """Run ``rorem-data *argv`` in this process: (exit code, stdout, stderr), never a traceback."""
    from rorem_data import cli

    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "This is a bug in rorem-data" not in out.err, out.err
    return code, out.out, out.err


#: Python source that a kill-test child runs before its own patches: with ``nth`` defined, a
#: function wrapped by ``after(fn)`` / ``before(fn)`` kills the process (SIGKILL, no cleanup)
#: right after / before its ``nth`` call for which ``when(*args)`` holds.
KILL_HOOKS = r"""
import os as _os, signal as _signal
_calls = {"n": 0}

def hit():
    _calls["n"] += 1
    return _calls["n"] == nth

def die():
    _os.kill(_os.getpid(), _signal.SIGKILL)

def after(fn, when=lambda *a, **k: True):
    def wrapped(*a, **k):
        out = fn(*a, **k)
        if when(*a, **k) and hit():
            die()
        return out
    return wrapped

def before(fn, when=lambda *a, **k: True):
    def wrapped(*a, **k):
        if when(*a, **k) and hit():
            die()
        return fn(*a, **k)
    return wrapped
"""


def file_bytes(root: str) -> set:
    """The contents of every file under ``root`` (to ask: did an outside file's bytes get in?)."""
    out = set()
    for dp, _d, files in os.walk(root):
        for f in files:
            with open(os.path.join(dp, f), "rb") as fh:
                out.add(fh.read())
    return out
