"""Query strategies: which candidates a human should judge next.

Two layers, after modAL's split of scoring from selection:

* **Plain functions on arrays.** Score functions return each candidate's *need of a human*
  (one direction everywhere: **higher score = more in need of a human**), and :func:`top_k`
  picks the k highest in O(N) with ties broken by ``rng``::

      scores = margin_score(proba)
      indices = top_k(scores, 100, rng=0, exclude=reviewed)

  Diversity lives in :func:`rorem_data.selection.kcenter.kcenter_greedy`; strata allocation in
  :func:`allocate`.

* **Registered strategies**, one uniform entry point for the CLI, rounds and the App::

      indices = select("hybrid", 500, proba=p, features=X, reviewed=reviewed, rng=0)

  Every strategy takes a ``budget`` (k), skips ``reviewed`` candidates and returns k distinct
  in-range int64 positions, the same ones for the same ``rng``. ``list_strategies()`` shows the
  names; :func:`register_strategy` adds one (the shared contract tests then cover it).

Inputs are positions into per-candidate arrays (n candidates); sample ids are converted by the
dataset layer. Probabilities are P(success) of the removal (label 1 = accept).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.selection.kcenter import KCENTER_METHODS, as_features, as_mask, as_rng, kcenter_greedy

__all__ = [
    "ALLOCATIONS",
    "DISAGREEMENT_MEASURES",
    "SCORES",
    "STRATEGIES",
    "SelectionInputs",
    "Strategy",
    "allocate",
    "compute_scores",
    "disagreement_score",
    "entropy_score",
    "get_strategy",
    "list_strategies",
    "margin_score",
    "quantile_bins",
    "register_strategy",
    "select",
    "stratum_codes",
    "top_k",
    "uncertainty_score",
]

INPUT_NAMES = ("proba", "committee", "features", "strata", "scores")
_INPUT_HELP = {
    "proba": "proba= (discriminator P(success), shape (n,) or (n, 2))",
    "committee": "committee= (P(success) from several discriminators, shape (n_members, n))",
    "features": "features= (one feature row per candidate, shape (n, d))",
    "strata": "strata= (a label per candidate, or several such arrays, e.g. category and origin)",
    "scores": "scores= (a precomputed need score per candidate, higher = more need)",
}
DISAGREEMENT_MEASURES = ("kl_to_mean", "vote_entropy", "std")
ALLOCATIONS = ("proportional", "equal")
_LOG2 = math.log(2.0)


# =========================================================================== input checks


def _check_budget(budget, n_free: int, n: int, name: str = "budget") -> int:
    flag = "--budget" if name == "budget" else name
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)):
        raise ConfigError(f"{name} must be a positive int, got {budget!r}; pass e.g. {flag} 100")
    budget = int(budget)
    if budget <= 0:
        raise ConfigError(f"{name} must be a positive int, got {budget}; pass e.g. {flag} 100")
    if budget > n_free:
        raise ConfigError(
            f"{name} {budget} > {n_free} unreviewed candidates ({n - n_free} of {n} already "
            f"reviewed); lower {flag} to at most {n_free}"
        )
    return budget


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = ", ".join(str(int(i)) for i in bad)
        raise ConfigError(
            f"{name} has NaN or infinite values (first at [{where}]); "
            "re-score those candidates or drop them before selecting"
        )


def _as_proba(proba, name: str = "proba") -> np.ndarray:
    """(n,) P(success) or (n, C) class probabilities -> validated float array."""
    arr = np.asarray(proba)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(f"{name} must hold probabilities (floats), got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] < 2):
        raise ConfigError(
            f"{name} must have shape (n,) = P(success) or (n, n_classes >= 2), got {arr.shape}; "
            "pass predict_proba(X)[:, 1] or the full predict_proba(X)"
        )
    _check_finite(arr, name)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ConfigError(
            f"{name} must lie in [0, 1], got values in [{arr.min():.4g}, {arr.max():.4g}]; "
            "pass probabilities, not logits or decision_function scores"
        )
    if arr.ndim == 2:
        sums = arr.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
        if len(off):
            raise ConfigError(
                f"rows of {name} must sum to 1, row {int(off[0])} sums to {sums[off[0]]:.4g}; "
                "pass predict_proba output (or a 1-D P(success))"
            )
    return arr


def _success_proba(proba: np.ndarray) -> np.ndarray:
    """P(success) from (n,) or (n, 2) probabilities."""
    if proba.ndim == 1:
        return proba
    if proba.shape[1] != 2:
        raise ConfigError(
            f"a threshold needs binary probabilities, got {proba.shape[1]} classes; "
            "pass P(success) with shape (n,) or (n, 2)"
        )
    return proba[:, 1]


def _as_committee(committee, name: str = "committee") -> np.ndarray:
    arr = np.asarray(committee)
    if arr.ndim == 3 and arr.shape[2] == 2:
        arr = arr[..., 1]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ConfigError(
            f"{name} must have shape (n_members >= 2, n): one row of P(success) per "
            f"discriminator, got shape {arr.shape}; stack the members' probabilities with "
            "np.stack([p1, p2, ...])"
        )
    return _as_proba_matrix(arr, name)


def _as_proba_matrix(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(f"{name} must hold probabilities (floats), got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, name)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ConfigError(
            f"{name} must lie in [0, 1], got values in [{arr.min():.4g}, {arr.max():.4g}]; "
            "pass probabilities, not logits"
        )
    return arr


def _as_scores(scores, name: str = "scores") -> np.ndarray:
    arr = np.asarray(scores)
    if arr.ndim != 1 or arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ConfigError(
            f"{name} must be a 1-D array of real numbers (one per candidate), got dtype "
            f"{arr.dtype} and shape {arr.shape}"
        )
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, name)
    return arr


def _check_threshold(threshold) -> float:
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float,
                                                                           np.number)):
        raise ConfigError(f"threshold must be a number in [0, 1], got {threshold!r}")
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ConfigError(
            f"threshold must be in [0, 1] (a probability of success), got {t}; pass e.g. 0.5"
        )
    return t


# =========================================================================== selection


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
    s = _as_scores(scores)
    n = len(s)
    free = None
    if exclude is not None:
        excluded = as_mask(exclude, n, name="exclude")
        if excluded.any():
            free = np.flatnonzero(~excluded)
    sf = s if free is None else s[free]
    m = len(sf)
    k = _check_budget(k, m, n, name="k")
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


# =========================================================================== scores
# All score functions: higher = more in need of a human.


def uncertainty_score(proba, threshold: float = 0.5) -> np.ndarray:
    """Closeness of P(success) to the decision threshold, in [0, 1].

    ``1 - |p - threshold| / max(threshold, 1 - threshold)``: 1 at the threshold, 0 at the
    farthest possible probability. Use it when auto-labelling accepts at ``threshold``, which
    need not be 0.5 (e.g. a high-precision threshold such as 0.8).

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, 2), float in [0, 1]
        P(success), or ``predict_proba`` output whose column 1 is success.
    threshold : float in [0, 1]
        The discriminator's accept threshold.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = closer to the threshold = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], bad shape, more than two classes, threshold outside [0, 1].

    Examples
    --------
    >>> uncertainty_score([0.5, 0.9, 0.0]).tolist()
    [1.0, 0.19999999999999996, 0.0]
    >>> uncertainty_score([0.8, 0.5], threshold=0.8).round(3).tolist()
    [1.0, 0.625]
    """
    t = _check_threshold(threshold)
    p = _success_proba(_as_proba(proba))
    span = max(t, 1.0 - t)
    return 1.0 - np.abs(p - t) / span


def margin_score(proba) -> np.ndarray:
    """One minus the margin between the two most likely classes, in [0, 1].

    For binary ``p`` this is ``1 - |2p - 1|``.

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, n_classes), float in [0, 1]
        P(success) or class probabilities (rows sum to 1).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = smaller margin = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], rows not summing to 1, bad shape.

    Examples
    --------
    >>> margin_score([0.5, 0.75, 1.0]).tolist()
    [1.0, 0.5, 0.0]
    """
    p = _as_proba(proba)
    if p.ndim == 1:
        return 1.0 - np.abs(2.0 * p - 1.0)
    if p.shape[1] == 2:
        return 1.0 - np.abs(p[:, 1] - p[:, 0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) / log 2 in [0, 1], with 0 log 0 = 0."""
    q = 1.0 - p
    h = -(p * np.log(np.maximum(p, 1e-300)) + q * np.log(np.maximum(q, 1e-300)))
    return np.clip(h / _LOG2, 0.0, 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def entropy_score(proba) -> np.ndarray:
    """Predictive entropy, normalised to [0, 1] (divided by log of the number of classes).

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, n_classes), float in [0, 1]
        P(success) or class probabilities (rows sum to 1).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = more uncertain = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], rows not summing to 1, bad shape.

    Examples
    --------
    >>> entropy_score([0.5, 1.0]).tolist()
    [1.0, 0.0]
    """
    p = _as_proba(proba)
    if p.ndim == 1:
        return _binary_entropy(p)
    if p.shape[1] == 2:
        return _binary_entropy(p[:, 1])
    h = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
    return np.clip(h / math.log(p.shape[1]), 0.0, 1.0) + 0.0


def disagreement_score(committee, measure: str = "kl_to_mean",
                       threshold: float = 0.5) -> np.ndarray:
    """How much several discriminators (a committee) disagree, in [0, 1].

    Parameters
    ----------
    committee : array_like, shape (n_members, n) or (n_members, n, 2), float in [0, 1]
        P(success) from each member (at least two).
    measure : {"kl_to_mean", "vote_entropy", "std"}
        ``"kl_to_mean"`` (default): mean KL divergence of each member from the consensus,
        ``H(mean p) - mean H(p)`` (the committee's mutual information, as in BALD), / log 2.
        ``"vote_entropy"``: entropy of the accept/reject votes at ``threshold``, / log 2;
        coarse with few members (many ties, broken by ``rng`` in :func:`top_k`).
        ``"std"``: standard deviation of P(success) across members, x 2.
    threshold : float in [0, 1]
        Vote cut for ``"vote_entropy"`` (a member votes accept when ``p >= threshold``).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = more disagreement = more in need of a human.

    Raises
    ------
    ConfigError
        Fewer than two members, NaN, values outside [0, 1], unknown ``measure``.

    Examples
    --------
    >>> c = [[0.1, 0.9, 0.5], [0.1, 0.1, 0.5]]
    >>> disagreement_score(c, "std").round(2).tolist()
    [0.0, 0.8, 0.0]
    >>> disagreement_score(c, "vote_entropy").tolist()
    [0.0, 1.0, 0.0]
    """
    c = _as_committee(committee)
    if measure == "kl_to_mean":
        return np.clip(_binary_entropy(c.mean(axis=0)) - _binary_entropy(c).mean(axis=0), 0.0, 1.0)
    if measure == "vote_entropy":
        t = _check_threshold(threshold)
        return _binary_entropy((c >= t).mean(axis=0))
    if measure == "std":
        return np.clip(2.0 * c.std(axis=0), 0.0, 1.0)
    raise ConfigError(
        f"measure must be one of {DISAGREEMENT_MEASURES}, got {measure!r}"
    )


# =========================================================================== strata


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
    v = _as_scores(values, "values")
    if (isinstance(n_bins, (bool, np.bool_)) or not isinstance(n_bins, (int, np.integer))
            or n_bins < 1):
        raise ConfigError(f"n_bins must be a positive int, got {n_bins!r}")
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(edges, v, side="right").astype(np.int64)


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
    if isinstance(strata, dict):
        named = list(strata.items())
    elif isinstance(strata, (list, tuple)) and len(strata) and not np.isscalar(strata[0]):
        named = [(f"strata[{i}]", a) for i, a in enumerate(strata)]
    else:
        named = [("strata", strata)]
    codes = []
    for name, labels in named:
        arr = np.asarray(labels)
        if arr.ndim != 1:
            raise ConfigError(
                f"{name} must be 1-D (one label per candidate), got shape {arr.shape}"
            )
        if n is None:
            n = len(arr)
        if len(arr) != n:
            raise ConfigError(
                f"{name} has {len(arr)} labels but there are {n} candidates; "
                "pass one label per candidate"
            )
        if arr.dtype.kind == "f":
            _check_finite(arr, name)
            if not np.array_equal(arr, np.round(arr)):
                raise ConfigError(
                    f"{name} holds continuous values; bin them first, e.g. "
                    f"strata=quantile_bins(mask_area, 4)"
                )
        _, inv = np.unique(arr, return_inverse=True)
        codes.append(inv.reshape(-1).astype(np.int64))
    if len(codes) == 1:
        return codes[0]
    _, inv = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


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
        raise ConfigError(f"sizes must be a 1-D array of non-negative ints, got {sizes!r}")
    s = s.astype(np.int64)
    total = int(s.sum())
    budget = _check_budget(budget, total, total)
    if method not in ALLOCATIONS:
        raise ConfigError(f"allocation must be one of {ALLOCATIONS}, got {method!r}")
    gen = as_rng(rng)
    if method == "proportional":
        quota = budget * s / total
        counts = np.floor(quota).astype(np.int64)
        counts = np.minimum(counts, s)
        rest = budget - int(counts.sum())
        if rest:
            frac = quota - counts
            frac[counts >= s] = -1.0
            # largest remainder first, ties in an rng order
            order = gen.permutation(len(s))
            order = order[np.argsort(-frac[order], kind="stable")]
            counts[order[:rest]] += 1
        return counts
    # equal: largest level L with sum(min(s, L)) <= budget, then +1 for some with room
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


# =========================================================================== registry


@dataclass(frozen=True)
class SelectionInputs:
    """Validated per-candidate arrays handed to a registered strategy.

    Attributes
    ----------
    n : int
        Number of candidates.
    reviewed : numpy.ndarray, shape (n,), bool
        Already judged by a human; never selected.
    proba : numpy.ndarray, shape (n,) or (n, C), float64, optional
    committee : numpy.ndarray, shape (n_members, n), float64, optional
    features : numpy.ndarray, shape (n, d), float32, optional
    strata : numpy.ndarray, shape (n,), int64 codes, optional
    scores : numpy.ndarray, shape (n,), float64, optional
    threshold : float
        The discriminator's accept threshold.
    """

    n: int
    reviewed: np.ndarray
    proba: np.ndarray | None = None
    committee: np.ndarray | None = None
    features: np.ndarray | None = None
    strata: np.ndarray | None = None
    scores: np.ndarray | None = None
    threshold: float = 0.5

    @property
    def n_free(self) -> int:
        """Number of unreviewed candidates."""
        return int(self.n - np.count_nonzero(self.reviewed))

    def require(self, name: str, strategy: str):
        """Return input ``name`` or raise a ConfigError saying that ``strategy`` needs it."""
        value = getattr(self, name)
        if value is None:
            raise ConfigError(
                f"strategy {strategy!r} needs {_INPUT_HELP[name]}, but none was given; "
                f"pass it, or pick another strategy ({', '.join(list_strategies())})"
            )
        return value

    def subset(self, positions: np.ndarray) -> "SelectionInputs":
        """The same inputs restricted to ``positions`` (in that order)."""
        def take(a, axis=0):
            return None if a is None else np.take(a, positions, axis=axis)
        return replace(
            self, n=len(positions), reviewed=self.reviewed[positions],
            proba=take(self.proba), committee=take(self.committee, 1),
            features=take(self.features), strata=take(self.strata), scores=take(self.scores),
        )


@dataclass(frozen=True)
class Strategy:
    """A registered query strategy.

    Attributes
    ----------
    name : str
    func : callable
        ``func(budget, inputs, *, rng, **params) -> positions`` with ``inputs`` a
        :class:`SelectionInputs`, ``rng`` a ``numpy.random.Generator``; must return ``budget``
        distinct unreviewed int64 positions.
    needs : callable
        ``needs(params) -> tuple of input names`` (from ``INPUT_NAMES``) required with these params.
    summary : str
        One line for ``--help`` and docs.
    params : tuple of str
        Keyword parameters ``func`` accepts.
    """

    name: str
    func: Callable[..., np.ndarray]
    needs: Callable[[dict], tuple]
    summary: str
    params: tuple = field(default=())


#: name -> :class:`Strategy`; add entries with :func:`register_strategy`.
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str, *, needs=(), summary: str = ""):
    """Decorator registering ``func(budget, inputs, *, rng, **params)`` as strategy ``name``.

    Parameters
    ----------
    name : str
        Registry key (as typed after ``--strategy``).
    needs : tuple of str, or callable ``params -> tuple of str``
        Inputs the strategy requires (``"proba"``, ``"committee"``, ``"features"``,
        ``"strata"``, ``"scores"``).
    summary : str
        One line describing it.

    Raises
    ------
    ConfigError
        Name already registered, or an unknown input name.

    Examples
    --------
    >>> @register_strategy("lowest_proba", needs=("proba",), summary="lowest P(success) first")
    ... def _lowest(budget, inputs, *, rng):
    ...     p = inputs.proba if inputs.proba.ndim == 1 else inputs.proba[:, 1]
    ...     return top_k(1.0 - p, budget, rng=rng, exclude=inputs.reviewed)
    >>> select("lowest_proba", 1, proba=[0.9, 0.2, 0.6]).tolist()
    [1]
    >>> _ = STRATEGIES.pop("lowest_proba")
    """
    if name in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is already registered; pick another name")
    if not callable(needs):
        bad = [x for x in needs if x not in INPUT_NAMES]
        if bad:
            raise ConfigError(f"needs has unknown inputs {bad}; choose from {INPUT_NAMES}")
        fixed = tuple(needs)
        needs_fn = lambda params: fixed  # noqa: E731
    else:
        needs_fn = needs

    def deco(func):
        sig = inspect.signature(func)
        params = tuple(
            p.name for p in list(sig.parameters.values())[2:]
            if p.kind == p.KEYWORD_ONLY and p.name != "rng"
        )
        STRATEGIES[name] = Strategy(name, func, needs_fn, summary, params)
        return func

    return deco


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted.

    Examples
    --------
    >>> "kcenter" in list_strategies()
    True
    """
    return sorted(STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The registered :class:`Strategy` called ``name``.

    Raises
    ------
    ConfigError
        Unknown name; the message lists the choices.

    Examples
    --------
    >>> get_strategy("margin").needs({})
    ('proba',)
    """
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of: {', '.join(list_strategies())}"
        ) from None


