"""Automation rounds on stored scores, held-out calibration: thresholds, audits, per-remover trust.

The active-sample calibration is tested in ``test_active_queue_sample.py``; the whole loop
through a real trained discriminator in ``test_automation_loop.py``.
"""

import logging

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.dataset import store
from rorem_data.rounds.automation import audit, audit_report, auto_label
from rorem_data.rounds.estimates import round_yield
from rorem_data.rounds.review import apply_review
from rorem_data.rounds.versions import write_version_meta

from helpers import add_candidates, scored_round as _scored_round, simulated_version as _simulated_version


def test_auto_label_meets_thresholds_and_queues_audit(project):
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project)
    res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.1, rng=0,
                     previews=False)
    assert res.method == "holdout" and "no active sample" in res.method_reason
    assert res.accept_threshold is not None and res.accepted > 0
    assert res.reject_threshold is not None and res.rejected > 0
    ds = project.dataset
    status = dict(zip(ds.values("id"), ds.values("status")))
    by = dict(zip(ds.values("id"), ds.values("decided_by")))
    for sid, s in zip(ids, scores):
        if s >= res.accept_threshold:
            assert status[sid] == "accepted" and by[sid] == "discriminator"
        elif s <= res.reject_threshold:
            assert status[sid] == "rejected" and by[sid] == "discriminator"
        else:
            assert status[sid] == "pending"
    d = ds[ids[0]]
    d.reload()
    assert d.decision.discriminator == v and d.decision.phase == "auto"
    # audit: accepts and rejects queued for humans, purpose "audit"
    assert res.audit_ids
    assert set(ds.select(res.audit_ids).values("queue_purpose")) == {"audit"}
    assert {status[i] for i in res.audit_ids} == {"accepted", "rejected"}
    auto = store.get_round_records(project.dataset_name)[0]["phases"]["auto"]
    assert auto["version"] == v and auto["audit_ids"] == res.audit_ids and auto["method"] == "holdout"
    assert auto["allow_unseen_remover"] is False and auto["removers"][0]["remover"] == "test"
    # the automation yield: share of the round decided automatically, before any audit
    y = auto["yield"]
    assert y == {"candidates": 40, "auto_accepted": res.accepted, "auto_rejected": res.rejected,
                 "accept_share": res.accepted / 40, "reject_share": res.rejected / 40,
                 "method": "holdout", "audited_precision": None}
    assert "yield" in res.summary() and res.yield_ == y


def test_audit_measures_precision_and_npv_and_updates_the_yield(project):
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project)
    res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.5, previews=False)
    ds = project.dataset
    rep = audit_report(project, 1)
    assert rep["flag"] == "not audited yet" and rep["pending"] == len(res.audit_ids)
    status = dict(zip(ds.values("id"), ds.values("status")))
    auto_acc = [i for i in res.audit_ids if status[i] == "accepted"]
    auto_rej = [i for i in res.audit_ids if status[i] == "rejected"]
    assert auto_acc and auto_rej
    # humans say every automatic accept was a failure, and confirm every automatic reject
    for sid in res.audit_ids:
        apply_review(ds, sid, "reject", reviewer="auditor")
    rep = audit_report(project, 1)
    assert rep["audited"] == len(res.audit_ids) and rep["pending"] == 0
    assert rep["accept_precision"]["value"] == 0.0 and rep["accept_precision"]["n"] == len(auto_acc)
    assert rep["flag"] == "significantly below target"
    assert rep["reject_npv"]["value"] == 1.0 and rep["reject_npv"]["n"] == len(auto_rej)
    assert rep["reject_npv"]["lo"] > 0.5
    line = str(audit(project, 1))
    assert "precision of automatic accepts 0.0%" in line and "NPV of automatic rejects 100.0%" in line
    assert line.endswith(f"significantly below target ({len(res.audit_ids)} audited)")
    # the human overrules the automatic accept in the data, and the history keeps both
    s = ds[auto_acc[0]]
    s.reload()
    assert s.status == "rejected" and [x.by for x in s.decisions] == ["discriminator", "human"]
    # the yield counts what the discriminator alone still decides, with the audited precision
    y = round_yield(project, 1)
    assert y["auto_accepted"] == res.accepted - len(auto_acc) > 0
    assert y["auto_rejected"] == res.rejected - len(auto_rej) > 0
    assert y["audited_precision"]["value"] == 0.0 and y["method"] == "holdout"
    rec = store.round_record(project.dataset_name, 1)["phases"]["auto"]["yield"]
    assert rec["audited_precision"]["n"] == len(auto_acc)


