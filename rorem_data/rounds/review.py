"""Human review: recording judgments, two-reviewer agreement, adjudication, label files.

Every human judgment is appended to the candidate's ``reviews`` list in one atomic update, and
the final human decision is derived from the reviews:

* an item judged by one reviewer (``review_quota`` 1) is decided by that judgment;
* an item in the double-review share (``review_quota`` 2) is decided when two different
  reviewers agree; if they disagree it stays pending with ``needs_adjudication`` set and shows
  up in the round's adjudication view, where an adjudicator's judgment is final.

The App plugin, the CLI and label-file imports all go through :func:`apply_review` /
:func:`apply_reviews`, so they behave the same.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.validate import Problem

DECISIONS = {"accept": schema.ACCEPTED, "reject": schema.REJECTED, "accepted": schema.ACCEPTED,
             "rejected": schema.REJECTED, "success": schema.ACCEPTED, "failure": schema.REJECTED,
             "1": schema.ACCEPTED, "0": schema.REJECTED, "yes": schema.ACCEPTED, "no": schema.REJECTED}


def queue_view_name(round: int) -> str:
    return f"review-round-{int(round)}"


def adjudication_view_name(round: int) -> str:
    return f"adjudicate-round-{int(round)}"


def normalize_decision(value) -> str:
    """Map accept/reject spellings to ``accepted``/``rejected``; raise ConfigError otherwise."""
    key = str(value).strip().lower()
    if key not in DECISIONS:
        raise ConfigError(f"decision {value!r} is not one of accept, reject (or accepted/rejected, "
                          "success/failure, yes/no, 1/0)")
    return DECISIONS[key]


def check_reason(reason):
    if reason in (None, ""):
        return None
    if reason not in schema.FAILURE_REASONS:
        raise ConfigError(f"failure reason {reason!r} is unknown; use one of "
                          f"{', '.join(schema.FAILURE_REASONS)}")
    return reason


def _final(doc: dict, round: int) -> tuple[dict | None, bool]:
    """The decision implied by a candidate's reviews, and whether it needs adjudication."""
    reviews = [r for r in doc.get("reviews") or [] if r and r.get("round") == round]
    if not reviews:
        return None, False
    adj = [r for r in reviews if r.get("adjudication")]
    if adj:
        r = adj[-1]
        return _decision_from(r, round, reviewer=r["reviewer"]), False
    latest: dict[str, dict] = {}
    for r in reviews:  # a reviewer may change their mind: their last word counts
        latest[r["reviewer"]] = r
    quota = int(doc.get("review_quota") or 1)
    if quota <= 1:
        r = reviews[-1]
        return _decision_from(r, round, reviewer=r["reviewer"]), False
    if len(latest) < quota:
        return None, False
    statuses = {r["status"] for r in latest.values()}
    if len(statuses) == 1:
        names = "+".join(sorted(latest))
        last = max(latest.values(), key=lambda r: r["at"])
        return _decision_from(last, round, reviewer=names), False
    return None, True


def _decision_from(r: dict, round: int, *, reviewer: str) -> dict:
    return schema.decision_doc(round=round, phase=schema.PHASE_HUMAN, status=r["status"],
                               by=schema.BY_HUMAN, at=r["at"], reviewer=reviewer,
                               reason=r.get("reason"))