# ---------------------------------------------------------------- scores behind one name

#: score name -> (input it needs, scoring function of (inputs, **params))
SCORES: dict[str, tuple[str, Callable[..., np.ndarray]]] = {
    "uncertainty": ("proba", lambda i: uncertainty_score(i.proba, i.threshold)),
    "margin": ("proba", lambda i: margin_score(i.proba)),
    "entropy": ("proba", lambda i: entropy_score(i.proba)),
    "disagreement": (
        "committee",
        lambda i, measure="kl_to_mean": disagreement_score(i.committee, measure, i.threshold),
    ),
    "score": ("scores", lambda i: i.scores),
}


def compute_scores(name: str, inputs: SelectionInputs, *, strategy: str | None = None,
                   **params) -> np.ndarray:
    """Need-of-a-human scores (higher = more need) of score ``name`` over ``inputs``.

    Parameters
    ----------
    name : {"uncertainty", "margin", "entropy", "disagreement", "score"}
    inputs : SelectionInputs
    strategy : str, optional
        Strategy name used in the error message when the needed input is missing.
    **params
        ``measure`` for ``"disagreement"``.

    Returns
    -------
    numpy.ndarray, shape (n,), float64

    Raises
    ------
    ConfigError
        Unknown score name, missing input.

    Examples
    --------
    >>> inputs = SelectionInputs(n=2, reviewed=np.zeros(2, bool), proba=np.array([0.5, 0.9]))
    >>> compute_scores("margin", inputs).round(2).tolist()
    [1.0, 0.2]
    """
    if name not in SCORES:
        raise ConfigError(f"unknown score {name!r}; choose one of: {', '.join(sorted(SCORES))}")
    need, fn = SCORES[name]
    inputs.require(need, strategy or name)
    return np.asarray(fn(inputs, **params), dtype=np.float64)


