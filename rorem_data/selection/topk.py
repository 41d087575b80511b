"""Pick the ``k`` candidates with the highest need scores, in O(n), ties drawn by ``rng``."""

from __future__ import annotations

import numpy as np

from rorem_data.selection.arrays import as_mask, as_rng, as_scores, check_budget

__all__ = ["top_k"]


def top_k(scores, k: int, *, rng=0, exclude=None) -> np.ndarray:
    """Positions of the ``k`` highest scores, in O(N); ties broken by ``rng``.

    Parameters
    ----------
    scores : array_like, shape (n,), real
        Need of a human per candidate: **higher = more in need**. No NaN.
    k : int
        How many to pick, ``1 <= k <= n - number excluded``.
    rng : int or numpy.random.Generator
        Breaks ties (among equal scores at the cut and in the order). Same seed, same result.
    exclude : boolean mask of shape (n,) or int positions, optional
        Candidates that must not be picked (e.g. already reviewed).

    Returns
    -------
    numpy.ndarray, shape (k,), int64
        Distinct positions, highest score first.

    Raises
    ------
    ConfigError
        Non-1-D or NaN scores, bad ``exclude``, ``k`` not in ``1..n_free``.

    Examples
    --------
    >>> top_k([0.1, 0.9, 0.5, 0.7], 2).tolist()
    [1, 3]
    >>> top_k([0.1, 0.9, 0.5, 0.7], 2, exclude=[1]).tolist()
    [3, 2]
    """
    s = as_scores(scores)
    n = len(s)
    free = None
    if exclude is not None:
        excluded = as_mask(exclude, n, name="exclude")
        if excluded.any():
            free = np.flatnonzero(~excluded)
    sf = s if free is None else s[free]
    m = len(sf)
    k = check_budget(k, m, n, name="k")
    gen = as_rng(rng)
    if k < m:
        part = np.argpartition(sf, m - k)
        picked = part[m - k:]
        cut = sf[part[m - k]]  # the k-th largest score
        top = sf[picked]
        if np.count_nonzero(sf == cut) > np.count_nonzero(top == cut):
            # equal scores on both sides of the cut: which of them get in is drawn by rng
            keep = picked[top > cut]
            tied = gen.choice(np.flatnonzero(sf == cut), size=k - len(keep), replace=False)
            picked = np.concatenate([keep, tied])
    else:
        picked = np.arange(m)
    # highest first; equal scores in an rng-drawn order (O(k log k))
    picked = picked[gen.permutation(len(picked))]
    picked = picked[np.argsort(-sf[picked], kind="stable")]
    if free is not None:
        picked = free[picked]
    return picked.astype(np.int64, copy=False)
