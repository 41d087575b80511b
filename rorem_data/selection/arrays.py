"""Checks of the per-candidate arrays a selection takes, each with one clear error.

Every function returns a validated numpy array (or Generator) or raises
:class:`~rorem_data.core.errors.ConfigError` naming the argument, what was expected, what came
and the fix. Positions in, positions out: ``reviewed`` / ``exclude`` are boolean masks or int
positions into the candidate arrays, never sample ids (the dataset layer converts those).

>>> as_mask([1, 3], 5, name="reviewed").tolist()
[False, True, False, True, False]
>>> check_budget(0, 10, 10)
Traceback (most recent call last):
...
rorem_data.core.errors.ConfigError: budget must be a positive integer; got 0. Pass e.g. --budget 100
"""

from __future__ import annotations

import numpy as np

from rorem_data.core.checks import bad
from rorem_data.core.errors import ConfigError

__all__ = [
    "as_committee",
    "as_features",
    "as_mask",
    "as_proba",
    "as_rng",
    "as_scores",
    "check_budget",
    "check_finite",
    "check_threshold",
    "success_proba",
]

_ROW_CHUNK = 4096  # rows checked at once when a feature matrix holds a NaN


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def as_rng(rng, *, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed, a SeedSequence or a Generator.

    ``None`` is refused: selections must be reproducible, so pass a seed.

    Examples
    --------
    >>> int(as_rng(0).integers(10)) == int(np.random.default_rng(0).integers(10))
    True
    """
    from rorem_data.core.numbers import as_generator

    return as_generator(rng, name=name, fix=f"pass e.g. {name}=0 so the same call gives the same "
                                             "selection")


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise when ``arr`` holds NaN or inf, naming the first bad position."""
    if not np.isfinite(arr).all():
        first = np.argwhere(~np.isfinite(arr))[0]
        where = ", ".join(str(int(i)) for i in first)
        raise ConfigError(f"{name} has NaN or infinite values (first at [{where}]); re-score "
                          "those candidates or drop them before selecting")


def _as_real_array(values, name: str, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(f"{name} must hold {what} (real numbers), got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    check_finite(arr, name)
    return arr


def _check_unit_range(arr: np.ndarray, name: str) -> None:
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ConfigError(f"{name} must lie in [0, 1], got values in [{arr.min():.4g}, "
                          f"{arr.max():.4g}]; pass probabilities, not logits or "
                          "decision_function scores")


def as_scores(scores, name: str = "scores") -> np.ndarray:
    """A 1-D float64 array of finite real numbers (one per candidate).

    Examples
    --------
    >>> as_scores([1, 2]).dtype
    dtype('float64')
    """
    arr = np.asarray(scores)
    if arr.ndim != 1 or arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(f"{name} must be a 1-D array of real numbers (one per candidate), got "
                          f"dtype {arr.dtype} and shape {arr.shape}")
    return _as_real_array(arr, name, "scores")


def as_proba(proba, name: str = "proba") -> np.ndarray:
    """(n,) P(success) or (n, C) class probabilities, checked, as float64.

    Raises
    ------
    ConfigError
        Not floats, wrong shape, NaN/inf, values outside [0, 1], rows not summing to 1.
    """
    arr = _as_real_array(proba, name, "probabilities")
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] < 2):
        raise ConfigError(f"{name} must have shape (n,) = P(success) or (n, n_classes >= 2), got "
                          f"{arr.shape}; pass predict_proba(X)[:, 1] or the full predict_proba(X)")
    _check_unit_range(arr, name)
    if arr.ndim == 2:
        sums = arr.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
        if len(off):
            raise ConfigError(f"rows of {name} must sum to 1, row {int(off[0])} sums to "
                              f"{sums[off[0]]:.4g}; pass predict_proba output (or a 1-D "
                              "P(success))")
    return arr


def success_proba(proba: np.ndarray) -> np.ndarray:
    """P(success), shape (n,), from checked (n,) or (n, 2) probabilities."""
    if proba.ndim == 1:
        return proba
    if proba.shape[1] != 2:
        raise ConfigError(f"a threshold needs binary probabilities, got {proba.shape[1]} classes; "
                          "pass P(success) with shape (n,) or (n, 2)")
    return proba[:, 1]


def as_committee(committee, name: str = "committee") -> np.ndarray:
    """(n_members >= 2, n) P(success), one row per discriminator; (m, n, 2) is reduced."""
    arr = np.asarray(committee)
    if arr.ndim == 3 and arr.shape[2] == 2:
        arr = arr[..., 1]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ConfigError(f"{name} must have shape (n_members >= 2, n): one row of P(success) per "
                          f"discriminator, got shape {arr.shape}; stack the members' "
                          "probabilities with np.stack([p1, p2, ...])")
    arr = _as_real_array(arr, name, "probabilities")
    _check_unit_range(arr, name)
    return arr


def as_features(features, *, name: str = "features") -> np.ndarray:
    """An (n, d) real matrix as C-contiguous float32 (no copy if it already is).

    A finite sum proves every value finite without an (n, d) boolean temporary; only when it
    is not (a NaN/inf, or an overflow) are the rows looked at, in chunks.
    """
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ConfigError(f"{name} must be a 2-D array of shape (n_candidates, n_dims), got shape "
                          f"{arr.shape}; pass one feature row per candidate")
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(f"{name} must hold real numbers, got dtype {arr.dtype}; cast it to "
                          "float32")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr.sum()):
        for r0 in range(0, len(arr), _ROW_CHUNK):
            ok = np.isfinite(arr[r0:r0 + _ROW_CHUNK]).all(axis=1)
            if not ok.all():
                row = r0 + int(np.flatnonzero(~ok)[0])
                raise ConfigError(f"{name} has NaN or infinite values (first in row {row}); "
                                  "re-run featurization for those candidates or drop them")
    return arr


