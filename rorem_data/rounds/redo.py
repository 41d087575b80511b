"""Running a round again from one step (``run_round(..., redo=STEP)``).

What the step and the later steps recorded is withdrawn first, through the same writers that
made it: automatic decisions get a pending marker in the decision ledger, unjudged queue items
leave the queue (unjudged gold items, which exist only for the queue, are deleted), and the
round's selections are marked ``withdrawn`` so the next draw is the round's one sample. Human
judgments always stay: a judged item keeps its label and counts as known in the next draw.

A round's candidates are its identity: ``redo="generate"`` is refused once it has candidates
(run the new remover as a new round).
"""

from __future__ import annotations

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.dataset import ledger, queries, queues, store
from rorem_data.rounds.plan import STEPS


def _at_or_before(step: str, other: str) -> bool:
    return STEPS.index(step) <= STEPS.index(other)


def withdraw_from(project, round: int, step: str) -> dict:
    """Withdraw what ``step`` and the later steps of ``round`` recorded.

    Returns
    -------
    dict
        ``automatic_withdrawn``, ``dequeued``, ``gold_deleted``: what was taken back.

    Raises
    ------
    ConfigError
        An unknown step, or ``"generate"`` on a round that has candidates.
    """
    if step not in STEPS:
        raise ConfigError(f"redo must be one of {', '.join(STEPS)}; got {step!r}")
    ds = project.dataset
    out = {"automatic_withdrawn": 0, "dequeued": 0, "gold_deleted": 0}
    if step == "generate" and queries.candidate_ids(ds, round=round):
        raise ConfigError(
            f"redo='generate' is refused: round {round} has candidates, and they are the round's "
            f"identity (its sample, its judgments and its estimates are about them). Run the new "
            f"remover as round {round + 1}")
    if _at_or_before(step, "auto_label"):
        out["automatic_withdrawn"] = ledger.withdraw_automatic(ds, round)
        res = queues.withdraw_open(ds, round, [schema.QUEUE_AUDIT])
        out["dequeued"] += res["dequeued"]
        store.unset_round_fields(project.dataset_name, round, ["phases.auto", "phases.audit", "audit_seed"])
    if _at_or_before(step, "gold"):
        res = queues.withdraw_open(ds, round, [schema.QUEUE_GOLD])
        out["gold_deleted"] += res["gold_deleted"]
        out["dequeued"] += res["dequeued"]
    if _at_or_before(step, "queue"):
        res = queues.withdraw_open(ds, round, [schema.QUEUE_ACTIVE, schema.QUEUE_ESTIMATE])
        out["dequeued"] += res["dequeued"]
        store.withdraw_selections(project.dataset_name, round,
                                  [schema.QUEUE_ACTIVE, schema.QUEUE_ESTIMATE])
    return out
