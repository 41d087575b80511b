"""Strata: bin a continuous value, code discrete labels, split a budget over the strata.

>>> codes = stratum_codes([["cat", "dog", "cat", "dog"], quantile_bins([0.1, 0.2, 0.3, 0.4], 2)])
>>> codes.tolist()
[0, 2, 1, 3]
>>> allocate(np.bincount(codes), 2, method="equal", rng=0).sum()
np.int64(2)
"""

from __future__ import annotations

import numpy as np

from rorem_data.core.checks import bad
from rorem_data.core.errors import ConfigError
from rorem_data.selection.arrays import as_rng, as_scores, check_budget, check_finite

__all__ = ["ALLOCATIONS", "allocate", "quantile_bins", "stratum_codes"]

ALLOCATIONS = ("proportional", "equal")


def quantile_bins(values, n_bins: int = 4) -> np.ndarray:
    """Bin a continuous per-candidate value (e.g. mask area) into ``n_bins`` quantile bins.

    Parameters
    ----------
    values : array_like, shape (n,), real, no NaN
        The value to bin.
    n_bins : int >= 1
        Number of bins; equal values always share a bin, so fewer may be used.

    Returns
    -------
    numpy.ndarray, shape (n,), int64
        Bin of each candidate, 0 = smallest values.

    Raises
    ------
    ConfigError
        NaN, not 1-D, ``n_bins < 1``.

    Examples
    --------
    >>> quantile_bins([0.01, 0.02, 0.30, 0.40], 2).tolist()
    [0, 0, 1, 1]
    """
    v = as_scores(values, "values")
    if isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, (int, np.integer)) \
            or n_bins < 1:
        raise bad("n_bins", "a positive integer", n_bins)
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(edges, v, side="right").astype(np.int64)


def _named_label_arrays(strata) -> list[tuple[str, object]]:
    if isinstance(strata, dict):
        return list(strata.items())
    if isinstance(strata, (list, tuple)) and len(strata) and not np.isscalar(strata[0]):
        return [(f"strata[{i}]", a) for i, a in enumerate(strata)]
    return [("strata", strata)]


def stratum_codes(strata, n: int | None = None) -> np.ndarray:
    """Combine one or several per-candidate label arrays into one stratum code per candidate.

    Parameters
    ----------
    strata : array_like of shape (n,), or a list/tuple/dict of such arrays
        Discrete labels (ints, strings, bools); several arrays are crossed (category x origin).
        Continuous values (e.g. mask area) must be binned first with :func:`quantile_bins`.
    n : int, optional
        Expected number of candidates.

    Returns
    -------
    numpy.ndarray, shape (n,), int64
        Codes ``0..n_strata-1`` (in sorted order of the label tuples).

    Raises
    ------
    ConfigError
        Arrays of different lengths, not 1-D, NaN, or non-integral floats.

    Examples
    --------
    >>> stratum_codes([["a", "b", "a"], [0, 0, 1]]).tolist()
    [0, 2, 1]
    """
    codes = []
    for name, labels in _named_label_arrays(strata):
        arr = np.asarray(labels)
        if arr.ndim != 1:
            raise ConfigError(f"{name} must be 1-D (one label per candidate), got shape "
                              f"{arr.shape}")
        if n is None:
            n = len(arr)
        if len(arr) != n:
            raise ConfigError(f"{name} has {len(arr)} labels but there are {n} candidates; pass "
                              "one label per candidate")
        if arr.dtype.kind == "f":
            check_finite(arr, name)
            if not np.array_equal(arr, np.round(arr)):
                raise ConfigError(f"{name} holds continuous values; bin them first, e.g. "
                                  "strata=quantile_bins(mask_area, 4)")
        _, inv = np.unique(arr, return_inverse=True)
        codes.append(inv.reshape(-1).astype(np.int64))
    if len(codes) == 1:
        return codes[0]
    _, inv = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def strata_size(strata) -> int:
    """Number of candidates a ``strata`` argument describes (for aligning the inputs)."""
    named = _named_label_arrays(strata)
    if isinstance(strata, dict) and not named:
        raise ConfigError("strata is an empty dict; pass at least one label array")
    first = named[0][1]
    shape = np.shape(first)
    return shape[0] if shape else 0


def allocate(sizes, budget: int, *, method: str = "proportional", rng=0) -> np.ndarray:
    """Split a budget over strata, never giving a stratum more than it holds.

    Parameters
    ----------
    sizes : array_like of int, shape (n_strata,)
        Available (unreviewed) candidates per stratum.
    budget : int
        Total to pick, ``1 <= budget <= sum(sizes)``.
    method : {"proportional", "equal"}
        ``"proportional"``: each stratum gets ``budget * size / total`` rounded by largest
        remainder (Hamilton), so within one of its exact share. ``"equal"``: the same count
        for every stratum (water-filling); small strata are taken whole and the rest is
        shared among the others.
    rng : int or numpy.random.Generator
        Breaks ties among equal remainders.

    Returns
    -------
    numpy.ndarray, shape (n_strata,), int64
        Counts that sum to ``budget``, each ``<= sizes``.

    Raises
    ------
    ConfigError
        Negative sizes, budget out of range, unknown method.

    Examples
    --------
    >>> allocate([100, 50, 10], 16).tolist()
    [10, 5, 1]
    >>> allocate([100, 50, 2], 12, method="equal").tolist()
    [5, 5, 2]
    """
    s = np.asarray(sizes)
    if s.ndim != 1 or s.dtype.kind not in "iu" or (len(s) and s.min() < 0):
        raise bad("sizes", "a 1-D array of non-negative integers", sizes)
    s = s.astype(np.int64)
    total = int(s.sum())
    budget = check_budget(budget, total, total)
    if method not in ALLOCATIONS:
        raise bad("allocation", f"one of {', '.join(ALLOCATIONS)}", method)
    gen = as_rng(rng)
    if method == "proportional":
        quota = budget * s / total
        counts = np.minimum(np.floor(quota).astype(np.int64), s)
        rest = budget - int(counts.sum())
        if rest:
            frac = quota - counts
            frac[counts >= s] = -1.0
            # largest remainder first, ties in an rng order
            order = gen.permutation(len(s))
            order = order[np.argsort(-frac[order], kind="stable")]
            counts[order[:rest]] += 1
        return counts
    # equal: the largest level L with sum(min(s, L)) <= budget, then +1 for some with room
    lo, hi = 0, int(s.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(s, mid).sum()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    counts = np.minimum(s, lo)
    rest = budget - int(counts.sum())
    if rest:
        room = np.flatnonzero(counts < s)
        counts[np.sort(gen.choice(room, size=rest, replace=False))] += 1
    return counts
