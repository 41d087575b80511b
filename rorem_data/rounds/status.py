"""``rorem-data status``: the project's per-round table (the paper's Table 1, for your data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rorem_data.core import schema
from rorem_data.dataset import queries


@dataclass
class RoundRow:
    """One row of the round table.

    ``phase`` is ``seed`` for round 0, else ``human`` or ``auto``. ``selected`` counts the
    candidates queued for humans (active + estimation sample in the human row, the audit sample
    in the auto row). Counts are current decisions; ``cumulative_train`` is the accepted
    training set after this row.
    """

    round: int
    phase: str
    pool_items: int
    candidates: int
    selected: int
    human_reviewed: int
    accepted_by_human: int
    auto_decided: int
    accepted_by_discriminator: int
    pending: int
    accepted: int
    cumulative_train: int
    success_rate: dict | None = None  # Estimate as dict (human rows; see automation.round_estimates)

    def as_dict(self) -> dict:
        return asdict(self)


def round_table(project, *, estimates: bool = False) -> list[RoundRow]:
    """Per-round counts, one row per round and phase.

    With ``estimates``, human rows carry the round's success rate with an interval: from the
    uniform estimation sample (prediction-powered when a discriminator scored the round, else
    human labels alone).

    Returns
    -------
    list of RoundRow
        Round 0 (``seed``) first, then ``human`` and ``auto`` rows per round that has candidates.
    """
    tallies, pools, queued = queries.round_tallies(project.dataset)

    def count(round=None, kind=None, status=None, by=None):
        return sum(n for (r, k, s, b), n in tallies.items()
                   if (round is None or r == round) and (kind is None or k == kind)
                   and (status is None or s == status) and (by is None or b == by))

    seeds_acc = count(round=0, kind=schema.KIND_SEED, status=schema.ACCEPTED)
    seeds_all = count(round=0, kind=schema.KIND_SEED)
    rows = [RoundRow(0, schema.PHASE_SEED, 0, 0, 0, 0, 0, 0, 0, 0, seeds_acc, seeds_acc)]
    rows[0].candidates = seeds_all
    cumulative = seeds_acc
    rounds = sorted({r for (r, k, _s, _b) in tallies if k == schema.KIND_CANDIDATE and r is not None})
    for r in rounds:
        cand = count(round=r, kind=schema.KIND_CANDIDATE)
        pending = cand - count(round=r, kind=schema.KIND_CANDIDATE, status=schema.ACCEPTED) \
            - count(round=r, kind=schema.KIND_CANDIDATE, status=schema.REJECTED)
        hum = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_HUMAN)
        hum_acc = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_HUMAN, status=schema.ACCEPTED)
        auto = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_DISCRIMINATOR)
        auto_acc = count(round=r, kind=schema.KIND_CANDIDATE, by=schema.BY_DISCRIMINATOR,
                         status=schema.ACCEPTED)
        cumulative += hum_acc
        rate = None
        if estimates:
            from rorem_data.rounds.automation import round_estimates

            est = round_estimates(project, r)
            rate = est.get("ppi") or est.get("human")
            if rate is not None:
                rate = {**rate, "source": "ppi" if "ppi" in est else "human"}
        sel_h = sum(n for (rr, pu), n in queued.items() if rr == r and pu != schema.QUEUE_AUDIT)
        sel_a = queued.get((r, schema.QUEUE_AUDIT), 0)
        rows.append(RoundRow(r, schema.PHASE_HUMAN, pools.get(r, 0), cand, sel_h, hum, hum_acc, 0, 0,
                             pending, hum_acc, cumulative, rate))
        cumulative += auto_acc
        rows.append(RoundRow(r, schema.PHASE_AUTO, pools.get(r, 0), cand, sel_a, 0, 0, auto, auto_acc,
                             pending, auto_acc, cumulative))
    return rows


def pool_size(project) -> int:
    return queries.count(project.dataset, kind=schema.KIND_POOL)