def _score_needs(params: dict) -> tuple:
    score = params.get("score", "uncertainty")
    return (SCORES[score][0],) if score in SCORES else ()


# ---------------------------------------------------------------- the built-in strategies


@register_strategy("random", summary="uniform random sample of the unreviewed candidates")
def _random(budget, inputs, *, rng):
    free = np.flatnonzero(~inputs.reviewed)
    return rng.choice(free, size=budget, replace=False).astype(np.int64)


def _register_score_strategy(name: str, summary: str, extra_params: tuple = ()):
    need = SCORES[name][0]

    if extra_params:
        def func(budget, inputs, *, rng, measure="kl_to_mean"):
            s = compute_scores(name, inputs, strategy=name, measure=measure)
            return top_k(s, budget, rng=rng, exclude=inputs.reviewed)
    else:
        def func(budget, inputs, *, rng):
            s = compute_scores(name, inputs, strategy=name)
            return top_k(s, budget, rng=rng, exclude=inputs.reviewed)

    func.__name__ = f"_{name}_strategy"
    register_strategy(name, needs=(need,), summary=summary)(func)


_register_score_strategy(
    "uncertainty", "P(success) closest to the accept threshold (threshold=, default 0.5)")
_register_score_strategy("margin", "smallest margin between the two classes")
_register_score_strategy("entropy", "highest predictive entropy")
_register_score_strategy(
    "disagreement",
    "committee disagreement (measure= kl_to_mean | vote_entropy | std)", ("measure",))