def apply_review(ds, sample_id: str, decision: str, *, reviewer: str, reason: str | None = None,
                 round: int | None = None, adjudicate: bool = False) -> dict:
    """Record one human judgment of a queued candidate and update its decision.

    Parameters
    ----------
    ds : fiftyone.Dataset
    sample_id : str
        The candidate's sample id.
    decision : {"accept", "reject"}
        Also accepts accepted/rejected, success/failure, yes/no, 1/0.
    reviewer : str
        Who judged.
    reason : str, optional
        Failure reason, one of :data:`rorem_data.core.schema.FAILURE_REASONS` (rejections only).
    round : int, optional
        The queue's round (default: the candidate's ``queue_round``); must match it.
    adjudicate : bool
        This judgment settles a disagreement and is final.

    Returns
    -------
    dict
        ``{"sample_id", "status", "final", "needs_adjudication"}``; ``status`` is the sample's
        status after the update.

    Raises
    ------
    ConfigError
        Unknown decision or reason, an empty reviewer, a sample that is not a queued candidate
        of that round.
    """
    from bson import ObjectId
    from bson.errors import InvalidId

    status = normalize_decision(decision)
    reason = check_reason(reason)
    if status == schema.ACCEPTED and reason is not None:
        raise ConfigError("a failure reason only goes with a rejection")
    if not reviewer or not str(reviewer).strip():
        raise ConfigError("reviewer must be a non-empty name (set --reviewer or ROREM_REVIEWER)")
    try:
        oid = ObjectId(sample_id)
    except (InvalidId, TypeError):
        raise ConfigError(f"{sample_id!r} is not a sample id") from None
    coll = ds._sample_collection
    cur = coll.find_one({"_id": oid}, {"kind": 1, "queue_round": 1})
    if cur is None or cur.get("kind") != schema.KIND_CANDIDATE or cur.get("queue_round") is None:
        raise ConfigError(f"sample {sample_id} is not a candidate in a review queue; run "
                          "`rorem-data select --round N` first, and judge samples of that queue")
    qround = int(cur["queue_round"])
    if round is not None and int(round) != qround:
        raise ConfigError(f"sample {sample_id} is queued for round {qround}, not round {round}")
    review = {"_cls": "DynamicEmbeddedDocument", "reviewer": str(reviewer), "at": schema.utcnow(),
              "status": status, "reason": reason, "round": qround, "adjudication": bool(adjudicate)}
    coll.update_one({"_id": oid}, {"$push": {"reviews": review}})
    status, final, needs_adj = _settle(coll, oid, qround)
    return {"sample_id": sample_id, "status": status, "final": final is not None,
            "needs_adjudication": needs_adj}


def _settle_op(doc: dict, round: int):
    """The update that makes a candidate's decision agree with its reviews, guarded so that it
    only applies if no review arrived since ``doc`` was read (optimistic concurrency)."""
    from pymongo import UpdateOne

    final, needs_adj = _final(doc, round)
    update: dict = {"needs_adjudication": needs_adj, "last_modified_at": schema.utcnow()}
    guard = {"_id": doc["_id"], "reviews": {"$size": len(doc.get("reviews") or [])}}
    if final is not None:
        update.update({"status": final["status"], "decided_by": final["by"],
                       "decided_round": final["round"], "decision": final})
        cur = doc.get("decision") or {}
        if (cur.get("status"), cur.get("reviewer"), cur.get("by")) == (final["status"], final["reviewer"], final["by"]):
            op = UpdateOne(guard, {"$set": update})  # already recorded: no second history entry
        else:
            op = UpdateOne(guard, {"$set": update, "$push": {"decisions": final}})
    else:
        update["status"] = schema.PENDING
        op = UpdateOne(guard, {"$set": update})
    return op, update["status"], final, needs_adj


_SETTLE_FIELDS = {"reviews": 1, "review_quota": 1, "decision": 1}


def _settle(coll, oid, round: int):
    """Re-derive one candidate's decision from its reviews until no concurrent review interferes."""
    for _ in range(50):
        doc = coll.find_one({"_id": oid}, _SETTLE_FIELDS)
        op, status, final, needs_adj = _settle_op(doc, round)
        if coll.bulk_write([op]).matched_count:
            return status, final, needs_adj
    raise RuntimeError(f"sample {oid}: reviews kept changing while being settled; try again")


def apply_reviews(ds, rows, *, round: int) -> int:
    """Record many human judgments at once (label files, simulated reviewers): all or nothing.

    Parameters
    ----------
    rows : iterable of (sample_id, decision, reviewer, reason)
    round : int
        Every sample must be queued for this round.

    Returns
    -------
    int
        Judgments recorded.

    Raises
    ------
    ValidationError
        Listing every bad row (unknown decision or reason, reason on an accept, a sample not in
        the round's queue); nothing is written then.
    """
    from bson import ObjectId
    from bson.errors import InvalidId
    from pymongo import UpdateOne

    rows = list(rows)
    coll = ds._sample_collection
    problems, clean = [], []
    oids = []
    for i, (sid, decision, reviewer, reason) in enumerate(rows):
        try:
            status = normalize_decision(decision)
            reason = check_reason(reason)
            if status == schema.ACCEPTED and reason:
                raise ConfigError("a failure reason only goes with a rejection")
            if not reviewer:
                raise ConfigError("reviewer is empty")
            oid = ObjectId(sid)
        except (ConfigError, InvalidId, TypeError) as exc:
            problems.append(Problem(f"row {i + 1}", str(sid), str(exc), "fix the row"))
            continue
        oids.append(oid)
        clean.append((oid, status, str(reviewer), reason))
    queued = {d["_id"] for d in coll.find({"_id": {"$in": oids}, "queue_round": int(round)}, {"_id": 1})}
    for i, (oid, *_rest) in enumerate(clean):
        if oid not in queued:
            problems.append(Problem(f"sample {oid}", "", f"not in the round-{round} review queue",
                                    "check the id and the round"))
    if problems:
        raise ValidationError(f"Refusing {len(rows)} judgments: {len(problems)} bad; nothing was applied",
                              problems)
    now = schema.utcnow()
    coll.bulk_write([UpdateOne({"_id": oid}, {"$push": {"reviews": {
        "_cls": "DynamicEmbeddedDocument", "reviewer": reviewer, "at": now, "status": status,
        "reason": reason, "round": int(round), "adjudication": False}}})
        for oid, status, reviewer, reason in clean], ordered=True) if clean else None
    docs = list(coll.find({"_id": {"$in": list(queued)}}, _SETTLE_FIELDS))
    ops = [_settle_op(d, int(round))[0] for d in docs]
    if ops:
        res = coll.bulk_write(ops, ordered=False)
        if res.matched_count < len(ops):  # a concurrent reviewer got in between: settle one by one
            for d in docs:
                _settle(coll, d["_id"], int(round))
    return len(clean)


