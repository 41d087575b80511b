"""Discriminators in a project: featurize with a cache, train a version, score, evaluate.

Candidates come from two removers (``generator.remover_key``), so the version's record of the
removers it has seen - the input of the remover-shift audit - is tested; the discriminator is
judged by what a user relies on: held-out AUC above a bound and clean fills scored above
failures.
"""

import json
import os
import shutil

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.dataset import store
from rorem_data.rounds import discriminator as discriminate
from rorem_data.rounds.versions import load_version_meta, version_dir
from rorem_data.features.base import get_featurizer
from rorem_data.features.stats import STATS_NAMES

from helpers import add_candidates, judge_by_mode

MODES = (["clean"] * 3 + ["residue", "blur", "hallucination"]) * 8  # 48 candidates
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def labelled(project):
    ids, modes = add_candidates(project, 1, MODES, seed=21, size=48)
    # two removers made the candidates: every other one each
    removers = ["telea-3f2a" if i % 2 == 0 else "navier-stokes-9c1b" for i in range(len(ids))]
    store.set_field_values(project.dataset, "generator.remover_key", ids, removers)
    judge_by_mode(project, 1, ids, modes)
    return project, ids, modes


def scores_by_id(project, version):
    return dict(zip(project.dataset.values("id"), project.dataset.values(f"scores.{version}")))


def test_featurize_caches_and_shards(labelled):
    project, ids, modes = labelled
    a = discriminate.featurize(project, "stats", round=1, shard="0/2", num_workers=0, progress=False)
    b = discriminate.featurize(project, "stats", round=1, shard="1/2", num_workers=0, progress=False)
    assert a.items + b.items == len(ids) and a.computed == a.items and b.computed == b.items
    again = discriminate.featurize(project, "stats", round=1, num_workers=0, progress=False)
    assert again.computed == 0 and again.items == len(ids)
    X = discriminate.load_features(project, again.key, ids)
    assert type(X) is np.ndarray and X.shape == (len(ids), len(STATS_NAMES)) and np.isfinite(X).all()
    X2 = discriminate.load_features(project, "stats", ids[:3])  # by name: the default config
    np.testing.assert_array_equal(X2, X[:3])
    with pytest.raises(ConfigError, match="no cached features"):
        discriminate.load_features(project, "clip", ids)
    with pytest.raises(ConfigError, match="featurizer key must look like"):
        discriminate.load_features(project, "../../etc", ids)


def test_train_score_evaluate(labelled):
    project, ids, modes = labelled
    t = discriminate.train(project, 1, "stats-logistic", holdout=0.4, progress=False)
    meta = load_version_meta(project, t.version)
    assert t.n_train + t.n_holdout == len(ids)
    assert len(meta["holdout"]["scores"]) == t.n_holdout and set(meta["holdout"]["labels"]) == {0, 1}
    # the version knows which removers it was calibrated on (the remover-shift audit reads this)
    assert meta["generators"] == ["navier-stokes-9c1b", "telea-3f2a"]
    model = os.path.join(version_dir(project, t.version), "model")
    assert sorted(os.listdir(model)) == ["discriminator.json", "spec.json", "weights.safetensors"]
    # clean fills vs obvious failures: the stats features separate them on held-out labels
    assert t.agreement["auc"]["value"] >= 0.8  # (a random discriminator: 0.5)
    s = discriminate.score(project, 1, t.version, progress=False)
    assert s.scored == len(ids)
    by_id = scores_by_id(project, t.version)
    clean = np.array([by_id[i] for i, m in zip(ids, modes) if m == "clean"])
    fail = np.array([by_id[i] for i, m in zip(ids, modes) if m != "clean"])
    assert ((0 <= clean) & (clean <= 1)).all() and ((0 <= fail) & (fail <= 1)).all()
    assert clean.mean() > fail.mean() + 0.3
    assert np.median(clean) > np.percentile(fail, 75)  # most clean fills rank above failures
    rep = discriminate.evaluate(project, t.version)
    assert rep["n"] == t.n_holdout
    assert rep["auc"]["value"] >= 0.8 and rep["accuracy"]["value"] >= 0.7
    # the same spec on the same labels gives the same version name and the same scores
    t2 = discriminate.train(project, 1, "stats-logistic", holdout=0.4, progress=False)
    assert t2.version == t.version
    discriminate.score(project, 1, progress=False)  # the latest version by default
    assert scores_by_id(project, t.version) == by_id


