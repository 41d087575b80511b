"""Round estimates from the uniform sample, the predictor rule, yield and agreement per remover."""

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.dataset import store
from rorem_data.rounds.automation import auto_label
from rorem_data.rounds.estimates import per_remover_agreement, round_estimates, round_yield
from rorem_data.rounds.review.queue import build_estimate_sample
from rorem_data.rounds.review import apply_review
from rorem_data.rounds.versions import write_version_meta

from helpers import add_candidates, judge_by_mode, scored_round, simulated_version


def test_estimates_human_and_prediction_powered(project):
    v = simulated_version(project)
    ids, truth, scores = scored_round(project, n=60)
    sample = build_estimate_sample(project, 1, 30, rng=0, previews=False)
    truth_of = dict(zip(ids, truth))
    for sid in sample.sample_ids:
        apply_review(project.dataset, sid, "accept" if truth_of[sid] else "reject", reviewer="h")
    est = round_estimates(project, 1, version=v)
    assert est["estimate_labels"] == 30 and est["candidates"] == 60 and "active" not in est
    true_rate = truth.mean()
    for key in ("human", "ppi"):
        assert est[key]["lo"] <= true_rate <= est[key]["hi"], key
    assert est["ppi"]["hi"] - est["ppi"]["lo"] < est["human"]["hi"] - est["human"]["lo"]
    assert est["ppi"]["version"] == v and est["discriminator"]["version"] == v
    assert est["best"]["source"] == "ppi" and est["best"]["value"] == est["ppi"]["value"]
    with pytest.raises(ConfigError, match="estimation sample size"):
        build_estimate_sample(project, 1, 31)
    with pytest.raises(ConfigError, match="^confidence must be"):
        round_estimates(project, 1, confidence=95)


def test_ppi_does_not_use_a_version_trained_on_the_sample(project):
    simulated_version(project, version="old_r0")
    ids, truth, scores = scored_round(project, n=60, version="old_r0")
    sample = build_estimate_sample(project, 1, 30, rng=0, previews=False)
    truth_of = dict(zip(ids, truth))
    for sid in sample.sample_ids:
        apply_review(project.dataset, sid, "accept" if truth_of[sid] else "reject", reviewer="h")
    # a newer version trained on the sample's labels: its scores fit them exactly
    fitted = {sid: float(truth_of[sid]) for sid in ids}
    write_version_meta(project, "new_r1", {"trained_at": "2026-11-30T00:00:00", "round": 1,
                                           "train_ids": sample.sample_ids[:20],
                                           "holdout": {"ids": sample.sample_ids[20:], "scores": [],
                                                       "labels": []}})
    store.set_field_values(project.dataset, "scores.new_r1", ids, [fitted[i] for i in ids])
    est = round_estimates(project, 1)  # the latest version, new_r1, by default
    assert est["discriminator"]["version"] == "new_r1"
    assert est["ppi"]["version"] == "old_r0"
    assert any("new_r1 was trained or calibrated on 30" in n for n in est["notes"])
    # with no independent version left, there is no ppi, and the human estimate is the best
    store.set_field_values(project.dataset, "scores.old_r0", ids[:1], [None])
    est = round_estimates(project, 1)
    assert "ppi" not in est and est["best"]["source"] == "human"


def test_round_yield_before_and_after_auto_label(project):
    v = simulated_version(project)
    scored_round(project, n=40)
    y = round_yield(project, 1)
    assert y == {"candidates": 40, "auto_accepted": 0, "auto_rejected": 0, "accept_share": 0.0,
                 "reject_share": 0.0, "method": None, "audited_precision": None}
    res = auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.0, previews=False)
    y = round_yield(project, 1)
    assert y["auto_accepted"] == res.accepted > 0 and y["accept_share"] == res.accepted / 40
    assert y["method"] == "holdout"


def test_agreement_per_remover_with_intervals(project):
    ids_a, modes_a = add_candidates(project, 1, ["clean", "residue"] * 15, seed=1, size=32)
    ids_b, modes_b = add_candidates(project, 1, ["clean", "residue"] * 15, seed=2, size=32)
    store.set_field_values(project.dataset, "generator.remover_key", ids_b, ["other"] * len(ids_b))
    rng = np.random.default_rng(0)
    good_a = [0.9 if m == "clean" else 0.1 for m in modes_a]  # ranks its own remover well
    noisy_b = rng.uniform(0, 1, len(ids_b)).tolist()          # guesses on the other one
    store.set_field_values(project.dataset, "scores.v1", ids_a + ids_b, good_a + noisy_b)
    write_version_meta(project, "v1", {"trained_at": "2026-11-25T00:00:00", "round": 1,
                                       "train_ids": ids_a[:4], "holdout": {"ids": [], "scores": [], "labels": []}})
    judge_by_mode(project, 1, ids_a + ids_b, modes_a + modes_b)
    rep = per_remover_agreement(project, 1, "v1")
    a, b = rep["removers"]["test"], rep["removers"]["other"]
    assert rep["excluded_training"] == 4 and a["n"] == 26 and b["n"] == 30
    assert a["auc"]["value"] == 1.0 and a["precision"]["value"] == 1.0
    assert a["threshold"] == 0.5 and a["threshold_source"] == "default 0.5"
    assert b["auc"]["lo"] < 0.8 < a["auc"]["lo"] + 0.2 and b["auc"]["lo"] <= b["auc"]["value"] <= b["auc"]["hi"]
    assert b["precision"]["lo"] <= b["precision"]["value"] <= b["precision"]["hi"]
    rep = per_remover_agreement(project, 1, "v1", threshold=0.95)
    assert rep["removers"]["test"]["precision"]["n"] == 0
