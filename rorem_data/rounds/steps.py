"""The steps of one round, each a plain function of a :class:`StepContext`.

generate -> featurize -> score with the previous discriminator -> the queue (by default an
active-inference sample) -> gold items -> reviews -> train a new discriminator version ->
score -> auto-label with a precision guarantee -> audit reviews. Each returns a
:class:`StepOutput`: its summary line, what it saw (``inputs``, recorded and fingerprinted in
the chain) and what later steps need (``extra``: the feature key, the version). The driver
(:mod:`rorem_data.rounds.driver`) decides which to run; no step knows about the others.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.dataset import queries

QUEUE_PURPOSES = (schema.QUEUE_ACTIVE, schema.QUEUE_ESTIMATE, schema.QUEUE_GOLD)
AUDIT_PURPOSES = (schema.QUEUE_AUDIT,)


@dataclass
class StepContext:
    """What a step reads: the project, the plan, and what earlier steps produced."""

    project: object
    plan: object
    previous_version: str | None = None
    feature_key: str | None = None
    version: str | None = None
    progress: bool | None = None


@dataclass
class StepOutput:
    summary: str
    inputs: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    awaiting: dict | None = None  # the review App is open in a notebook: come back later
    record: bool = True  # False: nothing was produced; a rerun tries the step again


def digest(keys) -> str:
    h = hashlib.sha1()
    for k in sorted(keys):
        h.update(str(k).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def pool_inputs(ctx: StepContext) -> list[dict]:
    from rorem_data.rounds.generate import read_pool_items

    return read_pool_items(ctx.project, pool_filter=ctx.plan.pool_filter)


def candidate_inputs(ctx: StepContext) -> dict:
    docs = queries.candidates(ctx.project.dataset, round=ctx.plan.round, fields=["key"])
    return {"candidates": len(docs), "digest": digest(d["key"] for d in docs)}


def _first_line(out) -> str:
    text = out if isinstance(out, str) else out.summary()
    return text.splitlines()[0] if text else ""


# --- the steps -------------------------------------------------------------------------------

def generate(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds.generate import generate as run

    p = ctx.plan
    items = pool_inputs(ctx)
    res = run(ctx.project, p.round, p.remover, candidates=p.candidates, batch_size=p.batch_size,
              pool_filter=p.pool_filter, progress=ctx.progress)
    made = queries.candidate_ids(ctx.project.dataset, round=p.round)
    if not made:
        raise ConfigError(
            f"round {p.round} has no candidates: no pool item matches pool_filter={p.pool_filter!r} "
            f"({len(items)} pool items matched). Import pool items (rorem_data.import_pool(project, "
            "DIR)) and run the same call again; nothing of this round was recorded")
    return StepOutput(res.summary(), inputs={"pool_items": len(items),
                                             "digest": digest(d["key"] for d in items)},
                      extra={"candidates": len(made)})


def new_pool_items(ctx: StepContext) -> list[str]:
    """Pool items matching the plan's filter that the round has no candidate of (imported
    after its generate step), by file name."""
    import os

    items = pool_inputs(ctx)
    have = {d.get("pool_item_id") for d in queries.candidates(
        ctx.project.dataset, round=ctx.plan.round, fields=["pool_item_id"])}
    return [os.path.basename(d.get("filepath") or d["key"]) for d in items if d["id"] not in have]


def featurize(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds import discriminator

    res = discriminator.featurize(ctx.project, ctx.plan.featurizer, round=ctx.plan.round,
                                  progress=ctx.progress)
    ctx.feature_key = res.key
    return StepOutput(_first_line(res), inputs=candidate_inputs(ctx), extra={"key": res.key})


def seed_version(ctx: StepContext) -> StepOutput:
    """Before the first human label: a version trained on seed-pair examples only, which then
    draws the round's sample (and can be certified on all of its labels)."""
    from rorem_data.rounds import discriminator

    p = ctx.plan
    res = discriminator.train_from_seeds(ctx.project, p.spec, n=p.seed_pairs, holdout=p.holdout,
                                         rng=p.rng)
    if res is None:
        return StepOutput(f"no discriminator before the first label: too few usable seed pairs, or "
                          f"{p.spec!r} is not a feature head", record=False)
    ctx.previous_version = res.version
    return StepOutput(_first_line(res), inputs={"seed_pairs": p.seed_pairs},
                      extra={"version": res.version})


