"""Who judges a round's queue: a person in the App, a labels file, a function, a simulator.

:func:`review` gets the open items of a round's queue judged by one *reviewer*, which may be

* ``"app"`` - launch the review App on the queue and wait until every item is judged (or the
  person stops it with Ctrl-C);
* a path to a labels file (``.csv`` / ``.json``, see :func:`rorem_data.rounds.review.read_labels`);
* a callable ``judge(item) -> "accept" | "reject" | ("reject", reason) | None`` called with one
  dict per open item (``sample_id``, ``key``, ``source``, ``mask``, ``result``, ``purpose``);
  ``None`` leaves the item open;
* an object with a ``review_round(project, round, purposes=...)`` method, such as
  :class:`rorem_data.testing.simulate.SimulatedReviewer`;
* a name registered with :func:`register_reviewer` (``"app"`` is one: the App lives in a shell
  above this layer and plugs in through the registry).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from rorem_data.core import schema
from rorem_data.core.display import Displayable
from rorem_data.core.errors import ConfigError, RoundInterrupted
from rorem_data.core.registry import Registry
from rorem_data.dataset import queries

_REVIEWERS = Registry("reviewer", {"app": "rorem_data.app:review_in_app"})


def register_reviewer(name: str, target: Any, *, overwrite: bool = False) -> None:
    """Register a reviewer usable by name in :func:`review` and ``run_round``: a
    ``"module:function"`` or a function ``fn(project, round, *, purposes, reviewer_name)``."""
    _REVIEWERS.register(name, target, overwrite=overwrite)


def list_reviewers() -> list[str]:
    return _REVIEWERS.names()


def open_items(project, round: int, *, purposes=None, reviewer_name: str | None = None) -> list[dict]:
    """The round's queued candidates without a human verdict yet, in queue order."""
    docs = queries.queue_members(project.dataset, round,
                                 ["key", "filepath", "target_path", "mask.mask_path", "queue_purpose",
                                  "status", "decided_by", "needs_adjudication"],
                                 purpose=purposes, not_reviewed_by=reviewer_name)
    return [{"sample_id": d["id"], "key": d["key"], "source": d["filepath"],
             "mask": d["mask"]["mask_path"], "result": d.get("target_path"),
             "purpose": d.get("queue_purpose")}
            for d in docs if d.get("decided_by") != schema.BY_HUMAN and not d.get("needs_adjudication")]


