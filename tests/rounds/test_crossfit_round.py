"""A round decided by its own discriminator through cross-fitting: the version trained on the
round's labels is refitted without each fold of the active sample, the fold is decided by that
refit, and all of the round's labels certify the thresholds."""

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.dataset import queries, store
from rorem_data.rounds.automation import auto_label
from rorem_data.rounds.discriminator import score, train
from rorem_data.rounds.review.queue import build_active_sample

from helpers import add_candidates
from test_automation_loop import judge, modes


def _round_one(project, n=240, budget=150):
    m = modes(n, 11)
    ids, _ = add_candidates(project, 1, m, seed=11, size=48)
    truth = {sid: mode == "clean" for sid, mode in zip(ids, m)}
    s = build_active_sample(project, 1, budget, rng=0, previews=False)
    judge(project, 1, s.sample_ids, truth)
    v = train(project, 1, "stats-logistic", progress=False).version
    score(project, 1, v, progress=False)
    return v, truth, s


@pytest.mark.slow
def test_round_one_is_decided_by_its_own_version_cross_fitted(project):
    v, truth, s = _round_one(project)
    r = auto_label(project, 1, method="crossfit", target_precision=0.7, confidence=0.8, audit=0.1,
                   previews=False)
    assert r.method == "crossfit" and r.version == v
    assert "cross-fitted" in r.method_reason
    assert r.accepted + r.rejected > 0
    field = f"{v}_crossfit"
    rec = store.round_record(project.dataset_name, 1)["phases"]["auto"]
    assert rec["method"] == "crossfit" and rec["score_field"] == field
    # every decision carries the cross-fitted score it was decided by, not the version's own
    docs = queries.candidates(project.dataset, round=1, fields=["scores", "decisions", "decided_by"])
    auto = [d for d in docs if d.get("decided_by") == "discriminator"]
    assert auto
    for d in auto:
        last = d["decisions"][-1]
        assert last["score"] == pytest.approx(d["scores"][field])
        assert last["discriminator"] == v
    # the population (all of round 1, nothing judged before the draw) has a cross-fitted score;
    # the drawn ones too (they were judged by people, so they are not decided)
    assert all(field in (d.get("scores") or {}) for d in docs)
    assert not set(s.sample_ids) & {d["id"] for d in auto}
    # the claim is on the region each threshold decides (drawn ones judged by people included)
    sc = {d["id"]: d["scores"][field] for d in docs}
    if r.accept_threshold is not None:
        assert np.mean([truth[i] for i in sc if sc[i] >= r.accept_threshold]) >= 0.7
    if r.reject_threshold is not None:
        assert np.mean([not truth[i] for i in sc if sc[i] <= r.reject_threshold]) >= 0.7
    # a rerun decides the same candidates the same way and adds nothing
    again = auto_label(project, 1, method="crossfit", target_precision=0.7, confidence=0.8,
                       audit=0.1, previews=False)
    assert (again.accepted, again.rejected) == (r.accepted, r.rejected)
    assert again.accept_threshold == r.accept_threshold
    assert again.reject_threshold == r.reject_threshold


def test_crossfit_needs_the_rounds_own_version_and_a_judged_sample(project):
    m = modes(120, 12)
    ids, _ = add_candidates(project, 1, m, seed=12, size=32)
    truth = {sid: mode == "clean" for sid, mode in zip(ids, m)}
    s = build_active_sample(project, 1, 80, rng=0, previews=False)
    judge(project, 1, s.sample_ids[:40], truth)
    v = train(project, 1, "stats-logistic", progress=False).version
    score(project, 1, v, progress=False)
    with pytest.raises(ConfigError, match="crossfit method cannot.*not fully judged"):
        auto_label(project, 1, method="crossfit", previews=False)
    judge(project, 1, s.sample_ids[40:], truth)
    m2 = modes(60, 13)
    ids2, _ = add_candidates(project, 2, m2, seed=13, size=32)
    score(project, 2, v, progress=False)
    s2 = build_active_sample(project, 2, 30, rng=0, previews=False)
    judge(project, 2, s2.sample_ids, {**truth, **{sid: mode == "clean" for sid, mode in zip(ids2, m2)}})
    with pytest.raises(ConfigError, match=f"{v} was trained on the labels of round 1, not 2"):
        auto_label(project, 2, method="crossfit", version=v, previews=False)


@pytest.mark.slow
def test_a_candidate_is_scored_without_its_folds_labels(project):
    """Through the project: relabel every judged candidate of one fold and only the other folds'
    scores move - the wiring (which labels train which refit) keeps each fold out of its own."""
    from rorem_data.core import schema
    from rorem_data.rounds.discriminator import CROSSFIT_FOLDS, crossfit_scores
    from rorem_data.rounds.estimates import active_design
    from rorem_data.rounds.review import apply_reviews
    from rorem_data.stats.crossfit import fold_of

    v, truth, s = _round_one(project)
    d = active_design(project, 1)
    ids, keys = d.ids, d.keys
    before, _ = crossfit_scores(project, 1, v, ids, keys, rng=0)
    fold = fold_of(keys, CROSSFIT_FOLDS, "1:0")
    flip = [sid for sid, f in zip(ids, fold) if f == 0 and sid in set(s.sample_ids)]
    assert flip
    apply_reviews(project.dataset, [(sid, schema.REJECTED if truth[sid] else schema.ACCEPTED, "bo", None)
                                    for sid in flip], round=1)
    after, _ = crossfit_scores(project, 1, v, ids, keys, rng=0)
    assert np.allclose(before[fold == 0], after[fold == 0])
    assert not np.allclose(before[fold != 0], after[fold != 0])
