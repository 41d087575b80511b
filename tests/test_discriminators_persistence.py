"""Saved discriminators are data: nothing they name runs, and corrupt weights are refused.

Every tampering a shared folder can carry - a class that is not a registered head, parameters a
class does not take, arrays of the wrong dtype or shape, missing arrays, truncated files, tree
tables that point to themselves or outside their arrays - is refused quickly with a
ConfigError naming the file; round trips give identical predictions.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rorem_data.core.errors import ConfigError
from rorem_data.discriminators.heads import HistGradientBoostingHead, LogisticHead, MLPHead
from rorem_data.discriminators.persistence import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_discriminator,
    save_discriminator,
)
from rorem_data.discriminators.registry import HEADS, register_head
from rorem_data.discriminators.trees import NODE_DTYPES, check_forest, forest_decision

pytestmark = pytest.mark.timeout(60)


def data(n=200, d=5, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] - 0.7 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    if nan:
        X[::13, 2] = np.nan
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = data(nan=False)
    Xn, _ = data(nan=True)
    return {
        "logistic": (LogisticHead().fit(X, y), X),
        "mlp": (MLPHead(hidden_layer_sizes=(7, 3), max_iter=200, random_state=0).fit(X, y), X),
        "hgb": (HistGradientBoostingHead(max_iter=12, random_state=0).fit(Xn, y), Xn),
    }


def saved(fitted, name, tmp_path):
    disc, X = fitted[name]
    folder = save_discriminator(disc, str(tmp_path / name))
    return folder, disc, X


def edit_config(folder, change):
    path = os.path.join(folder, CONFIG_NAME)
    cfg = json.load(open(path))
    change(cfg)
    json.dump(cfg, open(path, "w"))


def edit_weights(folder, change):
    path = os.path.join(folder, WEIGHTS_NAME)
    arrays = load_file(path)
    change(arrays)
    save_file(arrays, path)


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic", "mlp", "hgb"])
def test_round_trip_predictions_are_identical(fitted, name, tmp_path):
    folder, disc, X = saved(fitted, name, tmp_path)
    again = load_discriminator(folder)
    np.testing.assert_array_equal(again.predict_proba(X), disc.predict_proba(X))
    assert again.get_params() == disc.get_params()
    cfg = json.load(open(os.path.join(folder, CONFIG_NAME)))
    assert cfg["head"] in {"logistic", "mlp", "hist-gradient-boosting"}


def test_mlp_forward_pass_matches_sklearn_after_loading(tmp_path):
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    head = MLPHead(hidden_layer_sizes=(6, 4), max_iter=80, random_state=1).fit(X, y)
    back = load_discriminator(save_discriminator(head, str(tmp_path / "m")))
    ref = MLPClassifier(hidden_layer_sizes=(6, 4), alpha=1e-3, max_iter=80, random_state=1)
    sc = StandardScaler().fit(X)
    ref.fit(sc.transform(X), y)
    np.testing.assert_allclose(back.predict_proba(X), ref.predict_proba(sc.transform(X)),
                               atol=1e-12)


# ---------------------------------------------------------------------------------------------
# nothing a saved folder names runs
# ---------------------------------------------------------------------------------------------


def test_a_folder_naming_os_system_runs_nothing(fitted, tmp_path):
    folder, _, _ = saved(fitted, "logistic", tmp_path)
    marker = tmp_path / "pwned"

    def exploit(cfg):
        cfg["head"] = None
        cfg["target"] = "os:system"
        cfg["params"] = {"command": f"touch {marker}"}

    edit_config(folder, exploit)
    with pytest.raises(ConfigError) as err:
        load_discriminator(folder)
    msg = str(err.value)
    assert os.path.join(folder, CONFIG_NAME) in msg and "'os:system' is not a registered head" in msg
    assert "register_head(" in msg and "--trust-code" in msg
    # even trusted, a function is not a discriminator class: refused before it is called
    with pytest.raises(ConfigError, match="must be a subclass of .*BaseDiscriminator"):
        load_discriminator(folder, trust_code=True)
    edit_config(folder, lambda cfg: cfg.update(head="os:system"))
    with pytest.raises(ConfigError, match="not a registered head"):
        load_discriminator(folder)
    assert not marker.exists()


class UserHead(LogisticHead):
    """A user's own head (not registered): a logistic head with a shifted intercept."""

    def __init__(self, C=1.0, class_weight=None, max_iter=1000, tol=1e-4, random_state=None,
                 shift=0.5):
        super().__init__(C=C, class_weight=class_weight, max_iter=max_iter, tol=tol,
                         random_state=random_state)
        self.shift = shift

    def decision_function(self, X):
        return super().decision_function(X) + self.shift


