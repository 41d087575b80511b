"""The named questions upper layers ask the dataset (reads only, in bulk).

Every function runs one projected query (or aggregation) and returns plain Python: sample ids
as strings under ``"id"``, never MongoDB types. Upper layers never see a query document; they
ask for "the candidates of round 3 with these fields", "the latest human label of every
candidate up to round 2", "the audit queue of round 4".
"""

from __future__ import annotations

from typing import Iterable, Sequence

from bson import ObjectId

from rorem_data.core import schema

CANDIDATE = {"kind": schema.KIND_CANDIDATE}


def _oids(sample_ids: Iterable[str]) -> list[ObjectId]:
    return [ObjectId(s) for s in sample_ids]


def _proj(fields: Sequence[str]) -> dict:
    return {f: 1 for f in fields} if fields else {"_id": 1}


def _docs(cursor) -> list[dict]:
    out = []
    for d in cursor:
        d["id"] = str(d.pop("_id"))
        out.append(d)
    return out


def find(ds, query: dict, fields: Sequence[str] = (), *, sort_key: bool = True,
         sort: str | None = None, limit: int = 0) -> list[dict]:
    """Documents matching a query of this module's own making (``_id`` -> ``"id"``)."""
    cur = ds._sample_collection.find(query, _proj(fields))
    if sort:
        cur = cur.sort(sort, 1)
    elif sort_key:
        cur = cur.sort("key", 1)
    if limit:
        cur = cur.limit(int(limit))
    return _docs(cur)


def candidates(ds, *, round: int | None = None, rounds_upto: int | None = None,
               fields: Sequence[str] = (), status: str | None = None,
               has_score: str | None = None, estimate_sample: bool | None = None,
               limit: int = 0) -> list[dict]:
    """Candidates (of ``round``, or of rounds ``<= rounds_upto``), in key order.

    Parameters
    ----------
    fields : sequence of str
        Fields to return (dotted paths allowed), besides ``id``.
    status : str, optional
        Only candidates whose current status is this.
    has_score : str, optional
        Only candidates holding a score of this discriminator version.
    estimate_sample : bool, optional
        Only members of the uniform estimation sample.
    """
    q: dict = dict(CANDIDATE)
    if round is not None:
        q["round"] = int(round)
    elif rounds_upto is not None:
        q["round"] = {"$lte": int(rounds_upto)}
    if status is not None:
        q["status"] = status
    if has_score is not None:
        q[f"scores.{has_score}"] = {"$exists": True}
    if estimate_sample is not None:
        q["estimate_sample"] = True if estimate_sample else {"$ne": True}
    return find(ds, q, fields, limit=limit)


def candidate_ids(ds, *, round: int, estimate_sample: bool | None = None) -> list[str]:
    """Sample ids of a round's candidates, sorted (optionally only estimation-sample members)."""
    return sorted(d["id"] for d in candidates(ds, round=round, estimate_sample=estimate_sample))


def by_ids(ds, sample_ids: Sequence[str], fields: Sequence[str] = (), *,
           unqueued_only: bool = False) -> dict[str, dict]:
    """``{sample_id: doc}`` of the given samples (those that exist)."""
    q: dict = {"_id": {"$in": _oids(sample_ids)}}
    if unqueued_only:
        q["queue_round"] = None
    return {d["id"]: d for d in find(ds, q, fields, sort_key=False)}


def automation_candidates(ds, round: int, fields: Sequence[str]) -> list[dict]:
    """The round's candidates that humans were not asked about, plus its audit sample (so a
    rerun after an interruption sees the same set), minus those a human decided outside an
    audit. Key order."""
    docs = find(ds, {**CANDIDATE, "round": int(round),
                     "$or": [{"queue_round": None}, {"queue_purpose": schema.QUEUE_AUDIT}]},
                list(fields) + ["decided_by", "decisions"])
    return [d for d in docs if not (d.get("decided_by") == schema.BY_HUMAN and not any(
        x and x.get("by") == schema.BY_DISCRIMINATOR for x in d.get("decisions") or []))]


def queue_members(ds, round: int, fields: Sequence[str] = (), *, purpose: str | None = None,
                  min_quota: int | None = None, needs_adjudication: bool | None = None,
                  unjudged_only: bool = False, not_reviewed_by: str | None = None) -> list[dict]:
    """Members of a round's review queue, in queue order (``queue_rank``).

    ``purpose`` may be one purpose or several; ``not_reviewed_by`` leaves out what that
    reviewer has already judged."""
    q: dict = {"queue_round": int(round)}
    if not_reviewed_by is not None:
        q["reviews.reviewer"] = {"$ne": not_reviewed_by}
    if purpose is not None:
        q["queue_purpose"] = {"$in": list(purpose)} if isinstance(purpose, (list, tuple, set)) else purpose
    if min_quota is not None:
        q["review_quota"] = {"$gte": int(min_quota)}
    if needs_adjudication is not None:
        q["needs_adjudication"] = bool(needs_adjudication)
    if unjudged_only:
        q["decided_by"] = {"$ne": schema.BY_HUMAN}
    return find(ds, q, fields, sort="queue_rank")


