"""Checks of an active (Poisson) sample's arrays, shared by the sampling, the estimator and the
bounds: one place that says what ``pi``, ``xi``, ``y`` and ``pred`` must be.

The design and the estimators are explained in ``docs/statistics.md``.
"""

from __future__ import annotations

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.core.numbers import as_generator
from rorem_data.stats.intervals import check_scores

# --------------------------------------------------------------------------------------------
# validation helpers


def _unit_array(x, name: str, n: int | None = None, against: str = "pi") -> np.ndarray:
    arr = check_scores(x, name)
    if n is not None and arr.size != n:
        raise ConfigError(
            f"{name} has {arr.size} values but {against} has {n}; pass one value per candidate "
            "of the round, in the same order"
        )
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ConfigError(
            f"{name} must lie in [0, 1] (calibrated probabilities), got values from "
            f"{arr.min():g} to {arr.max():g}; calibrate raw scores first "
            "(rorem_data.stats.calibration)"
        )
    return arr


def _check_pi(pi) -> np.ndarray:
    p = check_scores(pi, "pi")
    if p.size == 0:
        raise ConfigError("pi is empty; pass one sampling probability per candidate")
    bad = (p <= 0) | (p > 1)
    if bad.any():
        where = np.flatnonzero(bad)
        raise ConfigError(
            f"pi must lie in (0, 1], got {p[where[0]]:g} at position {int(where[0])} "
            f"({where.size} bad value(s)); every candidate needs a positive chance of being "
            "sampled - use the probabilities from sampling_probabilities (which has a floor)"
        )
    return p


def _check_xi(xi, n: int, name: str = "xi", what: str = "the mask returned by poisson_sample") -> np.ndarray:
    arr = np.asarray(xi)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ConfigError(
            f"{name} must be a 1-D 0/1 array with one entry per candidate ({n}, like pi), got "
            f"shape {arr.shape}; pass {what}"
        )
    if arr.dtype == bool:
        return arr
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ConfigError(f"{name} must hold 0/1 (or bool) indicators, got dtype {arr.dtype}; pass {what}")
    if not np.isin(arr, (0, 1)).all():
        extra = np.unique(arr[~np.isin(arr, (0, 1))])[:5].tolist()
        raise ConfigError(f"{name} must hold only 0 and 1 (or bool), found {extra}; pass {what}")
    return arr.astype(bool)


def _check_y(y, xi: np.ndarray, *, binary: bool) -> np.ndarray:
    """Labels over all N; only the sampled ones are read (NaN elsewhere is fine).

    Returns float64 with 0 at the unsampled positions."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != xi.size:
        raise ConfigError(
            f"y must be a 1-D array over all {xi.size} candidates (labels where xi == 1, "
            f"anything, e.g. NaN, elsewhere), got shape {arr.shape}"
        )
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"y must be numeric 0/1 labels, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    lab = arr[xi]
    bad = ~np.isfinite(lab)
    if bad.any():
        where = np.flatnonzero(xi)[bad]
        raise ConfigError(
            f"y is missing (NaN or infinite) for {where.size} sampled candidate(s), first at "
            f"position(s) {where[:5].tolist()}; every candidate with xi == 1 needs its human "
            "label - finish the review, or leave unlabelled ones out of the sample only if "
            "they were never drawn"
        )
    if binary:
        odd = ~np.isin(lab, (0.0, 1.0))
        if odd.any():
            raise ConfigError(
                f"y must hold only 0 (failure) and 1 (success) where xi == 1, found "
                f"{np.unique(lab[odd])[:5].tolist()}; map the labels to 0/1 first"
            )
    elif lab.size and (lab.min() < 0 or lab.max() > 1):
        raise ConfigError(
            f"y must lie in [0, 1] where xi == 1 (0/1 labels), got values from {lab.min():g} "
            f"to {lab.max():g}; map the labels to 0/1 first"
        )
    out = np.zeros(xi.size)
    out[xi] = lab
    return out


def _check_design(y, xi, pi, *, binary: bool):
    p = _check_pi(pi)
    x = _check_xi(xi, p.size)
    if not x.any():
        raise ConfigError(
            f"no candidate is sampled (xi is 0 for all {p.size}); nothing has been labelled, so "
            "nothing can be estimated. Draw the sample with poisson_sample(pi, rng) and have "
            "it reviewed first (a budget that is too small can also draw nobody)"
        )
    return _check_y(y, x, binary=binary), x, p


def _generator(rng) -> np.random.Generator:
    return as_generator(rng, allow_none=True)


def _prediction(pred, n: int, *, name: str = "pred") -> np.ndarray:
    return np.ones(n) if pred is None else _unit_array(pred, name, n)