def score_previous(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds import discriminator

    res = discriminator.score(ctx.project, ctx.plan.round, ctx.previous_version, progress=ctx.progress)
    return StepOutput(_first_line(res), inputs={"version": ctx.previous_version})


def queue(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds.review import queue as q
    from rorem_data.rounds.defaults import ACTIVE

    p = ctx.plan
    if p.strategy == ACTIVE:
        sel = q.build_active_sample(ctx.project, p.round, p.budget, version=ctx.previous_version,
                                    floor=p.floor, double_share=p.double_share, rng=p.rng,
                                    previews=True)
    else:
        if p.estimate_budget:
            q.build_estimate_sample(ctx.project, p.round, p.estimate_budget, rng=p.rng)
        sel = q.build_queue(ctx.project, p.round, p.budget, strategy=p.strategy,
                            discriminator=ctx.previous_version, featurizer=ctx.feature_key,
                            double_share=p.double_share, rng=p.rng)
    inputs = {**candidate_inputs(ctx), "version": ctx.previous_version}
    return StepOutput(_first_line(sel), inputs=inputs, extra={"queued": len(sel.sample_ids)})


def gold(ctx: StepContext) -> StepOutput:
    from rorem_data.dataset import queues
    from rorem_data.rounds.review.gold import add_gold

    p = ctx.plan
    # the share of the queue without gold items: a rerun after a kill asks for the same number
    queued = queries.queue_size(ctx.project.dataset, p.round,
                                purpose=[schema.QUEUE_ACTIVE, schema.QUEUE_ESTIMATE])
    n = int(math.ceil(p.gold_rate * queued))
    try:
        ids = add_gold(ctx.project, p.round, n, rng=p.rng)
    except ConfigError as exc:
        return StepOutput(f"no gold items ({exc})")
    queues.mix_in(ctx.project.dataset, p.round, ids, purpose=schema.QUEUE_GOLD, rng=p.rng)
    return StepOutput(f"{len(ids)} gold items mixed into the queue", extra={"gold": len(ids)})


def _judge(ctx: StepContext, purposes, what: str) -> StepOutput:
    from rorem_data.rounds.review import reviewers

    p = ctx.plan
    out = reviewers.review(ctx.project, p.round, p.reviewer, purposes=list(purposes),
                           reviewer_name=p.reviewer_name, port=p.port, progress=ctx.progress)
    if out.state == reviewers.AWAITING:
        return StepOutput(out.summary(), awaiting={"url": out.url, "judged": out.judged,
                                                   "open": out.open, "step": what})
    if out.open:
        raise ConfigError(f"{out.open} queued candidates of round {p.round} are still unjudged "
                          f"({what}); judge them, then run the same call again to resume")
    return StepOutput(f"{out.judged} judged", extra={"judged": out.judged})


def review(ctx: StepContext) -> StepOutput:
    return _judge(ctx, QUEUE_PURPOSES, "review")


def audit_review(ctx: StepContext) -> StepOutput:
    return _judge(ctx, AUDIT_PURPOSES, "audit_review")


def train(ctx: StepContext) -> StepOutput:
    from rorem_data.core.errors import NotEnoughLabels
    from rorem_data.rounds import discriminator

    p = ctx.plan
    try:
        res = discriminator.train(ctx.project, p.round, p.spec, holdout=p.holdout, rng=p.rng,
                                  seed_pairs=p.seed_pairs, progress=ctx.progress)
    except NotEnoughLabels as exc:  # a small round: people decide it all; not recorded as done
        return StepOutput(f"no discriminator this round: {exc}", record=False)
    ctx.version = res.version
    labels = queries.human_labels(ctx.project.dataset, rounds_upto=p.round, fields=["key"])
    return StepOutput(_first_line(res), inputs={"labels": len(labels)}, extra={"version": res.version})


def score(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds import discriminator

    res = discriminator.score(ctx.project, ctx.plan.round, ctx.version, progress=ctx.progress)
    return StepOutput(_first_line(res), inputs={"version": ctx.version})


def auto_label(ctx: StepContext) -> StepOutput:
    from rorem_data.rounds import automation
    from rorem_data.rounds.defaults import ACTIVE

    p = ctx.plan
    method = p.calibration
    if method == "active" or (method == "auto" and p.strategy == ACTIVE and ctx.version is None):
        use = ctx.previous_version
    elif method == "auto" and p.strategy == ACTIVE:
        use = None  # automation takes this round's version if it can, else the previous one
    else:
        use = ctx.version
    try:
        res = automation.auto_label(ctx.project, p.round, version=use, method=method,
                                    target_precision=p.target_precision, confidence=p.confidence,
                                    audit=p.audit, allow_unseen_remover=p.allow_unseen_remover,
                                    rng=p.rng)
    except ConfigError as exc:  # the labels cannot support the target: decide nothing
        return StepOutput(f"nothing decided automatically: {exc}", inputs={"version": use})
    return StepOutput(_first_line(res), inputs={"version": res.version},
                      extra={"accepted": res.accepted, "rejected": res.rejected})


def audit_line(project, round: int, confidence: float) -> str:
    """The audit's one line (cheap, and new audit judgments change it: run on every call)."""
    from rorem_data.rounds import automation

    try:
        out = automation.audit_report(project, round, confidence=confidence)
    except ConfigError as exc:
        return f"no audit: {exc}"
    return automation.audit_text(out)


STEP_FUNCTIONS = {
    "generate": generate, "featurize": featurize, "seed_version": seed_version,
    "score_previous": score_previous,
    "queue": queue, "gold": gold, "review": review, "train": train, "score": score,
    "auto_label": auto_label, "audit_review": audit_review,
}


def seed_pairs_only(project, version: str) -> bool:
    """Whether ``version`` was trained on seed-pair examples only (no human label)."""
    from rorem_data.rounds.versions import load_version_meta

    try:
        return bool(load_version_meta(project, version).get("seed_pairs_only"))
    except ConfigError:
        return False


def applies(step: str, ctx: StepContext) -> bool:
    """Whether ``step`` runs in this round at all (no previous version: nothing to score with;
    gold rate 0: no gold)."""
    if step == "seed_version":
        return ctx.plan.seed_pairs > 0 and ctx.previous_version is None
    if step == "score_previous":
        return ctx.previous_version is not None
    if step == "gold":
        return ctx.plan.gold_rate > 0
    if step in ("score", "auto_label", "audit_review"):
        return ctx.version is not None or (step != "score" and ctx.previous_version is not None)
    return True
