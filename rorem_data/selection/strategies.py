"""Query strategies by name: the registry and :func:`select`, the one entry point.

A strategy answers "which ``budget`` unreviewed candidates should a human judge next?" from
plain per-candidate arrays (after modAL: arrays are the currency, models are optional inputs)::

    indices = select("hybrid", 500, proba=p, features=X, reviewed=reviewed, rng=0)

Every registered strategy takes a ``budget`` (k), never picks a ``reviewed`` candidate and
returns k distinct in-range int64 positions, the same ones for the same ``rng``; each states
what comes first in its output (``get_strategy(name).order``). Need scores everywhere follow one
direction: **higher score = more in need of a human**. ``list_strategies()`` shows the names;
:func:`register_strategy` adds one, and the shared contract tests then cover it.

The strategies live in :class:`rorem_data.core.registry.Registry` ``STRATEGIES``, name ->
:class:`Strategy`; the built-ins (:mod:`rorem_data.selection.builtin_strategies`) are imported
on first use. The pieces they are made of are plain functions: need scores
(:mod:`~rorem_data.selection.scores`), :func:`~rorem_data.selection.topk.top_k`,
k-center greedy (:mod:`~rorem_data.selection.kcenter`), strata
(:mod:`~rorem_data.selection.strata`).

Inputs are positions into per-candidate arrays (n candidates); sample ids are converted by the
dataset layer. Probabilities are P(success) of the removal (label 1 = accept).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rorem_data.core.checks import bad
from rorem_data.core.errors import ConfigError
from rorem_data.core.registry import Registry
from rorem_data.selection.arrays import (
    as_committee,
    as_features,
    as_mask,
    as_proba,
    as_rng,
    as_scores,
    check_budget,
    check_threshold,
)
from rorem_data.selection.inputs import INPUT_HELP, INPUT_NAMES, SelectionInputs
from rorem_data.selection.strata import strata_size, stratum_codes

__all__ = [
    "STRATEGIES",
    "Strategy",
    "as_strategy",
    "check_params",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "select",
]


@dataclass(frozen=True)
class Strategy:
    """A query strategy: a function on :class:`SelectionInputs` plus what it needs.

    Attributes
    ----------
    name : str
    func : callable
        ``func(budget, inputs, *, rng, **params) -> positions`` with ``inputs`` a
        :class:`SelectionInputs` and ``rng`` a ``numpy.random.Generator``; must return
        ``budget`` distinct unreviewed int64 positions.
    needs : callable
        ``needs(params) -> tuple of input names`` (from ``INPUT_NAMES``) required with these
        params.
    summary : str
        One line for ``--help`` and docs.
    order : str
        What comes first in the returned positions (e.g. "highest need first").
    params : tuple of str
        Keyword parameters ``func`` accepts.
    any_params : bool
        ``func`` takes ``**params`` (e.g. to hand them to an inner strategy).
    """

    name: str
    func: Callable[..., np.ndarray]
    needs: Callable[[dict], tuple]
    summary: str
    order: str
    params: tuple = field(default=())
    any_params: bool = False

    def __call__(self, budget: int, inputs: SelectionInputs, *, rng, **params) -> np.ndarray:
        return self.func(budget, inputs, rng=rng, **params)


def _needs_function(needs) -> Callable[[dict], tuple]:
    if callable(needs):
        return needs
    unknown = [x for x in needs if x not in INPUT_NAMES]
    if unknown:
        raise ConfigError(f"needs has unknown inputs {unknown}; choose from {INPUT_NAMES}")
    fixed = tuple(needs)
    return lambda params: fixed


def as_strategy(name: str, *, needs=(), summary: str = "", order: str = "highest need first"):
    """Decorator turning ``func(budget, inputs, *, rng, **params)`` into a :class:`Strategy`.

    It does not register it (see :func:`register_strategy`).

    Parameters
    ----------
    name : str
    needs : tuple of str, or callable ``params -> tuple of str``
        Inputs the strategy requires (``"proba"``, ``"committee"``, ``"features"``,
        ``"strata"``, ``"scores"``).
    summary : str
        One line describing it.
    order : str
        What comes first in its output.

    Raises
    ------
    ConfigError
        An unknown input name.
    """
    needs_fn = _needs_function(needs)

    def deco(func) -> Strategy:
        sig = list(inspect.signature(func).parameters.values())[2:]
        params = tuple(p.name for p in sig if p.kind == p.KEYWORD_ONLY and p.name != "rng")
        any_params = any(p.kind == p.VAR_KEYWORD for p in sig)
        return Strategy(name, func, needs_fn, summary, order, params, any_params)

    return deco


def _check_strategy(name: str, obj: Any) -> None:
    if not isinstance(obj, Strategy):
        raise ConfigError(f"strategy {name!r} is registered as {type(obj).__name__}, not a "
                          "rorem_data.selection.strategies.Strategy; build it with "
                          "@register_strategy or @as_strategy")


_BUILTIN = "rorem_data.selection.builtin_strategies"

#: name -> :class:`Strategy`. The built-ins load on first use; add yours with
#: :func:`register_strategy`.
STRATEGIES = Registry("strategy", {
    "random": f"{_BUILTIN}:random_sample",
    "uncertainty": f"{_BUILTIN}:uncertainty",
    "margin": f"{_BUILTIN}:margin",
    "entropy": f"{_BUILTIN}:entropy",
    "disagreement": f"{_BUILTIN}:disagreement",
    "score": f"{_BUILTIN}:precomputed_score",
    "kcenter": f"{_BUILTIN}:kcenter",
    "hybrid": f"{_BUILTIN}:hybrid",
    "hybrid-audit": f"{_BUILTIN}:hybrid_audit",
    "stratified": f"{_BUILTIN}:stratified",
}, check=_check_strategy)


def register_strategy(name: str, target=None, *, needs=(), summary: str = "",
                      order: str = "highest need first", overwrite: bool = False):
    """Register a strategy under ``name``: as a decorator, or with a ready ``target``.

    Parameters
    ----------
    name : str
        Registry key (as typed after ``--strategy``).
    target : Strategy or str, optional
        A :class:`Strategy`, or ``"package.module:attr"`` naming one (imported on first use).
        Without it, ``register_strategy`` returns a decorator for
        ``func(budget, inputs, *, rng, **params)``.
    needs : tuple of str, or callable ``params -> tuple of str``
        Decorator form: inputs the strategy requires (``"proba"``, ``"committee"``,
        ``"features"``, ``"strata"``, ``"scores"``).
    summary : str
        Decorator form: one line describing it.
    order : str
        Decorator form: what comes first in its output.
    overwrite : bool
        Replace an existing entry of that name.

    Raises
    ------
    ConfigError
        Name already registered (without ``overwrite``), an unknown input name, a bad target.

    Examples
    --------
    >>> @register_strategy("lowest_proba", needs=("proba",), summary="lowest P(success) first",
    ...                    order="lowest P(success) first")
    ... def _lowest(budget, inputs, *, rng):
    ...     return top_k(1.0 - inputs.p_success, budget, rng=rng, exclude=inputs.reviewed)
    >>> from rorem_data.selection.topk import top_k
    >>> select("lowest_proba", 1, proba=[0.9, 0.2, 0.6]).tolist()
    [1]
    >>> STRATEGIES.unregister("lowest_proba")
    """
    if name in STRATEGIES and not overwrite:
        raise ConfigError(f"strategy {name!r} is already registered; pick another name or pass "
                          "overwrite=True")
    if target is not None:
        if not isinstance(target, (Strategy, str)):
            raise bad("target", "a Strategy or a 'package.module:attr' string", target)
        STRATEGIES.register(name, target, overwrite=overwrite)
        return target
    make = as_strategy(name, needs=needs, summary=summary, order=order)

    def deco(func):
        STRATEGIES.register(name, make(func), overwrite=overwrite)
        return func

    return deco


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted.

    Examples
    --------
    >>> "kcenter" in list_strategies()
    True
    """
    return STRATEGIES.names()


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
    return STRATEGIES.get(name)


