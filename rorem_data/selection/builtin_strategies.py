"""The strategies the library ships, each a :class:`~rorem_data.selection.strategies.Strategy`.

They are registered by name in :data:`rorem_data.selection.strategies.STRATEGIES` and called
through :func:`~rorem_data.selection.strategies.select`, which validates the inputs first.

============== ========================================= =======================================
name           picks                                     needs
============== ========================================= =======================================
random         a uniform sample of the unreviewed        nothing (``n=``)
uncertainty    P(success) closest to ``threshold``       proba
margin         smallest margin between the two classes   proba
entropy        highest predictive entropy                proba
disagreement   most committee disagreement               committee
score          highest precomputed need score            scores
kcenter        farthest from everything reviewed         features
hybrid         k-center among the beta*k most uncertain  proba (or committee), features
hybrid-audit   a uniform sample of what could be auto-   proba, features
               accepted, hybrid (standardized) for the
               rest
stratified     a budget split over strata, any inner     strata (+ the inner strategy's)
============== ========================================= =======================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rorem_data.core.checks import bad
from rorem_data.core.errors import ConfigError
from rorem_data.selection.arrays import check_threshold
from rorem_data.selection.inputs import SelectionInputs
from rorem_data.selection.kcenter import check_method, kcenter_greedy
from rorem_data.selection.scores import (
    disagreement_score,
    entropy_score,
    margin_score,
    uncertainty_score,
)
from rorem_data.selection.strata import allocate
from rorem_data.selection.strategies import (
    STRATEGIES,
    as_strategy,
    check_params,
    get_strategy,
    list_strategies,
)
from rorem_data.selection.topk import top_k

__all__ = ["SCORES", "accept_region", "column_scaling", "compute_scores", "diverse_subset"]

_ROW_CHUNK = 4096  # rows per block when scanning a feature matrix


# ----------------------------------------------------------------- need scores behind one name

#: score name -> (input it needs, function of (inputs, **params)); higher = more need.
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


def _check_beta(beta) -> float:
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.number)) \
            or not beta >= 1.0:
        raise bad("beta", "a number >= 1 (the pool holds beta * budget candidates)", beta)
    return float(beta)


# ----------------------------------------------------------------- random and the score strategies


@as_strategy("random", summary="uniform random sample of the unreviewed candidates",
             order="random")
def random_sample(budget, inputs, *, rng):
    free = np.flatnonzero(~inputs.reviewed)
    return rng.choice(free, size=budget, replace=False).astype(np.int64)


def _top_by(score_name: str):
    def pick(budget, inputs, *, rng):
        s = compute_scores(score_name, inputs, strategy=score_name)
        return top_k(s, budget, rng=rng, exclude=inputs.reviewed)
    return pick


uncertainty = as_strategy(
    "uncertainty", needs=("proba",),
    summary="P(success) closest to the accept threshold (threshold=, default 0.5)",
)(_top_by("uncertainty"))
margin = as_strategy("margin", needs=("proba",),
                     summary="smallest margin between the two classes")(_top_by("margin"))
entropy = as_strategy("entropy", needs=("proba",),
                      summary="highest predictive entropy")(_top_by("entropy"))
precomputed_score = as_strategy("score", needs=("scores",),
                                summary="highest precomputed need score (scores=)")(_top_by("score"))


@as_strategy("disagreement", needs=("committee",),
             summary="committee disagreement (measure= kl_to_mean | vote_entropy | std)")
def disagreement(budget, inputs, *, rng, measure="kl_to_mean"):
    s = compute_scores("disagreement", inputs, strategy="disagreement", measure=measure)
    return top_k(s, budget, rng=rng, exclude=inputs.reviewed)


# ----------------------------------------------------------------- diversity


@as_strategy("kcenter", needs=("features",),
             summary="k-center greedy core-set on features; reviewed items count as covered",
             order="pick order (first = farthest from every reviewed candidate)")
def kcenter(budget, inputs, *, rng, method="auto", reviewed_as_centers=True):
    check_method(method)
    initial = inputs.reviewed if reviewed_as_centers else None
    return kcenter_greedy(inputs.features, budget, exclude=inputs.reviewed, initial=initial,
                          method=method, rng=rng)


def column_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (1 where a column is constant), float32 (d,).

    Accumulated in float64 over row chunks, so a large float32 matrix is never copied.
    """
    total = np.zeros(features.shape[1])
    total_sq = np.zeros(features.shape[1])
    for r0 in range(0, len(features), _ROW_CHUNK):
        block = features[r0:r0 + _ROW_CHUNK].astype(np.float64)
        total += block.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", block, block)
    n = max(len(features), 1)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean ** 2, 0.0))
    std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def diverse_subset(pool: np.ndarray, budget: int, inputs: SelectionInputs, *, rng,
                   method: str = "auto", reviewed_as_centers: bool = True,
                   standardize: bool = False, exclude=None) -> np.ndarray:
    """k-center greedy inside ``pool`` (positions, neediest first), reviewed items as centres.

    Without any reviewed centre the first pick is ``pool[0]`` (the neediest), then the batch
    spreads out from it. ``standardize`` measures distances on z-scored columns (mean and
    standard deviation over every candidate), so that no feature dominates by its scale; only
    the pool and the centres are copied. ``exclude`` (a mask) also counts as centres.
    """
    if len(pool) == budget:
        return pool
    X = inputs.features
    centres = inputs.reviewed if exclude is None else inputs.reviewed | exclude
    if standardize:
        mean, scale = column_scaling(X)

        def rows(idx):
            return (X[idx] - mean) / scale
    else:
        def rows(idx):
            return X[idx]
    if reviewed_as_centers and centres.any():
        picked = kcenter_greedy(rows(pool), budget, initial_features=rows(centres),
                                method=method, rng=rng)
        return pool[picked]
    rest = kcenter_greedy(rows(pool), budget - 1, initial=[0], method=method, rng=rng)
    return np.concatenate([pool[:1], pool[rest]])


