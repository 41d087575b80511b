"""The decision ledger: status, decided_by and decision always equal what the history says.

Random sequences of review, second review, undo, adjudication, automatic decision, audit and
rerun (hypothesis) - and the same from two processes at once - must leave every sample's
current fields equal to the last history entry, and that entry equal to what an independent
model of the rules (written here, not calling the ledger's own derivation) says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rorem_data.core import schema
from rorem_data.dataset import ledger, queues
from rorem_data.rounds import review

from helpers import add_candidates

REVIEWERS = ["ana", "bo", "cy"]
N = 4


@pytest.fixture(scope="module")
def ledger_project(tmp_path_factory):
    import fiftyone as fo

    from rorem_data import init_project

    root = tmp_path_factory.mktemp("ledger")
    project = init_project(str(root / "p"), name="ledger")
    ids, _ = add_candidates(project, 1, ["clean"] * N, seed=3, size=16)
    queues.enqueue(project.dataset, 1, ids, purpose=schema.QUEUE_ACTIVE, double={0, 1})
    yield project, ids
    fo.delete_dataset(project.dataset_name)


def _reset(project, ids):
    from bson import ObjectId

    project.dataset._sample_collection.update_many(
        {"_id": {"$in": [ObjectId(i) for i in ids]}},
        {"$set": {"reviews": [], "decisions": [], "decision": None, "status": schema.PENDING,
                  "decided_by": None, "decided_round": None, "needs_adjudication": False,
                  "ledger_rev": 0}})


def _docs(project, ids):
    from bson import ObjectId

    return {str(d["_id"]): d for d in project.dataset._sample_collection.find(
        {"_id": {"$in": [ObjectId(i) for i in ids]}}, ledger.READ_FIELDS)}


op = st.one_of(
    st.tuples(st.just("review"), st.integers(0, N - 1), st.sampled_from(REVIEWERS),
              st.sampled_from(["accept", "reject"])),
    st.tuples(st.just("undo"), st.integers(0, N - 1), st.sampled_from(REVIEWERS + ["chief"]),
              st.just(None)),
    st.tuples(st.just("adjudicate"), st.integers(0, N - 1), st.just("chief"),
              st.sampled_from(["accept", "reject"])),
    st.tuples(st.just("auto"), st.integers(0, N - 1), st.sampled_from(["v1", "v2"]),
              st.sampled_from([schema.ACCEPTED, schema.REJECTED])),
)


class Model:
    """The rules, stated independently: per sample, each reviewer's standing judgment, the
    adjudicator's, and the last automatic decision; the status they imply."""

    def __init__(self, quotas):
        self.quotas = quotas
        self.judged = [dict() for _ in quotas]   # reviewer -> (order, status)
        self.adjudicated = [None for _ in quotas]
        self.auto = [None for _ in quotas]
        self.clock = 0

    def human(self, i):
        if self.adjudicated[i] is not None:
            return self.adjudicated[i]
        live = self.judged[i]
        if not live:
            return None
        if self.quotas[i] == 1:
            return max(live.values())[1]
        if len(live) < 2:
            return None
        statuses = {s for _o, s in live.values()}
        return statuses.pop() if len(statuses) == 1 else None

    def apply(self, kind, i, who, what):
        self.clock += 1
        status = {"accept": schema.ACCEPTED, "reject": schema.REJECTED}.get(what, what)
        if kind == "review":
            self.judged[i][who] = (self.clock, status)
        elif kind == "adjudicate":
            self.adjudicated[i] = status
        elif kind == "undo":
            if who == "chief":
                self.adjudicated[i] = None
            self.judged[i].pop(who, None)
        elif kind == "auto" and self.human(i) is None:
            self.auto[i] = status

    def status(self, i):
        return self.human(i) or self.auto[i] or schema.PENDING

    def decided_by(self, i):
        if self.human(i) is not None:
            return schema.BY_HUMAN
        return schema.BY_DISCRIMINATOR if self.auto[i] else None


