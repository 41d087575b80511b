"""Discriminator-vs-human agreement: AUC intervals, paired rate difference, the report."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from rorem_data.stats import agreement
from rorem_data.stats.agreement import agreement_report, auc_estimate, paired_rate_difference
from rorem_data.core.errors import ConfigError


def binormal(n, shift, seed, rate=0.5):
    """Failures score N(0, 1), successes N(shift, 1): true AUC = Phi(shift / sqrt(2))."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < rate).astype(int)
    return rng.normal(size=n) + shift * y, y


def test_docstring_examples_run():
    assert doctest.testmod(agreement).failed == 0


def test_auc_value_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=300).astype(float)  # many ties
    y = (rng.uniform(size=300) < s / 5).astype(int)
    assert auc_estimate(s, y).value == pytest.approx(roc_auc_score(y, s))


def test_delong_standard_error_matches_the_definition_including_ties():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 6, size=120).astype(float)
    y = (rng.uniform(size=120) < 0.3 + s / 10).astype(int)
    pos, neg = s[y == 1], s[y == 0]
    # DeLong's structural components, straight from the definition (O(m n))
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)
    e = auc_estimate(s, y, confidence=0.95)
    z = norm.ppf(0.975)
    assert e.value == pytest.approx(psi.mean())
    assert (e.hi - e.lo) / 2 == pytest.approx(z * se, rel=1e-9)


@pytest.mark.parametrize("method", ["delong", "bootstrap"])
def test_auc_interval_covers_the_true_auc(method):
    shift, trials = 1.0, 200 if method == "delong" else 60
    true_auc = norm.cdf(shift / math.sqrt(2))
    covered = 0
    for t in range(trials):
        s, y = binormal(200, shift, seed=100 + t)
        e = auc_estimate(s, y, method=method, rng=t, n_boot=300)
        covered += e.lo <= true_auc <= e.hi
    # nominal 95%; 3 binomial standard errors of slack
    assert covered / trials >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / trials)


def test_bootstrap_is_reproducible_from_its_seed_and_agrees_with_delong():
    s, y = binormal(400, 1.0, seed=2)
    a = auc_estimate(s, y, method="bootstrap", rng=7, n_boot=400)
    b = auc_estimate(s, y, method="bootstrap", rng=7, n_boot=400)
    c = auc_estimate(s, y, method="bootstrap", rng=8, n_boot=400)
    d = auc_estimate(s, y, method="delong")
    assert a == b and a != c
    assert a.value == d.value
    assert a.lo == pytest.approx(d.lo, abs=0.015) and a.hi == pytest.approx(d.hi, abs=0.015)
    assert str(d).startswith(f"{d.value:.3f} [") and "DeLong" in str(d)


def test_paired_difference_interval_covers_the_true_difference():
    # discriminator accepts with P 0.62, humans with P 0.60, correlated through a shared item
    # quality; true difference +0.02
    rng = np.random.default_rng(3)
    trials, n = 400, 300
    u = rng.uniform(size=(trials, n))
    noise = rng.uniform(size=(trials, n)) < 0.2
    human = (u < 0.60).astype(int)
    disc = np.where(noise, rng.uniform(size=(trials, n)) < 0.62, human).astype(int)
    true_diff = 0.8 * 0.60 + 0.2 * 0.62 - 0.60
    covered = 0
    for t in range(trials):
        e = paired_rate_difference(disc[t], human[t])
        covered += e.lo <= true_diff <= e.hi
    assert covered / trials >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / trials)


def test_pairing_makes_the_interval_narrower_than_treating_rates_as_independent():
    rng = np.random.default_rng(4)
    human = (rng.uniform(size=1000) < 0.5).astype(int)
    disc = np.where(rng.uniform(size=1000) < 0.9, human, 1 - human)  # agrees 90% of the time
    e = paired_rate_difference(disc, human)
    p1, p2 = disc.mean(), human.mean()
    unpaired_half = norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / 1000 + p2 * (1 - p2) / 1000)
    assert (e.hi - e.lo) / 2 < 0.5 * unpaired_half


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=80),
       st.floats(0.5, 0.99))
def test_paired_difference_is_ordered_bounded_and_antisymmetric(pairs, confidence):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    e = paired_rate_difference(a, b, confidence=confidence)
    assert -1 <= e.lo <= e.value <= e.hi <= 1
    assert e.value == pytest.approx(a.mean() - b.mean())
    r = paired_rate_difference(b, a, confidence=confidence)
    assert (r.value, r.lo, r.hi) == pytest.approx((-e.value, -e.hi, -e.lo), abs=1e-12)


