"""A round's plan: every parameter of one round, validated before any work, frozen and stored.

:class:`RoundPlan` holds what a round is made of (remover, budget, strategy, spec, featurizer,
reviewer, targets, audit, gold, floor, pool filter, rng) with the one set of defaults of
:mod:`rorem_data.rounds.defaults`. :func:`make_plan` checks all of it before the driver writes
anything: names resolve in their registries, numbers are in range, the round follows the last
one, ``project`` is a Project or a path. The plan is stored in the round record, so
:func:`rorem_data.rounds.record.load_round` gives a past round's plan back, and a rerun with a
changed parameter is compared with it before anything is written.

Which step uses which parameter is :data:`STEP_PARAMS`; the parameters that change *how* a step
runs but not what it produces (``batch_size``, ``port``, the reviewer) are never compared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from rorem_data.core import checks
from rorem_data.core.errors import ConfigError
from rorem_data.rounds import defaults as D

ACTIVE = D.ACTIVE

#: The driver's steps, in order.
STEPS = ("generate", "featurize", "seed_version", "score_previous", "queue", "gold", "review",
         "train", "score", "auto_label", "audit_review")

#: The plan parameters each step's result depends on.
STEP_PARAMS = {
    "generate": ("remover", "candidates", "pool_filter"),
    "featurize": ("featurizer",),
    "seed_version": ("spec", "seed_pairs", "holdout", "rng"),
    "score_previous": (),
    "queue": ("strategy", "budget", "floor", "estimate_budget", "double_share", "rng"),
    "gold": ("gold_rate", "rng"),
    "review": (),
    "train": ("spec", "holdout", "seed_pairs", "rng"),
    "score": (),
    "auto_label": ("target_precision", "confidence", "audit", "allow_unseen_remover", "calibration",
                   "rng"),
    "audit_review": (),
}


def step_of(parameter: str) -> str | None:
    """The first step whose result depends on ``parameter`` (None: none does)."""
    return next((s for s in STEPS if parameter in STEP_PARAMS[s]), None)


@dataclass(frozen=True)
class RoundPlan:
    """Every parameter of one round (see :func:`rorem_data.rounds.driver.run_round` for each).

    Build it with :func:`make_plan`, which validates it; the object is frozen, and
    ``dataclasses.replace(plan, budget=...)`` gives a changed copy (validated again by
    ``make_plan(project, **plan.to_dict() | changes)``).
    """

    round: int
    remover: Any
    budget: int
    strategy: str = D.STRATEGY
    spec: str = D.SPEC
    featurizer: str = D.FEATURIZER
    reviewer: Any = "app"
    reviewer_name: str | None = None
    candidates: int = D.CANDIDATES
    target_precision: float = D.TARGET_PRECISION
    confidence: float = D.CONFIDENCE
    audit: float = D.AUDIT
    estimate_budget: int = 0
    double_share: float = 0.0
    floor: float | None = D.FLOOR
    holdout: float = D.HOLDOUT
    seed_pairs: int = D.SEED_PAIRS
    gold_rate: float = D.GOLD_RATE
    allow_unseen_remover: bool = False
    calibration: str = D.CALIBRATION
    pool_filter: Any = None
    rng: int = D.RNG
    batch_size: int = D.BATCH_SIZE
    port: int = D.PORT

    # --- what is stored and compared ---------------------------------------------------------

    def describe(self, name: str) -> Any:
        """A parameter as stored in the round record (JSON): a remover as its spec's fields,
        a function reviewer by its name, a FiftyOne view as its pipeline."""
        value = getattr(self, name)
        if name == "remover":
            return describe_remover(value)
        if name == "reviewer":
            return describe_reviewer(value)
        if name == "pool_filter":
            return describe_filter(value)
        return value

    def to_dict(self) -> dict:
        """Every parameter in its stored (JSON) form."""
        return {f.name: self.describe(f.name) for f in dataclasses.fields(self)}

    def step_params(self, step: str) -> dict:
        return {k: self.describe(k) for k in STEP_PARAMS[step]}

    def __repr__(self) -> str:
        d = self.to_dict()
        keys = ("remover", "budget", "strategy", "spec", "target_precision", "confidence", "rng")
        inner = ", ".join(f"{k}={_short(d[k])}" for k in keys)
        return f"RoundPlan(round={self.round}, {inner}, ...)"

    def _repr_html_(self) -> str:
        from rorem_data.core.display import html_table

        return html_table(f"Plan of round {self.round}", list(self.to_dict().items()))


def _short(value) -> str:
    if isinstance(value, dict):
        name = value.get("name") or value.get("method") or value.get("model")
        return repr(name if name else value)
    return repr(value)


def describe_remover(value) -> Any:
    from rorem_data.removers.spec import RemoverSpec

    if isinstance(value, dict) and "given" in value:  # a stored description: as it was
        return _jsonable(value)
    try:
        spec = RemoverSpec.parse(value)
    except ConfigError:
        return f"{type(value).__module__}.{type(value).__qualname__}"
    d = spec.to_dict()
    d.pop("device", None)  # where it runs, not what it makes
    if isinstance(value, str) and not value.lower().endswith((".json", ".toml")):
        d["given"] = value
    return _jsonable(d)


def describe_reviewer(value) -> str:
    if isinstance(value, str):
        return value
    if hasattr(value, "review_round"):
        return f"object {type(value).__qualname__}"
    if callable(value):
        return f"function {getattr(value, '__qualname__', type(value).__qualname__)}"
    return repr(value)


def describe_filter(value) -> Any:
    if value is None or isinstance(value, dict):
        return _jsonable(value)
    if hasattr(value, "_serialize"):
        return {"view": _jsonable(value._serialize())}
    return repr(value)


def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def fingerprint(*parts) -> str:
    """A short, stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# --- validation -----------------------------------------------------------------------------

