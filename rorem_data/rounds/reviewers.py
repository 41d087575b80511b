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
from typing import Any, Callable

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
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


def review(project, round: int, reviewer, *, purposes=None, reviewer_name: str | None = None,
           port: int = 5151) -> dict:
    """Get the open items of a round's queue judged; returns ``{"judged", "open"}``.

    Parameters
    ----------
    project : Project
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

    Raises
    ------
    ConfigError
        An unknown reviewer name, a bad verdict from a function; label-file problems as
        :class:`ValidationError`.
    """
    from rorem_data.rounds import review as review_mod

    name = reviewer_name or os.environ.get("ROREM_REVIEWER") or _login()
    before = len(open_items(project, round, purposes=purposes))
    if isinstance(reviewer, str) and reviewer.lower().endswith((".csv", ".json")):
        review_mod.import_labels(project, reviewer, round=round, default_reviewer=name)
    elif isinstance(reviewer, str):
        fn: Callable = _REVIEWERS.get(reviewer)
        fn(project, round, purposes=purposes, reviewer_name=name, port=port)
    elif hasattr(reviewer, "review_round"):
        reviewer.review_round(project, round, purposes=purposes)
    elif callable(reviewer):
        rows = []
        for item in open_items(project, round, purposes=purposes):
            verdict = _parse_verdict(reviewer(item), item)
            if verdict is not None:
                rows.append((item["sample_id"], verdict[0], name, verdict[1]))
        if rows:
            review_mod.apply_reviews(project.dataset, rows, round=round)
    else:
        raise ConfigError(f"reviewer must be 'app', a labels file, a function or an object with "
                          f"review_round(); got {type(reviewer).__name__}")
    after = len(open_items(project, round, purposes=purposes))
    return {"judged": before - after, "open": after}


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "reviewer"