_register_score_strategy("score", "highest precomputed need score (scores=)")


def _kcenter_check(method):
    if method not in KCENTER_METHODS:
        raise ConfigError(f"method must be one of {KCENTER_METHODS}, got {method!r}")


@register_strategy(
    "kcenter", needs=("features",),
    summary="k-center greedy core-set on features; reviewed items count as covered")
def _kcenter(budget, inputs, *, rng, method="auto", reviewed_as_centers=True):
    _kcenter_check(method)
    X = inputs.require("features", "kcenter")
    initial = inputs.reviewed if reviewed_as_centers else None
    return kcenter_greedy(X, budget, exclude=inputs.reviewed, initial=initial,
                          method=method, rng=rng)


@register_strategy(
    "hybrid", needs=lambda params: ("features",) + _score_needs(params),
    summary="top beta*k by an uncertainty score, then k-center among them (diverse batch)")
def _hybrid(budget, inputs, *, rng, beta=10.0, score="uncertainty", measure="kl_to_mean",
            method="auto", reviewed_as_centers=True):
    """Zhdanov (2019)-style filter-then-diversify: no batch of near-duplicates."""
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.number)) \
            or not beta >= 1.0:
        raise ConfigError(f"beta must be a number >= 1 (pool = beta * budget), got {beta!r}")
    _kcenter_check(method)
    X = inputs.require("features", "hybrid")
    params = {"measure": measure} if score == "disagreement" else {}
    s = compute_scores(score, inputs, strategy="hybrid", **params)
    pool_size = min(inputs.n_free, int(math.ceil(beta * budget)))
    pool = top_k(s, pool_size, rng=rng, exclude=inputs.reviewed)
    if pool_size == budget:
        return pool
    Xp = X[pool]
    if reviewed_as_centers and inputs.reviewed.any():
        picked = kcenter_greedy(Xp, budget, initial_features=X[inputs.reviewed],
                                method=method, rng=rng)
        return pool[picked]
    # no centre yet: start from the most uncertain candidate, then spread out from it
    rest = kcenter_greedy(Xp, budget - 1, initial=[0], method=method, rng=rng)
    return np.concatenate([pool[:1], pool[rest]])