def test_an_audit_of_rejects_alone_is_an_audit(project):
    """A round that only rejected automatically (round 1 of the demo): its audited rejects are
    measured against the NPV target and flagged - not "not audited yet"."""
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project)
    res = auto_label(project, 1, version=v, target_precision=0.9, reject_npv=0.85,
                     confidence=0.9, audit=0.5, previews=False)
    status = dict(zip(project.dataset.values("id"), project.dataset.values("status")))
    acc = [i for i in res.audit_ids if status[i] == "accepted"]
    rej = [i for i in res.audit_ids if status[i] == "rejected"]
    assert acc and len(rej) >= 2
    for sid in rej:  # people agree with the automatic rejects; the accepts are not judged yet
        apply_review(project.dataset, sid, "reject", reviewer="auditor")
    rep = audit(project, 1)
    assert rep.flag == "ok" and rep.audited == len(rej) and rep.accept_precision["n"] == 0
    assert rep.reject_npv_target == 0.85
    assert str(rep).startswith("round 1: NPV of automatic rejects 100.0% [")
    assert "vs target 85%" in str(rep)
    assert f"ok ({len(rej)} audited, {len(acc)} waiting)" in str(rep)
    # accepts confirmed, rejects all overturned: the round's flag is the rejects'
    for sid in acc:
        apply_review(project.dataset, sid, "accept", reviewer="auditor")
    for sid in rej:
        apply_review(project.dataset, sid, "accept", reviewer="auditor2", adjudicate=True)
    rep = audit(project, 1)
    assert rep.accept_precision["value"] == 1.0 and rep.reject_npv["value"] == 0.0
    assert rep.flag == "significantly below target"


def test_an_unseen_remover_is_left_to_humans_unless_overridden(project, caplog):
    v = _simulated_version(project, generators=("some-other-remover",))
    ids, truth, scores = _scored_round(project, n=40)
    # nothing qualifies: an outcome, not an error - nothing decided, and the result says why
    none = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, previews=False)
    assert none.accepted == none.rejected == 0 and none.left_pending == 40
    assert none.removers["test"]["left_to_humans"]
    assert "0 held-out labels" in none.removers["test"]["message"]
    assert "label at least 22 more" in none.summary()
    assert set(project.dataset.select(ids).values("status")) == {"pending"}
    with caplog.at_level(logging.WARNING, logger="rorem_data"):
        res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.0,
                         shift_audit=0.5, allow_unseen_remover=True, previews=False)
    assert "not calibrated on" in caplog.text
    assert res.shifted == 40 and res.removers["test"]["override"]
    decided = res.accepted + res.rejected
    assert decided >= 20 and len(res.audit_ids) >= decided * 0.5 - 2
    auto = store.round_record(project.dataset_name, 1)["phases"]["auto"]
    assert auto["allow_unseen_remover"] is True and auto["overridden_removers"] == ["test"]
    assert auto["pooled"]["accept_threshold"] == res.accept_threshold


def test_each_remover_needs_its_own_calibration_labels(project):
    """Held-out labels of remover A only: A's candidates are decided, B's are left to humans."""
    ids_a, truth_a, scores_a = _scored_round(project, n=40, seed=1)
    ids_b, modes_b = add_candidates(project, 1, ["clean", "residue"] * 10, seed=9, size=32)
    store.set_field_values(project.dataset, "generator.remover_key", ids_b, ["other"] * len(ids_b))
    rng = np.random.default_rng(4)
    store.set_field_values(project.dataset, "scores.sim_r1", ids_b, rng.uniform(0, 1, len(ids_b)).tolist())
    # held-out labels, each tied to a candidate: 300 of remover A ("test"), 5 of remover B
    s = rng.beta(2, 2, 305)
    y = (rng.random(305) < 1 / (1 + np.exp(-14 * (s - 0.5)))).astype(int)
    hold_ids = [ids_a[i % len(ids_a)] for i in range(300)] + ids_b[:5]
    write_version_meta(project, "sim_r1", {"trained_at": "2026-11-25T00:00:00", "round": 1,
                                           "train_ids": [], "generators": ["other", "test"],
                                           "holdout": {"ids": hold_ids, "scores": s.tolist(),
                                                       "labels": y.tolist()}})
    res = auto_label(project, 1, version="sim_r1", target_precision=0.9, confidence=0.9, audit=0.0,
                     previews=False)
    a, b = res.removers["test"], res.removers["other"]
    assert a["n_labels"] == 300 and a["accept_threshold"] is not None and not a["left_to_humans"]
    assert b["n_labels"] == 5 and b["left_to_humans"] and b["labels_needed"] > 5
    assert f"label at least {b['labels_needed'] - 5} more" in b["message"]
    # the confidence is split over the two removers: each is tested at 1 - 0.1 / 2
    assert res.details["confidence_per_remover"] == pytest.approx(0.95)
    assert a["accept_choice"]["confidence"] == pytest.approx(0.95)
    status = dict(zip(project.dataset.values("id"), project.dataset.values("status")))
    assert {status[i] for i in ids_b} == {"pending"}
    assert any(status[i] == "accepted" for i in ids_a)
    assert "remover other: left to humans" in res.summary()