def test_user_classes_load_only_when_registered_or_trusted(tmp_path):
    X, y = data()
    disc = UserHead().fit(X, y)
    folder = save_discriminator(disc, str(tmp_path / "user"))
    cfg = json.load(open(os.path.join(folder, CONFIG_NAME)))
    assert cfg["head"] is None and cfg["target"].endswith(":UserHead")
    with pytest.raises(ConfigError, match="is not a registered head"):
        load_discriminator(folder)
    back = load_discriminator(folder, trust_code=True)
    np.testing.assert_array_equal(back.predict_proba(X), disc.predict_proba(X))
    register_head("user-head", UserHead)
    try:
        np.testing.assert_array_equal(load_discriminator(folder).predict_proba(X),
                                      disc.predict_proba(X))
    finally:
        HEADS.unregister("user-head")


def test_parameters_are_checked_against_the_class(fitted, tmp_path):
    folder, _, _ = saved(fitted, "logistic", tmp_path)
    edit_config(folder, lambda cfg: cfg["params"].update(command="touch x"))
    with pytest.raises(ConfigError, match=r"parameter\(s\) \['command'\] are not parameters of"):
        load_discriminator(folder)
    edit_config(folder, lambda cfg: cfg.update(params=["C", 1]))
    with pytest.raises(ConfigError, match="'params' must be a dict"):
        load_discriminator(folder)
    folder, _, _ = saved(fitted, "mlp", tmp_path)
    with pytest.raises(ConfigError, match=r"\['C'\] cannot be changed on load"):
        load_discriminator(folder, C=3.0)


@pytest.mark.parametrize("text, match", [
    ('{"format": "rorem-data-discrimin', "is not valid JSON"),
    ("[]", "is not a rorem-data discriminator config"),
    ('{"format": "rorem-data-discriminator", "format_version": 1}', "format version 1.*retrain"),
    ('{"format": "rorem-data-discriminator", "format_version": 99}', "upgrade rorem-data"),
    ('{"format": "rorem-data-discriminator", "format_version": 2, "target": 3}', "'target'"),
])
def test_corrupt_config_files_name_the_file(fitted, tmp_path, text, match):
    folder, _, _ = saved(fitted, "logistic", tmp_path)
    with open(os.path.join(folder, CONFIG_NAME), "w") as fh:
        fh.write(text)
    with pytest.raises(ConfigError, match=match) as err:
        load_discriminator(folder)
    assert CONFIG_NAME in str(err.value)


# ---------------------------------------------------------------------------------------------
# weights are checked against the saved config
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, change, match", [
    ("logistic", lambda a: a.update(coef=a["coef"].astype(np.float32)),
     r"array 'coef' is float32 \(5,\), but the saved config says float64 \(5,\)"),
    ("logistic", lambda a: a.update(coef=np.zeros(6)), r"array 'coef' is float64 \(6,\)"),
    ("logistic", lambda a: a.pop("scale"), r"missing \['scale'\]"),
    ("logistic", lambda a: a.update(extra=np.zeros(2)), r"unexpected \['extra'\]"),
    ("logistic", lambda a: a["coef"].__setitem__(0, np.nan), "'coef' holds NaN"),
    ("logistic", lambda a: a["scale"].__setitem__(0, 0.0), "'scale' must be positive"),
    ("mlp", lambda a: a.update(coef_1=np.zeros((7, 4))), r"array 'coef_1' is float64 \(7, 4\)"),
    ("mlp", lambda a: a.pop("intercept_2"), r"missing \['intercept_2'\]"),
    ("mlp", lambda a: a["coef_2"].__setitem__((0, 0), np.inf), "'coef_2' holds NaN or infinite"),
    ("hgb", lambda a: a.update(node_left=a["node_left"].astype(np.int32)),
     "array 'node_left' is int32"),
    ("hgb", lambda a: a.update(tree_roots=a["tree_roots"][:-1]), "array 'tree_roots'"),
])
def test_mistyped_misshaped_missing_or_bad_arrays_are_refused(fitted, tmp_path, name, change,
                                                              match):
    folder, _, _ = saved(fitted, name, tmp_path)
    edit_weights(folder, change)
    with pytest.raises(ConfigError, match=match) as err:
        load_discriminator(folder)
    assert WEIGHTS_NAME in str(err.value)


def _first_split(arrays):
    return int(np.flatnonzero(arrays["node_is_leaf"] == 0)[0])


def _second_split(arrays):
    return int(np.flatnonzero(arrays["node_is_leaf"] == 0)[1])


def _set(arrays, field, index, value):
    arrays[field][index] = value