def clear_review(ds, sample_id: str, *, reviewer: str) -> dict:
    """Withdraw ``reviewer``'s judgments of a candidate in its queue round (undo)."""
    from bson import ObjectId

    coll = ds._sample_collection
    oid = ObjectId(sample_id)
    cur = coll.find_one({"_id": oid}, {"queue_round": 1})
    if cur is None or cur.get("queue_round") is None:
        raise ConfigError(f"sample {sample_id} is not in a review queue")
    qround = int(cur["queue_round"])
    coll.update_one({"_id": oid}, {"$pull": {"reviews": {"reviewer": reviewer, "round": qround}}})
    doc = coll.find_one({"_id": oid}, {"reviews": 1, "review_quota": 1})
    final, needs_adj = _final(doc, qround)
    update = {"needs_adjudication": needs_adj, "last_modified_at": schema.utcnow()}
    if final is None:
        update.update({"status": schema.PENDING, "decided_by": None, "decision": None,
                       "decided_round": None})
        # the withdrawn decision stays in the history, followed by a pending marker
        coll.update_one({"_id": oid}, {"$set": update, "$push": {"decisions": schema.decision_doc(
            round=qround, phase=schema.PHASE_HUMAN, status=schema.PENDING, by=schema.BY_HUMAN,
            reviewer=reviewer, reason="withdrawn")}})
    else:
        coll.update_one({"_id": oid}, {"$set": {**update, "status": final["status"],
                                                "decided_by": final["by"], "decision": final}})
    return {"sample_id": sample_id, "status": update.get("status", final and final["status"])}


@dataclass
class LabelRow:
    line: int
    sample_id: str | None
    key: str | None
    decision: str
    reviewer: str
    reason: str | None


def read_labels(path: str, *, default_reviewer: str | None = None) -> list[LabelRow]:
    """Read a labels file (CSV with a header, or JSON list of objects).

    Columns: ``sample_id`` or ``key``; ``decision`` (accept/reject, ...); optional ``reviewer``,
    ``reason``. Raises ValidationError listing every malformed row.
    """
    problems: list[Problem] = []
    name = os.path.basename(path)
    try:
        if path.lower().endswith(".json"):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, list):
                raise ValidationError(f"{name}: expected a JSON list of label objects",
                                      [Problem(name, path, "top level is not a list",
                                               'write [{"sample_id": ..., "decision": "accept"}, ...]')])
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                data = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ValidationError(f"labels file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"{name} is not valid ({exc})",
                              [Problem(name, path, f"cannot parse ({exc})", "fix the file")]) from None
    rows = []
    for i, r in enumerate(data):
        item = f"{name} row {i + 1}"
        if not isinstance(r, dict):
            problems.append(Problem(item, path, "row is not an object", "use objects with sample_id and decision"))
            continue
        sid, key = (r.get("sample_id") or None), (r.get("key") or None)
        if not sid and not key:
            problems.append(Problem(item, path, "row has neither sample_id nor key", "add one of them"))
            continue
        try:
            status = normalize_decision(r.get("decision", ""))
            reason = check_reason(r.get("reason") or None)
        except ConfigError as exc:
            problems.append(Problem(item, path, str(exc), "fix the value"))
            continue
        reviewer = r.get("reviewer") or default_reviewer
        if not reviewer:
            problems.append(Problem(item, path, "no reviewer", "add a reviewer column or pass --reviewer"))
            continue
        rows.append(LabelRow(i + 1, sid, key, status, str(reviewer), reason))
    if problems:
        raise ValidationError(f"Refusing labels file {name}: {len(problems)} bad row(s); nothing "
                              "was applied", problems)
    return rows


