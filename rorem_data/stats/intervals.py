"""Confidence intervals for proportions, and the :class:`Estimate` every statistic returns.

A success rate, a precision or the share of candidates a threshold accepts is a proportion
``k / n``; this module turns counts into an interval that says how sure we are. Pure numpy;
scipy is imported inside the functions that need it.

Methods (all standard, see Brown, Cai & DasGupta 2001, "Interval estimation for a binomial
proportion"):

- ``"clopper-pearson"``: exact; coverage is at least the nominal level for every ``n`` and true
  rate. The default, and the one to use for guarantees.
- ``"wilson"``: score interval; coverage close to nominal on average, narrower.
- ``"jeffreys"``: equal-tailed Beta(1/2, 1/2) posterior interval; close to nominal, narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rorem_data.core.errors import ConfigError

METHODS = ("clopper-pearson", "wilson", "jeffreys")
SIDES = ("two", "lower", "upper")
UNITS = ("proportion", "difference", "value")

_METHOD_NAMES = {
    "clopper-pearson": "Clopper-Pearson",
    "wilson": "Wilson",
    "jeffreys": "Jeffreys",
    "clt": "CLT",
    "ppi": "PPI",
    "ppi++": "PPI++",
    "delong": "DeLong",
    "bootstrap": "bootstrap",
    "newcombe": "Newcombe paired",
}


def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval.

    Attributes
    ----------
    value : float
        The point estimate (``nan`` when there is no data, e.g. a rate with ``n=0``).
    lo, hi : float
        Interval bounds, ``lo <= hi``. A one-sided lower bound has ``hi`` at the top of the
        range (1 for a proportion) and a one-sided upper bound has ``lo`` at the bottom.
    n : int
        Number of items the estimate rests on.
    confidence : float
        Nominal confidence level of the interval, in (0, 1).
    method : str
        How the interval was computed, e.g. ``"clopper-pearson"``, ``"wilson"``, ``"ppi++"``.
    sides : {"two", "lower", "upper"}
        ``"lower"``: only ``lo`` is a bound (``hi`` is the top of the range); ``"upper"`` likewise.
    unit : {"proportion", "difference", "value"}
        How to print: a proportion as a percentage, a difference of proportions in signed
        percentage points, anything else (e.g. an AUC) as a plain number.

    Examples
    --------
    >>> e = Estimate(0.418, 0.387, 0.450, n=1000, confidence=0.95, method="clopper-pearson")
    >>> str(e)
    '41.8% [38.7%, 45.0%] (n=1000, 95% Clopper-Pearson)'
    >>> e.as_dict()["lo"]
    0.387
    """

    value: float
    lo: float
    hi: float
    n: int
    confidence: float
    method: str
    sides: str = "two"
    unit: str = "proportion"

    def _fmt(self, x: float) -> str:
        if not math.isfinite(x):
            return "n/a"
        if self.unit == "proportion":
            return f"{100 * x:.1f}%"
        if self.unit == "difference":
            return f"{100 * x:+.1f} pp"
        return f"{x:.3f}"

    def __str__(self) -> str:
        name = _METHOD_NAMES.get(self.method, self.method)
        side = "" if self.sides == "two" else f"one-sided {self.sides}, "
        conf = f"{100 * self.confidence:g}%"
        return (
            f"{self._fmt(self.value)} [{self._fmt(self.lo)}, {self._fmt(self.hi)}] "
            f"(n={self.n}, {side}{conf} {name})"
        )

    def as_dict(self) -> dict:
        """Plain JSON-safe dict: non-finite floats become ``None``.

        Examples
        --------
        >>> import json
        >>> json.dumps(proportion(0, 0).as_dict(), allow_nan=False)[:14]
        '{"value": null'
        """
        return {
            "value": _json_float(self.value),
            "lo": _json_float(self.lo),
            "hi": _json_float(self.hi),
            "n": int(self.n),
            "confidence": float(self.confidence),
            "method": self.method,
            "sides": self.sides,
            "unit": self.unit,
        }


def check_confidence(confidence, name: str = "confidence") -> float:
    """Return ``confidence`` as a float in (0, 1) or raise :class:`ConfigError`.

    Examples
    --------
    >>> check_confidence(0.9)
    0.9
    """
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        c = float("nan")
    if not (0.0 < c < 1.0):
        raise ConfigError(
            f"{name} must be a number strictly between 0 and 1 (e.g. 0.95 for 95%), "
            f"got {confidence!r}; pass a fraction, not a percentage"
        )
    return c