@pytest.mark.parametrize("change, match", [
    (lambda a: _set(a, "node_left", _first_split(a), _first_split(a)),
     "left child .* is not after the node"),  # points to itself: would loop forever
    (lambda a: _set(a, "node_right", _second_split(a), 0), "right child 0 is not after"),  # cycle
    (lambda a: _set(a, "node_right", _first_split(a), 10**9), "right child 1000000000"),
    (lambda a: _set(a, "node_left", _first_split(a), -5), "left child -5"),
    (lambda a: _set(a, "node_feature_idx", _first_split(a), 5), r"feature index 5 is outside 0\.\.4"),
    (lambda a: _set(a, "node_feature_idx", _first_split(a), -1), "feature index -1"),
    (lambda a: _set(a, "node_is_leaf", 0, 2), "is_leaf must be 0 or 1"),
    (lambda a: _set(a, "node_num_threshold", _first_split(a), np.nan), "threshold is NaN"),
    (lambda a: _set(a, "tree_roots", 1, 0), "roots must start at 0 and increase"),
])
def test_broken_trees_are_refused_at_load(fitted, tmp_path, change, match):
    folder, _, _ = saved(fitted, "hgb", tmp_path)
    edit_weights(folder, change)
    with pytest.raises(ConfigError, match=match) as err:
        load_discriminator(folder)
    assert WEIGHTS_NAME in str(err.value)


def test_tree_tables_with_a_cycle_never_reach_the_traversal():
    """The validator is what stands between a file and an endless loop: check it directly."""
    nodes = {k: np.zeros(5, d) for k, d in NODE_DTYPES.items()}
    nodes["is_leaf"][:] = [0, 0, 1, 1, 1]
    nodes["left"][:2], nodes["right"][:2] = [1, 3], [4, 0]  # node 1 -> 0: a cycle
    with pytest.raises(ValueError, match=r"node 1 \(tree 0\): right child 0"):
        check_forest(nodes, np.array([0]), 1)
    nodes["right"][1] = 2
    nodes["value"][2:] = [1.0, 2.0, 3.0]
    ok, roots = check_forest(nodes, np.array([0]), 1)
    # threshold 0: -1 goes left twice (leaf 3), 1 goes right (leaf 4), NaN follows
    # missing_go_to_left = 0 (right, leaf 4)
    X = np.array([[-1.0], [1.0], [np.nan]])
    np.testing.assert_array_equal(forest_decision(ok, roots, X, 0.5), [2.5, 3.5, 3.5])


def test_truncated_and_missing_weight_files_are_refused(fitted, tmp_path):
    folder, _, _ = saved(fitted, "hgb", tmp_path)
    path = os.path.join(folder, WEIGHTS_NAME)
    raw = open(path, "rb").read()
    for cut in (len(raw) // 2, 8, 3):
        with open(path, "wb") as fh:
            fh.write(raw[:cut])
        with pytest.raises(ConfigError, match="unreadable.*corrupt or truncated") as err:
            load_discriminator(folder)
        assert path in str(err.value)
    os.remove(path)
    with pytest.raises(ConfigError, match="no weights.safetensors; the save is incomplete"):
        load_discriminator(folder)


def test_saved_metadata_is_checked(fitted, tmp_path):
    folder, _, _ = saved(fitted, "mlp", tmp_path)
    edit_config(folder, lambda cfg: cfg["state"].update(n_layers=7))
    with pytest.raises(ConfigError, match="'n_layers' is 7 but hidden_layer_sizes"):
        load_discriminator(folder)
    edit_config(folder, lambda cfg: cfg["state"].update(n_layers="3"))
    with pytest.raises(ConfigError, match="'n_layers' must be an integer"):
        load_discriminator(folder)
    folder, _, _ = saved(fitted, "hgb", tmp_path)
    edit_config(folder, lambda cfg: cfg["state"].update(classes_=[0, 1, 2]))
    with pytest.raises(ConfigError, match="'state.classes_' must be the two labels"):
        load_discriminator(folder)
    edit_config(folder, lambda cfg: cfg["state"].update(classes_=[0, 1], baseline_=None))
    with pytest.raises(ConfigError, match="'baseline_' must be a finite number"):
        load_discriminator(folder)


def test_save_refuses_what_it_cannot_round_trip(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    from rorem_data.discriminators.specs import get_spec

    X, y = data()
    with pytest.raises(NotFittedError):
        save_discriminator(LogisticHead(), str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="subclass rorem_data.discriminators.base"):
        save_discriminator(LogisticRegression().fit(X, y), str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="the spec 'stats-mlp' builds head 'mlp' but"):
        save_discriminator(LogisticHead().fit(X, y), str(tmp_path / "x"),
                           spec=get_spec("stats-mlp"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not a saved discriminator"):
        save_discriminator(LogisticHead().fit(X, y), str(tmp_path / "busy"))
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="not a saved discriminator"):
        load_discriminator(str(tmp_path / "busy"))