def import_labels(project, path: str, *, round: int, default_reviewer: str | None = None) -> int:
    """Apply a labels file as human reviews of the round's queue: all or nothing.

    Every row is checked (ids exist, are queued for ``round``, decisions and reasons are valid)
    before any is applied. Returns the number of rows applied.
    """
    ds = project.dataset
    rows = read_labels(path, default_reviewer=default_reviewer)
    coll = ds._sample_collection
    from bson import ObjectId
    from bson.errors import InvalidId

    queued = {str(d["_id"]): d.get("key") for d in coll.find({"queue_round": int(round)}, {"key": 1})}
    by_key = {k: sid for sid, k in queued.items()}
    problems, resolved = [], []
    name = os.path.basename(path)
    for r in rows:
        sid = r.sample_id
        if sid is None:
            sid = by_key.get(r.key)
            if sid is None:
                problems.append(Problem(f"{name} row {r.line}", path, f"key {r.key!r} is not in the round-{round} queue",
                                        "check the key, or the --round"))
                continue
        else:
            try:
                ObjectId(sid)
            except (InvalidId, TypeError):
                problems.append(Problem(f"{name} row {r.line}", path, f"{sid!r} is not a sample id", "fix the id"))
                continue
            if sid not in queued:
                problems.append(Problem(f"{name} row {r.line}", path,
                                        f"sample {sid} is not in the round-{round} queue",
                                        "check the id, or the --round"))
                continue
        if r.decision == schema.ACCEPTED and r.reason:
            problems.append(Problem(f"{name} row {r.line}", path, "a failure reason on an accept",
                                    "drop the reason or make it a reject"))
            continue
        resolved.append((sid, r))
    if problems:
        raise ValidationError(f"Refusing labels file {name}: {len(problems)} bad row(s); nothing "
                              "was applied", problems)
    return apply_reviews(ds, [(sid, r.decision, r.reviewer, r.reason) for sid, r in resolved], round=round)


def export_labels(project, path: str, *, round: int) -> int:
    """Write the round's queue and its current labels as CSV or JSON (by extension)."""
    coll = project.dataset._sample_collection
    rows = []
    for d in coll.find({"queue_round": int(round)},
                       {"key": 1, "filepath": 1, "target_path": 1, "mask.mask_path": 1, "status": 1,
                        "decided_by": 1, "decision": 1, "queue_rank": 1, "reviews": 1}).sort("queue_rank", 1):
        dec = d.get("decision") or {}
        human = d.get("decided_by") == schema.BY_HUMAN
        rows.append({
            "sample_id": str(d["_id"]), "key": d["key"], "source": d["filepath"],
            "mask": d["mask"]["mask_path"], "result": d.get("target_path"),
            "decision": ("accept" if d.get("status") == schema.ACCEPTED else "reject") if human else "",
            "reviewer": dec.get("reviewer") or "" if human else "",
            "reason": dec.get("reason") or "" if human else "",
        })
    if path.lower().endswith(".json"):
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else
                               ["sample_id", "key", "source", "mask", "result", "decision", "reviewer", "reason"])
            w.writeheader()
            w.writerows(rows)
    return len(rows)


def reviewer_agreement(project, round: int, *, confidence: float = 0.95) -> dict:
    """Agreement between reviewers on the double-reviewed items of ``round``.

    Returns percent agreement (with a Clopper-Pearson interval), Cohen's kappa over reviewer
    pairs, the number of items compared, and how many await adjudication.
    """
    coll = project.dataset._sample_collection
    pairs = []
    waiting = 0
    for d in coll.find({"queue_round": int(round), "review_quota": {"$gte": 2}},
                       {"reviews": 1, "needs_adjudication": 1}):
        latest: dict[str, str] = {}
        for r in d.get("reviews") or []:
            if r.get("round") == round and not r.get("adjudication"):
                latest[r["reviewer"]] = r["status"]
        if len(latest) >= 2:
            a, b = [latest[k] for k in sorted(latest)[:2]]
            pairs.append((a, b))
        waiting += bool(d.get("needs_adjudication"))
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    out = {"items": n, "agree": agree, "needs_adjudication": waiting}
    if n:
        from scipy.stats import binomtest
        from sklearn.metrics import cohen_kappa_score

        ci = binomtest(agree, n).proportion_ci(confidence_level=confidence, method="exact")
        out["percent_agreement"] = agree / n
        out["percent_agreement_ci"] = [float(ci.low), float(ci.high)]
        a = [x for x, _ in pairs]
        b = [y for _, y in pairs]
        out["cohen_kappa"] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0
    return out