def _stratified_needs(params: dict) -> tuple:
    inner = params.get("inner", "random")
    if inner not in STRATEGIES or inner == "stratified":
        return ("strata",)
    inner_params = {k: v for k, v in params.items() if k not in ("inner", "allocation")}
    return ("strata",) + tuple(STRATEGIES[inner].needs(inner_params))


@register_strategy(
    "stratified", needs=_stratified_needs,
    summary="split the budget over strata (proportional | equal), inner= strategy within each")
def _stratified(budget, inputs, *, rng, allocation="proportional", inner="random", **inner_params):
    if inner == "stratified" or inner not in STRATEGIES:
        choices = ", ".join(n for n in list_strategies() if n != "stratified")
        raise ConfigError(f"inner must be one of: {choices}; got {inner!r}")
    inner_strategy = STRATEGIES[inner]
    _check_params(inner_strategy, inner_params, context=f"inner strategy {inner!r}")
    codes = inputs.require("strata", "stratified")
    free_codes = codes[~inputs.reviewed]
    n_strata = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(free_codes, minlength=n_strata)
    counts = allocate(sizes, budget, method=allocation, rng=rng)
    members = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_strata))])
    parts, ranks = [], []
    for s in np.flatnonzero(counts):
        pos = members[starts[s]:starts[s + 1]]
        sub = inputs.subset(pos)
        for need in inner_strategy.needs(inner_params):
            sub.require(need, f"stratified (inner={inner})")
        got = np.asarray(inner_strategy.func(int(counts[s]), sub, rng=rng, **inner_params))
        parts.append(pos[got])
        ranks.append((np.arange(len(got)) + 0.5) / len(got))
    out = np.concatenate(parts)
    # interleave strata so that a reviewer who stops early has seen every stratum
    return out[np.argsort(np.concatenate(ranks), kind="stable")].astype(np.int64)


