"""Sampling for a review queue: Poisson sampling with known inclusion probabilities.

:func:`sampling_probabilities` turns calibrated scores into ``pi`` (sum = the label budget,
higher where the discriminator is unsure, never below a floor); :func:`poisson_sample` draws
each candidate independently with its ``pi``. Why this design, and what the estimators and the
bounds need from it: ``docs/statistics.md``. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.stats.design import _check_pi, _generator, _unit_array

__all__ = ["RULES", "poisson_sample", "sampling_probabilities"]

RULES = ("uncertainty", "threshold")

# --------------------------------------------------------------------------------------------
# 1-2. sampling


def _water_fill(w: np.ndarray, budget: float, floor: float) -> np.ndarray:
    """``pi_i = clip(c * w_i, floor, 1)`` with ``sum(pi) == budget``, solved exactly.

    ``S(c) = sum_i clip(c w_i, floor, 1)`` is continuous, non-decreasing and piecewise linear in
    ``c`` with breakpoints at ``floor / w_i`` and ``1 / w_i``; we evaluate it at every
    breakpoint (sorted weights and cumulative sums) and interpolate linearly in the right piece.
    Zero weights sit at the floor; if the budget exceeds what the positive weights can absorb
    (all at 1), the rest is spread evenly over the zero-weight candidates.
    """
    n = w.size
    pos = w > 0
    n_pos, n_zero = int(pos.sum()), n - int(pos.sum())
    if n_pos == 0:
        return np.full(n, budget / n)
    if budget >= n_pos + floor * n_zero:
        out = np.ones(n)
        if n_zero:
            out[~pos] = (budget - n_pos) / n_zero
        return out
    ws = np.sort(w[pos])
    cs = np.r_[0.0, np.cumsum(ws)]

    def total(c):
        c = np.asarray(c, dtype=float)
        i_lo = np.searchsorted(ws, floor / c, side="right")  # at the floor
        i_hi = np.searchsorted(ws, 1.0 / c, side="left")  # below the cap
        return (n_pos - i_hi) + floor * (i_lo + n_zero) + c * (cs[i_hi] - cs[i_lo])

    bp = np.unique(np.r_[floor / ws, 1.0 / ws])
    s_bp = total(bp)
    j = int(np.searchsorted(s_bp, budget, side="left"))
    if j == 0:
        c = bp[0]
    else:  # S is linear on [bp[j-1], bp[j]]
        c0, c1, s0, s1 = bp[j - 1], bp[j], s_bp[j - 1], s_bp[j]
        c = c0 + (budget - s0) * (c1 - c0) / (s1 - s0) if s1 > s0 else c1
    out = np.full(n, floor)
    out[pos] = np.clip(c * w[pos], floor, 1.0)
    return out


def sampling_probabilities(
    scores, budget, *, floor=0.05, threshold=0.5, rule="uncertainty", n=None
) -> np.ndarray:
    """Per-candidate inclusion probabilities for Poisson sampling, higher where the discriminator is unsure.

    ``pi_i = clip(c * w_i, floor, 1)`` with ``w_i`` the candidate's uncertainty and ``c``
    solved exactly so that ``sum(pi) == budget``, the expected number of labels. Every ``pi_i``
    is at least ``floor``, so every candidate can be drawn, and ``pi`` never falls as the
    uncertainty rises.

    Parameters
    ----------
    scores : array_like of float in [0, 1], shape (N,), or None
        Calibrated probabilities of success from the discriminator (higher = better removal).
        ``None`` in the first round, when there is no discriminator yet: then ``pi`` is uniform,
        ``budget / n`` for each of the ``n`` candidates.
    budget : float
        Expected number of candidates to label, ``0 < budget <= N``. The realised sample size
        varies around it (Poisson sampling; standard deviation ``sqrt(sum pi (1 - pi))``).
    floor : float, default 0.05
        Smallest probability, in (0, 1]; needs ``floor * N <= budget``. Raise it (e.g. 0.1-0.2)
        when the labels will also be used to certify auto-accept thresholds: the precision bound
        is only as good as the smallest ``pi`` among the accepted (see the module docstring).
    threshold : float, default 0.5
        Decision threshold in (0, 1) for ``rule="threshold"``; ignored otherwise.
    rule : {"uncertainty", "threshold"}, default "uncertainty"
        ``"uncertainty"``: ``w = sqrt(p (1 - p))``. The default because it minimises the
        variance of :func:`active_mean` for a calibrated discriminator (Zrnic & Candès 2024;
        near-optimal for estimating the success rate). ``"threshold"``: ``w = 1 - |p - t| /
        max(t, 1 - t)``, largest at ``p = threshold``; spends the labels near a decision
        boundary (training a discriminator, or checking one threshold).
    n : int, optional
        Number of candidates when ``scores`` is ``None``; must equal ``len(scores)`` otherwise.

    Returns
    -------
    ndarray of float64, shape (N,)
        ``pi`` in ``[floor, 1]`` with ``pi.sum() == budget`` (to rounding).

    Raises
    ------
    ConfigError
        Scores NaN/inf or outside [0, 1]; ``budget`` not positive or above ``N``;
        ``floor * N > budget``; ``floor`` outside (0, 1]; ``threshold`` outside (0, 1);
        unknown ``rule``; ``scores`` and ``n`` both missing or disagreeing.

    Examples
    --------
    >>> sampling_probabilities([0.5, 0.5, 0.9, 0.1], 2.0).round(3).tolist()
    [0.625, 0.625, 0.375, 0.375]
    >>> sampling_probabilities([0.0, 0.5, 0.5, 1.0], 1.2, floor=0.1).round(3).tolist()
    [0.1, 0.5, 0.5, 0.1]
    >>> sampling_probabilities(None, 10, n=100)[:3].tolist()
    [0.1, 0.1, 0.1]
    """
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    if scores is None:
        if n is None:
            raise ConfigError(
                "scores is None (first round, no discriminator) but n is missing; pass "
                "n=<number of candidates> to get uniform probabilities budget / n"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"n must be a positive integer (number of candidates), got {n!r}")
        p = None
        big_n = int(n)
    else:
        p = _unit_array(scores, "scores")
        big_n = p.size
        if big_n == 0:
            raise ConfigError("scores is empty; pass one calibrated score per candidate")
        if n is not None and n != big_n:
            raise ConfigError(f"n={n!r} but scores has {big_n} values; drop n or make them agree")
    try:
        b = float(budget)
    except (TypeError, ValueError):
        b = float("nan")
    if not (math.isfinite(b) and 0 < b <= big_n):
        raise ConfigError(
            f"budget must be a number in (0, {big_n}] (the expected number of labels among the "
            f"{big_n} candidates), got {budget!r}; label at most every candidate"
        )
    try:
        fl = float(floor)
    except (TypeError, ValueError):
        fl = float("nan")
    if not (0 < fl <= 1):
        raise ConfigError(
            f"floor must be a probability in (0, 1], got {floor!r}; every candidate needs a "
            "positive chance of being drawn for the estimates to stay unbiased"
        )
    if fl * big_n > b * (1 + 1e-12):
        raise ConfigError(
            f"floor={fl:g} for {big_n} candidates already needs an expected {fl * big_n:g} "
            f"labels, more than budget={b:g}; lower floor to at most {b / big_n:.4g} or raise "
            "the budget"
        )
    if rule == "threshold":
        try:
            t = float(threshold)
        except (TypeError, ValueError):
            t = float("nan")
        if not (0 < t < 1):
            raise ConfigError(
                f"threshold must lie strictly between 0 and 1 (a calibrated probability), got "
                f"{threshold!r}"
            )
    if p is None:
        return np.full(big_n, b / big_n)
    if rule == "uncertainty":
        w = np.sqrt(p * (1.0 - p))
    else:
        w = 1.0 - np.abs(p - t) / max(t, 1.0 - t)
    return _water_fill(np.maximum(w, 0.0), b, min(fl, b / big_n))


def poisson_sample(pi, rng=0) -> np.ndarray:
    """Draw a Poisson sample: candidate ``i`` independently with probability ``pi_i``.

    Parameters
    ----------
    pi : array_like of float in (0, 1], shape (N,)
        Inclusion probabilities, e.g. from :func:`sampling_probabilities`.
    rng : int or numpy.random.Generator, default 0
        Seed or generator. The draw must not depend on the labels (it cannot: they come later).

    Returns
    -------
    ndarray of bool, shape (N,)
        ``xi``: True where the candidate is sampled for review. Keep it together with ``pi``;
        every estimate needs both.

    Raises
    ------
    ConfigError
        ``pi`` not finite or outside (0, 1]; bad ``rng``.

    Examples
    --------
    >>> xi = poisson_sample([1.0, 0.5, 0.5, 1.0], rng=3)
    >>> xi.dtype.name, bool(xi[0] and xi[3])
    ('bool', True)
    """
    p = _check_pi(pi)
    return _generator(rng).uniform(size=p.size) < p

