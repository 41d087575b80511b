"""Storage of review queues: membership, ranks, quotas, and the saved views the App opens.

A queued candidate carries ``queue_round``, ``queue_rank`` (0 = first shown), ``queue_purpose``
(``active`` / ``estimate`` / ``audit`` / ``gold``), ``review_quota`` (1, or 2 for the
double-review share), ``preview_path`` and, when it was drawn with a known probability,
``inclusion_probability``. The round's queue is also a FiftyOne saved view
``review-round-N`` and its disagreements ``adjudicate-round-N``.
"""

from __future__ import annotations

from typing import Sequence

from bson import ObjectId
from pymongo import UpdateOne

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError


def queue_view_name(round: int) -> str:
    return f"review-round-{int(round)}"


def adjudication_view_name(round: int) -> str:
    return f"adjudicate-round-{int(round)}"


def enqueue(ds, round: int, sample_ids: Sequence[str], *, purpose: str, double=(),
            preview_paths: dict | None = None, extra: dict | None = None) -> int:
    """Append samples (candidates, gold items) to the round's queue, skipping any already
    queued; returns the queue size. ``double`` holds positions (in ``sample_ids``) judged by two reviewers;
    ``extra`` maps sample id -> more fields to set (e.g. an inclusion probability)."""

    coll = ds._sample_collection
    oids = [ObjectId(s) for s in sample_ids]
    free = {str(d["_id"]) for d in coll.find({"_id": {"$in": oids}, "queue_round": None}, {"_id": 1})}
    todo = [(j, sid) for j, sid in enumerate(sample_ids) if sid in free]
    last = coll.find_one({"queue_round": int(round)}, {"queue_rank": 1}, sort=[("queue_rank", -1)])
    start = int(last["queue_rank"]) + 1 if last and last.get("queue_rank") is not None else 0
    now = schema.utcnow()
    double = set(double)
    paths = preview_paths or {}
    extra = extra or {}
    ops = [UpdateOne({"_id": ObjectId(sid), "queue_round": None},
                     {"$set": {"queue_round": int(round), "queue_rank": start + k,
                               "queue_purpose": purpose, "review_quota": 2 if j in double else 1,
                               "preview_path": paths.get(sid), "last_modified_at": now,
                               **extra.get(sid, {})}})
           for k, (j, sid) in enumerate(todo)]
    if ops:
        coll.bulk_write(ops, ordered=False)
        coll.update_many({"_id": {"$in": [ObjectId(sid) for _j, sid in todo]}, "status": None},
                         {"$set": {"status": schema.PENDING}})
    _save_views(ds, round)
    return coll.count_documents({"queue_round": int(round)})


def withdraw_open(ds, round: int, purposes: Sequence[str]) -> dict:
    """Take the round's queue items of ``purposes`` that nobody has judged out of the queue (a
    redo draws again); unjudged gold items, which exist only for the queue, are deleted.
    Judged items stay, with their judgments. Returns ``{"dequeued", "gold_deleted"}``."""
    coll = ds._sample_collection
    q = {"queue_round": int(round), "queue_purpose": {"$in": list(purposes)},
         "reviews.0": {"$exists": False}}
    gold = coll.delete_many({**q, "kind": schema.KIND_GOLD}).deleted_count
    res = coll.update_many(q, {"$unset": {"queue_round": "", "queue_rank": "", "queue_purpose": "",
                                          "review_quota": "", "inclusion_probability": "",
                                          "estimate_sample": ""},
                               "$set": {"last_modified_at": schema.utcnow()}})
    _save_views(ds, round)
    return {"dequeued": int(res.modified_count), "gold_deleted": int(gold)}


def _save_views(ds, round: int) -> None:
    """Save the round's queue and adjudication views, once: an existing view with the same
    definition is left alone (two processes saving at once made FiftyOne list a view twice),
    and duplicates that an older version left behind are removed."""
    from fiftyone import ViewField as F

    hidden = [f for f in schema.HIDDEN_IN_REVIEW if f in ds.get_field_schema()]
    queue = ds.match(F("queue_round") == int(round)).sort_by("queue_rank").exclude_fields(hidden)
    adj = queue.match(F("needs_adjudication") == True)  # noqa: E712 - a Mongo expression
    for name, view in ((queue_view_name(round), queue), (adjudication_view_name(round), adj)):
        _save_view_once(ds, name, view)