def check_params(strategy: Strategy, params: dict, *, context: str | None = None) -> None:
    """Raise when ``params`` holds a keyword ``strategy`` does not take (listing those it does)."""
    if strategy.any_params:
        return
    unknown = sorted(set(params) - set(strategy.params))
    if unknown:
        accepted = ", ".join(strategy.params) or "none"
        raise ConfigError(f"{context or f'strategy {strategy.name!r}'} does not take "
                          f"{', '.join(unknown)}; its parameters are: {accepted}")


def _infer_n(n, reviewed, arrays: dict) -> int:
    sizes = {}
    if n is not None:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
            raise bad("n", "an integer >= 0 (the number of candidates)", n)
        sizes["n"] = int(n)
    for name, arr in arrays.items():
        if arr is None:
            continue
        if name == "committee":
            shape = np.shape(arr)
            if len(shape) < 2:
                raise ConfigError(f"committee must have shape (n_members, n), got shape {shape}")
            sizes[name] = shape[1]
        elif name == "strata":
            sizes[name] = strata_size(arr)
        else:
            shape = np.shape(arr)
            sizes[name] = shape[0] if shape else 0
    if reviewed is not None and np.asarray(reviewed).dtype == np.bool_:
        sizes["reviewed"] = len(np.asarray(reviewed))
    if not sizes:
        raise ConfigError("cannot tell how many candidates there are: pass the strategy's input "
                          "arrays (proba=, features=, ...) or n=")
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ConfigError(f"inputs disagree on the number of candidates ({detail}); pass arrays "
                          "aligned on the same candidate positions")
    return next(iter(sizes.values()))