def _parse_verdict(value, item) -> tuple[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:
        return str(value[0]), value[1]
    if isinstance(value, str):
        return value, None
    raise ConfigError(f"a reviewer function returned {value!r} for {item['key']}; return "
                      "'accept', 'reject', ('reject', reason) or None")


AWAITING = "awaiting review"
DONE = "done"
OPEN = "open"
BATCH = 20  # a function reviewer's judgments are stored every BATCH judgments (or 2 seconds)


@dataclass(repr=False)
class ReviewResult(Displayable):
    """What :func:`review` did.

    Attributes
    ----------
    round : int
    judged : int
        Queue items that got a human verdict during the call.
    open : int
        Queue items (of the purposes asked) still without one.
    state : str
        ``"done"`` (nothing open), ``"open"`` (some left: the reviewer skipped them), or
        ``"awaiting review"`` (the review App is open in a notebook; judge there).
    reviewer : str
        The name recorded with the judgments.
    url : str or None
        The review App, when one is open.
    """

    round: int
    judged: int
    open: int
    state: str = DONE
    reviewer: str = ""
    url: str | None = None

    def _short(self) -> str:
        s = f"round {self.round}: {self.judged} judged, {self.open} open"
        return s + (f", awaiting review at {self.url}" if self.state == AWAITING else "")

    def summary(self) -> str:
        if self.state == AWAITING:
            return (f"review App open at {self.url}: {self.open} candidates of round {self.round} to "
                    "judge; run the same call again when they are judged")
        return f"{self.judged} judged by {self.reviewer}, {self.open} still open"


def review(project, round: int, reviewer, *, purposes=None, reviewer_name: str | None = None,
           port: int = 5151, progress: bool | None = None, block: bool | None = None) -> ReviewResult:
    """Get the open items of a round's queue judged.

    Every judgment is stored as it is made (a function's in batches of 20, or every 2
    seconds), so an interruption loses nothing: Ctrl-C ends with
    :class:`~rorem_data.core.errors.RoundInterrupted` ("round N stopped in review (k of n
    judged, stored); ...") and the same call resumes with what is still open.

    Parameters
    ----------
    project : Project or str
    round : int
    reviewer : str, callable or object
        See the module docstring.
    purposes : sequence of str, optional
        Only queue items of these purposes (``active``, ``estimate``, ``audit``, ``gold``).
    reviewer_name : str, optional
        The name recorded with the judgments (callables and labels files without a reviewer
        column; default ``ROREM_REVIEWER`` or the login name).
    port : int
        App port, for ``"app"``.
    progress : bool, optional
        A progress bar over a function's judgments (None: decide by itself).
    block : bool, optional
        ``"app"`` only: wait until the queue is judged (True: the CLI) or open the App and
        return at once in state ``"awaiting review"`` (False). Default: return at once in a
        notebook, wait elsewhere.

    Returns
    -------
    ReviewResult

    Raises
    ------
    ConfigError
        An unknown reviewer name, a bad verdict from a function; label-file problems as
        :class:`ValidationError`.
    RoundInterrupted
        Ctrl-C; the judgments made so far are stored.

    Examples
    --------
    >>> rorem_data.review(project, 1, lambda item: "accept")      # doctest: +SKIP
    ReviewResult(round 1: 60 judged, 0 open)
    """
    from rorem_data.core import checks
    from rorem_data.rounds.review import label_files
    round = checks.round_number(round, "round", minimum=1)
    name = reviewer_name or os.environ.get("ROREM_REVIEWER") or _login()
    before = len(open_items(project, round, purposes=purposes))
    url = None
    try:
        if isinstance(reviewer, (str, os.PathLike)) and os.fspath(reviewer).lower().endswith((".csv", ".json")):
            label_files.import_labels(project, os.fspath(reviewer), round=round, default_reviewer=name)
        elif isinstance(reviewer, str):
            fn: Callable = _REVIEWERS.get(reviewer)
            extra = {"block": _blocks(block)} if reviewer == "app" else {}
            out = fn(project, round, purposes=purposes, reviewer_name=name, port=port, **extra)
            if extra and not extra["block"] and isinstance(out, dict):
                url = out.get("url")
        elif hasattr(reviewer, "review_round"):
            reviewer.review_round(project, round, purposes=purposes)
        elif callable(reviewer):
            _judge_with(project, round, reviewer, purposes=purposes, name=name, progress=progress)
        else:
            raise ConfigError(f"reviewer must be 'app', a labels file, a function or an object with "
                              f"review_round(); got {type(reviewer).__name__}")
    except KeyboardInterrupt:
        raise _stopped(project, round, purposes, before) from None
    after = len(open_items(project, round, purposes=purposes))
    state = AWAITING if (url and after) else (OPEN if after else DONE)
    return ReviewResult(round=round, judged=before - after, open=after, state=state, reviewer=name,
                        url=url)


def _stopped(project, round, purposes, before) -> RoundInterrupted:
    try:
        left = len(open_items(project, round, purposes=purposes))
        what = f"{before - left} of {before} judged, stored"
    except Exception:  # noqa: BLE001 - the line must come out whatever the database says
        what = "the judgments made are stored"
    return RoundInterrupted(f"round {round} stopped in review ({what}); run the same call again to "
                            "resume", round=round, step="review")


def _judge_with(project, round, fn, *, purposes, name, progress) -> None:
    """Ask a function about each open item; store its verdicts every BATCH items or 2 s."""
    import time

    from rorem_data.core.progress import progress as bar
    from rorem_data.rounds.review.judgments import apply_reviews

    items = open_items(project, round, purposes=purposes)
    rows: list = []
    last = time.monotonic()

    def flush():
        if rows:
            apply_reviews(project.dataset, rows, round=round)
            rows.clear()

    try:
        with bar(total=len(items), desc=f"review round {round}", unit="item", enabled=progress) as pb:
            for item in items:
                verdict = _parse_verdict(fn(item), item)
                if verdict is not None:
                    rows.append((item["sample_id"], verdict[0], name, verdict[1]))
                pb.update(1)
                if len(rows) >= BATCH or time.monotonic() - last > 2.0:
                    flush()
                    last = time.monotonic()
    finally:
        flush()  # Ctrl-C or an error in the function: what it judged is kept


def _blocks(block: bool | None) -> bool:
    if block is not None:
        return bool(block)
    from rorem_data.core.progress import in_notebook

    return not in_notebook()


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "reviewer"