# =========================================================================== entry point


def _check_params(strategy: Strategy, params: dict, *, context: str | None = None) -> None:
    sig = inspect.signature(strategy.func)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    if takes_any:
        return
    unknown = sorted(set(params) - set(strategy.params))
    if unknown:
        accepted = ", ".join(strategy.params) or "none"
        raise ConfigError(
            f"{context or f'strategy {strategy.name!r}'} does not take {', '.join(unknown)}; "
            f"its parameters are: {accepted}"
        )


def _infer_n(n, reviewed, arrays: dict) -> int:
    sizes = {}
    if n is not None:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"n must be a non-negative int (number of candidates), got {n!r}")
        sizes["n"] = int(n)
    for name, arr in arrays.items():
        if arr is None:
            continue
        if name == "committee":
            shape = np.shape(arr)
            if len(shape) < 2:
                raise ConfigError(
                    f"committee must have shape (n_members, n), got shape {shape}"
                )
            sizes[name] = shape[1]
        elif name == "strata" and (isinstance(arr, dict) or (
                isinstance(arr, (list, tuple)) and len(arr) and not np.isscalar(arr[0]))):
            if not arr:
                raise ConfigError("strata is an empty dict; pass at least one label array")
            first = next(iter(arr.values())) if isinstance(arr, dict) else arr[0]
            sizes[name] = len(first)
        else:
            shape = np.shape(arr)
            sizes[name] = shape[0] if shape else 0
    if reviewed is not None and np.asarray(reviewed).dtype == np.bool_:
        sizes["reviewed"] = len(np.asarray(reviewed))
    if not sizes:
        raise ConfigError(
            "cannot tell how many candidates there are: pass the strategy's input arrays "
            "(proba=, features=, ...) or n="
        )
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ConfigError(
            f"inputs disagree on the number of candidates ({detail}); "
            "pass arrays aligned on the same candidate positions"
        )
    return next(iter(sizes.values()))


