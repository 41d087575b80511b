"""One writer per round: two run_round processes, a holder killed with SIGKILL, saved views
saved at once, and random interleavings of select / auto-label / review from two processes
(one sample per round, exact inclusion probabilities, the ledger's invariant)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rorem_data
from rorem_data.core import schema
from rorem_data.dataset import leases, ledger, store
from rorem_data.testing import synthetic

HOLDER = r"""
import sys, time
import rorem_data
project, delay = sys.argv[1], float(sys.argv[2])
def slow(item):
    time.sleep(delay)
    return "accept" if "clean" in (item["result"] or "") or hash(item["key"]) % 2 else "reject"
rorem_data.run_round(project, 1, remover="classical:telea", budget=12, reviewer=slow, gold_rate=0,
                     target_precision=0.8, confidence=0.8, progress=False)
print("finished")
"""


@pytest.fixture
def small(project, tmp_path):
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 16, size=32, seed=2)
    rorem_data.import_pool(project, pool, origin="pool", progress=False)
    return project


def _wait_for_holder(project, pid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = leases.holder_of(project.dataset_name, 1)
        if h is not None and h.get("pid") == pid and h.get("step") == "run_round":
            return h
        time.sleep(0.2)
    raise AssertionError("the first process never took the round")


def test_a_second_process_is_refused_and_told_who_holds_the_round(small, capsys):
    from helpers import run_cli

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, small.root, "1.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        holder = _wait_for_holder(small, proc.pid)
        # Python: a typed error that names the holder
        with pytest.raises(rorem_data.RoundBusy) as err:
            rorem_data.run_round(small, 1, remover="classical:telea", budget=12, reviewer=lambda i: "accept",
                                 gold_rate=0, target_precision=0.8, confidence=0.8, progress=False)
        assert err.value.holder["pid"] == proc.pid
        assert f"pid {proc.pid}" in str(err.value) and holder["host"] in str(err.value)
        # the CLI: exit 1, the same sentence, no traceback
        code, _out, errtext = run_cli(capsys, "-p", small.root, "select", "--round", "1", "--budget", "3")
        assert code == 1 and f"pid {proc.pid}" in errtext and "step 'run_round'" in errtext
        # a dead holder does not block the round: after SIGKILL the same call resumes at once
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        judged = small.dataset.match({"decided_by": schema.BY_HUMAN}).count()
        res = rorem_data.run_round(small, 1, remover="classical:telea", budget=12,
                                   reviewer=lambda i: "accept", gold_rate=0, target_precision=0.8,
                                   confidence=0.8, progress=False)
        assert res.state == "finished"
        assert small.dataset.match({"decided_by": schema.BY_HUMAN}).count() >= judged
        assert leases.holder_of(small.dataset_name, 1) is None  # released at the end
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_expired_lease_of_another_host_is_taken_over(small):
    coll = leases._coll()
    from datetime import datetime, timedelta

    coll.insert_one({"_id": leases.lease_id(small.dataset_name, 1), "token": "x", "host": "elsewhere",
                     "pid": 1, "step": "queue", "acquired_at": datetime(2026, 1, 1),
                     "heartbeat_at": datetime(2026, 1, 1), "expires_at": datetime(2026, 1, 1)})
    with leases.round_lease(small.dataset_name, 1, step="test") as lease:
        assert leases.holder_of(small.dataset_name, 1)["token"] == lease.token
    coll.insert_one({"_id": leases.lease_id(small.dataset_name, 1), "token": "y", "host": "elsewhere",
                     "pid": 1, "step": "queue", "acquired_at": datetime(2026, 1, 1),
                     "heartbeat_at": datetime.utcnow(), "expires_at": datetime.utcnow() + timedelta(hours=1)})
    try:
        with pytest.raises(rorem_data.RoundBusy, match="host elsewhere pid 1 .step 'queue'"):
            leases.acquire(small.dataset_name, 1, step="test")
    finally:
        coll.delete_one({"_id": leases.lease_id(small.dataset_name, 1)})


SAVE_VIEWS = r"""
import sys
import rorem_data
from rorem_data.dataset import queues
p = rorem_data.open_project(sys.argv[1])
for _ in range(5):
    queues._save_views(p.dataset, 1)