def test_a_version_is_scored_from_its_own_saved_spec(labelled, tmp_path, monkeypatch):
    """Train from a spec file, then move it away and shadow its name: scores do not change."""
    project, ids, modes = labelled
    folder = tmp_path / "my-specs"
    folder.mkdir()
    spec_file = folder / "my-stats.toml"
    spec_file.write_text('description = "mine"\nhead = "logistic"\n[featurizer]\nname = "stats"\n'
                         'config = { size = 128 }\n[params]\nC = 0.3\n')
    t = discriminate.train(project, 1, str(spec_file), holdout=0.4, progress=False)
    saved = json.load(open(os.path.join(version_dir(project, t.version), "model", "spec.json")))
    assert saved["name"] == "my-stats" and saved["source"] == str(spec_file)
    assert saved["featurizer"]["config"] == {"size": 128, "ring": 0.35, "decode": "reduced",
                                             "difficulty": True}  # every option
    assert saved["params"] == {"C": 0.3}
    discriminate.score(project, 1, t.version, progress=False)
    before = scores_by_id(project, t.version)
    shutil.move(str(spec_file), str(tmp_path / "moved.toml"))
    # a different spec under the same name, found first by name: never consulted
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "my-stats.toml").write_text('head = "mlp"\n[featurizer]\nname = "stats"\n')
    monkeypatch.setenv("ROREM_DISCRIMINATORS_PATH", str(shadow))
    store.set_field_values(project.dataset, f"scores.{t.version}", ids, [None] * len(ids))
    discriminate.score(project, 1, t.version, progress=False)
    assert scores_by_id(project, t.version) == before
    assert discriminate.evaluate(project, t.version)["n"] == t.n_holdout


def test_a_version_saved_before_the_difficulty_columns_keeps_its_44_features(labelled, tmp_path):
    """Upgrading mid-project: a version trained on the 44 ``stats`` columns of earlier releases
    (its saved spec has no ``difficulty`` option and pins the key of then) still scores with the
    features it was trained on, from the cache of then."""
    project, ids, modes = labelled
    spec_file = tmp_path / "old-stats.toml"
    spec_file.write_text('head = "logistic"\n[featurizer]\nname = "stats"\n'
                         'config = { difficulty = false }\n')
    t = discriminate.train(project, 1, str(spec_file), holdout=0.4, progress=False)
    path = os.path.join(version_dir(project, t.version), "model", "spec.json")
    saved = json.load(open(path))
    old_key = get_featurizer("stats", difficulty=False).key
    assert saved["featurizer"]["key"] == old_key != get_featurizer("stats").key
    discriminate.score(project, 1, t.version, progress=False)
    before = scores_by_id(project, t.version)
    del saved["featurizer"]["config"]["difficulty"]  # what an earlier release saved
    json.dump(saved, open(path, "w"))
    store.set_field_values(project.dataset, f"scores.{t.version}", ids, [None] * len(ids))
    discriminate.score(project, 1, t.version, progress=False)
    assert scores_by_id(project, t.version) == before
    assert sum(v is not None for v in before.values()) == len(ids)
    # a pinned key that no earlier value of an option explains is still refused
    saved["featurizer"]["key"] = "stats-0000000000"
    json.dump(saved, open(path, "w"))
    with pytest.raises(ConfigError, match="retrain it"):
        discriminate.score(project, 1, t.version, progress=False)


def test_a_tampered_version_runs_nothing_on_score(labelled, tmp_path, capsys):
    """The exploit: a version folder whose model names `os:system` - `rorem-data score` refuses."""
    from rorem_data import cli

    project, ids, modes = labelled
    t = discriminate.train(project, 1, "stats-logistic", holdout=0.4, progress=False)
    path = os.path.join(version_dir(project, t.version), "model", "discriminator.json")
    cfg = json.load(open(path))
    marker = tmp_path / "pwned"
    cfg.update(head=None, target="os:system", params={"command": f"touch {marker}"})
    json.dump(cfg, open(path, "w"))
    with pytest.raises(ConfigError, match="'os:system' is not a registered head"):
        discriminate.score(project, 1, t.version, progress=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["-p", project.root, "score", "--round", "1"])  # the latest: the tampered one
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "not a registered head" in err and "Traceback" not in err
    assert not marker.exists()


def test_version_names_are_checked_on_read(labelled):
    project, _, _ = labelled
    for bad in ("../x", "/etc", "a/b", "", "v.1", "..", 3):
        with pytest.raises(ConfigError, match="letters, digits and '_'"):
            discriminate.score(project, 1, bad, progress=False)
        with pytest.raises(ConfigError, match="letters, digits and '_'"):
            load_version_meta(project, bad)
    with pytest.raises(ConfigError, match="'nope' is not in this project; known: none"):
        discriminate.score(project, 1, "nope", progress=False)


def test_train_needs_labels_of_both_kinds(project):
    ids, modes = add_candidates(project, 1, ["clean"] * 25, seed=2, size=32)
    judge_by_mode(project, 1, ids, modes)
    with pytest.raises(ConfigError, match="at least 2 successes and 2 failures; found 25 .25 accepted"):
        discriminate.train(project, 1, "stats-logistic", progress=False)
    with pytest.raises(ConfigError, match="unknown discriminator 'no-such-spec'; choose one of"):
        discriminate.train(project, 1, "no-such-spec", progress=False)
    with pytest.raises(ConfigError, match="unknown calibrator 'beta'"):
        discriminate.train(project, 1, "stats-logistic", calibration="beta", progress=False)
    with pytest.raises(ConfigError, match="holdout must be a number in"):
        discriminate.train(project, 1, "stats-logistic", holdout=1.0, progress=False)
