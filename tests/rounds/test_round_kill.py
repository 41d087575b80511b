"""SIGKILL run_round inside each step - right after the step's work, before its record, and in
the middle of a step's writes - run the same call again, and compare with an uninterrupted run:
the same candidates, queue, judgments, decisions and estimates, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import rorem_data
from rorem_data.rounds.plan import STEPS
from rorem_data.testing import synthetic
from rorem_data.testing.simulate import SimulatedReviewer

pytestmark = pytest.mark.slow

ARGS = dict(remover="classical:telea", budget=24, target_precision=0.6, confidence=0.6, audit=0.3,
            gold_rate=0.15, floor=0.3, progress=False)
SIM = dict(noise=0.0, tol_in=25.0, tol_out=6.0)  # enough successes and failures to train on

CHILD = r"""
import importlib, json, os, signal, sys
root, target, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
args, sim = json.loads(sys.argv[4]), json.loads(sys.argv[5])
mod, _, attr = target.rpartition(".")
if mod.endswith("STEP_FUNCTIONS"):                  # a step: kill after it returns, before its record
    from rorem_data.rounds import steps
    owner, key = steps.STEP_FUNCTIONS, attr
    real = owner[key]
else:                                               # a writer: kill right after its nth call
    owner, key = importlib.import_module(mod), attr
    real = getattr(owner, key)
calls = {"n": 0}
def wrapped(*a, **k):
    out = real(*a, **k)
    calls["n"] += 1
    if calls["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return out
if isinstance(owner, dict):
    owner[key] = wrapped
else:
    setattr(owner, key, wrapped)
import rorem_data
from rorem_data.testing.simulate import SimulatedReviewer
rorem_data.run_round(root, 1, reviewer=SimulatedReviewer("sim", **sim), **args)
print("not killed")
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill-data")
    meta = synthetic.write_seed_set(str(d / "seeds"), 8, size=32, seed=0)
    pool = synthetic.write_pool_folder(str(d / "pool"), 22, size=32, seed=1)
    return meta, pool


def _project(root, data):
    p = rorem_data.init_project(root, name="kill")
    rorem_data.import_seeds(p, [data[0]], progress=False)
    rorem_data.import_pool(p, data[1], origin="pool", progress=False)
    return p


def _state(project) -> dict:
    ds = project.dataset
    docs = zip(ds.values("key"), ds.values("kind"), ds.values("status"), ds.values("decided_by"),
               ds.values("queue_purpose"), ds.values("reviews"), ds.values("inclusion_probability"))
    samples = sorted((k, kind, st, by, pu, [(r["reviewer"], r["status"]) for r in rv or []], pi)
                     for k, kind, st, by, pu, rv, pi in docs)
    est = rorem_data.estimates(project, 1)
    return {"samples": samples, "estimate": est.best}


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    import fiftyone as fo

    p = _project(str(tmp_path_factory.mktemp("ref") / "proj"), data)
    res = rorem_data.run_round(p, 1, reviewer=SimulatedReviewer("sim", **SIM), **ARGS)
    assert res.version is not None and "auto_label" in res.steps  # every step has work to do
    out = _state(p)
    fo.delete_dataset(p.dataset_name)
    return out


POINTS = ([(f"rorem_data.rounds.steps.STEP_FUNCTIONS.{s}", 1) for s in STEPS if s != "score_previous"]
          + [("rorem_data.dataset.store.insert_documents", 1),      # generate: a batch written
             ("rorem_data.dataset.queues.enqueue", 1),              # the sample queued
             ("rorem_data.dataset.ledger.apply_changes", 2),        # reviews half stored
             ("rorem_data.dataset.store.update_round_record", 6)])  # a record write mid-round


@pytest.mark.parametrize("target,nth", POINTS, ids=[f"{t.rsplit('.', 1)[-1]}-{n}" for t, n in POINTS])
def test_sigkill_inside_a_step_then_the_same_call_gives_the_uninterrupted_round(
        target, nth, data, reference, tmp_path):
    import fiftyone as fo

    p = _project(str(tmp_path / "proj"), data)
    try:
        child = subprocess.run([sys.executable, "-c", CHILD, p.root, target, str(nth), json.dumps(ARGS),
                                json.dumps(SIM)],
                               capture_output=True, text=True, timeout=600,
                               env={**os.environ, "ROREM_PROGRESS": "0"})
        assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-2000:])
        res = rorem_data.run_round(p, 1, reviewer=SimulatedReviewer("sim", **SIM), **ARGS)
        assert res.state == "finished"
        assert _state(p) == reference
    finally:
        fo.delete_dataset(p.dataset_name)