"""


def test_saved_views_saved_by_two_processes_at_once_are_listed_once(small):
    rorem_data.generate(small, 1, "classical:telea", progress=False)
    procs = [subprocess.Popen([sys.executable, "-c", SAVE_VIEWS, small.root]) for _ in range(2)]
    for p in procs:
        assert p.wait(120) == 0
    small.dataset.reload()
    names = small.dataset.list_saved_views()
    assert sorted(names) == ["adjudicate-round-1", "review-round-1"]


# --- random interleavings from two processes ------------------------------------------------

WORKER = r"""
import json, sys
import rorem_data
from rorem_data.core.errors import ConfigError, RoundBusy
project = rorem_data.open_project(sys.argv[1])
rnd, ops = int(sys.argv[2]), json.loads(sys.argv[3])
out = []
for op, seed, budget in ops:
    try:
        if op == "select":
            rorem_data.select(project, rnd, budget, version="sim_r1", floor=0.1, rng=seed, previews=False)
        elif op == "auto":
            rorem_data.auto_label(project, rnd, version="sim_r1", target_precision=0.8,
                                  confidence=0.8, audit=0.3, rng=seed, previews=False)
        else:
            rorem_data.review(project, rnd, lambda it: "accept" if "clean" in it["result"] else "reject")
        out.append([op, "ok"])
    except (ConfigError, RoundBusy) as exc:
        out.append([op, type(exc).__name__])
print(json.dumps(out))
"""

OPS = st.lists(st.tuples(st.sampled_from(["select", "auto", "review"]), st.integers(0, 3),
                         st.sampled_from([8, 12])), min_size=1, max_size=3)


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=OPS, b=OPS)
def test_random_interleavings_from_two_processes_keep_one_exact_sample(project, a, b):
    from helpers import scored_round, simulated_version

    rnd = max([r for r in project.dataset.distinct("round") if r is not None] or [0]) + 1
    simulated_version(project)
    ids, _truth, _scores = scored_round(project, n=30, seed=rnd, round=rnd)
    env = {**os.environ, "ROREM_LEASE_WAIT": "60"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, project.root, str(rnd), json.dumps(ops)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for ops in (a, b)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert not any(r == "RoundBusy" for o in outs for _op, r in o)  # they waited their turn
    rec = store.round_record(project.dataset_name, rnd)
    live = [s for s in rec.get("selections") or [] if s.get("design") == "poisson"
            and s.get("status") != "withdrawn"]
    selected = any(op == "select" and r == "ok" for o in outs for op, r in o)
    assert len(live) == (1 if selected else 0)
    docs = project.dataset.match({"kind": "candidate", "round": rnd})
    pis = dict(zip(docs.values("id"), docs.values("inclusion_probability")))
    purposes = dict(zip(docs.values("id"), docs.values("queue_purpose")))
    if live:
        sel = live[0]
        assert sel["status"] == "done"
        # every candidate carries the probability it was drawn with, recorded at the draw
        assert sum(v is not None for v in pis.values()) == sel["population"] == len(ids)
        for sid, p in zip(sel["sample_ids"], sel["probabilities"]):
            assert pis[sid] == p
        # the drawn candidates are queued (one already queued for an audit keeps that purpose),
        # and nothing else was queued as the sample
        active = {sid for sid, pu in purposes.items() if pu == "active"}
        assert active <= set(sel["sample_ids"])
        assert all(purposes[sid] is not None for sid in sel["sample_ids"])
    else:
        assert all(v is None for v in pis.values())
    # the ledger's invariant on every sample, and every audit item has an automatic decision
    excluded = ledger.excluded_reviewers(project.dataset)
    for d in project.dataset._sample_collection.find({"round": rnd}):
        assert ledger.check_invariant(d, excluded) == []
        if d.get("queue_purpose") == "audit":
            assert any(x.get("by") == schema.BY_DISCRIMINATOR for x in d.get("decisions") or [])
