"""The decision ledger: the one module that changes a sample's reviews, decisions and status.

Every sample carries two append-only lists:

* ``reviews``: every human judgment (reviewer, time, accept / reject / withdrawn, reason,
  adjudication flag, when the candidate was shown);
* ``decisions``: every decision that ever set the sample's status (import, discriminator,
  human, a "pending" marker when a human decision was withdrawn, a restored automatic decision).

The invariant this module owns: **a sample's ``status``, ``decided_by``, ``decided_round`` and
``decision`` always equal the last entry of ``decisions``** (``pending`` with no entry; a pending
marker leaves ``decided_by`` empty), and that last entry is what the reviews and the automatic
decisions imply (:func:`derive`). Export and
training read the history; the App, ``status`` and the queue read the current fields; they
cannot disagree.

How the current decision follows from the lists:

1. A human verdict, when there is one, wins: for an item judged by one reviewer
   (``review_quota`` 1) the most recent standing judgment; for a double-review item, the
   agreement of ``quota`` different reviewers (disagreement -> ``needs_adjudication``); an
   adjudicator's standing judgment settles either. A reviewer's latest entry counts; a
   ``withdrawn`` entry (undo) removes their judgment.
2. Without a human verdict, the latest automatic (or import) decision stands - restored, as a
   new history entry, if a human decision had replaced it and was withdrawn.
3. Otherwise the sample is pending (a pending marker is appended when a human decision is
   withdrawn, so the history shows it).

Concurrency: each write is one atomic update per sample, guarded by the sample's
``ledger_rev`` counter (compare-and-swap). A writer that lost a race re-reads and retries, so two
processes reviewing, undoing and auto-labelling at once never lose an entry nor break the
invariant, and a kill can never leave a review recorded but not settled.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Iterable, Sequence

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import UpdateOne

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError

WITHDRAWN = "withdrawn"
REASON_WITHDRAWN = "withdrawn"
REASON_DISAGREEMENT = "reviewers disagree"
REASON_RESTORED = "restored after a human judgment was withdrawn"

READ_FIELDS = {"kind": 1, "status": 1, "decided_by": 1, "decision": 1, "decisions": 1,
               "reviews": 1, "review_quota": 1, "queue_round": 1, "needs_adjudication": 1,
               "ledger_rev": 1}
_MAX_TRIES = 100
BATCH_SIZE = 5_000  # samples per guarded bulk write


def _oid(sample_id) -> ObjectId:
    try:
        return sample_id if isinstance(sample_id, ObjectId) else ObjectId(sample_id)
    except (InvalidId, TypeError):
        raise ConfigError(f"{sample_id!r} is not a sample id") from None


# --- pure derivation -----------------------------------------------------------------------


def standing_reviews(reviews: Sequence[dict] | None, excluded: frozenset = frozenset()
                     ) -> tuple[dict, dict]:
    """Each reviewer's standing judgment and standing adjudication: ``{reviewer: (position,
    entry)}`` twice. A reviewer's latest entry counts; a ``withdrawn`` entry (undo) takes back
    their judgment and adjudication; ``excluded`` reviewers count for nothing."""
    standing: dict[str, tuple[int, dict]] = {}
    adjudications: dict[str, tuple[int, dict]] = {}
    for pos, r in enumerate(reviews or ()):
        if not r or r.get("reviewer") in excluded:
            continue
        who = r["reviewer"]
        if r.get("status") == WITHDRAWN:
            standing.pop(who, None)
            adjudications.pop(who, None)
        elif r.get("adjudication"):
            adjudications[who] = (pos, r)
        else:
            standing[who] = (pos, r)
    return standing, adjudications


def human_verdict(reviews: Sequence[dict] | None, quota: int = 1,
                  excluded: frozenset = frozenset()) -> tuple[dict | None, bool]:
    """The decision the standing human judgments imply, and whether reviewers disagree.

    Parameters
    ----------
    reviews : list of dict
        Review entries, oldest first (``reviewer``, ``status`` in accepted / rejected /
        withdrawn, ``round``, ``adjudication``, ``at``, ``reason``).
    quota : int
        Reviewers needed (1, or 2 for the double-review share).
    excluded : set of str
        Reviewers whose judgments do not count (see :func:`set_excluded_reviewers`).

    Returns
    -------
    (decision document or None, needs_adjudication)
    """
    standing, adjudications = standing_reviews(reviews, excluded)
    live, live_adj = standing, list(adjudications.values())
    if live_adj:
        r = max(live_adj, key=lambda v: v[0])[1]
        return _human_doc(r, reviewer=r["reviewer"], adjudicated=True), False
    if not live:
        return None, False
    if int(quota or 1) <= 1:
        r = max(live.values(), key=lambda v: v[0])[1]
        return _human_doc(r, reviewer=r["reviewer"]), False
    if len(live) < int(quota):
        return None, False
    statuses = {v[1]["status"] for v in live.values()}
    if len(statuses) == 1:
        last = max(live.values(), key=lambda v: v[0])[1]
        return _human_doc(last, reviewer="+".join(sorted(live))), False
    return None, True


def _human_doc(r: dict, *, reviewer: str, adjudicated: bool = False) -> dict:
    d = schema.decision_doc(round=int(r["round"]), phase=schema.PHASE_HUMAN, status=r["status"],
                            by=schema.BY_HUMAN, at=r.get("at"), reviewer=reviewer,
                            reason=r.get("reason"))
    if adjudicated:
        d["adjudicated"] = True
    return d


def _same(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    keys = ("status", "by", "reviewer", "reason", "discriminator", "round")
    return all(a.get(k) == b.get(k) for k in keys)


def derive(doc: dict, excluded: frozenset = frozenset()) -> tuple[dict | None, bool]:
    """The decision a sample's lists imply now, and whether it needs adjudication.

    Returns ``(decision, needs_adjudication)``; ``decision`` is None only for a sample that was
    never decided (status pending, or None for pool items).
    """
    history = [d for d in doc.get("decisions") or () if d]
    verdict, needs_adj = human_verdict(doc.get("reviews"), doc.get("review_quota") or 1, excluded)
    if verdict is not None:
        return verdict, False
    last = history[-1] if history else None
    if last is None or last.get("by") != schema.BY_HUMAN:
        return last, needs_adj
    # the last decision was human but no human verdict stands any more
    base = next((d for d in reversed(history) if d.get("by") != schema.BY_HUMAN), None)
    if base is not None:
        restored = {**base, "at": schema.utcnow(), "reason": REASON_RESTORED}
        restored.pop("op", None)
        return restored, needs_adj
    if last.get("status") == schema.PENDING:
        return last, needs_adj
    round_ = last.get("round")
    return schema.decision_doc(round=int(round_ if round_ is not None else 0),
                               phase=schema.PHASE_HUMAN, status=schema.PENDING,
                               by=schema.BY_HUMAN, reviewer=last.get("reviewer"),
                               reason=REASON_DISAGREEMENT if needs_adj else REASON_WITHDRAWN), needs_adj


def current_fields(doc: dict, decision: dict | None, needs_adj: bool) -> dict:
    """The ``$set`` that makes the current fields equal ``decision``."""
    if decision is None:
        status = (schema.PENDING if doc.get("kind") in (schema.KIND_CANDIDATE, schema.KIND_GOLD)
                  else doc.get("status"))
        return {"status": status, "decided_by": None, "decided_round": None, "decision": None,
                "needs_adjudication": bool(needs_adj)}
    settled = decision["status"] != schema.PENDING  # a pending marker decides nothing
    return {"status": decision["status"], "decided_by": decision["by"] if settled else None,
            "decided_round": decision["round"] if settled else None, "decision": decision,
            "needs_adjudication": bool(needs_adj)}


def check_invariant(doc: dict, excluded: frozenset = frozenset()) -> list[str]:
    """What is wrong with a stored sample's ledger (empty list when it holds).

    The current fields must equal the last history entry, and that entry must be what
    :func:`derive` implies from the lists.
    """
    problems = []
    history = [d for d in doc.get("decisions") or () if d]
    last = history[-1] if history else None
    want_status = last["status"] if last else (
        schema.PENDING if doc.get("kind") in (schema.KIND_CANDIDATE, schema.KIND_GOLD) else doc.get("status"))
    if doc.get("status") != want_status:
        problems.append(f"status {doc.get('status')!r} but the last decision says {want_status!r}")
    want_by = (last or {}).get("by") if want_status != schema.PENDING else None
    if doc.get("decided_by") != want_by:
        problems.append(f"decided_by {doc.get('decided_by')!r} but the last decision is by "
                        f"{want_by!r}")
    if not _same(doc.get("decision"), last):
        problems.append("the current decision is not the last entry of the history")
    implied, needs_adj = derive(doc, excluded)
    if not _same(implied, last):
        problems.append(f"the reviews imply {(implied or {}).get('status')!r} by "
                        f"{(implied or {}).get('by')!r}, the history ends with "
                        f"{(last or {}).get('status')!r} by {(last or {}).get('by')!r}")
    if bool(doc.get("needs_adjudication")) != bool(needs_adj):
        problems.append("needs_adjudication does not match the reviews")
    return problems


# --- changes, planned in memory and applied with compare-and-swap ---------------------------


@dataclass
class Change:
    """One ledger operation on one sample: new review entries and/or an automatic decision."""

    sample_id: ObjectId
    reviews: list
    automatic: dict | None = None
    skip_repeats: bool = False  # a judgment equal to the reviewer's standing one adds nothing


def _plan(doc: dict, change: Change, excluded: frozenset = frozenset()) -> tuple[dict, list, list]:
    """(``$set``, reviews to push, decisions to push) that apply ``change`` to ``doc``."""
    have = {r.get("op") for r in doc.get("reviews") or () if r}
    latest = {}
    for r in doc.get("reviews") or ():
        if r:
            latest[(r.get("reviewer"), bool(r.get("adjudication")) and r.get("status") != WITHDRAWN)] = r
    new_reviews = []
    for r in change.reviews:
        if r["op"] in have:
            continue  # a retry adds nothing twice
        prev = latest.get((r["reviewer"], bool(r.get("adjudication")) and r["status"] != WITHDRAWN))
        if (change.skip_repeats and prev is not None
                and (prev.get("status"), prev.get("reason")) == (r["status"], r.get("reason"))):
            continue  # the same judgment again (a rerun of a label import): it stands already
        new_reviews.append(r)
        latest[(r["reviewer"], bool(r.get("adjudication")) and r["status"] != WITHDRAWN)] = r
    reviews = list(doc.get("reviews") or []) + new_reviews
    history = [d for d in doc.get("decisions") or () if d]
    pushed: list = []
    view = {**doc, "reviews": reviews, "decisions": history}
    if change.automatic is not None:
        verdict, _ = human_verdict(reviews, doc.get("review_quota") or 1, excluded)
        last = history[-1] if history else None
        if verdict is None and not _same(last, change.automatic):
            pushed.append(change.automatic)
            view["decisions"] = history + pushed
    decision, needs_adj = derive(view, excluded)
    last = view["decisions"][-1] if view["decisions"] else None
    if decision is not None and not _same(decision, last):
        decision = {**decision, "op": secrets.token_hex(6)}
        pushed.append(decision)
        last = decision
    fields = current_fields(doc, last, needs_adj)
    return fields, new_reviews, pushed


def _update(doc: dict, change: Change, excluded: frozenset = frozenset()):
    fields, new_reviews, new_decisions = _plan(doc, change, excluded)
    rev = doc.get("ledger_rev")
    update: dict = {"$set": {**fields, "ledger_rev": int(rev or 0) + 1,
                             "last_modified_at": schema.utcnow()}}
    push = {}
    if new_reviews:
        push["reviews"] = {"$each": new_reviews}
    if new_decisions:
        push["decisions"] = {"$each": new_decisions}
    if push:
        update["$push"] = push
    return UpdateOne({"_id": doc["_id"], "ledger_rev": rev}, update), fields


def apply_changes(coll, changes: Sequence[Change], *, batch_size: int | None = None,
                  excluded: frozenset | None = None) -> dict:
    """Apply ledger changes in bulk; returns ``{sample_id (str): current fields}``.

    Several changes of the same sample are merged in order. Each sample gets one guarded
    update per try; samples that another writer changed meanwhile are re-read and retried.
    """
    merged: dict[ObjectId, Change] = {}
    order: list[ObjectId] = []
    for c in changes:
        if c.sample_id not in merged:
            merged[c.sample_id] = Change(c.sample_id, list(c.reviews), c.automatic, c.skip_repeats)
            order.append(c.sample_id)
        else:
            m = merged[c.sample_id]
            m.reviews += c.reviews
            if c.automatic is not None:
                m.automatic = c.automatic
    batch_size = int(batch_size or BATCH_SIZE)
    if excluded is None:
        excluded = excluded_reviewers(coll)
    out: dict = {}
    todo = order
    for _ in range(_MAX_TRIES):
        if not todo:
            return out
        failed = []
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            docs = {d["_id"]: d for d in coll.find({"_id": {"$in": chunk}}, READ_FIELDS)}
            ops, planned = [], []
            for oid in chunk:
                doc = docs.get(oid)
                if doc is None:
                    raise ConfigError(f"sample {oid} does not exist (deleted meanwhile?)")
                op, fields = _update(doc, merged[oid], excluded)
                ops.append(op)
                planned.append((oid, fields))
            res = coll.bulk_write(ops, ordered=False)
            if res.matched_count == len(ops):
                out.update({str(oid): f for oid, f in planned})
            else:
                # another writer got in between for some samples: planning is idempotent
                # (review entries carry op tokens, equal decisions are not repeated), so the
                # whole chunk is re-read and re-applied
                failed += chunk
        todo = failed
    raise ConfigError(f"{len(todo)} samples kept changing while being decided (e.g. {todo[0]}); "
                      "try again")


# --- reviewers whose judgments do not count ------------------------------------------------

SETTINGS_COLLECTION = "rorem_data_ledger_settings"


def _settings(coll):
    return coll.database[SETTINGS_COLLECTION]


def excluded_reviewers(ds_or_coll) -> frozenset:
    """Reviewers excluded in this dataset (their judgments count for nothing)."""
    coll = getattr(ds_or_coll, "_sample_collection", ds_or_coll)
    doc = _settings(coll).find_one({"_id": coll.name}, {"excluded": 1})
    return frozenset((doc or {}).get("excluded") or ())


def set_excluded_reviewers(ds, names, *, excluded: bool = True) -> dict:
    """Exclude (or include again) reviewers: their judgments stop (or start again) counting for
    every sample they judged - training, estimates, exports and the App all follow, because all
    of them read the ledger. Returns ``{"excluded": [...], "resettled": n}``.

    The judgments themselves stay in ``reviews``: excluding is reversible.
    """
    coll = ds._sample_collection
    names = sorted({str(n).strip() for n in names if str(n).strip()})
    if not names:
        raise ConfigError("name at least one reviewer")
    op = "$addToSet" if excluded else "$pull"
    arg = {"excluded": {"$each": names}} if excluded else {"excluded": {"$in": names}}
    _settings(coll).update_one({"_id": coll.name}, {op: arg}, upsert=True)
    ids = [d["_id"] for d in coll.find({"reviews.reviewer": {"$in": names}}, {"_id": 1})]
    apply_changes(coll, [Change(i, []) for i in ids])
    return {"excluded": sorted(excluded_reviewers(coll)), "resettled": len(ids)}


# --- the operations upper layers call ------------------------------------------------------


def review_entry(*, reviewer: str, status: str, round: int, reason: str | None = None,
                 adjudication: bool = False, shown_at=None) -> dict:
    """A raw review entry (``status`` accepted / rejected / withdrawn)."""
    if status not in (schema.ACCEPTED, schema.REJECTED, WITHDRAWN):
        raise ConfigError(f"review status must be accepted, rejected or withdrawn; got {status!r}")
    return {"_cls": "DynamicEmbeddedDocument", "reviewer": str(reviewer), "at": schema.utcnow(),
            "status": status, "reason": reason, "round": int(round),
            "adjudication": bool(adjudication), "shown_at": shown_at, "op": secrets.token_hex(6)}


def queue_rounds(ds_or_coll, sample_ids: Iterable) -> dict:
    """``{ObjectId: queue_round}`` for the given samples that are queued candidates."""
    coll = getattr(ds_or_coll, "_sample_collection", ds_or_coll)
    oids = [_oid(s) for s in sample_ids]
    return {d["_id"]: d.get("queue_round") for d in coll.find(
        {"_id": {"$in": oids}, "kind": {"$in": [schema.KIND_CANDIDATE, schema.KIND_GOLD]},
         "queue_round": {"$ne": None}}, {"queue_round": 1})}


def record_reviews(ds, rows: Sequence[tuple], *, round: int | None = None,
                   skip_repeats: bool = False) -> dict:
    """Record human judgments and settle the decisions they imply, atomically per sample.

    Parameters
    ----------
    ds : fiftyone.Dataset
    rows : sequence of (sample_id, status, reviewer, reason, adjudicate[, shown_at])
        ``status`` accepted, rejected or withdrawn (undo).
    round : int, optional
        Every sample must be queued for this round (default: each sample's own queue round).
    skip_repeats : bool
        A row equal to the reviewer's standing judgment adds nothing (rerunning a label import
        after an interruption then ends in the same records as one uninterrupted run).

    Returns
    -------
    dict
        ``{sample_id: current fields}`` after the update.

    Raises
    ------
    ConfigError
        A sample that is not a queued candidate (of ``round``).
    """
    coll = ds._sample_collection
    rounds = queue_rounds(coll, [r[0] for r in rows])
    changes = []
    for row in rows:
        sid, status, reviewer, reason, adjudicate = row[:5]
        shown_at = row[5] if len(row) > 5 else None
        oid = _oid(sid)
        q = rounds.get(oid)
        if q is None:
            raise ConfigError(f"sample {sid} is not a candidate in a review queue; build the "
                              "round's queue first (rorem_data.select), and judge samples of that queue")
        if round is not None and int(round) != int(q):
            raise ConfigError(f"sample {sid} is queued for round {q}, not round {round}")
        changes.append(Change(oid, [review_entry(reviewer=reviewer, status=status, round=int(q),
                                                 reason=reason, adjudication=adjudicate,
                                                 shown_at=shown_at)], skip_repeats=skip_repeats))
    return apply_changes(coll, changes)


def decide_automatically(ds, sample_ids: Sequence[str], decisions: Sequence[dict]) -> int:
    """Record discriminator decisions; a standing human verdict is never overruled.

    A decision equal to the current one (a rerun) adds nothing. Returns how many samples'
    current decision is now the given automatic one.
    """
    if len(sample_ids) != len(decisions):
        raise ConfigError(f"{len(sample_ids)} sample ids but {len(decisions)} decisions")
    changes = [Change(_oid(s), [], {**d, "op": secrets.token_hex(6)}) for s, d in zip(sample_ids, decisions)]
    out = apply_changes(ds._sample_collection, changes)
    return sum(1 for f in out.values() if f.get("decided_by") == schema.BY_DISCRIMINATOR)


REASON_REDO = "withdrawn: the round's automatic decisions are being made again"


def withdraw_automatic(ds, round: int, *, reason: str = REASON_REDO) -> int:
    """Withdraw the automatic decisions of ``round`` (a redo): each candidate the discriminator
    decides now gets a pending marker by the discriminator appended to its history, so it is
    pending again; a standing human verdict is never touched. Returns how many were withdrawn."""
    coll = ds._sample_collection
    ids = [d["_id"] for d in coll.find({"kind": schema.KIND_CANDIDATE, "round": int(round),
                                        "decided_by": schema.BY_DISCRIMINATOR}, {"_id": 1})]
    if not ids:
        return 0
    marker = schema.decision_doc(round=int(round), phase=schema.PHASE_AUTO, status=schema.PENDING,
                                 by=schema.BY_DISCRIMINATOR, reason=reason)
    out = apply_changes(coll, [Change(oid, [], {**marker, "op": secrets.token_hex(6)}) for oid in ids])
    return sum(1 for f in out.values() if f.get("status") == schema.PENDING)


def resettle(ds, sample_ids: Sequence[str]) -> dict:
    """Re-derive and store the current decision of samples (repairs data written before the
    ledger existed; a no-op where the invariant holds)."""
    return apply_changes(ds._sample_collection, [Change(_oid(s), []) for s in sample_ids])