def reviewed(ds, *, round: int | None = None) -> list[dict]:
    """Every sample with human reviews (of queue ``round``, or all), with ``kind``, ``reviews``,
    ``gold_truth`` and ``queue_round`` - what reviewer-quality measures read."""
    q: dict = {"reviews.0": {"$exists": True}}
    if round is not None:
        q["queue_round"] = int(round)
    return find(ds, q, ["kind", "reviews", "gold_truth", "queue_round"], sort_key=False)


def queue_size(ds, round: int, *, purpose=None) -> int:
    """Members of the round's queue (of one purpose or several)."""
    q: dict = {"queue_round": int(round)}
    if purpose is not None:
        q["queue_purpose"] = {"$in": list(purpose)} if isinstance(purpose, (list, tuple, set)) else purpose
    return ds._sample_collection.count_documents(q)


def ids_by_key(ds, keys: Sequence[str]) -> dict:
    """``{key: sample id}`` of the samples with these keys (one query per 50,000 keys)."""
    keys = list(keys)
    out: dict = {}
    coll = ds._sample_collection
    for i in range(0, len(keys), 50_000):
        for d in coll.find({"key": {"$in": keys[i:i + 50_000]}}, {"key": 1}):
            out[d["key"]] = str(d["_id"])
    return out


def latest_human_label(decisions: Sequence[dict] | None, max_round: int | None = None) -> int | None:
    """1 (accepted) / 0 (rejected) when the sample's standing decision as of ``max_round`` (the
    last history entry of a round ``<= max_round``; the last entry for None) is a human accept
    or reject, else None. A withdrawn human judgment, or one of an excluded reviewer, is
    followed in the ledger's history by the decision that replaced it, so it is not a label.
    Pure; applied to ``decisions`` lists this module returns."""
    last = None
    for x in decisions or ():
        if x and (max_round is None or (x.get("round") or 0) <= max_round):
            last = x
    if (last is not None and last.get("by") == schema.BY_HUMAN
            and last.get("status") in (schema.ACCEPTED, schema.REJECTED)):
        return int(last["status"] == schema.ACCEPTED)
    return None


def human_labels(ds, *, rounds_upto: int, fields: Sequence[str] = ()) -> list[dict]:
    """Candidates of rounds ``<= rounds_upto`` with a human accept/reject decided in those
    rounds, each with ``label`` (1 accepted, 0 rejected) - the latest human word counts."""
    docs = find(ds, {**CANDIDATE, "round": {"$lte": int(rounds_upto)},
                     "decisions.by": schema.BY_HUMAN}, list(fields) + ["decisions"])
    out = []
    for d in docs:
        y = latest_human_label(d.get("decisions"), rounds_upto)
        if y is not None:
            d["label"] = y
            out.append(d)
    return out


def pool_items(ds, *, filter: dict | None = None, sample_ids: Sequence[str] | None = None,
               fields: Sequence[str] = ()) -> list[dict]:
    """Pool items (optionally restricted by a field filter such as ``{"origin": "coco"}`` or
    by sample ids), in key order."""
    q: dict = {"kind": schema.KIND_POOL}
    if sample_ids is not None:
        q["_id"] = {"$in": _oids(sample_ids)}
    if filter:
        q = {"$and": [q, dict(filter)]}
    return find(ds, q, fields)


def count(ds, *, kind: str) -> int:
    return ds._sample_collection.count_documents({"kind": kind})


def round_tallies(ds) -> tuple[dict, dict, dict]:
    """Counts for the round table, by aggregation on the server.

    Returns
    -------
    tallies : dict
        ``{(round, kind, status, decided_by): n}`` over seeds and candidates.
    pools : dict
        ``{round: distinct pool items with candidates in that round}``.
    queued : dict
        ``{(queue_round, queue_purpose): n}``.
    """
    coll = ds._sample_collection
    tallies = {}
    for d in coll.aggregate([
        {"$match": {"kind": {"$in": [schema.KIND_SEED, schema.KIND_CANDIDATE]}}},
        {"$group": {"_id": {"round": "$round", "kind": "$kind", "status": "$status",
                            "by": "$decided_by"}, "n": {"$sum": 1}}},
    ], allowDiskUse=True):
        k = d["_id"]
        tallies[(k.get("round"), k.get("kind"), k.get("status"), k.get("by"))] = d["n"]
    queued = {}
    for d in coll.aggregate([
        {"$match": {"queue_round": {"$ne": None}}},
        {"$group": {"_id": {"round": "$queue_round", "purpose": "$queue_purpose"}, "n": {"$sum": 1}}},
    ]):
        queued[(d["_id"].get("round"), d["_id"].get("purpose"))] = d["n"]
    pools = {}
    for d in coll.aggregate([
        {"$match": {"kind": schema.KIND_CANDIDATE}},
        {"$group": {"_id": {"round": "$round", "item": "$pool_item_id"}}},
        {"$group": {"_id": "$_id.round", "n": {"$sum": 1}}},
    ], allowDiskUse=True):
        pools[d["_id"]] = d["n"]
    return tallies, pools, queued


