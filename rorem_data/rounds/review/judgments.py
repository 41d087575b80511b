"""Human judgments: record, settle and withdraw them through the decision ledger.

Every judgment goes to the decision ledger (:mod:`rorem_data.dataset.ledger`), which appends it
to the candidate's ``reviews`` and settles the decision it implies in one atomic update:

* an item judged by one reviewer (``review_quota`` 1) is decided by the latest standing
  judgment;
* an item in the double-review share (``review_quota`` 2) is decided when two different
  reviewers agree; if they disagree it stays pending with ``needs_adjudication`` set and shows
  up in the round's adjudication view, where an adjudicator's judgment is final;
* undo withdraws the reviewer's judgment: the decision falls back to what still stands.

The App plugin, the CLI, label files and every reviewer go through :func:`apply_review` /
:func:`apply_reviews` / :func:`clear_review`, so they behave the same. Reviewer names that
start like a spreadsheet formula are refused.
"""

from __future__ import annotations

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.validate import Problem
from rorem_data.dataset import ledger

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


#: First characters that make a spreadsheet cell a formula (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_name_problem(reviewer: str) -> str | None:
    """What is wrong with ``reviewer`` as a name, or None when nothing is.

    A name that starts like a spreadsheet formula (``= + - @``, a tab or a carriage return) is
    wrong: a spreadsheet opening a labels file would run it. Only the first character counts,
    so ``ana-maria`` is fine and ``-ana`` is not.
    """
    if reviewer and reviewer[0] in FORMULA_START:
        return (f"reviewer name {reviewer!r} starts with {reviewer[0]!r}, so a spreadsheet opening a "
                "labels file would run it as a formula")
    return None


RENAME_FIX = "rename the reviewer so the name starts with none of = + - @, a tab or a carriage return"


def _check_judgment(decision, reason, reviewer) -> tuple[str, str | None, str]:
    """``(status, reason, reviewer)`` of one judgment, checked; raises ConfigError naming the value."""
    status = normalize_decision(decision)
    reason = check_reason(reason)
    if status == schema.ACCEPTED and reason is not None:
        raise ConfigError("a failure reason only goes with a rejection")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ConfigError("reviewer must be a non-empty name (pass reviewer=... / --reviewer)")
    reviewer = reviewer.strip()
    bad = formula_name_problem(reviewer)
    if bad:
        raise ConfigError(f"{bad}; {RENAME_FIX}")
    return status, reason, reviewer


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
        Unknown decision or reason, an empty reviewer or one whose name starts like a
        spreadsheet formula (``= + - @``), a sample that is not a queued candidate of that round.
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

    A row equal to the reviewer's standing judgment of the sample adds nothing, so applying
    the same rows twice (or a label file exported from this round) leaves the records as they
    are.

    Parameters
    ----------
    rows : iterable of (sample_id, decision, reviewer, reason[, adjudicate])
        ``adjudicate`` (default False) marks an adjudicator's judgment, which is final (see
        :func:`apply_review`).
    round : int
        Every sample must be queued for this round.

    Returns
    -------
    int
        Judgments checked and applied (repeats of standing judgments included).

    Raises
    ------
    ValidationError
        Listing every bad row (unknown decision or reason, reason on an accept, a reviewer
        name that starts like a spreadsheet formula, a sample not in the round's queue);
        nothing is written then.

    Examples
    --------
    >>> apply_reviews(ds, [(sid, "accept", "ana", None),                 # doctest: +SKIP
    ...                    (sid, "reject", "chief", "object_visible", True)], round=1)
    2
    """
    rows = list(rows)
    problems, clean = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, (tuple, list)) or len(row) not in (4, 5):
            problems.append(Problem(f"row {i + 1}", "", f"expected (sample_id, decision, reviewer, "
                                    f"reason[, adjudicate]), got {row!r:.80}", "fix the row"))
            continue
        sid, decision, reviewer, reason = row[:4]
        adjudicate = bool(row[4]) if len(row) == 5 else False
        try:
            status, reason, reviewer = _check_judgment(decision, reason, reviewer)
            ledger._oid(sid)
        except ConfigError as exc:
            problems.append(Problem(f"row {i + 1}", str(sid), str(exc), "fix the row"))
            continue
        clean.append((sid, status, reviewer, reason, adjudicate))
    queued = {str(k) for k, q in ledger.queue_rounds(ds, [c[0] for c in clean]).items()
              if q == int(round)}
    for sid, *_rest in clean:
        if str(sid) not in queued:
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