def make_plan(project, round: int, *, remover, budget: int, allow_gap: bool = False,
              **params) -> RoundPlan:
    """Validate a round's parameters and freeze them into a :class:`RoundPlan`.

    Everything is checked before any work: names resolve in their registries, numbers are in
    range, and ``round`` follows the project's last round (``allow_gap=True`` allows a gap).

    Raises
    ------
    ConfigError
        The first bad parameter, named, with what was expected and what came.
    """
    known = {f.name for f in dataclasses.fields(RoundPlan)} - {"round", "remover", "budget"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown round parameter(s) {', '.join(unknown)}; the parameters are "
                          f"{', '.join(sorted(known | {'remover', 'budget'}))}")
    params = {k: v for k, v in params.items() if v is not None or k in ("reviewer_name", "pool_filter")}
    plan = RoundPlan(round=round, remover=remover, budget=budget, **params)
    _check_numbers(plan)
    _check_names(plan)
    if project is not None:
        _check_sequence(project, plan.round, allow_gap)
    return plan


def _check_numbers(p: RoundPlan) -> None:
    checks.round_number(p.round, "round", minimum=1)
    checks.positive_int(p.budget, "budget")
    checks.positive_int(p.candidates, "candidates")
    checks.positive_int(p.batch_size, "batch_size")
    if isinstance(p.seed_pairs, bool) or not isinstance(p.seed_pairs, int) or p.seed_pairs < 0:
        raise checks.bad("seed_pairs", "an integer >= 0", p.seed_pairs)
    checks.non_negative_int(p.estimate_budget, "estimate_budget")
    checks.non_negative_int(p.rng, "rng")
    checks.fraction(p.target_precision, "target_precision", open_low=True)
    checks.fraction(p.confidence, "confidence", open_low=True, open_high=True)
    checks.fraction(p.audit, "audit")
    checks.fraction(p.double_share, "double_share")
    if p.floor is not None:
        checks.fraction(p.floor, "floor", open_low=True)
    checks.fraction(p.holdout, "holdout", open_low=True, open_high=True)
    checks.fraction(p.gold_rate, "gold_rate", high=0.5)
    from rorem_data.rounds.automation import METHODS

    checks.choice(p.calibration, "calibration", METHODS)
    if not isinstance(p.allow_unseen_remover, bool):
        raise checks.bad("allow_unseen_remover", "True or False", p.allow_unseen_remover)
    if not checks.is_int(p.port) or not 1 <= p.port <= 65535:
        raise checks.bad("port", "a TCP port in 1..65535", p.port)
    if p.reviewer_name is not None:
        checks.non_empty_str(p.reviewer_name, "reviewer_name")
    f = p.pool_filter
    if not (f is None or isinstance(f, dict) or (hasattr(f, "values") and hasattr(f, "_dataset"))):
        raise checks.bad("pool_filter", "None, a field filter dict such as {'origin': 'coco'} or a "
                         "FiftyOne view of pool items", f)


def _check_names(p: RoundPlan) -> None:
    from rorem_data.discriminators.specs import get_spec
    from rorem_data.features.base import list_featurizers
    from rorem_data.removers.spec import RemoverSpec
    from rorem_data.rounds.review.reviewers import list_reviewers
    from rorem_data.selection.strategies import list_strategies

    if not hasattr(p.remover, "remove"):
        RemoverSpec.parse(p.remover)  # names the bad field
    strategies = [ACTIVE, *list_strategies()]
    checks.choice(p.strategy, "strategy", strategies)
    checks.choice(p.featurizer, "featurizer", list_featurizers())
    get_spec(p.spec)  # unknown names list the choices
    r = p.reviewer
    if isinstance(r, (str, os.PathLike)):
        s = os.fspath(r)
        if s.lower().endswith((".csv", ".json")):
            if not os.path.isfile(s):
                raise ConfigError(f"reviewer labels file {os.path.abspath(s)} does not exist; pass "
                                  "an existing .csv / .json labels file, 'app', or a function")
        elif s not in list_reviewers():
            raise checks.bad("reviewer", f"'app', a registered reviewer ({', '.join(list_reviewers())}), "
                             "a .csv / .json labels file, a function or an object with review_round()", r)
    elif not (callable(r) or hasattr(r, "review_round")):
        raise checks.bad("reviewer", "'app', a labels file, a function or an object with "
                         "review_round()", r)


def _check_sequence(project, round: int, allow_gap: bool) -> None:
    from rorem_data.dataset import queries

    last = queries.latest_round(project.dataset, project.dataset_name)
    if round > last + 1 and not allow_gap:
        skipped = f"round {last + 1}" if round == last + 2 else f"rounds {last + 1}-{round - 1}"
        raise ConfigError(
            f"round {round} does not follow the project's last round ({last}): run round "
            f"{last + 1} first, or pass allow_gap=True to leave {skipped} out")