def _check_choice(value, choices, name: str) -> str:
    if value not in choices:
        raise ConfigError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"
        )
    return value


def _as_counts(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ConfigError(f"{name} must hold integer counts, got dtype {arr.dtype}; pass integers")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.floor(arr))
    if bad.any():
        first = arr[bad].flat[0]
        raise ConfigError(
            f"{name} must hold non-negative whole counts, got {first!r} "
            f"({int(bad.sum())} bad value(s)); pass counts such as k=successes, n=trials"
        )
    return arr


def binomial_ci(k, n, *, confidence=0.95, method="clopper-pearson", sides="two"):
    """Confidence interval for a binomial proportion ``k / n``, vectorised.

    Parameters
    ----------
    k : int or array_like of int
        Number of successes, ``0 <= k <= n``.
    n : int or array_like of int
        Number of trials, ``n >= 0``; broadcast against ``k``.
    confidence : float, default 0.95
        Confidence level in (0, 1).
    method : {"clopper-pearson", "wilson", "jeffreys"}
        Interval method (see the module docstring). Clopper-Pearson is exact: coverage is at
        least ``confidence`` for every true rate.
    sides : {"two", "lower", "upper"}
        ``"two"``: equal-tailed two-sided interval. ``"lower"``: a one-sided lower bound at
        level ``confidence`` (``hi`` is 1). ``"upper"``: a one-sided upper bound (``lo`` is 0).

    Returns
    -------
    lo, hi : float or ndarray of float64
        Bounds in [0, 1], of the broadcast shape of ``k`` and ``n`` (floats for scalar input).
        ``n == 0`` gives ``(0.0, 1.0)``: no data, no information.

    Raises
    ------
    ConfigError
        ``k`` or ``n`` negative, not whole or not finite; ``k > n``; shapes that do not
        broadcast; ``confidence`` outside (0, 1); unknown ``method`` or ``sides``.

    Examples
    --------
    >>> lo, hi = binomial_ci(418, 1000)
    >>> round(lo, 3), round(hi, 3)
    (0.387, 0.449)
    >>> binomial_ci([0, 5], [10, 5], method="wilson", sides="lower")[1].tolist()
    [1.0, 1.0]
    """
    from scipy import special

    conf = check_confidence(confidence)
    _check_choice(method, METHODS, "method")
    _check_choice(sides, SIDES, "sides")
    k_arr = _as_counts(k, "k")
    n_arr = _as_counts(n, "n")
    try:
        k_arr, n_arr = np.broadcast_arrays(k_arr, n_arr)
    except ValueError:
        raise ConfigError(
            f"k (shape {np.shape(k)}) and n (shape {np.shape(n)}) must have broadcastable "
            "shapes; pass arrays of the same length"
        ) from None
    if (k_arr > n_arr).any():
        i = np.argwhere(k_arr > n_arr)[0]
        raise ConfigError(
            f"k must be <= n, got k={k_arr[tuple(i)]:g} > n={n_arr[tuple(i)]:g} "
            f"at position {tuple(int(j) for j in i) or 0}; successes cannot exceed trials"
        )
    alpha = 1.0 - conf
    tail = alpha / 2 if sides == "two" else alpha
    empty = n_arr == 0
    nn = np.where(empty, 1.0, n_arr)  # placeholder to keep the formulas finite
    kk = np.where(empty, 0.0, k_arr)
    want_lo = sides != "upper"
    want_hi = sides != "lower"
    lo = np.zeros(kk.shape)
    hi = np.ones(kk.shape)

    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wilson":
            z = -special.ndtri(tail)
            p = kk / nn
            denom = 1 + z**2 / nn
            centre = (p + z**2 / (2 * nn)) / denom
            half = z * np.sqrt(p * (1 - p) / nn + z**2 / (4 * nn**2)) / denom
            if want_lo:
                lo = np.where(kk == 0, 0.0, centre - half)  # exact at the ends
            if want_hi:
                hi = np.where(kk == nn, 1.0, centre + half)
        else:
            if method == "clopper-pearson":
                a_lo, b_lo, a_hi, b_hi = kk, nn - kk + 1, kk + 1, nn - kk
            else:  # jeffreys: quantiles of the Beta(k + 1/2, n - k + 1/2) posterior
                a_lo = a_hi = kk + 0.5
                b_lo = b_hi = nn - kk + 0.5
            # a zero shape only occurs where the bound is pinned to 0 or 1 anyway
            if want_lo:
                lo = np.where(kk == 0, 0.0, special.betaincinv(np.maximum(a_lo, 1e-300), b_lo, tail))
            if want_hi:
                hi = np.where(kk == nn, 1.0, special.betaincinv(a_hi, np.maximum(b_hi, 1e-300), 1.0 - tail))
    lo = np.clip(np.where(empty, 0.0, lo), 0.0, 1.0)
    hi = np.clip(np.where(empty, 1.0, hi), 0.0, 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def min_trials_for_lower_bound(target: float, *, confidence=0.95) -> int:
    """Smallest ``n`` whose exact one-sided lower bound can reach ``target`` (all ``n`` correct).

    With ``k = n`` the one-sided Clopper-Pearson lower bound is ``(1 - confidence) ** (1/n)``,
    so a claim "precision >= target at this confidence" needs at least
    ``ceil(log(1 - confidence) / log(target))`` items, every one of them correct.

    Parameters
    ----------
    target : float
        The lower bound to reach, in (0, 1).
    confidence : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        ``target`` or ``confidence`` outside (0, 1).

    Examples
    --------
    >>> min_trials_for_lower_bound(0.95, confidence=0.95)
    59
    """
    t = check_confidence(target, "target")
    alpha = 1.0 - check_confidence(confidence)
    n = max(1, math.ceil(math.log(alpha) / math.log(t)))
    # guard against rounding at exact integer boundaries
    while n > 1 and alpha ** (1.0 / (n - 1)) >= t:
        n -= 1
    while alpha ** (1.0 / n) < t:
        n += 1
    return n


def proportion(k, n, *, confidence=0.95, method="clopper-pearson", sides="two") -> Estimate:
    """The proportion ``k / n`` with its confidence interval, as an :class:`Estimate`.

    Parameters
    ----------
    k, n : int
        Successes and trials (scalars), ``0 <= k <= n``.
    confidence, method, sides
        As in :func:`binomial_ci`.

    Returns
    -------
    Estimate
        ``value = k / n`` (``nan`` when ``n == 0``, with interval ``[0, 1]``).

    Raises
    ------
    ConfigError
        As :func:`binomial_ci`, and when ``k`` or ``n`` is not a scalar.

    Examples
    --------
    >>> print(proportion(418, 1000))
    41.8% [38.7%, 44.9%] (n=1000, 95% Clopper-Pearson)
    """
    if np.ndim(k) or np.ndim(n):
        raise ConfigError(
            f"proportion takes scalar counts, got k with shape {np.shape(k)} and n with shape "
            f"{np.shape(n)}; use binomial_ci for arrays"
        )
    lo, hi = binomial_ci(k, n, confidence=confidence, method=method, sides=sides)
    n_int = int(n)
    value = float(k) / n_int if n_int else float("nan")
    return Estimate(value, lo, hi, n_int, float(confidence), method, sides, "proportion")


def check_scores(x, name: str = "scores") -> np.ndarray:
    """Validate a 1-D array of finite numbers and return it as float64.

    Parameters
    ----------
    x : array_like, shape (n,)
    name : str
        Parameter name used in error messages.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    ConfigError
        Not 1-D, not numeric, or holding NaN/inf (the message gives the first positions).

    Examples
    --------
    >>> check_scores([1, 2.5]).dtype
    dtype('float64')
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ConfigError(
            f"{name} must be a 1-D array with one value per item, got shape {arr.shape}"
        )
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.flatnonzero(bad)
        raise ConfigError(
            f"{name} holds {where.size} NaN or infinite value(s), first at position(s) "
            f"{where[:5].tolist()}; score those items again or drop them"
        )
    return arr


def check_labels(y, n: int, name: str = "y", against: str = "scores") -> np.ndarray:
    """Validate 0/1 labels (1 = success) of length ``n`` and return them as int64.

    Parameters
    ----------
    y : array_like of {0, 1} or bool, shape (n,)
    n : int
        Expected length (that of ``against``).
    name, against : str
        Parameter names used in error messages.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ConfigError
        Not 1-D, wrong length, or values other than 0 and 1.

    Examples
    --------
    >>> check_labels([True, False], 2).tolist()
    [1, 0]
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D array of 0/1 labels, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ConfigError(
            f"{name} has {arr.shape[0]} labels but {against} has {n} values; pass one label "
            "per item, in the same order"
        )
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ConfigError(f"{name} must hold 0/1 labels, got dtype {arr.dtype}")
    values = np.unique(arr)
    extra = values[~np.isin(values, (0, 1))]
    if extra.size:
        raise ConfigError(
            f"{name} must hold only 0 (failure) and 1 (success), found {extra[:5].tolist()}; "
            "map your labels to 0/1 first"
        )
    return arr.astype(np.int64)