def test_auto_label_errors(project):
    with pytest.raises(ConfigError, match="no trained discriminator"):
        auto_label(project, 1)
    v = _simulated_version(project)
    add_candidates(project, 1, ["clean", "residue"], seed=3, size=32)
    with pytest.raises(ConfigError, match="have no score from"):
        auto_label(project, 1, version=v)
    with pytest.raises(ConfigError, match="is not in this project"):
        auto_label(project, 1, version="nope")
    with pytest.raises(ConfigError, match="active method cannot calibrate.*has no active sample"):
        auto_label(project, 1, version=v, method="active")
    with pytest.raises(ConfigError, match="^target_precision must be a number strictly between"):
        auto_label(project, 1, version=v, target_precision=95)
    with pytest.raises(ConfigError, match="^method must be one of auto, crossfit, split, active, holdout"):
        auto_label(project, 1, version=v, method="bayes")
    with pytest.raises(ConfigError, match="^audit must be a number in"):
        auto_label(project, 1, version=v, audit=2)
    with pytest.raises(ConfigError, match="run auto_label first"):
        audit_report(project, 1)


def test_the_second_entry_point_goes_to_the_rules_whose_hits_earlier_rounds_made_common(project):
    """From 300 expected labels the certification's sequence gets a second entry point (a third
    of the labels) only for a rule whose hits were at least half of the earlier rounds' human
    labels: with 3 successes in 10, accepts run one sequence at the whole error rate and rejects
    keep both entry points. Round 1, with no earlier labels, keeps both for both rules."""
    from rorem_data.rounds.automation import _earlier_success_share, _second_entries
    from rorem_data.rounds.review.queue import enqueue

    ids, _, _ = _scored_round(project, n=10)
    enqueue(project, 1, ids, purpose="active", previews=False)
    for i, sid in enumerate(ids):
        apply_review(project.dataset, sid, "accept" if i < 3 else "reject", reviewer="ann")
    assert _earlier_success_share(project, 1) is None
    assert _second_entries(None) == {"accept": True, "reject": True}
    share = _earlier_success_share(project, 2)
    assert share == pytest.approx(0.3)
    assert _second_entries(share) == {"accept": False, "reject": True}
    assert _second_entries(0.8) == {"accept": True, "reject": False}


def test_where_accepts_and_rejects_meet_the_rejects_stop_below_the_accepts():
    """Wired through the per-remover certification: a round whose accept and reject sequences
    would both claim the middle (P(success) = score, target 0.6) gets a reject threshold below
    its accept threshold - the reject set in use is one the sequence showed."""
    from rorem_data.rounds.automation import _active_groups
    from rorem_data.rounds.estimates import ActiveDesign
    from rorem_data.stats.certify import choose_threshold_equal, thin_to_equal

    rng = np.random.default_rng(31)
    n = 2000
    s = rng.uniform(size=n)
    y = (rng.uniform(size=n) < s).astype(float)
    drawn = rng.uniform(size=n) < 0.3
    ids = [f"c{i}" for i in range(n)]
    design = ActiveDesign(round=2, selection={"seed": 0}, ids=ids, pi=np.full(n, 0.3),
                          drawn=drawn, known=np.zeros(n, bool),
                          labels=np.where(drawn, y, np.nan), removers=np.full(n, "r", dtype=object),
                          scores={"v": s}, keys=ids)
    out, _, _ = _active_groups(design, "v", target=0.6, npv=0.6, alpha=0.1, allow_unseen=False)
    acc_t, rej_t = out["r"]["accept_threshold"], out["r"]["reject_threshold"]
    assert acc_t is not None and rej_t is not None and rej_t < acc_t
    assert out["r"]["reject_choice"]["below"] == acc_t
    # unconstrained, the same sequence shows a reject set reaching into the accepted scores
    from rorem_data.rounds.automation import thinning_coins

    kept, c = thin_to_equal(drawn, design.pi, thinning_coins(design))
    free = choose_threshold_equal(s, np.where(kept, y == 0, 0), kept, c, rule="reject",
                                  target=0.6, confidence=0.9)
    assert free.threshold >= acc_t
