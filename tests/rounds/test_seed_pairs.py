"""Seed pairs as training examples: known successes and failures before people judge."""

from __future__ import annotations

import numpy as np

from rorem_data.features.base import get_featurizer
from rorem_data.rounds.discriminator import score, train
from rorem_data.rounds.seed_pairs import seed_pair_examples
from rorem_data.rounds.versions import load_version_meta
from rorem_data.testing import synthetic

from helpers import add_candidates, judge_by_mode


def _modes(n, seed):
    rng = np.random.default_rng(seed)
    return ["clean" if rng.random() < 0.5 else str(rng.choice(["residue", "blur", "outside"]))
            for _ in range(n)]


def test_seed_pairs_are_balanced_features_of_known_answers(project, tmp_path):
    f = get_featurizer("stats", size=64)
    X, y = seed_pair_examples(project, f, 10)
    assert X.shape == (0, f.dim) and y.size == 0  # no seeds yet: nothing, no error
    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 20, size=48, seed=5)
    project.import_seeds([meta], origin="seedset", workers=1)
    X, y = seed_pair_examples(project, f, 30, rng=1)
    # a success and a failure per seed (a failure too subtle to be a sure answer is left out)
    assert 27 <= X.shape[0] <= 30 and X.shape[1] == f.dim and np.isfinite(X).all()
    assert y.sum() == 15 and X.shape[0] == y.size
    X2, y2 = seed_pair_examples(project, f, 30, rng=1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)  # fixed by the seed


def test_seed_pairs_join_training_and_give_way_to_people(project, tmp_path):
    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 40, size=48, seed=5)
    project.import_seeds([meta], origin="seedset", workers=1)
    m = _modes(80, 2)
    ids, _ = add_candidates(project, 1, m, seed=2, size=48)
    judge_by_mode(project, 1, ids[:40], m[:40])
    plain = train(project, 1, "stats-logistic", progress=False).version
    mixed = train(project, 1, "stats-logistic", seed_pairs=60, progress=False).version
    assert plain != mixed
    a, b = load_version_meta(project, plain), load_version_meta(project, mixed)
    n_train = len(b["train_ids"])
    assert a["seed_pairs"] == 0 and 60 - n_train - 3 <= b["seed_pairs"] <= 60 - n_train
    # the held-out part is human labels only, the same for both: it calibrates and certifies
    assert a["holdout"]["ids"] == b["holdout"]["ids"]
    score(project, 1, mixed, progress=False)
    judge_by_mode(project, 1, ids[40:], m[40:])
    later = load_version_meta(project, train(project, 1, "stats-logistic", seed_pairs=60,
                                             progress=False).version)
    # people take over: one example fewer per human training label
    assert later["seed_pairs"] <= max(0, 60 - len(later["train_ids"])) < b["seed_pairs"]


def test_round_one_draws_with_a_seed_pair_version_and_certifies_it_on_all_its_labels(project, tmp_path):
    import rorem_data
    from rorem_data.rounds.estimates import active_design
    from rorem_data.testing.simulate import SimulatedReviewer

    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 30, size=40, seed=0)
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 40, size=40, seed=1)
    rorem_data.import_seeds(project, [meta], progress=False)
    rorem_data.import_pool(project, pool, origin="pool", progress=False)
    args = dict(remover="classical:telea", budget=30, target_precision=0.8, confidence=0.8,
                reviewer=SimulatedReviewer("sim", noise=0.0), seed_pairs=60, progress=False)
    res = rorem_data.run_round(project, 1, **args)
    assert res.state == "finished"
    assert res.steps["seed_version"].startswith("trained") and "seed-pair examples" in res.steps["seed_version"]
    design = active_design(project, 1)
    seed_v = design.version
    m = load_version_meta(project, seed_v)
    # trained before any human label, on no candidate: round 0, seed pairs only
    assert m["round"] == 0 and m["seed_pairs_only"] and m["train_ids"] == [] and m["seed_pairs"] >= 40
    # this round's own version is trained on people's labels as before; cross-fitted, averaged
    # with the seed version (fixed before the draw), it decides the round on all of its labels
    assert res.version != seed_v
    from rorem_data.dataset import store

    auto = store.round_record(project.dataset_name, 1)["phases"]["auto"]
    assert auto["method"] == "crossfit" and auto["version"] == res.version
    assert f"averaged with the scores of {seed_v}" in auto["method_reason"]
    # without cross-fitting, the seed version is the one certified on all of the round's labels
    from rorem_data.rounds.automation import auto_label

    act = auto_label(project, 1, method="active", version=seed_v, target_precision=0.8,
                     confidence=0.8, previews=False)
    assert act.method == "active" and act.version == seed_v
    # the same call again: nothing trained twice
    again = rorem_data.run_round(project, 1, **args)
    assert again.steps["seed_version"].startswith("done before")
    assert active_design(project, 1).version == seed_v
    # run again from the seed_version step without seed pairs: the seed version does not draw
    res0 = rorem_data.run_round(project, 1, **{**args, "seed_pairs": 0}, redo="seed_version")
    assert "seed_version" not in res0.steps and active_design(project, 1).version != seed_v
    # round 2 draws with round 1's version (people's labels), not with a seed version
    pool2 = synthetic.write_pool_folder(str(tmp_path / "pool2"), 30, size=40, seed=2)
    rorem_data.import_pool(project, pool2, origin="pool2", progress=False)
    r2 = rorem_data.run_round(project, 2, **{**args, "remover": "classical:ns"})
    assert "seed_version" not in r2.steps
    assert active_design(project, 2).version == res0.version


def test_without_seeds_round_one_runs_as_before(project, tmp_path):
    import rorem_data
    from rorem_data.testing.simulate import SimulatedReviewer

    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 30, size=40, seed=1)
    rorem_data.import_pool(project, pool, origin="pool", progress=False)
    res = rorem_data.run_round(project, 1, remover="classical:telea", budget=30,
                               reviewer=SimulatedReviewer("sim", noise=0.0), seed_pairs=60,
                               progress=False)
    assert res.state == "finished"
    assert res.steps["seed_version"].startswith("no discriminator before the first label")


def test_a_seed_pair_version_needs_a_feature_head_and_enough_seeds(project, tmp_path):
    from rorem_data.rounds.discriminator import train_from_seeds

    assert train_from_seeds(project, "stats-logistic", n=60) is None  # no seeds yet
    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 12, size=40, seed=0)
    project.import_seeds([meta], origin="seedset", workers=1)
    assert train_from_seeds(project, "pair-resnet18", n=60) is None  # an image head
    res = train_from_seeds(project, "stats-logistic", n=60, rng=3)
    assert res is not None and "seed-pair examples (no human label)" in res.summary()
    # the same call names the same version (no second copy)
    assert train_from_seeds(project, "stats-logistic", n=60, rng=3).version == res.version