@as_strategy("hybrid", needs=lambda params: ("features",) + _score_needs(params),
             summary="top beta*k by an uncertainty score, then k-center among them (diverse "
                     "batch)",
             order="pick order (first = the neediest, or farthest from the reviewed)")
def hybrid(budget, inputs, *, rng, beta=10.0, score="uncertainty", measure="kl_to_mean",
           method="auto", reviewed_as_centers=True, standardize=False):
    """Zhdanov (2019)-style filter-then-diversify: no batch of near-duplicates."""
    beta = _check_beta(beta)
    check_method(method)
    inputs.require("features", "hybrid")
    params = {"measure": measure} if score == "disagreement" else {}
    s = compute_scores(score, inputs, strategy="hybrid", **params)
    pool = top_k(s, min(inputs.n_free, math.ceil(beta * budget)), rng=rng,
                 exclude=inputs.reviewed)
    return diverse_subset(pool, budget, inputs, rng=rng, method=method,
                          reviewed_as_centers=reviewed_as_centers,
                          standardize=_check_flag(standardize, "standardize"))


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise bad(name, "True or False", value)
    return bool(value)


def _interleave(*parts: np.ndarray) -> np.ndarray:
    """Concatenate ordered parts so that every prefix holds each part's share."""
    parts = [np.asarray(p, dtype=np.int64) for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    ranks = np.concatenate([(np.arange(len(p)) + 0.5) / len(p) for p in parts])
    return np.concatenate(parts)[np.argsort(ranks, kind="stable")]


def accept_region(p: np.ndarray, free: np.ndarray, *, accept_threshold=None,
                  region_share: float = 0.6) -> np.ndarray:
    """Free positions the discriminator would auto-accept: ``p >= accept_threshold``, or,
    without a threshold, the ``region_share`` of free candidates with the highest ``p``
    (equal scores at the cut: a deterministic choice among them).

    Examples
    --------
    >>> np.sort(accept_region(np.array([0.9, 0.2, 0.7, 0.4]), np.ones(4, bool),
    ...                       region_share=0.5)).tolist()
    [0, 2]
    """
    idx = np.flatnonzero(free)
    if accept_threshold is not None:
        return idx[p[idx] >= accept_threshold]
    m = math.ceil(region_share * len(idx))
    if m == 0:
        return idx[:0]
    return idx[np.argpartition(-p[idx], m - 1)[:m]]


@as_strategy(
    "hybrid-audit", needs=("proba", "features"),
    summary="a uniform sample of the candidates that could be auto-accepted (audit_share=0.7 "
            "of the budget, from the top region_share=0.6 by P(success)) plus hybrid for the "
            "rest (beta=5, standardized features)",
    order="hybrid and audit picks interleaved, each part in its own order")
def hybrid_audit(budget, inputs, *, rng, audit_share=0.7, accept_threshold=None,
                 region_share=0.6, beta=5.0, method="auto", reviewed_as_centers=True,
                 standardize=True):
    """Spend most labels where automation decides, the rest on the boundary.

    Two parts, interleaved in the output:

    * ``audit_share`` of the budget: a uniform random sample of the candidates that could be
      auto-accepted - ``P(success) >= accept_threshold``, or without a threshold the top
      ``region_share`` of the unreviewed candidates by P(success). Like the audit sample of an
      automation round, these labels are representative of the region an auto-accept
      threshold is tested on (held-out precision from the top score down), so the threshold
      that keeps the guarantee can go lower; no label is spent on confident failures.
    * the rest: ``hybrid`` - the ``beta x rest`` candidates closest to ``threshold`` (the
      uncertainty centre), then k-center greedy among them, on standardized features, with
      the reviewed candidates and the audit picks as centres.

    ``benchmarks/active_learning.py`` compares it with every other strategy on simulated
    loops (AUC and automation yield per label spent).

    Parameters
    ----------
    audit_share : float in [0, 1]
        Share of the budget drawn from the accept region (rounded half up).
    accept_threshold : float in [0, 1], optional
        The auto-accept threshold on the same scale as ``proba`` (e.g. the version's).
    region_share : float in [0, 1]
        Without ``accept_threshold``: the share of unreviewed candidates, highest P(success)
        first, that counts as the accept region.
    beta, method, reviewed_as_centers, standardize
        Of the hybrid part, as for ``hybrid`` (``standardize`` z-scores the feature columns).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p, X = rng.uniform(size=200), rng.normal(size=(200, 4))
    >>> from rorem_data.selection.strategies import select
    >>> out = select("hybrid-audit", 10, proba=p, features=X, rng=0)
    >>> top = p >= np.quantile(p, 0.4)
    >>> bool(top[out].sum() >= 7)   # the 7 audit picks (0.7 x 10) lie in the top 60%
    True
    """
    share = _check_unit(audit_share, "audit_share")
    region = _check_unit(region_share, "region_share")
    acc_t = None if accept_threshold is None else check_threshold(accept_threshold,
                                                                  "accept_threshold")
    beta = _check_beta(beta)
    check_method(method)
    standardize = _check_flag(standardize, "standardize")
    p = inputs.p_success
    free = ~inputs.reviewed
    n_audit = math.floor(share * budget + 0.5)
    region_idx = accept_region(p, free, accept_threshold=acc_t, region_share=region)
    if n_audit == 0:
        audit = region_idx[:0]
    elif n_audit >= len(region_idx):
        audit = rng.permutation(region_idx)
    else:
        audit = rng.choice(region_idx, size=n_audit, replace=False)
    audit = audit.astype(np.int64)
    rest = budget - len(audit)
    if rest == 0:
        return audit
    taken = np.zeros(inputs.n, dtype=bool)
    taken[audit] = True
    s = uncertainty_score(p, inputs.threshold)
    n_left = inputs.n_free - len(audit)
    pool = top_k(s, min(n_left, math.ceil(beta * rest)), rng=rng,
                 exclude=inputs.reviewed | taken)
    diverse = diverse_subset(pool, rest, inputs, rng=rng, method=method,
                             reviewed_as_centers=reviewed_as_centers, standardize=standardize,
                             exclude=taken)
    return _interleave(diverse, audit)


def _check_unit(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not 0.0 <= float(value) <= 1.0:
        raise bad(name, "a number in [0, 1]", value)
    return float(value)


# ----------------------------------------------------------------- strata


def _inner_strategy(inner):
    if not isinstance(inner, str) or inner == "stratified" or inner not in STRATEGIES:
        choices = ", ".join(n for n in list_strategies() if n != "stratified")
        raise bad("inner", f"one of: {choices}", inner)
    return get_strategy(inner)


def _stratified_needs(params: dict) -> tuple:
    inner = params.get("inner", "random")
    try:
        inner_strategy = _inner_strategy(inner)
    except ConfigError:
        return ("strata",)  # the strategy itself reports the bad name
    inner_params = {k: v for k, v in params.items() if k not in ("inner", "allocation")}
    return ("strata",) + tuple(inner_strategy.needs(inner_params))


@as_strategy("stratified", needs=_stratified_needs,
             summary="split the budget over strata (proportional | equal), inner= strategy "
                     "within each",
             order="strata interleaved, each stratum in its inner strategy's order")
def stratified(budget, inputs, *, rng, allocation="proportional", inner="random",
               **inner_params):
    inner_strategy = _inner_strategy(inner)
    check_params(inner_strategy, inner_params, context=f"inner strategy {inner!r}")
    codes = inputs.require("strata", "stratified")
    n_strata = int(codes.max()) + 1 if len(codes) else 0
    counts = allocate(np.bincount(codes[~inputs.reviewed], minlength=n_strata), budget,
                      method=allocation, rng=rng)
    members = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_strata))])
    parts = []
    for s in np.flatnonzero(counts):
        pos = members[starts[s]:starts[s + 1]]
        sub = inputs.subset(pos)
        for need in inner_strategy.needs(inner_params):
            sub.require(need, f"stratified (inner={inner})")
        got = np.asarray(inner_strategy(int(counts[s]), sub, rng=rng, **inner_params))
        parts.append(pos[got])
    # interleave strata so that a reviewer who stops early has seen every stratum
    return _interleave(*parts)
