"""Auto-accept / auto-reject thresholds: the precision guarantee holds, in simulation.

Simulation model: scores S ~ Uniform(0, 1) and P(success | S = s) = clip(c + d * s, 0, 1).
The true precision of "accept if S >= t" is the mean of that curve over [t, 1], and of
"reject if S <= t" (share of failures) one minus its mean over [0, t]; both are computed by
numerical integration on a 100,001-point grid, so the truth has no Monte-Carlo error.

Monte-Carlo slack: with T trials the observed error rate of a procedure whose true error rate
is alpha has standard error sqrt(alpha (1 - alpha) / T); we allow 3 standard errors (0.045 for
alpha = 0.1 and T = 400), so a correct procedure fails a check about once in 1000 runs, and
the seeds are fixed.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rorem_data.stats import thresholds
from rorem_data.core.errors import ConfigError
from rorem_data.stats.intervals import binomial_ci
from rorem_data.stats.thresholds import choose_accept_threshold, choose_reject_threshold

TRIALS = 400
GRID = np.linspace(0.0, 1.0, 100_001)


def slack(alpha, trials=TRIALS):
    return 3 * math.sqrt(alpha * (1 - alpha) / trials)


class Model:
    """P(success | s) = clip(c + d s, 0, 1) for s ~ Uniform(0, 1), with exact precisions."""

    def __init__(self, c, d):
        self.c, self.d = c, d
        eta = np.clip(c + d * GRID, 0, 1)
        self.cum = np.r_[0.0, np.cumsum((eta[1:] + eta[:-1]) / 2 * np.diff(GRID))]

    def accept_precision(self, t):
        t = np.clip(t, 0.0, 1.0 - 1e-9)
        return (self.cum[-1] - np.interp(t, GRID, self.cum)) / (1.0 - t)

    def reject_npv(self, t):
        t = np.clip(t, 1e-9, 1.0)
        return 1.0 - np.interp(t, GRID, self.cum) / t

    def oracle_accept_share(self, target):
        good = GRID[self.accept_precision(GRID) >= target]
        return 1.0 - good.min() if good.size else 0.0

    def draw(self, n, trials, seed, step=None):
        """``trials`` labelled sets of size ``n`` at once; optional rounding of the scores."""
        rng = np.random.default_rng(seed)
        s = rng.uniform(size=(trials, n))
        y = (rng.uniform(size=(trials, n)) < np.clip(self.c + self.d * s, 0, 1)).astype(int)
        if step:
            s = np.round(s / step) * step
        return s, y


def simulate(model, *, n, target, confidence, seed, step=None, chooser="fixed-sequence"):
    """Share of trials whose chosen threshold has true precision < target, share of trials
    with no threshold, and the mean share of the population accepted."""
    s, y = model.draw(n, TRIALS, seed, step)
    errors = none = 0
    accepted = []
    for i in range(TRIALS):
        if chooser == "fixed-sequence":
            choice = choose_accept_threshold(
                s[i], y[i], target_precision=target, confidence=confidence
            )
            if not choice.chosen:
                none += 1
                continue
            t = choice.threshold
        else:  # naive: scan all thresholds, keep the loosest whose lower bound passes
            order = np.argsort(-s[i], kind="stable")
            k = np.cumsum(y[i][order])
            lower, _ = binomial_ci(k, np.arange(1, n + 1), confidence=confidence, sides="lower")
            ok = np.flatnonzero(lower >= target)
            if ok.size == 0:
                none += 1
                continue
            t = s[i][order][ok.max()]
        # with rounded scores, "rounded >= t" is "S >= t - step/2"
        t_true = t - step / 2 if step else t
        errors += model.accept_precision(t_true) < target
        accepted.append(1 - min(max(t_true, 0.0), 1.0))
    return errors / TRIALS, none / TRIALS, float(np.sum(accepted)) / TRIALS


def test_docstring_examples_run():
    assert doctest.testmod(thresholds).failed == 0


@pytest.mark.parametrize(
    "c, d, target, confidence, step",
    [
        # a good discriminator: the top 20% of scores always succeed, then it degrades
        (0.2, 1.0, 0.9, 0.9, None),
        (0.2, 1.0, 0.95, 0.95, None),
        # the same with coarse, heavily tied scores (11 distinct values)
        (0.2, 1.0, 0.9, 0.9, 0.1),
        # no perfect region: the top scores still fail now and then
        (0.5, 0.5, 0.9, 0.9, None),
        # a flat precision curve: many thresholds sit just below the target
        (0.82, 0.12, 0.9, 0.9, None),
    ],
)
def test_true_precision_falls_below_target_in_at_most_alpha_of_trials(c, d, target, confidence, step):
    alpha = 1 - confidence
    model = Model(c, d)
    error_rate, none_rate, mean_share = simulate(
        model, n=400, target=target, confidence=confidence, seed=11, step=step
    )
    assert error_rate <= alpha + slack(alpha), (error_rate, none_rate)
    if c == 0.2:
        # and the guarantee is not bought by refusing: thresholds come back and accept much
        # of what an oracle that knows the truth would accept
        assert none_rate < 0.05
        assert mean_share > 0.6 * model.oracle_accept_share(target)


def test_naive_scanning_breaks_the_guarantee_that_fixed_sequence_keeps():
    # A useless discriminator whose success rate (0.89) is just below the target (0.9):
    # every threshold is wrong to pick. Scanning all thresholds finds a lucky one far more
    # often than alpha; the fixed sequence does not.
    alpha = 0.1
    useless = Model(0.89, 0.0)
    fixed, _, _ = simulate(useless, n=500, target=0.9, confidence=0.9, seed=12)
    naive, _, _ = simulate(useless, n=500, target=0.9, confidence=0.9, seed=12, chooser="naive")
    assert fixed <= alpha + slack(alpha)
    assert naive > alpha + slack(alpha)


def test_reject_threshold_keeps_its_failure_precision():
    # P(success | s) = clip(1.2 s - 0.2, 0, 1): the lowest scores always fail
    model, target, confidence = Model(-0.2, 1.2), 0.9, 0.9
    s, y = model.draw(400, TRIALS, seed=13)
    errors = found = 0
    for i in range(TRIALS):
        choice = choose_reject_threshold(s[i], y[i], target_npv=target, confidence=confidence)
        if not choice.chosen:
            continue
        found += 1
        errors += model.reject_npv(choice.threshold) < target
    assert errors / TRIALS <= 0.1 + slack(0.1)
    assert found / TRIALS > 0.95


def test_fixed_sequence_stops_at_the_first_failure():
    # ranked by score: 40 successes, 10 failures, then 250 successes, then 100 failures
    y = np.r_[np.ones(40), np.zeros(10), np.ones(250), np.zeros(100)].astype(int)
    scores = np.linspace(1, 0, y.size)
    choice = choose_accept_threshold(scores, y, target_precision=0.9, confidence=0.9)
    assert choice.n_decided <= 45
    assert choice.precision.lo >= 0.9
    # a looser threshold would pass on its own (288 of 300 correct) - a scan would take it
    assert binomial_ci(290, 300, confidence=0.9, sides="lower")[0] >= 0.9


def test_choice_reports_what_it_achieves_on_labels_and_candidates():
    rng = np.random.default_rng(3)
    s = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < s).astype(int)
    pool = rng.uniform(size=30_000)
    choice = choose_accept_threshold(s, y, target_precision=0.9, confidence=0.95, candidate_scores=pool)
    accepted = s >= choice.threshold
    assert choice.rule == "accept" and choice.threshold in s
    assert choice.n_decided == accepted.sum() == choice.precision.n
    assert choice.precision.value == pytest.approx(y[accepted].mean())
    assert choice.precision.sides == "lower" and choice.precision.hi == 1.0
    assert choice.precision.lo >= 0.9
    assert choice.precision.lo == pytest.approx(
        binomial_ci(int(y[accepted].sum()), int(accepted.sum()), confidence=0.95, sides="lower")[0])
    assert choice.recall.value == pytest.approx(y[accepted].sum() / y.sum())
    assert choice.n_candidates_decided == int((pool >= choice.threshold).sum())
    assert choice.candidate_share.value == pytest.approx(np.mean(pool >= choice.threshold))
    assert choice.candidate_share.n == 30_000
    assert (choice.n_labels, choice.n_positive) == (1000, int(y.sum()))
    assert (choice.target, choice.confidence) == (0.9, 0.95)
    d = json.loads(json.dumps(choice.as_dict(), allow_nan=False))
    assert d["precision"]["lo"] >= 0.9 and d["method"] == "fixed-sequence Clopper-Pearson"
    assert f"accept if score >= {choice.threshold:.6g}" in str(choice)
    assert "candidates" in str(choice)


def test_reject_choice_rejects_low_scores_with_failure_precision():
    rng = np.random.default_rng(4)
    s = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < s).astype(int)
    choice = choose_reject_threshold(s, y, target_npv=0.9, candidate_scores=s)
    rejected = s <= choice.threshold
    assert choice.rule == "reject"
    assert choice.n_decided == rejected.sum()
    assert choice.precision.value == pytest.approx(1 - y[rejected].mean())
    assert choice.precision.lo >= 0.9
    assert choice.recall.value == pytest.approx((1 - y[rejected]).sum() / (1 - y).sum())
    assert choice.n_candidates_decided == rejected.sum()
    assert "reject if score <=" in str(choice)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), slope=st.floats(0.5, 5))
def test_threshold_depends_on_the_score_order_only(seed, slope):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=300)
    y = (rng.uniform(size=300) < 1 / (1 + np.exp(-3 * s))).astype(int)
    raw = choose_accept_threshold(s, y, target_precision=0.85, confidence=0.9)
    if not raw.chosen:
        assert not choose_accept_threshold(np.exp(slope * s), y, target_precision=0.85,
                                           confidence=0.9).chosen
        return
    mapped = choose_accept_threshold(np.exp(slope * s), y, target_precision=0.85, confidence=0.9)
    assert mapped.n_decided == raw.n_decided
    assert mapped.precision == raw.precision


def test_tied_scores_are_accepted_or_refused_together():
    s = np.r_[np.full(100, 0.9), np.full(100, 0.5), np.full(100, 0.1)]
    y = np.r_[np.ones(97), np.zeros(3), np.ones(60), np.zeros(40), np.zeros(100)].astype(int)
    choice = choose_accept_threshold(s, y, target_precision=0.9)
    assert choice.threshold == 0.9 and choice.n_decided == 100
    assert choice.n_tested == 2  # 0.9 passed, 0.9-or-0.5 (157/200) failed


def test_min_accepted_is_respected():
    rng = np.random.default_rng(5)
    s = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < s).astype(int)
    choice = choose_accept_threshold(s, y, target_precision=0.85, min_accepted=400)
    assert choice.n_decided >= 400
    with pytest.raises(ConfigError, match="min_accepted=5000 exceeds the 2000 labelled items"):
        choose_accept_threshold(s, y, target_precision=0.9, min_accepted=5000)


def test_too_few_successes_says_how_many_are_needed():
    s = np.linspace(0, 1, 100)
    y = np.r_[np.zeros(80), np.ones(20)].astype(int)
    choice = choose_accept_threshold(s, y, target_precision=0.95, confidence=0.95)
    assert not choice.chosen and choice.threshold is None and choice.as_dict()["threshold"] is None
    msg = str(choice)
    assert ("at 95% confidence a precision lower bound of 0.95 needs at least 59 accepted "
            "labels all correct") in msg
    assert "you have 20 labelled successes" in msg
    assert "you have 20 labelled failures" in choose_reject_threshold(s, 1 - y, target_npv=0.95).message


def test_unreachable_target_reports_the_best_bound_and_where():
    rng = np.random.default_rng(6)
    s = rng.uniform(size=500)
    y = (rng.uniform(size=500) < 0.5 + 0.4 * s).astype(int)  # precision <= 0.9 everywhere
    choice = choose_accept_threshold(s, y, target_precision=0.97)
    assert not choice.chosen
    msg = choice.message
    assert "no threshold reaches a precision lower bound of 0.97 at 95% confidence" in msg
    assert "best bound of any threshold is 0." in msg and "at score >= " in msg
    assert "Label more candidates, lower target_precision" in msg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scores=[0.1, np.nan, 0.3], y=[0, 1, 1]), r"position\(s\) \[1\]"),
        (dict(scores=[0.1, 0.2, 0.3], y=[0, 1]), "y has 2 labels but scores has 3"),
        (dict(scores=[0.1, 0.2], y=[1, 1]), r"only successes \(1\)"),
        (dict(scores=[0.1, 0.2], y=[0, 0]), r"only failures \(0\)"),
        (dict(scores=[0.1, 0.2], y=[0, 1], target_precision=1.0), "target_precision must be"),
        (dict(scores=[0.1, 0.2], y=[0, 1], target_precision=95), "target_precision must be"),
        (dict(scores=[0.1, 0.2], y=[0, 1], confidence=0), "confidence must be"),
        (dict(scores=[0.1, 0.2], y=[0, 1], min_accepted=0), "min_accepted must be an integer >= 1"),
        (dict(scores=[0.1, 0.2], y=[0, 1], candidate_scores=[np.inf]), "candidate_scores holds 1 NaN"),
    ],
)
def test_bad_input_raises_config_error(kwargs, match):
    kwargs.setdefault("target_precision", 0.9)
    with pytest.raises(ConfigError, match=match):
        choose_accept_threshold(**kwargs)


def test_reject_names_its_own_parameters():
    with pytest.raises(ConfigError, match="target_npv must be"):
        choose_reject_threshold([0.1, 0.2], [0, 1], target_npv=2)
    with pytest.raises(ConfigError, match="min_rejected must be"):
        choose_reject_threshold([0.1, 0.2], [0, 1], target_npv=0.9, min_rejected=-1)