def as_mask(positions, n: int, *, name: str) -> np.ndarray:
    """A boolean mask of length ``n`` from a mask or from int positions (a new array)."""
    if positions is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(positions)
    if arr.dtype == np.bool_:
        if arr.shape != (n,):
            raise ConfigError(f"{name} as a boolean mask must have shape ({n},) (one flag per "
                              f"candidate), got shape {arr.shape}; pass a mask of the same length "
                              "as the other inputs")
        return arr.copy()
    if arr.size == 0:
        return np.zeros(n, dtype=bool)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ConfigError(f"{name} must be a boolean mask of shape ({n},) or a 1-D array of int "
                          f"positions, got dtype {arr.dtype} and shape {arr.shape}; pass "
                          "positions (not sample ids)")
    if arr.min() < 0 or arr.max() >= n:
        out = arr[(arr < 0) | (arr >= n)][0]
        raise ConfigError(f"{name} holds position {int(out)}, outside 0..{n - 1}; pass positions "
                          "into the candidate arrays (sample ids are converted elsewhere)")
    mask = np.zeros(n, dtype=bool)
    mask[arr] = True
    return mask


def check_budget(budget, n_free: int, n: int, name: str = "budget") -> int:
    """``budget`` as an int in ``1..n_free`` (``n_free`` unreviewed of ``n`` candidates)."""
    flag = "--budget" if name == "budget" else name
    if not _is_int(budget) or budget < 1:
        raise bad(name, "a positive integer", budget, f"Pass e.g. {flag} 100")
    budget = int(budget)
    if budget > n_free:
        raise ConfigError(f"{name} {budget} > {n_free} unreviewed candidates ({n - n_free} of {n} "
                          f"already reviewed); lower {flag} to at most {n_free}")
    return budget


def check_threshold(threshold, name: str = "threshold") -> float:
    """An accept threshold: a probability of success in [0, 1]."""
    if not _is_real(threshold) or not 0.0 <= float(threshold) <= 1.0:
        raise bad(name, "a number in [0, 1] (a probability of success)", threshold,
                  "Pass e.g. 0.5")
    return float(threshold)