def license_tallies(ds) -> dict:
    """``{(kind, origin, license): n}`` over seeds, pool items and candidates (a missing license
    counts as unknown; gold items are not data)."""
    out = {}
    for d in ds._sample_collection.aggregate([
        {"$match": {"kind": {"$ne": schema.KIND_GOLD}}},
        {"$group": {"_id": {"kind": "$kind", "origin": "$origin",
                            "license": {"$ifNull": ["$license", schema.UNKNOWN_LICENSE]}},
                    "n": {"$sum": 1}}},
    ], allowDiskUse=True):
        k = d["_id"]
        out[(k.get("kind"), k.get("origin"), k.get("license"))] = d["n"]
    return out


def latest_round(ds, dataset_name: str) -> int:
    """Highest round number with any sample, decision or round record (0 for seeds only)."""
    from rorem_data.dataset import store

    coll = ds._sample_collection
    best = 0
    d = coll.find_one({"round": {"$ne": None}}, {"round": 1}, sort=[("round", -1)])
    if d is not None and isinstance(d.get("round"), int):
        best = d["round"]
    for d in coll.aggregate([{"$match": {"decisions.round": {"$ne": None}}},
                             {"$project": {"m": {"$max": "$decisions.round"}}},
                             {"$group": {"_id": None, "m": {"$max": "$m"}}}]):
        if isinstance(d.get("m"), int):
            best = max(best, d["m"])
    for rec in store.get_round_records(dataset_name):
        best = max(best, int(rec.get("round", 0)))
    return best


def review_state(ds, sample_id: str) -> dict | None:
    """What the Review panel shows about one candidate (None if it does not exist)."""
    try:
        oid = ObjectId(sample_id)
    except Exception:  # noqa: BLE001 - any malformed id from the browser: nothing to show
        return None
    d = ds._sample_collection.find_one(
        {"_id": oid}, {"key": 1, "status": 1, "decision": 1, "reviews": 1, "review_quota": 1,
                       "needs_adjudication": 1, "queue_rank": 1, "queue_round": 1})
    if d is None:
        return None
    d["id"] = str(d.pop("_id"))
    return d


def _ordered_by_queue_rank(view) -> bool:
    """Whether ``view``'s order is ascending ``queue_rank`` and nothing after that sort reorders,
    skips or limits (the saved review queues are: match round, sort by rank, hide fields)."""
    import fiftyone.core.stages as fos

    keeps_order = (fos.Match, fos.MatchTags, fos.Exists, fos.ExcludeFields, fos.SelectFields)
    stages = list(getattr(view, "_stages", None) or [])
    for i in range(len(stages) - 1, -1, -1):
        st = stages[i]
        if isinstance(st, fos.SortBy):
            return (st.field_or_expr == "queue_rank" and not st.reverse
                    and all(isinstance(t, keeps_order) for t in stages[i + 1:]))
    return False


def next_in_view(view, sample_id: str) -> str | None:
    """The id of the sample after ``sample_id`` in ``view``'s order (None at the end).

    A view in queue order (the review queues the App opens) is answered by one query on the
    ``(queue_round, queue_rank)`` index, whatever the queue's size; any other view lists its
    ids, so its cost grows with the view.
    """
    try:
        oid = ObjectId(sample_id)
    except Exception:  # noqa: BLE001 - any malformed id from the browser: no next sample
        return None
    if _ordered_by_queue_rank(view):
        from fiftyone import ViewField as F

        d = view._dataset._sample_collection.find_one({"_id": oid}, {"queue_rank": 1})
        if d is None or d.get("queue_rank") is None:
            return None
        ids = view.match(F("queue_rank") > d["queue_rank"]).limit(1).values("id")
        return ids[0] if ids else None
    ids = view.values("id")
    try:
        i = ids.index(str(oid))
    except ValueError:
        return None
    return ids[i + 1] if i + 1 < len(ids) else None

