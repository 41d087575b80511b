"""Label files: a round's judgments as CSV or JSON, and back.

:func:`export_labels` writes one row per standing judgment (and one per unjudged queue item), so
exporting a round and importing the file again is an identity: into the same project it adds
nothing, into a copy of the queue without judgments it records the same judgments per reviewer.
CSV cells that a spreadsheet would run as a formula are written with a leading ``'`` (removed
again on import). :func:`import_labels` checks every row before applying any.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import timezone

from rorem_data.core import jsonfile, schema
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.validate import Problem
from rorem_data.dataset import ledger, queries
from rorem_data.rounds.review.judgments import (
    FORMULA_START,
    RENAME_FIX,
    apply_reviews,
    check_reason,
    formula_name_problem,
    normalize_decision,
)

#: Columns of a labels file, in the order :func:`export_labels` writes them.
LABEL_COLUMNS = ["sample_id", "key", "source", "mask", "result", "decision", "reviewer", "reason",
                 "adjudication", "at"]
_QUOTED = FORMULA_START + ("'",)


def csv_cell(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: a leading ``'`` before a value that starts like
    a formula (``= + - @``, tab, carriage return) or with ``'`` itself (OWASP advice on CSV
    injection). :func:`from_csv_cell` undoes it exactly.

    Examples
    --------
    >>> csv_cell("=HYPERLINK(0)"), csv_cell("ana"), csv_cell("'x")
    ("'=HYPERLINK(0)", 'ana', "''x")
    """
    return "'" + value if value[:1] in _QUOTED else value


def from_csv_cell(cell: str) -> str:
    """The value of a CSV cell written by :func:`csv_cell` (other cells come back unchanged).

    Examples
    --------
    >>> from_csv_cell("'=HYPERLINK(0)"), from_csv_cell("'ana"), from_csv_cell("''x")
    ('=HYPERLINK(0)', "'ana", "'x")
    """
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in _QUOTED else cell


