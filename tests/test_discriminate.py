"""Discriminators in a project: featurize with a cache, train a version, score, evaluate."""

import os

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.rounds import discriminator as discriminate
from rorem_data.rounds.versions import load_version_meta

from helpers import add_candidates, judge_by_mode

MODES = (["clean"] * 3 + ["residue", "blur", "hallucination"]) * 8  # 48 candidates


@pytest.fixture
def labelled(project):
    ids, modes = add_candidates(project, 1, MODES, seed=21, size=48)
    judge_by_mode(project, 1, ids, modes)
    return project, ids, modes


def test_featurize_caches_and_shards(labelled):
    project, ids, modes = labelled
    a = discriminate.featurize(project, "stats", round=1, shard="0/2", num_workers=0, progress=False)
    b = discriminate.featurize(project, "stats", round=1, shard="1/2", num_workers=0, progress=False)
    assert a.items + b.items == len(ids) and a.computed == a.items and b.computed == b.items
    again = discriminate.featurize(project, "stats", round=1, num_workers=0, progress=False)
    assert again.computed == 0 and again.items == len(ids)
    X = discriminate.load_features(project, again.key, ids)
    assert X.shape[0] == len(ids) and np.isfinite(X).all()
    X2 = discriminate.load_features(project, "stats", ids[:3])  # by name: the default config
    np.testing.assert_array_equal(np.asarray(X2), np.asarray(X[:3]))
    with pytest.raises(ConfigError, match="no cached features"):
        discriminate.load_features(project, "clip", ids)


def test_train_score_evaluate(labelled):
    project, ids, modes = labelled
    t = discriminate.train(project, 1, "stats-logistic", holdout=0.4, progress=False)
    meta = load_version_meta(project, t.version)
    assert t.n_train + t.n_holdout == len(ids)
    assert len(meta["holdout"]["scores"]) == t.n_holdout and set(meta["holdout"]["labels"]) == {0, 1}
    assert meta["generators"] == [] or all(isinstance(g, str) for g in meta["generators"])
    assert os.path.exists(os.path.join(project.root, "models", "discriminators", t.version, "model"))
    # clean fills vs obvious failures: the stats features separate them
    assert t.agreement["auc"]["value"] > 0.7
    s = discriminate.score(project, 1, t.version, progress=False)
    assert s.scored == len(ids)
    scores = project.dataset.values(f"scores.{t.version}")
    by_id = dict(zip(project.dataset.values("id"), scores))
    s_clean = np.mean([by_id[i] for i, m in zip(ids, modes) if m == "clean"])
    s_fail = np.mean([by_id[i] for i, m in zip(ids, modes) if m != "clean"])
    assert s_clean > s_fail + 0.2
    rep = discriminate.evaluate(project, t.version)
    assert rep["n"] == t.n_holdout and 0 <= rep["accuracy"]["value"] <= 1
    # the same spec on the same labels gives the same version name and the same scores
    t2 = discriminate.train(project, 1, "stats-logistic", holdout=0.4, progress=False)
    assert t2.version == t.version


def test_train_needs_labels_of_both_kinds(project):
    ids, modes = add_candidates(project, 1, ["clean"] * 25, seed=2, size=32)
    judge_by_mode(project, 1, ids, modes)
    with pytest.raises(ConfigError, match="both kinds"):
        discriminate.train(project, 1, "stats-logistic", progress=False)
    with pytest.raises(ConfigError):
        discriminate.train(project, 1, "no-such-spec", progress=False)