def _run(ds, ids, kind, i, who, what):
    sid = ids[i]
    if kind == "review":
        review.apply_review(ds, sid, what, reviewer=who)
    elif kind == "adjudicate":
        review.apply_review(ds, sid, what, reviewer=who, adjudicate=True)
    elif kind == "undo":
        review.clear_review(ds, sid, reviewer=who)
    else:
        ledger.decide_automatically(ds, [sid], [schema.decision_doc(
            round=1, phase=schema.PHASE_AUTO, status=what, by=schema.BY_DISCRIMINATOR,
            discriminator=who, threshold=0.5, score=0.9)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_random_sequences_keep_the_invariant(ledger_project, ops):
    project, ids = ledger_project
    _reset(project, ids)
    ds = project.dataset
    model = Model([2, 2, 1, 1])  # positions 0 and 1 are in the double-review share
    for kind, i, who, what in ops:
        _run(ds, ids, kind, i, who, what)
        model.apply(kind, i, who, what)
        if kind == "auto" and what is not None:
            # a rerun of the same automatic decision adds nothing to the history
            before = len(_docs(project, ids)[ids[i]]["decisions"])
            _run(ds, ids, kind, i, who, what)
            assert len(_docs(project, ids)[ids[i]]["decisions"]) == before
    docs = _docs(project, ids)
    for i, sid in enumerate(ids):
        d = docs[sid]
        assert ledger.check_invariant(d) == [], (ops, d)
        assert d["status"] == model.status(i), (ops, i, d["status"], model.status(i))
        assert d["decided_by"] == model.decided_by(i), (ops, i)
        # what export and training read (the history) says the same as the App (the fields)
        assert schema.status_as_of(d["decisions"], 1) == (d["status"] if d["decisions"] else None)


def test_second_reviewers_undo_restores_the_first_judgment(ledger_project):
    """The defect of the issue: accept by one reviewer, reject by a second, the second undoes ->
    the first judgment stands again, in the fields AND as the last history entry."""
    project, ids = ledger_project
    _reset(project, ids)
    ds, sid = project.dataset, ids[2]  # a single-review item
    review.apply_review(ds, sid, "accept", reviewer="ana")
    review.apply_review(ds, sid, "reject", reviewer="bo", reason="blurry_fill")
    review.clear_review(ds, sid, reviewer="bo")
    d = _docs(project, ids)[sid]
    assert d["status"] == schema.ACCEPTED and d["decisions"][-1]["status"] == schema.ACCEPTED
    assert d["decision"]["reviewer"] == "ana" and ledger.check_invariant(d) == []


def test_undoing_an_audit_judgment_restores_the_automatic_decision(ledger_project):
    project, ids = ledger_project
    _reset(project, ids)
    ds, sid = project.dataset, ids[3]
    _run(ds, ids, "auto", 3, "v1", schema.ACCEPTED)
    review.apply_review(ds, sid, "reject", reviewer="ana")
    assert _docs(project, ids)[sid]["status"] == schema.REJECTED
    _run(ds, ids, "auto", 3, "v1", schema.ACCEPTED)  # a rerun never overrules the human
    assert _docs(project, ids)[sid]["status"] == schema.REJECTED
    review.clear_review(ds, sid, reviewer="ana")
    d = _docs(project, ids)[sid]
    assert d["status"] == schema.ACCEPTED and d["decided_by"] == schema.BY_DISCRIMINATOR
    assert d["decisions"][-1]["reason"] == ledger.REASON_RESTORED and ledger.check_invariant(d) == []


WORKER = r"""
import json, os, random, sys
from rorem_data import open_project
from rorem_data.core import schema
from rorem_data.dataset import ledger
from rorem_data.rounds import review
root, ids, seed = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
ds = open_project(root).dataset
rng = random.Random(seed)
reviews = 0
for _ in range(60):
    sid = rng.choice(ids)
    k = rng.random()
    who = f"w{seed}-{rng.randint(0, 1)}"
    if k < 0.55:
        review.apply_review(ds, sid, rng.choice(["accept", "reject"]), reviewer=who); reviews += 1
    elif k < 0.75:
        review.clear_review(ds, sid, reviewer=who); reviews += 1
    else:
        ledger.decide_automatically(ds, [sid], [schema.decision_doc(round=1, phase="auto",
            status=rng.choice(["accepted", "rejected"]), by="discriminator", discriminator=f"v{seed}")])
print(reviews)
"""


def test_two_processes_at_once_lose_nothing_and_keep_the_invariant(ledger_project):
    project, ids = ledger_project
    _reset(project, ids)
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, project.root, json.dumps(ids), str(s)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for s in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    expected_reviews = sum(int(out.strip()) for out, _err in outs)
    docs = _docs(project, ids)
    assert sum(len(d.get("reviews") or []) for d in docs.values()) == expected_reviews
    for d in docs.values():
        assert ledger.check_invariant(d) == [], d
