"""Recording decisions (human or discriminator) on candidates, in bulk.

A decision sets the sample's current ``status``/``decided_by``/``decided_round``/``decision``
and is appended to its ``decisions`` history in the same atomic update, so a sample's state
and its provenance never disagree.
"""

from __future__ import annotations

from typing import Sequence

from rorem_data.core import schema


def record_decisions(ds, sample_ids: Sequence[str], decisions: Sequence[dict], *,
                     batch_size: int = 10_000) -> int:
    """Apply one decision document per sample (see :func:`rorem_data.core.schema.decision_doc`).

    Parameters
    ----------
    ds : fiftyone.Dataset
    sample_ids : sequence of str
        FiftyOne sample ids.
    decisions : sequence of dict
        Same length as ``sample_ids``.

    Returns
    -------
    int
        Number of samples matched.

    Raises
    ------
    ValueError
        If the lengths differ.
    """
    from bson import ObjectId
    from pymongo import UpdateOne

    if len(sample_ids) != len(decisions):
        raise ValueError(f"{len(sample_ids)} sample ids but {len(decisions)} decisions")
    coll = ds._sample_collection
    matched = 0
    now = schema.utcnow()
    for i in range(0, len(sample_ids), batch_size):
        ops = []
        for sid, d in zip(sample_ids[i : i + batch_size], decisions[i : i + batch_size]):
            ops.append(UpdateOne(
                {"_id": ObjectId(sid)},
                {"$set": {"status": d["status"], "decided_by": d["by"], "decided_round": d["round"],
                          "decision": d, "last_modified_at": now},
                 "$push": {"decisions": d}},
            ))
        if ops:
            matched += coll.bulk_write(ops, ordered=False).matched_count
    return matched


def decide(ds, sample_ids: Sequence[str], status: str, *, by: str, round: int, phase: str,
           reviewer: str | None = None, reason: str | None = None,
           discriminator: str | None = None, threshold: float | None = None,
           scores: Sequence[float] | None = None) -> int:
    """Give many samples the same decision (optionally with a per-sample score)."""
    at = schema.utcnow()
    docs = [
        schema.decision_doc(round=round, phase=phase, status=status, by=by, at=at,
                            reviewer=reviewer, reason=reason, discriminator=discriminator,
                            threshold=threshold, score=None if scores is None else scores[i])
        for i in range(len(sample_ids))
    ]
    return record_decisions(ds, list(sample_ids), docs)