def select(strategy: str, budget: int, *, rng=0, reviewed=None, proba=None,
           threshold: float = 0.5, committee=None, features=None, strata=None, scores=None,
           n: int | None = None, **params) -> np.ndarray:
    """Choose ``budget`` unreviewed candidates for human review with a registered strategy.

    Parameters
    ----------
    strategy : str
        A name from :func:`list_strategies`: ``random``, ``uncertainty``, ``margin``,
        ``entropy``, ``disagreement``, ``score``, ``kcenter``, ``hybrid``, ``stratified``.
    budget : int
        How many to pick (k), ``1 <= budget <= number of unreviewed candidates``.
    rng : int or numpy.random.Generator
        Same seed, same selection (ties and random draws use only this).
    reviewed : boolean mask of shape (n,) or int positions, optional
        Candidates a human already judged: never picked; for ``kcenter``/``hybrid`` they count
        as covered centres (``reviewed_as_centers=False`` to turn that off).
    proba : array_like, shape (n,) or (n, 2), float in [0, 1], optional
        Discriminator P(success) (``uncertainty``, ``margin``, ``entropy``, ``hybrid``).
    threshold : float in [0, 1]
        Accept threshold of the discriminator (``uncertainty``, vote cut for ``disagreement``).
    committee : array_like, shape (n_members, n), optional
        P(success) from several discriminators (``disagreement``).
    features : array_like, shape (n, d), float32 preferred, optional
        Candidate embeddings (``kcenter``, ``hybrid``).
    strata : array_like of shape (n,), or a list/dict of such arrays, optional
        Discrete labels (category, origin, ``quantile_bins(mask_area)``) for ``stratified``.
    scores : array_like, shape (n,), optional
        Any precomputed need score, higher = more need (``score``).
    n : int, optional
        Number of candidates, needed only by ``random`` when no array is given.
    **params
        Strategy parameters: ``measure`` (disagreement); ``method``, ``reviewed_as_centers``
        (kcenter, hybrid); ``beta``, ``score`` (hybrid); ``allocation``, ``inner`` and the
        inner strategy's parameters (stratified).

    Returns
    -------
    numpy.ndarray, shape (budget,), int64
        Distinct positions, none reviewed. Order: most needed first for score strategies,
        pick order for ``kcenter``/``hybrid``, strata interleaved for ``stratified``.

    Raises
    ------
    ConfigError
        Unknown strategy or parameter; a needed input missing; ``budget`` not a positive int or
        more than the unreviewed candidates; arrays of different lengths; NaN/inf; probabilities
        outside [0, 1].

    Examples
    --------
    >>> p = np.array([0.05, 0.48, 0.97, 0.55, 0.51])
    >>> select("uncertainty", 2, proba=p, reviewed=[4]).tolist()
    [1, 3]
    >>> select("random", 3, n=10, rng=1).shape
    (3,)
    """
    strat = get_strategy(strategy)
    _check_params(strat, params)
    arrays = {"proba": proba, "committee": committee, "features": features,
              "strata": strata, "scores": scores}
    needed = tuple(strat.needs(params))
    for name in needed:
        if arrays[name] is None:
            raise ConfigError(
                f"strategy {strategy!r} needs {_INPUT_HELP[name]}, but none was given; "
                f"pass it, or pick another strategy ({', '.join(list_strategies())})"
            )
    used = {name: arrays[name] for name in needed}
    n_cand = _infer_n(n, reviewed, arrays)  # every given array must be aligned, used or not
    reviewed_mask = as_mask(reviewed, n_cand, name="reviewed")
    n_free = int(n_cand - reviewed_mask.sum())
    budget = _check_budget(budget, n_free, n_cand)
    thr = _check_threshold(threshold)
    inputs = SelectionInputs(
        n=n_cand,
        reviewed=reviewed_mask,
        proba=_as_proba(proba) if "proba" in used else None,
        committee=_as_committee(committee) if "committee" in used else None,
        features=as_features(features) if "features" in used else None,
        strata=stratum_codes(strata, n_cand) if "strata" in used else None,
        scores=_as_scores(scores) if "scores" in used else None,
        threshold=thr,
    )
    out = strat.func(budget, inputs, rng=as_rng(rng), **params)
    return np.asarray(out, dtype=np.int64)
