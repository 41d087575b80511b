"""Automation rounds on stored scores: thresholds, audits, estimates, generator shift."""

import pytest

from rorem_data import ConfigError
from rorem_data.dataset import store
from rorem_data.rounds.automation import audit_report, auto_label, round_estimates
from rorem_data.rounds.review import apply_review
from rorem_data.rounds.queue import build_estimate_sample

from helpers import add_candidates, scored_round as _scored_round, simulated_version as _simulated_version


def test_auto_label_meets_thresholds_and_queues_audit(project):
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project)
    res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.1, rng=0,
                     previews=False)
    assert res.accept_threshold is not None and res.accepted > 0
    ds = project.dataset
    status = dict(zip(ds.values("id"), ds.values("status")))
    by = dict(zip(ds.values("id"), ds.values("decided_by")))
    for sid, s in zip(ids, scores):
        if s >= res.accept_threshold:
            assert status[sid] == "accepted" and by[sid] == "discriminator"
        elif res.reject_threshold is not None and s <= res.reject_threshold:
            assert status[sid] == "rejected"
        else:
            assert status[sid] == "pending"
    d = ds[ids[0]]
    d.reload()
    assert d.decision.discriminator == v and d.decision.phase == "auto"
    # audit: at least one accept and one reject queued for humans, purpose "audit"
    assert res.audit_ids
    purposes = set(ds.select(res.audit_ids).values("queue_purpose"))
    assert purposes == {"audit"}
    rec = store.get_round_records(project.dataset_name)[0]
    assert rec["phases"]["auto"]["version"] == v and rec["phases"]["auto"]["audit_ids"] == res.audit_ids


def test_audit_report_measures_precision_and_flags(project):
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project)
    res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=1.0, previews=False)
    ds = project.dataset
    rep = audit_report(project, 1)
    assert rep["flag"] == "not audited yet" and rep["pending"] == len(res.audit_ids)
    truth_of = dict(zip(ids, truth))
    status = dict(zip(ds.values("id"), ds.values("status")))
    # humans say every automatic accept was in fact a failure: precision 0, flagged
    for sid in res.audit_ids:
        apply_review(ds, sid, "reject" if status[sid] == "accepted" else "reject", reviewer="auditor")
    rep = audit_report(project, 1)
    assert rep["accept_precision"]["value"] == 0.0 and rep["flag"] == "significantly below target"
    # the human overrules the automatic accept in the data, and the history keeps both
    s = ds[res.audit_ids[0]]
    s.reload()
    assert s.status == "rejected" and [x.by for x in s.decisions] == ["discriminator", "human"]


def test_estimates_human_and_prediction_powered(project):
    v = _simulated_version(project)
    ids, truth, scores = _scored_round(project, n=60)
    sample = build_estimate_sample(project, 1, 30, rng=0, previews=False)
    truth_of = dict(zip(ids, truth))
    for sid in sample.sample_ids:
        apply_review(project.dataset, sid, "accept" if truth_of[sid] else "reject", reviewer="h")
    est = round_estimates(project, 1, version=v)
    assert est["estimate_labels"] == 30
    true_rate = truth.mean()
    for key in ("human", "ppi"):
        assert est[key]["lo"] <= true_rate <= est[key]["hi"], key
    assert est["ppi"]["hi"] - est["ppi"]["lo"] < est["human"]["hi"] - est["human"]["lo"]
    with pytest.raises(ConfigError, match="estimation sample size"):
        build_estimate_sample(project, 1, 31)


def test_generator_shift_is_audited_more(project):
    v = _simulated_version(project, generators=("some-other-remover",))
    _scored_round(project, n=40)
    with pytest.warns(UserWarning, match="not calibrated on"):
        res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.0,
                         shift_audit=0.5, previews=False)
    assert res.shifted == 40
    decided = res.accepted + res.rejected
    assert len(res.audit_ids) >= decided * 0.5 - 2


def test_auto_label_errors(project):
    with pytest.raises(ConfigError, match="no trained discriminator"):
        auto_label(project, 1)
    v = _simulated_version(project)
    add_candidates(project, 1, ["clean", "residue"], seed=3, size=32)
    with pytest.raises(ConfigError, match="have no score from"):
        auto_label(project, 1, version=v)
    with pytest.raises(ConfigError, match="is not in this project"):
        auto_label(project, 1, version="nope")
