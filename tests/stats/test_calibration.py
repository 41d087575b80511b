"""Calibrators (Platt, isotonic, none) and reliability diagnostics."""

from __future__ import annotations

import doctest
import json
import logging
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from rorem_data.stats import calibration
from rorem_data.stats.calibration import (
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
    expected_calibration_error,
    get_calibrator,
    list_calibrators,
    register_calibrator,
    reliability_curve,
)
from rorem_data.core.errors import ConfigError

KINDS = ["platt", "isotonic", "none"]


def logistic_data(n, slope=3.0, intercept=-1.0, seed=0):
    """Scores ~ N(0, 1) with P(success | s) = sigmoid(slope * s + intercept)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    y = (rng.uniform(size=n) < expit(slope * s + intercept)).astype(int)
    return s, y


def test_docstring_examples_run():
    assert doctest.testmod(calibration).failed == 0


def test_platt_recovers_a_known_logistic_curve():
    s, y = logistic_data(40_000, slope=3.0, intercept=-1.0)
    cal = PlattCalibrator().fit(s * 2.0 + 5.0, y)  # an arbitrary affine score scale
    # on the original scale: sigmoid(3 s - 1) = sigmoid(1.5 (2s + 5) - 8.5)
    assert cal.slope_ == pytest.approx(1.5, abs=0.06)
    assert cal.intercept_ == pytest.approx(-8.5, abs=0.3)
    grid = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(cal.predict(grid * 2 + 5), expit(3 * grid - 1), atol=0.02)


def test_platt_smoothed_targets_keep_probabilities_off_0_and_1_on_separable_labels():
    s = np.r_[np.linspace(0, 0.4, 20), np.linspace(0.6, 1, 20)]
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    cal = PlattCalibrator().fit(s, y)
    p = cal.predict([0.0, 1.0])  # the most extreme labelled scores
    assert np.isfinite(cal.slope_)
    assert 0.001 < p[0] < 0.05 and 0.95 < p[1] < 0.999


def test_isotonic_predicts_exactly_like_sklearn_including_out_of_range():
    from sklearn.isotonic import IsotonicRegression

    s, y = logistic_data(500, seed=1)
    ours = IsotonicCalibrator().fit(s, y)
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y)
    grid = np.linspace(-5, 5, 301)
    np.testing.assert_allclose(ours.predict(grid), ref.predict(grid), atol=1e-12)


def test_calibration_fixes_miscalibrated_scores_on_fresh_data():
    # the discriminator's raw score is a log-odds that is far too confident
    s, y = logistic_data(22_000, slope=1.5, intercept=0.5, seed=2)
    raw = 4 * s + 1
    fit, fresh = slice(0, 2000), slice(2000, None)
    assert expected_calibration_error(expit(raw[fresh]), y[fresh]) > 0.08
    for kind in ["platt", "isotonic"]:
        cal = get_calibrator(kind).fit(raw[fit], y[fit])
        assert expected_calibration_error(cal.predict(raw[fresh]), y[fresh]) < 0.03, kind


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_predictions_are_probabilities_non_decreasing_in_the_score(kind, data):
    n = data.draw(st.integers(4, 60))
    s = np.array(data.draw(st.lists(st.floats(-50, 50), min_size=n, max_size=n)))
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[:2] = [0, 1]  # both classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cal = get_calibrator(kind).fit(s, y)
    grid = np.sort(np.r_[s, np.linspace(-100, 100, 50)])
    p = cal.predict(grid)
    assert ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= -1e-12).all()


@pytest.mark.parametrize("kind", KINDS)
def test_to_dict_round_trips_through_strict_json(kind):
    s, y = logistic_data(300, seed=3)
    cal = get_calibrator(kind).fit(s, y)
    text = json.dumps(cal.to_dict(), allow_nan=False)
    back = calibrator_from_dict(json.loads(text))
    assert type(back) is type(cal)
    grid = np.linspace(-4, 4, 101)
    np.testing.assert_array_equal(back.predict(grid), cal.predict(grid))
    assert type(cal).from_dict(json.loads(text)).to_dict() == cal.to_dict()


def test_scores_that_point_the_wrong_way_warn_and_fall_back_to_the_base_rate(caplog):
    s, y = logistic_data(400, slope=-3.0, intercept=0.0, seed=4)
    with caplog.at_level(logging.WARNING, logger="rorem_data"):
        cal = PlattCalibrator().fit(s, y)
    assert "higher scores go with more failures" in caplog.text
    p = cal.predict([-3.0, 0.0, 3.0])
    assert cal.slope_ == 0.0
    np.testing.assert_allclose(p, (y.sum() + 1) / (y.size + 2), atol=0.01)


@pytest.mark.parametrize("cls", [PlattCalibrator, IsotonicCalibrator])
def test_unfitted_calibrator_says_to_fit_first(cls):
    with pytest.raises(ConfigError, match=r"not fitted yet; call .*fit\(scores, y\)"):
        cls().predict([0.5])
    with pytest.raises(ConfigError, match="not fitted"):
        cls().to_dict()


@pytest.mark.parametrize("kind", ["platt", "isotonic"])
@pytest.mark.parametrize(
    "scores, y, match",
    [
        ([0.1, 0.2, 0.3], [1, 1, 1], r"3 successes and 0 failures \(no failures \(0\)\)"),
        ([0.1, 0.2, 0.3], [0, 0, 0], r"no successes"),
        ([0.1, np.nan, 0.3], [0, 1, 0], r"position\(s\) \[1\]"),
        ([0.1, 0.2, 0.3], [0, 1], "y has 2 labels but scores has 3"),
        ([0.1, 0.2, 0.3], [0, 1, 2], "only 0 .failure. and 1 .success."),
        ([], [], "no successes"),
    ],
)
def test_bad_training_data_is_rejected_with_the_reason(kind, scores, y, match):
    with pytest.raises(ConfigError, match=match):
        get_calibrator(kind).fit(scores, y)


def test_identity_calibrator_clips_and_checks_input():
    cal = get_calibrator("none")
    np.testing.assert_array_equal(cal.fit([0, 1], [0, 1]).predict([-1.0, 0.3, 1.4]), [0, 0.3, 1])
    with pytest.raises(ConfigError, match="NaN"):
        cal.predict([np.nan])


def test_unknown_calibrator_lists_the_choices():
    choices = r"unknown calibrator 'beta'; choose one of: isotonic, none, platt"
    with pytest.raises(ConfigError, match=choices):
        get_calibrator("beta")
    assert list_calibrators() == ["isotonic", "none", "platt"]


class _ShiftedIdentity:
    """A user calibrator: identity on scores shifted by a constant learned from the labels."""

    kind = "shifted"

    def fit(self, scores, y):
        self.shift_ = float(np.mean(y) - np.mean(scores))
        return self

    def predict(self, scores):
        return np.clip(np.asarray(scores, float) + self.shift_, 0, 1)

    def to_dict(self):
        return {"kind": self.kind, "format_version": 1, "shift": self.shift_}

    @classmethod
    def from_dict(cls, d):
        cal = cls()
        cal.shift_ = float(d["shift"])
        return cal


def test_registered_calibrators_fit_and_load_from_their_dicts():
    register_calibrator("shifted", _ShiftedIdentity)
    try:
        assert "shifted" in list_calibrators()
        cal = get_calibrator("shifted").fit([0.2, 0.4], [1, 1])
        back = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
        assert isinstance(back, _ShiftedIdentity) and back.predict([0.5]).tolist() == [1.0]
        with pytest.raises(ConfigError, match="already registered"):
            register_calibrator("shifted", "rorem_data.stats.calibration:PlattCalibrator")
    finally:
        calibration.CALIBRATORS.unregister("shifted")
    # an unregistered kind in a saved dict never loads
    with pytest.raises(ConfigError, match="kind='shifted'.*register_calibrator"):
        calibrator_from_dict({"kind": "shifted", "format_version": 1, "shift": 0.1})
    register_calibrator("wrong-kind", _ShiftedIdentity)
    try:
        with pytest.raises(ConfigError, match="has kind='shifted'; register it under its kind"):
            get_calibrator("wrong-kind")
    finally:
        calibration.CALIBRATORS.unregister("wrong-kind")


@pytest.mark.parametrize(
    "d, match",
    [
        ({"kind": "beta", "format_version": 1}, "kind='beta'"),
        ("platt", "kind=None"),
        ({"kind": "platt", "format_version": 2, "slope": 1, "intercept": 0}, "format_version=2"),
        ({"kind": "platt", "format_version": 1, "slope": 1}, r"lacks key\(s\) \['intercept'\]"),
        ({"kind": "platt", "format_version": 1, "slope": -1, "intercept": 0}, "slope >= 0"),
        ({"kind": "isotonic", "format_version": 1, "x": [0, 1], "y": [0.9, 0.1]}, "non-decreasing"),
        ({"kind": "isotonic", "format_version": 1, "x": [1, 0], "y": [0.1, 0.9]}, "strictly increasing"),
        ({"kind": "isotonic", "format_version": 1, "x": [0, 1], "y": [0.1, 1.5]}, r"in \[0, 1\]"),
        ({"kind": "isotonic", "format_version": 1, "x": [], "y": []}, "non-empty"),
    ],
)
def test_malformed_saved_calibrators_are_rejected(d, match):
    with pytest.raises(ConfigError, match=match):
        calibrator_from_dict(d)


def test_from_dict_of_the_wrong_class_points_to_the_dispatcher():
    d = PlattCalibrator().fit([0.1, 0.9], [0, 1]).to_dict()
    with pytest.raises(ConfigError, match="use calibrator_from_dict"):
        IsotonicCalibrator.from_dict(d)


def test_reliability_curve_of_calibrated_probabilities_tracks_the_diagonal():
    rng = np.random.default_rng(5)
    p = rng.uniform(size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    curve = reliability_curve(p, y, n_bins=10)
    json.dumps(curve, allow_nan=False)
    assert curve["n"] == 50_000 and sum(curve["counts"]) == 50_000
    assert curve["bin_edges"] == pytest.approx(np.linspace(0, 1, 11).tolist())
    gap = np.abs(np.array(curve["fraction_positive"]) - np.array(curve["mean_predicted"]))
    assert gap.max() < 0.03 and curve["ece"] < 0.015
    lo, hi = np.array(curve["fraction_positive_lo"]), np.array(curve["fraction_positive_hi"])
    mid = np.array(curve["mean_predicted"])
    assert ((lo <= mid + 0.01) & (mid - 0.01 <= hi)).all()


def test_overconfident_probabilities_have_a_large_calibration_error():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    sharpened = np.where(p > 0.5, 1 - (1 - p) ** 3, p**3)
    assert expected_calibration_error(sharpened, y) > 0.1
    assert expected_calibration_error(p, y) < 0.02


def test_quantile_bins_hold_equal_counts_and_empty_bins_are_null():
    rng = np.random.default_rng(7)
    p = rng.beta(0.5, 5, size=1000)  # crowded near 0: uniform bins at the top are empty
    y = (rng.uniform(size=p.size) < p).astype(int)
    q = reliability_curve(p, y, n_bins=5, strategy="quantile")
    assert q["counts"] == [200] * 5
    u = reliability_curve(p, y, n_bins=10, strategy="uniform")
    empty = [i for i, c in enumerate(u["counts"]) if c == 0]
    assert empty and all(u["mean_predicted"][i] is None for i in empty)
    assert all(u["fraction_positive"][i] is None for i in empty)
    json.dumps(u, allow_nan=False)


def test_quantile_bins_merge_tied_edges():
    curve = reliability_curve([0.5] * 10, [0, 1] * 5, n_bins=4, strategy="quantile")
    assert curve["n_bins"] == 1 and curve["counts"] == [10]
    assert curve["fraction_positive"] == [0.5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(probs=[0.2, 1.3], y=[0, 1]), r"probs must lie in \[0, 1\].*calibrate the scores first"),
        (dict(probs=[0.2, 0.3], y=[0, 1, 1]), "y has 3 labels but probs has 2"),
        (dict(probs=[], y=[]), "empty"),
        (dict(probs=[0.2, 0.3], y=[0, 1], n_bins=0), "n_bins must be an integer >= 1"),
        (dict(probs=[0.2, 0.3], y=[0, 1], strategy="kmeans"), "strategy must be one of"),
    ],
)
def test_reliability_curve_rejects_bad_input(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        reliability_curve(**kwargs)