def _save_view_once(ds, name: str, view) -> None:
    import json

    from bson import json_util

    def stages(dicts) -> str:
        return json.dumps([{k: v for k, v in d.items() if k != "_uuid"} for d in dicts],
                          sort_keys=True, default=str)

    import random
    import time

    want = stages(view._serialize())
    for attempt in range(6):  # another process may be saving the same view right now
        ds._doc.reload("saved_views")
        same = [v for v in ds._doc.get_saved_views() if v.name == name]
        if len(same) == 1 and stages([json_util.loads(s) for s in same[0].view_stages]) == want:
            return
        try:
            for _ in same[1:]:  # duplicates (an older version, or a race): keep one
                ds.delete_saved_view(name)
            ds.save_view(name, view, overwrite=True)
        except ValueError as exc:  # the other process deleted the view this one meant to replace
            if "has no saved view" not in str(exc):
                raise
        time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))


def mix_in(ds, round: int, sample_ids: Sequence[str], *, purpose: str, rng: int = 0,
           preview_paths: dict | None = None) -> int:
    """Queue samples at random places among the round's not-yet-judged queue items (gold
    items must not gather at the end, where a reviewer would spot them); returns the queue
    size. The judged part of the queue keeps its order."""
    import numpy as np

    coll = ds._sample_collection
    if not sample_ids:
        return coll.count_documents({"queue_round": int(round)})
    enqueue(ds, round, sample_ids, purpose=purpose, preview_paths=preview_paths)
    open_docs = list(coll.find({"queue_round": int(round), "decided_by": {"$ne": schema.BY_HUMAN}},
                               {"queue_rank": 1}).sort("queue_rank", 1))
    new = {ObjectId(s) for s in sample_ids}
    rest = [d for d in open_docs if d["_id"] not in new]
    mixed = [d for d in open_docs if d["_id"] in new]
    ranks = sorted(d["queue_rank"] for d in open_docs)
    gen = np.random.default_rng([int(rng), int(round), 0x6D1])
    slots = sorted(gen.choice(len(ranks), size=len(mixed), replace=False).tolist()) if mixed else []
    order, mi, ri = [], 0, 0
    for pos in range(len(ranks)):
        if mi < len(slots) and slots[mi] == pos:
            order.append(mixed[mi]["_id"])
            mi += 1
        else:
            order.append(rest[ri]["_id"])
            ri += 1
    coll.bulk_write([UpdateOne({"_id": oid}, {"$set": {"queue_rank": rank}})
                     for oid, rank in zip(order, ranks)], ordered=False)
    _save_views(ds, round)
    return coll.count_documents({"queue_round": int(round)})


def mark_estimate_sample(ds, sample_ids: Sequence[str], probabilities: dict | None = None) -> None:
    """Flag samples as members of the round's estimation sample (optionally with the
    probability each was drawn with)."""
    coll = ds._sample_collection
    if probabilities:
        coll.bulk_write([UpdateOne({"_id": ObjectId(s)}, {"$set": {
            "estimate_sample": True, "inclusion_probability": float(probabilities[s])}})
            for s in sample_ids], ordered=False)
    elif sample_ids:
        coll.update_many({"_id": {"$in": [ObjectId(s) for s in sample_ids]}},
                         {"$set": {"estimate_sample": True}})


def review_view(ds, round: int, *, adjudicate: bool = False):
    """The round's review queue (or adjudication view) as a FiftyOne view.

    Raises
    ------
    ConfigError
        The round has no queue yet.
    """
    name = adjudication_view_name(round) if adjudicate else queue_view_name(round)
    if not ds.has_saved_view(name):
        raise ConfigError(f"round {round} has no review queue yet; build one first "
                          f"(rorem_data.select(project, {round}, budget))")
    return ds.load_saved_view(name)