def test_report_numbers_are_consistent_with_the_confusion_table():
    s, y = binormal(1000, 1.5, seed=5, rate=0.4)
    r = agreement_report(s, y, threshold=0.8)
    c = r.confusion
    accepted = s >= 0.8
    assert c == {
        "tp": int(np.sum(accepted & (y == 1))), "fp": int(np.sum(accepted & (y == 0))),
        "fn": int(np.sum(~accepted & (y == 1))), "tn": int(np.sum(~accepted & (y == 0))),
    }
    assert r.n == 1000 and r.n_positive == y.sum()
    assert r.precision.value == pytest.approx(c["tp"] / (c["tp"] + c["fp"]))
    assert r.recall.value == pytest.approx(c["tp"] / (c["tp"] + c["fn"]))
    assert r.accuracy.value == pytest.approx((c["tp"] + c["tn"]) / 1000)
    assert r.human_rate.value == pytest.approx(y.mean())
    assert r.discriminator_rate.value == pytest.approx(accepted.mean())
    assert r.difference.value == pytest.approx(r.discriminator_rate.value - r.human_rate.value)
    assert r.auc.value == pytest.approx(roc_auc_score(y, s))
    for est in (r.accuracy, r.precision, r.recall, r.human_rate, r.discriminator_rate):
        assert est.lo <= est.value <= est.hi and est.method == "clopper-pearson"


def test_report_prints_a_table_and_serialises_to_strict_json():
    s, y = binormal(500, 1.5, seed=6)
    r = agreement_report(s, y, threshold=0.5, confidence=0.9)
    text = str(r)
    for label in ["AUC", "accuracy", "precision", "recall", "human success rate",
                  "discriminator rate", "difference (D - human)", "confusion"]:
        assert label in text
    assert "pp [" in text and "90% Newcombe paired" in text
    d = json.loads(json.dumps(r.as_dict(), allow_nan=False))
    assert d["difference"]["unit"] == "difference" and d["confidence"] == 0.9
    assert set(d) >= {"auc", "accuracy", "precision", "recall", "human_rate",
                      "discriminator_rate", "difference", "confusion", "threshold"}


def test_one_class_and_nothing_accepted_still_give_a_report():
    # e.g. a test set where every human label is a success, threshold above every score
    s = np.linspace(0, 1, 50)
    r = agreement_report(s, np.ones(50, dtype=int), threshold=2.0)
    assert r.auc is None and "n/a (one class only)" in str(r)
    assert r.precision.n == 0 and math.isnan(r.precision.value)
    assert r.difference.value == -1.0
    d = json.loads(json.dumps(r.as_dict(), allow_nan=False))
    assert d["auc"] is None and d["precision"]["value"] is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scores=[0.1, np.nan], y=[0, 1], threshold=0.5), r"position\(s\) \[1\]"),
        (dict(scores=[0.1, 0.2], y=[0, 1, 1], threshold=0.5), "y has 3 labels but scores has 2"),
        (dict(scores=[0.1, 0.2], y=[0, 1], threshold=float("nan")), "threshold must be a finite number"),
        (dict(scores=[0.1, 0.2], y=[0, 1], threshold="high"), "threshold must be a finite number"),
        (dict(scores=[], y=[], threshold=0.5), "empty"),
        (dict(scores=[0.1, 0.2], y=[0, 1], threshold=0.5, auc_method="roc"), "auc_method must be one of"),
        (dict(scores=[0.1, 0.2], y=[0, 1], threshold=0.5, confidence=1.5), "confidence must be"),
    ],
)
def test_report_rejects_bad_input(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        agreement_report(**kwargs)


def test_auc_and_difference_reject_bad_input():
    with pytest.raises(ConfigError, match="needs labelled successes and failures"):
        auc_estimate([0.1, 0.2], [1, 1])
    with pytest.raises(ConfigError, match="n_boot must be an integer >= 10"):
        auc_estimate([0.1, 0.2], [0, 1], method="bootstrap", n_boot=3)
    with pytest.raises(ConfigError, match="a has 3 labels but b has 2"):
        paired_rate_difference([0, 1, 1], [0, 1])
    with pytest.raises(ConfigError, match="only 0 .failure. and 1 .success."):
        paired_rate_difference([0, 2], [0, 1])
