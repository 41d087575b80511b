"""Binomial confidence intervals and Estimate: exactness, coverage, formatting, bad input."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rorem_data.stats import intervals
from rorem_data.core.errors import ConfigError
from rorem_data.stats.intervals import (
    Estimate,
    binomial_ci,
    check_labels,
    check_scores,
    min_trials_for_lower_bound,
    proportion,
)

METHODS = ["clopper-pearson", "wilson", "jeffreys"]


@st.composite
def counts(draw, max_n=500):
    n = draw(st.integers(0, max_n))
    k = draw(st.integers(0, n))
    return k, n


def test_docstring_examples_run():
    assert doctest.testmod(intervals).failed == 0


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (418, 1000), (1, 59), (59, 59)])
@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_clopper_pearson_and_wilson_match_scipy(k, n, confidence):
    ref = stats.binomtest(k, n)
    for method, scipy_name in [("clopper-pearson", "exact"), ("wilson", "wilson")]:
        lo, hi = binomial_ci(k, n, confidence=confidence, method=method)
        want = ref.proportion_ci(confidence_level=confidence, method=scipy_name)
        assert lo == pytest.approx(want.low, abs=1e-9)
        assert hi == pytest.approx(want.high, abs=1e-9)


def test_jeffreys_is_the_equal_tailed_beta_posterior_interval():
    k, n = np.array([0, 1, 7, 20]), np.array([20, 20, 20, 20])
    lo, hi = binomial_ci(k, n, method="jeffreys", confidence=0.9)
    post = stats.beta(k + 0.5, n - k + 0.5)
    np.testing.assert_allclose(lo[1:], post.ppf(0.05)[1:], atol=1e-10)
    np.testing.assert_allclose(hi[:3], post.ppf(0.95)[:3], atol=1e-10)
    assert lo[0] == 0.0 and hi[3] == 1.0  # pinned at the ends (Brown, Cai & DasGupta)


@pytest.mark.parametrize("method", METHODS)
def test_one_sided_bound_equals_two_sided_bound_at_double_the_tail(method):
    k, n = np.arange(0, 31), np.full(31, 30)
    lower, top = binomial_ci(k, n, confidence=0.95, sides="lower", method=method)
    bottom, upper = binomial_ci(k, n, confidence=0.95, sides="upper", method=method)
    lo2, hi2 = binomial_ci(k, n, confidence=0.90, sides="two", method=method)
    np.testing.assert_allclose(lower, lo2, atol=1e-12)
    np.testing.assert_allclose(upper, hi2, atol=1e-12)
    assert (top == 1).all() and (bottom == 0).all()


@pytest.mark.parametrize("n", [10, 59, 200])
def test_clopper_pearson_coverage_is_at_least_nominal_for_every_rate(n):
    # exact coverage: sum of Binomial(n, p) probabilities of the k whose interval holds p
    p = np.linspace(0.001, 0.999, 400)
    k = np.arange(n + 1)
    pmf = stats.binom.pmf(k[None, :], n, p[:, None])
    lo, hi = binomial_ci(k, n, confidence=0.95)
    covered = (lo[None, :] <= p[:, None]) & (p[:, None] <= hi[None, :])
    assert (pmf * covered).sum(axis=1).min() >= 0.95 - 1e-9
    lower, _ = binomial_ci(k, n, confidence=0.95, sides="lower")
    assert (pmf * (lower[None, :] <= p[:, None])).sum(axis=1).min() >= 0.95 - 1e-9


@settings(max_examples=150, deadline=None)
@given(kn=counts(), method=st.sampled_from(METHODS), sides=st.sampled_from(["two", "lower", "upper"]),
       confidence=st.floats(0.8, 0.999))
def test_interval_is_ordered_contains_the_rate_and_widens_with_confidence(kn, method, sides, confidence):
    k, n = kn
    lo, hi = binomial_ci(k, n, confidence=confidence, method=method, sides=sides)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo - 1e-12 <= k / n <= hi + 1e-12
    else:
        assert (lo, hi) == (0.0, 1.0)
    lo_wide, hi_wide = binomial_ci(k, n, confidence=(1 + confidence) / 2, method=method, sides=sides)
    assert lo_wide <= lo + 1e-12 and hi_wide >= hi - 1e-12


@settings(max_examples=30, deadline=None)
@given(st.lists(counts(max_n=60), min_size=1, max_size=20), st.sampled_from(METHODS))
def test_vectorised_call_equals_one_call_per_count(pairs, method):
    k = np.array([p[0] for p in pairs])
    n = np.array([p[1] for p in pairs])
    lo, hi = binomial_ci(k, n, method=method)
    assert lo.shape == hi.shape == k.shape
    for i, (ki, ni) in enumerate(pairs):
        assert (lo[i], hi[i]) == pytest.approx(binomial_ci(ki, ni, method=method), abs=1e-12)


def test_broadcasting_keeps_the_shape_and_scalars_give_floats():
    lo, hi = binomial_ci(np.array([[0], [5]]), np.array([5, 10, 20]))
    assert lo.shape == (2, 3)
    assert isinstance(binomial_ci(3, 10)[0], float)
    assert binomial_ci(0, 0) == (0.0, 1.0)
    assert binomial_ci(np.int64(3), np.uint8(10)) == binomial_ci(3, 10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=11, n=10), r"k must be <= n, got k=11 > n=10"),
        (dict(k=[1, 5], n=[2, 4]), r"position \(1,\)"),
        (dict(k=-1, n=10), "non-negative whole counts"),
        (dict(k=1.5, n=10), "non-negative whole counts"),
        (dict(k=float("nan"), n=10), "non-negative whole counts"),
        (dict(k=True, n=10), "integer counts"),
        (dict(k=[1, 2, 3], n=[5, 5]), "broadcastable"),
        (dict(k=1, n=10, confidence=95), r"strictly between 0 and 1.*not a percentage"),
        (dict(k=1, n=10, confidence=1.0), "strictly between 0 and 1"),
        (dict(k=1, n=10, confidence=0), "strictly between 0 and 1"),
        (dict(k=1, n=10, method="wald"), "method must be one of"),
        (dict(k=1, n=10, sides="both"), "sides must be one of"),
    ],
)
def test_bad_input_raises_config_error_naming_the_problem(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        binomial_ci(**kwargs)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        binomial_ci(5, 3)


def test_estimate_prints_like_a_report_line():
    e = Estimate(0.418, 0.387, 0.450, n=1000, confidence=0.95, method="clopper-pearson")
    assert str(e) == "41.8% [38.7%, 45.0%] (n=1000, 95% Clopper-Pearson)"
    assert str(proportion(418, 1000)) == "41.8% [38.7%, 44.9%] (n=1000, 95% Clopper-Pearson)"
    lower = proportion(59, 59, sides="lower")
    assert str(lower).endswith("(n=59, one-sided lower, 95% Clopper-Pearson)")
    diff = Estimate(-0.021, -0.04, 0.003, 500, 0.9, "newcombe", unit="difference")
    assert str(diff) == "-2.1 pp [-4.0 pp, +0.3 pp] (n=500, 90% Newcombe paired)"
    auc = Estimate(0.8734, 0.85, 0.9, 300, 0.95, "delong", unit="value")
    assert str(auc).startswith("0.873 [0.850, 0.900]")


def test_estimate_as_dict_is_strict_json_and_frozen():
    empty = proportion(0, 0)
    assert math.isnan(empty.value) and (empty.lo, empty.hi) == (0.0, 1.0)
    d = json.loads(json.dumps(empty.as_dict(), allow_nan=False))
    assert d == {"value": None, "lo": 0.0, "hi": 1.0, "n": 0, "confidence": 0.95,
                 "method": "clopper-pearson", "sides": "two", "unit": "proportion"}
    full = proportion(np.int64(7), np.int64(10), method="wilson")
    assert json.loads(json.dumps(full.as_dict(), allow_nan=False))["value"] == 0.7
    with pytest.raises(dataclasses.FrozenInstanceError):
        full.value = 0.5


def test_proportion_rejects_arrays():
    with pytest.raises(ConfigError, match="use binomial_ci for arrays"):
        proportion([1, 2], [3, 4])


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_min_trials_is_the_smallest_all_correct_sample_that_reaches_the_target(target, confidence):
    n = min_trials_for_lower_bound(target, confidence=confidence)
    assert binomial_ci(n, n, confidence=confidence, sides="lower")[0] >= target
    assert binomial_ci(n - 1, n - 1, confidence=confidence, sides="lower")[0] < target
    # and one failure among n is never enough
    assert binomial_ci(n - 1, n, confidence=confidence, sides="lower")[0] < target


def test_min_trials_matches_the_textbook_number():
    assert min_trials_for_lower_bound(0.95, confidence=0.95) == 59
    with pytest.raises(ConfigError, match="target"):
        min_trials_for_lower_bound(1.0)


def test_input_checkers_name_positions_and_lengths():
    with pytest.raises(ConfigError, match=r"2 NaN or infinite value\(s\), first at position\(s\) \[1, 3\]"):
        check_scores([0.1, np.nan, 0.3, np.inf])
    with pytest.raises(ConfigError, match="1-D"):
        check_scores([[0.1, 0.2]])
    with pytest.raises(ConfigError, match="numeric"):
        check_scores(["a", "b"])
    with pytest.raises(ConfigError, match="y has 2 labels but scores has 3 values"):
        check_labels([0, 1], 3)
    with pytest.raises(ConfigError, match=r"found \[2\]"):
        check_labels([0, 1, 2], 3)
    assert check_labels(np.array([1.0, 0.0]), 2).dtype == np.int64
