"""Prediction-powered inference for a round's success rate: coverage, width, bad input.

Simulation model: each candidate has a true chance of success p ~ Beta(a, b) (so the true
success rate is a / (a + b)); the human label is Bernoulli(p). Trials are drawn at once as
(trials, n + N) arrays. Coverage slack: 3 binomial standard errors of the trial count, and
never below the 93% floor: with 1000 trials a 95% interval whose true coverage is 95% drops
below 93% about once in 100 seeds (the seeds are fixed).
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

from rorem_data.stats import ppi
from rorem_data.core.errors import ConfigError
from rorem_data.stats.ppi import classical_mean, ppi_lambda, ppi_mean

TRIALS, N_LABELED, N_UNLABELED = 1000, 200, 2000


def world(seed, a=0.5, b=0.5, trials=TRIALS, n=N_LABELED, big_n=N_UNLABELED):
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=(trials, n + big_n))
    y = (rng.uniform(size=p.shape) < p).astype(float)
    return rng, p, y, a / (a + b)


def run(y, pred, truth, *, tuned=True, n=N_LABELED):
    covered, widths, classical_widths, values = 0, [], [], []
    for t in range(y.shape[0]):
        e = ppi_mean(y[t, :n], pred[t, :n], pred[t, n:], tuned=tuned)
        c = classical_mean(y[t, :n])
        covered += e.lo <= truth <= e.hi
        widths.append(e.hi - e.lo)
        classical_widths.append(c.hi - c.lo)
        values.append(e.value)
    return covered / y.shape[0], np.mean(widths) / np.mean(classical_widths), np.mean(values)


def min_coverage(trials, nominal=0.95):
    return nominal - 3 * math.sqrt(nominal * (1 - nominal) / trials)


def test_docstring_examples_run():
    assert doctest.testmod(ppi).failed == 0


@pytest.mark.parametrize("tuned", [True, False])
@pytest.mark.parametrize("kind", ["probabilities", "decisions"])
def test_interval_covers_the_true_rate_and_beats_labels_alone(tuned, kind):
    _, p, y, truth = world(seed=1 if tuned else 2)
    pred = p if kind == "probabilities" else (p >= 0.5).astype(float)
    coverage, width_ratio, _ = run(y, pred, truth, tuned=tuned)
    assert coverage >= max(min_coverage(TRIALS), 0.93)
    if kind == "probabilities":  # a calibrated, informative discriminator
        assert width_ratio < 0.8
    elif tuned:
        assert width_ratio < 0.95


def test_biased_predictions_do_not_bias_the_estimate():
    _, p, y, truth = world(seed=3, trials=500)
    pred = np.clip(p + 0.2, 0, 1)  # a discriminator that is 20 points too optimistic
    coverage, _, mean_value = run(y, pred, truth)
    assert pred.mean() - truth > 0.1  # the raw predictions are far off ...
    assert abs(mean_value - truth) < 0.01  # ... the PPI estimate is not
    assert coverage >= min_coverage(500)


def test_useless_predictions_cost_little_when_tuned_and_a_lot_when_not():
    rng, _, y, truth = world(seed=4, trials=500)
    noise = rng.uniform(size=y.shape)  # unrelated to the labels
    tuned_cov, tuned_ratio, _ = run(y, noise, truth, tuned=True)
    _, plain_ratio, _ = run(y, noise, truth, tuned=False)
    assert tuned_cov >= min_coverage(500)
    assert tuned_ratio < 1.05
    assert plain_ratio > 1.1  # why tuning is the default


def test_lambda_follows_how_informative_the_predictions_are():
    rng = np.random.default_rng(5)
    p = rng.beta(0.5, 0.5, size=5200)
    y = (rng.uniform(size=p.size) < p).astype(float)
    assert ppi_lambda(y[:200], y[:200], y[200:]) > 0.9  # perfect predictions
    assert ppi_lambda(y[:200], p[:200], p[200:]) > 0.8  # calibrated probabilities
    assert ppi_lambda(y[:200], 1 - p[:200], 1 - p[200:]) == 0.0  # anti-correlated: clipped
    assert ppi_lambda(y[:200], np.full(200, 0.7), np.full(5000, 0.7)) == 0.0  # constant
    lam = ppi_lambda(y[:200], p[:200], p[200:])
    assert 0.0 <= lam <= 1.0


def test_untuned_ppi_is_the_textbook_formula():
    y = np.array([1, 0, 1, 1, 0, 1], dtype=float)
    f = np.array([0.9, 0.2, 0.6, 0.8, 0.4, 0.7])
    f_u = np.array([0.3, 0.9, 0.5, 0.6, 0.8, 0.1, 0.7, 0.4])
    e = ppi_mean(y, f, f_u, tuned=False, confidence=0.9)
    value = f_u.mean() + (y - f).mean()
    half = 1.6448536269514722 * math.sqrt(f_u.var(ddof=1) / 8 + (y - f).var(ddof=1) / 6)
    assert e.value == pytest.approx(value)
    assert (e.lo, e.hi) == pytest.approx((value - half, value + half))
    assert e.method == "ppi" and e.n == 6 and e.confidence == 0.9


def test_estimate_is_clipped_to_a_rate_and_serialises():
    y = np.ones(50)
    e = ppi_mean(y, np.full(50, 0.99), np.r_[np.ones(999), 0.5], tuned=False)
    assert 0.0 <= e.lo <= e.value <= e.hi <= 1.0
    d = json.loads(json.dumps(e.as_dict(), allow_nan=False))
    assert d["method"] == "ppi" and d["hi"] <= 1.0
    assert str(ppi_mean(y, y, np.ones(10))).endswith("95% PPI++)")


def test_classical_mean_is_the_clt_interval():
    y = np.r_[np.ones(30), np.zeros(70)]
    e = classical_mean(y, confidence=0.95)
    half = 1.959963984540054 * math.sqrt(y.var(ddof=1) / 100)
    assert (e.value, e.lo, e.hi) == pytest.approx((0.3, 0.3 - half, 0.3 + half))
    assert e.method == "clt"


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([0, 1, 2], [0, 1, 1], [0.5, 0.5]), {}, r"y_labeled must lie in \[0, 1\]"),
        (([0, 1], [0, 1.5], [0.5, 0.5]), {}, r"pred_labeled must lie in \[0, 1\].*calibrate"),
        (([0, 1], [0, 1], [0.5, -0.1]), {}, r"pred_unlabeled must lie in \[0, 1\]"),
        (([0, 1], [0, np.nan], [0.5, 0.5]), {}, r"pred_labeled holds 1 NaN"),
        (([0, 1, 1], [0, 1], [0.5, 0.5]), {}, "pred_labeled has 2 values but y_labeled has 3"),
        (([1], [1], [0.5, 0.5]), {}, "y_labeled has 1 value"),
        (([0, 1], [0, 1], [0.5]), {}, "pred_unlabeled has 1 value"),
        (([0, 1], [0, 1], [0.5, 0.5]), {"confidence": 95}, "confidence must be"),
    ],
)
def test_bad_input_raises_config_error(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ppi_mean(*args, **kwargs)


def test_classical_mean_rejects_bad_input():
    with pytest.raises(ConfigError, match="at least 2"):
        classical_mean([1])
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        classical_mean([0, 3])
