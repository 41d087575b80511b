"""Human review: judgments, two-reviewer agreement, adjudication, label files.

Every judgment goes to the decision ledger (:mod:`rorem_data.dataset.ledger`), which appends it
to the candidate's ``reviews`` and settles the decision it implies in one atomic update:

* an item judged by one reviewer (``review_quota`` 1) is decided by the latest standing
  judgment;
* an item in the double-review share (``review_quota`` 2) is decided when two different
  reviewers agree; if they disagree it stays pending with ``needs_adjudication`` set and shows
  up in the round's adjudication view, where an adjudicator's judgment is final;
* undo withdraws the reviewer's judgment: the decision falls back to what still stands.

The App plugin, the CLI and label-file imports all go through :func:`apply_review` /
:func:`apply_reviews` / :func:`clear_review`, so they behave the same.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass

from rorem_data.core import jsonfile, schema
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.validate import Problem
from rorem_data.dataset import ledger, queries
from rorem_data.dataset.queues import adjudication_view_name, queue_view_name  # noqa: F401

DECISIONS = {"accept": schema.ACCEPTED, "reject": schema.REJECTED, "accepted": schema.ACCEPTED,
             "rejected": schema.REJECTED, "success": schema.ACCEPTED, "failure": schema.REJECTED,
             "1": schema.ACCEPTED, "0": schema.REJECTED, "yes": schema.ACCEPTED, "no": schema.REJECTED}


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


def _check_judgment(decision, reason, reviewer) -> tuple[str, str | None, str]:
    status = normalize_decision(decision)
    reason = check_reason(reason)
    if status == schema.ACCEPTED and reason is not None:
        raise ConfigError("a failure reason only goes with a rejection")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ConfigError("reviewer must be a non-empty name (pass reviewer=... / --reviewer)")
    return status, reason, reviewer.strip()


def apply_review(ds, sample_id: str, decision: str, *, reviewer: str, reason: str | None = None,
                 round: int | None = None, adjudicate: bool = False, shown_at=None) -> dict:
    """Record one human judgment of a queued candidate and settle its decision.

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
    shown_at : datetime, optional
        When the candidate was shown to the reviewer (time per decision).

    Returns
    -------
    dict
        ``{"sample_id", "status", "final", "needs_adjudication"}``; ``status`` is the sample's
        status after the update, ``final`` whether a human verdict now stands.

    Raises
    ------
    ConfigError
        Unknown decision or reason, an empty reviewer, a sample that is not a queued candidate
        of that round.
    """
    status, reason, reviewer = _check_judgment(decision, reason, reviewer)
    out = ledger.record_reviews(ds, [(sample_id, status, reviewer, reason, adjudicate, shown_at)],
                                round=round)
    return _outcome(sample_id, out)


def _outcome(sample_id: str, out: dict) -> dict:
    f = next(iter(out.values()))
    return {"sample_id": sample_id, "status": f["status"],
            "final": f["decided_by"] == schema.BY_HUMAN and f["status"] != schema.PENDING,
            "needs_adjudication": f["needs_adjudication"]}


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
    rows = list(rows)
    problems, clean = [], []
    for i, (sid, decision, reviewer, reason) in enumerate(rows):
        try:
            status, reason, reviewer = _check_judgment(decision, reason, reviewer)
            ledger._oid(sid)
        except ConfigError as exc:
            problems.append(Problem(f"row {i + 1}", str(sid), str(exc), "fix the row"))
            continue
        clean.append((sid, status, reviewer, reason, False))
    queued = {str(k) for k, q in ledger.queue_rounds(ds, [c[0] for c in clean]).items()
              if q == int(round)}
    for sid, *_rest in clean:
        if sid not in queued:
            problems.append(Problem(f"sample {sid}", "", f"not in the round-{round} review queue",
                                    "check the id and the round"))
    if problems:
        raise ValidationError(f"Refusing {len(rows)} judgments: {len(problems)} bad; nothing was applied",
                              problems)
    if clean:
        ledger.record_reviews(ds, clean, round=int(round), skip_repeats=True)
    return len(clean)


def clear_review(ds, sample_id: str, *, reviewer: str) -> dict:
    """Withdraw ``reviewer``'s judgment of a candidate (undo); the decision falls back to what
    still stands (another reviewer's judgment, an automatic decision, or pending)."""
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ConfigError("reviewer must be a non-empty name")
    out = ledger.record_reviews(ds, [(sample_id, ledger.WITHDRAWN, reviewer.strip(), None, False)])
    res = _outcome(sample_id, out)
    return {"sample_id": sample_id, "status": res["status"]}


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
            data = jsonfile.load(path, what=f"labels file {path}", error=ValidationError,
                                 fix="write a JSON list of label objects")
            if not isinstance(data, list):
                raise ValidationError(f"{name}: expected a JSON list of label objects",
                                      [Problem(name, path, "top level is not a list",
                                               'write [{"sample_id": ..., "decision": "accept"}, ...]')])
        else:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8-sig")  # spreadsheets write a byte-order mark
            data = list(csv.DictReader(io.StringIO(text, newline="")))
    except FileNotFoundError:
        raise ValidationError(f"labels file {path} does not exist") from None
    except (UnicodeDecodeError, csv.Error) as exc:
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
    queued = {d["id"]: d.get("key") for d in queries.queue_members(ds, round, ["key"])}
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
    rows = []
    for d in queries.queue_members(project.dataset, round, ["key", "filepath", "target_path",
                                                            "mask.mask_path", "status", "decided_by",
                                                            "decision"]):
        dec = d.get("decision") or {}
        human = d.get("decided_by") == schema.BY_HUMAN
        rows.append({
            "sample_id": d["id"], "key": d["key"], "source": d["filepath"],
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
    pairs = []
    waiting = 0
    for d in queries.queue_members(project.dataset, round, ["reviews", "needs_adjudication"],
                                   min_quota=2):
        latest: dict[str, str] = {}
        for r in d.get("reviews") or []:
            if r and r.get("round") == round and not r.get("adjudication"):
                latest[r["reviewer"]] = r["status"]
        latest = {k: v for k, v in latest.items() if v != ledger.WITHDRAWN}
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