def select(strategy: str, budget: int, *, rng=0, reviewed=None, proba=None,
           threshold: float = 0.5, committee=None, features=None, strata=None, scores=None,
           n: int | None = None, **params) -> np.ndarray:
    """Choose ``budget`` unreviewed candidates for human review with a registered strategy.

    Parameters
    ----------
    strategy : str
        A name from :func:`list_strategies`: ``random``, ``uncertainty``, ``margin``,
        ``entropy``, ``disagreement``, ``score``, ``kcenter``, ``hybrid``, ``stratified``, ...
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
        inner strategy's parameters (stratified). ``get_strategy(name).params`` lists them.

    Returns
    -------
    numpy.ndarray, shape (budget,), int64
        Distinct positions, none reviewed, in the strategy's ``order`` (most needed first for
        score strategies, pick order for ``kcenter``/``hybrid``, strata interleaved for
        ``stratified``).

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
    check_params(strat, params)
    arrays = {"proba": proba, "committee": committee, "features": features,
              "strata": strata, "scores": scores}
    needed = tuple(strat.needs(params))
    for name in needed:
        if arrays[name] is None:
            raise ConfigError(f"strategy {strategy!r} needs {INPUT_HELP[name]}, but none was "
                              f"given; pass it, or pick another strategy "
                              f"({', '.join(list_strategies())})")
    n_cand = _infer_n(n, reviewed, arrays)  # every given array must be aligned, used or not
    reviewed_mask = as_mask(reviewed, n_cand, name="reviewed")
    n_free = int(n_cand - reviewed_mask.sum())
    budget = check_budget(budget, n_free, n_cand)
    inputs = SelectionInputs(
        n=n_cand,
        reviewed=reviewed_mask,
        proba=as_proba(proba) if "proba" in needed else None,
        committee=as_committee(committee) if "committee" in needed else None,
        features=as_features(features) if "features" in needed else None,
        strata=stratum_codes(strata, n_cand) if "strata" in needed else None,
        scores=as_scores(scores) if "scores" in needed else None,
        threshold=check_threshold(threshold),
    )
    out = strat(budget, inputs, rng=as_rng(rng), **params)
    return np.asarray(out, dtype=np.int64)