@dataclass
class LabelRow:
    """One judgment read from a labels file.

    ``adjudication`` is None when the file has no ``adjudication`` column (the older format).
    """

    line: int
    sample_id: str | None
    key: str | None
    decision: str
    reviewer: str
    reason: str | None
    adjudication: bool | None = None


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _flag(value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    key = str(value).strip().lower()
    if key in _TRUE | _FALSE:
        return key in _TRUE
    raise ConfigError(f"adjudication {value!r} is not true or false")


def _text(value) -> str | None:
    """A cell as stripped text, None when empty."""
    return None if value is None else (str(value).strip() or None)


def read_labels(path: str, *, default_reviewer: str | None = None) -> list[LabelRow]:
    """Read a labels file (CSV with a header, or JSON list of objects).

    Parameters
    ----------
    path : str
        ``.json`` for JSON, anything else is read as CSV (a byte-order mark is fine). Columns:
        ``sample_id`` or ``key``; ``decision`` (accept/reject, ...; empty for an item nobody
        judged: the row is skipped); optional ``reviewer``, ``reason``, ``adjudication``
        (true/false). Other columns (``source``, ``mask``, ``result``, ``at``) are ignored. CSV
        cells written with a leading ``'`` by :func:`export_labels` are read without it.
    default_reviewer : str, optional
        Reviewer of rows without one.

    Returns
    -------
    list of LabelRow
        The judged rows, in file order.

    Raises
    ------
    ValidationError
        Listing every malformed row (no id, no decision field, unknown decision or reason, a
        reason without a decision, no reviewer, a reviewer name that starts like a spreadsheet
        formula, an adjudication that is not true or false).

    Examples
    --------
    >>> read_labels("labels.csv")                                      # doctest: +SKIP
    [LabelRow(line=1, sample_id='65a...', key=None, decision='accepted', reviewer='ana', ...)]
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
            data = [{k: (from_csv_cell(v) if isinstance(v, str) else v) for k, v in r.items()}
                    for r in csv.DictReader(io.StringIO(text, newline=""))]
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
        if "decision" not in r:
            problems.append(Problem(item, path, "row has no decision field",
                                    "add a decision column: accept or reject (empty for an item "
                                    "nobody judged)"))
            continue
        reason = _text(r.get("reason"))
        if _text(r.get("decision")) is None:
            if reason is not None:
                problems.append(Problem(item, path, f"failure reason {reason!r} but no decision",
                                        "add the decision reject, or clear the reason"))
            continue  # nobody judged this item
        sid, key = _text(r.get("sample_id")), _text(r.get("key"))
        if not sid and not key:
            problems.append(Problem(item, path, "row has neither sample_id nor key", "add one of them"))
            continue
        try:
            status = normalize_decision(r["decision"])
            reason = check_reason(reason)
            adjudication = _flag(r["adjudication"]) if "adjudication" in r else None
        except ConfigError as exc:
            problems.append(Problem(item, path, str(exc), "fix the value"))
            continue
        reviewer = _text(r.get("reviewer")) or _text(default_reviewer)
        if not reviewer:
            problems.append(Problem(item, path, "no reviewer", "add a reviewer column or pass --reviewer"))
            continue
        bad = formula_name_problem(reviewer)
        if bad:
            problems.append(Problem(item, path, bad, RENAME_FIX))
            continue
        rows.append(LabelRow(i + 1, sid, key, status, reviewer, reason, adjudication))
    if problems:
        raise ValidationError(f"Refusing labels file {name}: {len(problems)} bad row(s); nothing "
                              "was applied", problems)
    return rows


def _combined_reviewers(reviewer: str) -> list[str] | None:
    """The reviewers behind a combined name like ``ana+bo``: what files of the older format hold
    for a double-reviewed item the reviewers agreed on (the ledger joins their sorted names)."""
    names = reviewer.split("+")
    if len(names) < 2 or any(not n or n != n.strip() for n in names):
        return None
    if names != sorted(names) or len(set(names)) != len(names):
        return None
    return names


def import_labels(project, path: str, *, round: int, default_reviewer: str | None = None) -> int:
    """Apply a labels file as human reviews of the round's queue: all or nothing.

    Every row is checked (ids exist, are queued for ``round``, decisions and reasons are valid)
    before any is applied. Rows with an empty decision (items nobody judged) are skipped; rows
    with ``adjudication`` true are recorded as adjudications; a row equal to the reviewer's
    standing judgment adds nothing, so importing a file :func:`export_labels` wrote changes
    nothing in the same project.

    Files of the older format (no ``adjudication`` column) still import; their combined
    reviewer of a double-reviewed item (``ana+bo``, both agreeing) is read as one judgment
    by each of them, not as a reviewer named ``ana+bo``.

    Parameters
    ----------
    project : Project
    path : str
        A ``.csv`` or ``.json`` labels file (see :func:`read_labels`).
    round : int
        The queue the rows belong to.
    default_reviewer : str, optional
        Reviewer of rows without one.

    Returns
    -------
    int
        Rows applied (judged rows of the file).

    Raises
    ------
    ValidationError
        Listing every bad row (see :func:`read_labels`; and an id or key not in the round's
        queue, a reason on an accept); nothing is applied then.

    Examples
    --------
    >>> import_labels(project, "labels.csv", round=1)                   # doctest: +SKIP
    42
    """
    ds = project.dataset
    rows = read_labels(path, default_reviewer=default_reviewer)
    members = {d["id"]: d for d in queries.queue_members(ds, round, ["key", "review_quota"])}
    by_key = {d.get("key"): sid for sid, d in members.items()}
    problems, judgments = [], []
    name = os.path.basename(path)
    for r in rows:
        sid = r.sample_id
        if sid is None:
            sid = by_key.get(r.key)
            if sid is None:
                problems.append(Problem(f"{name} row {r.line}", path, f"key {r.key!r} is not in the round-{round} queue",
                                        "check the key, or the round"))
                continue
        else:
            if sid not in members:
                problems.append(Problem(f"{name} row {r.line}", path,
                                        f"sample {sid} is not in the round-{round} queue",
                                        "check the id, or the round"))
                continue
        if r.decision == schema.ACCEPTED and r.reason:
            problems.append(Problem(f"{name} row {r.line}", path, "a failure reason on an accept",
                                    "drop the reason or make it a reject"))
            continue
        reviewers = [r.reviewer]
        if r.adjudication is None and (members[sid].get("review_quota") or 1) >= 2:
            reviewers = _combined_reviewers(r.reviewer) or reviewers
        judgments += [(sid, r.decision, who, r.reason, bool(r.adjudication)) for who in reviewers]
    if problems:
        raise ValidationError(f"Refusing labels file {name}: {len(problems)} bad row(s); nothing "
                              "was applied", problems)
    apply_reviews(ds, judgments, round=round)
    return len(rows)


def standing_judgments(reviews) -> list[dict]:
    """The review entries that stand, oldest first: each reviewer's latest judgment and latest
    adjudication, unless a later ``withdrawn`` entry (undo) took them back - the judgments
    :func:`rorem_data.dataset.ledger.human_verdict` decides from (excluded reviewers included)."""
    standing, adjudications = ledger.standing_reviews(reviews)
    return [r for _pos, r in sorted([*standing.values(), *adjudications.values()], key=lambda v: v[0])]


def _iso(at) -> str:
    if at is None:
        return ""
    if hasattr(at, "isoformat"):
        if getattr(at, "tzinfo", None) is None:
            at = at.replace(tzinfo=timezone.utc)  # the database stores UTC without a zone
        return at.isoformat(timespec="milliseconds")
    return str(at)


def export_labels(project, path: str, *, round: int) -> int:
    """Write the round's queue and its human judgments as CSV or JSON (by extension).

    One row per standing judgment (see :func:`standing_judgments`): each reviewer's latest
    judgment of a queued item, and each adjudication as its own row (``adjudication`` true),
    oldest first; an item nobody has judged gets one row with an empty decision and reviewer.
    Columns: :data:`LABEL_COLUMNS` (``at`` is the judgment's time, ISO 8601 in UTC). In CSV,
    a cell that starts like a spreadsheet formula gets a leading ``'`` (:func:`csv_cell`),
    which :func:`import_labels` removes again; JSON is written as is.

    Importing the file again (:func:`import_labels`) is an identity: into the same project it
    adds no review entry; into a copy of the queue without judgments (matched by ``key`` with
    the ``sample_id`` column emptied) it records the same judgments per reviewer.

    Parameters
    ----------
    project : Project
    path : str
        ``.json`` for JSON, anything else is written as CSV.
    round : int
        The queue to export.

    Returns
    -------
    int
        Rows written.

    Examples
    --------
    >>> export_labels(project, "labels.csv", round=1)                   # doctest: +SKIP
    64
    """
    rows = []
    for d in queries.queue_members(project.dataset, round, ["key", "filepath", "target_path",
                                                            "mask.mask_path", "reviews"]):
        item = {"sample_id": d["id"], "key": d["key"], "source": d["filepath"],
                "mask": d["mask"]["mask_path"], "result": d.get("target_path")}
        judged = standing_judgments(d.get("reviews"))
        if not judged:
            rows.append({**item, "decision": "", "reviewer": "", "reason": "", "adjudication": None,
                         "at": ""})
        for r in judged:
            rows.append({**item, "decision": "accept" if r["status"] == schema.ACCEPTED else "reject",
                         "reviewer": r["reviewer"], "reason": r.get("reason") or "",
                         "adjudication": bool(r.get("adjudication")), "at": _iso(r.get("at"))})
    if path.lower().endswith(".json"):
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
            w.writeheader()
            w.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    return len(rows)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return csv_cell(str(value))
