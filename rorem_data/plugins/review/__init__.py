"""FiftyOne plugin: review object-removal candidates in the App.

Thin operators over :mod:`rorem_data.rounds.review` - the same functions the CLI and label
imports use - and :mod:`rorem_data.dataset.queries` for what the panel shows. Keys (from
dist/index.umd.js, in the sample modal): y accept, n reject, 1-5 reject with a reason, u undo.
The "Review" tab of the modal has the same as buttons, plus progress. Each judgment records
when the candidate was shown (the key handler and the panel track it), for time per decision.
"""

import getpass
import os
from datetime import datetime, timezone

import fiftyone.operators as foo
import fiftyone.operators.types as types

from rorem_data.core import schema
from rorem_data.core.display import markdown_text
from rorem_data.dataset import queries
from rorem_data.rounds import review
from rorem_data.rounds.review.quality import dataset_reviewer_quality

REASONS = list(schema.FAILURE_REASON_LABELS.items())


def _reviewer():
    return os.environ.get("ROREM_REVIEWER") or getpass.getuser()


def _adjudicating():
    return os.environ.get("ROREM_ADJUDICATE") == "1"


def _shown_at(ms):
    """Epoch milliseconds from the browser -> naive UTC datetime (None if absent or absurd)."""
    try:
        ms = float(ms)
    except (TypeError, ValueError):
        return None
    if not 1e12 < ms < 1e14:
        return None
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).replace(tzinfo=None)


def _next_id(ctx, sample_id):
    """The next sample after ``sample_id`` in the App's view (queue order)."""
    return queries.next_in_view(ctx.view, sample_id)


def decide(ctx, decision, reason=None, sample_id=None, advance=True, shown_at=None):
    sid = sample_id or ctx.current_sample
    if not sid:
        ctx.ops.notify("Open a candidate first", variant="warning")
        return {"updated": None}
    nxt = _next_id(ctx, sid) if advance else None
    try:
        if decision == "clear":
            res = review.clear_review(ctx.dataset, sid, reviewer=_reviewer())
        else:
            res = review.apply_review(ctx.dataset, sid, decision, reviewer=_reviewer(), reason=reason,
                                      adjudicate=_adjudicating(), shown_at=shown_at)
    except Exception as exc:  # shown to the reviewer; nothing was written
        ctx.ops.notify(str(exc), variant="error")
        return {"error": str(exc)}
    label = decision if not reason else "%s (%s)" % (decision, reason)
    ctx.ops.notify("%s by %s" % (label, _reviewer()),
                   variant="success" if decision == "accept" else "info")
    if nxt is not None:
        ctx.ops.open_sample(id=nxt)
    return {"updated": sid, "status": res.get("status"), "next": nxt}


class SetDecision(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(name="set_decision", label="Review: set decision", unlisted=True)

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.enum("decision", ["accept", "reject", "clear"], required=True)
        inputs.str("reason")
        inputs.str("sample_id")
        inputs.bool("advance", default=True)
        inputs.float("shown_at_ms")
        return types.Property(inputs)

    def execute(self, ctx):
        p = ctx.params
        return decide(ctx, p.get("decision"), reason=p.get("reason") or None,
                      sample_id=p.get("sample_id") or None, advance=bool(p.get("advance", True)),
                      shown_at=_shown_at(p.get("shown_at_ms")))


class _Quick(foo.Operator):
    DECISION = NAME = LABEL = ICON = None

    @property
    def config(self):
        return foo.OperatorConfig(name=self.NAME, label=self.LABEL, icon=self.ICON)

    def resolve_placement(self, ctx):
        return types.Placement(types.Places.SAMPLES_VIEWER_ACTIONS,
                               types.Button(label=self.LABEL, icon=self.ICON, prompt=False))

    def execute(self, ctx):
        return decide(ctx, self.DECISION)


class AcceptCandidate(_Quick):
    DECISION, NAME, LABEL, ICON = "accept", "accept_candidate", "Accept candidate (y)", "task_alt"


class RejectCandidate(_Quick):
    DECISION, NAME, LABEL, ICON = "reject", "reject_candidate", "Reject candidate (n)", "block"


class ReviewPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(name="review_panel", label="Review", surfaces="modal", icon="fact_check")

    def _refresh(self, ctx):
        sid = ctx.current_sample
        info = {}
        d = queries.review_state(ctx.dataset, sid) if sid else None
        if d:
            info = {"key": d.get("key"), "status": d.get("status"),
                    "reviews": ["%s: %s%s" % (r.get("reviewer"), r.get("status"),
                                              " (%s)" % r["reason"] if r.get("reason") else "")
                                for r in d.get("reviews") or [] if r],
                    "quota": d.get("review_quota") or 1, "rank": d.get("queue_rank"),
                    "adjudicate": bool(d.get("needs_adjudication"))}
        statuses = ctx.view.values("status")
        ctx.panel.state.info = info
        ctx.panel.state.progress = {
            "total": len(statuses),
            "done": sum(s in (schema.ACCEPTED, schema.REJECTED) for s in statuses),
            "accepted": sum(s == schema.ACCEPTED for s in statuses)}

    def on_load(self, ctx):
        self._quality(ctx)
        self._refresh(ctx)

    def _quality(self, ctx):
        """The reviewer's accuracy on gold items so far (once per panel load: it reads every
        judged item of the round)."""
        d = queries.review_state(ctx.dataset, ctx.current_sample) if ctx.current_sample else None
        rnd = (d or {}).get("queue_round")
        q = dataset_reviewer_quality(ctx.dataset, round=rnd).get(_reviewer()) or {}
        acc = (q.get("gold") or {}).get("accuracy")
        ctx.panel.state.quality = (
            "%d/%d gold items right (%.0f%% [%.0f, %.0f])%s" % (
                q["gold"]["correct"], q["gold"]["n"], 100 * acc["value"], 100 * acc["lo"],
                100 * acc["hi"], " - flagged: please slow down" if q.get("flag") == "flagged" else "")
            if acc else "no gold items judged yet")

    def on_change_current_sample(self, ctx):
        ctx.panel.state.shown_at_ms = datetime.now(timezone.utc).timestamp() * 1000.0
        self._refresh(ctx)

    def _decide(self, ctx, decision, reason=None):
        decide(ctx, decision, reason=reason, shown_at=_shown_at(ctx.panel.state.shown_at_ms))
        self._refresh(ctx)

    def on_accept(self, ctx):
        self._decide(ctx, "accept")

    def on_reject(self, ctx):
        self._decide(ctx, "reject")

    # one method per reason: panel callbacks are looked up by name on a fresh instance
    def on_reason_1(self, ctx):
        self._decide(ctx, "reject", reason=REASONS[0][0])

    def on_reason_2(self, ctx):
        self._decide(ctx, "reject", reason=REASONS[1][0])

    def on_reason_3(self, ctx):
        self._decide(ctx, "reject", reason=REASONS[2][0])

    def on_reason_4(self, ctx):
        self._decide(ctx, "reject", reason=REASONS[3][0])

    def on_reason_5(self, ctx):
        self._decide(ctx, "reject", reason=REASONS[4][0])

    def on_undo(self, ctx):
        decide(ctx, "clear", advance=False)
        self._refresh(ctx)

    def render(self, ctx):
        panel = types.Object()
        info = ctx.panel.state.info or {}
        prog = ctx.panel.state.progress or {}
        done, total, acc = prog.get("done", 0), prog.get("total", 0), prog.get("accepted", 0)
        rate = (100.0 * acc / done) if done else 0.0
        panel.md(
            "**Reviewer:** %s%s - %s  \n**Progress:** %d / %d judged, %.0f%% accepted  \n"
            "**Candidate:** %s (#%s)  \n**Status:** %s%s  \n**Reviews:** %s  \n"
            "Keys: **y** accept, **n** reject, **1-5** reject with a reason, **u** undo"
            % (markdown_text(_reviewer()), " (adjudicating)" if _adjudicating() else "",
               ctx.panel.state.quality or "no gold items judged yet", done, total, rate,
               markdown_text(info.get("key")) if info.get("key") else "(open a candidate)",
               info.get("rank"), info.get("status") or "-",
               " - reviewers disagree, needs adjudication" if info.get("adjudicate") else "",
               "; ".join(markdown_text(r) for r in info.get("reviews") or []) or "none"),
            name="status",
        )
        row = panel.h_stack("main", gap=2)
        row.btn("accept", label="Accept (y)", icon="task_alt", variant="contained", on_click=self.on_accept)
        row.btn("reject", label="Reject (n)", icon="block", variant="outlined", on_click=self.on_reject)
        row.btn("undo", label="Undo (u)", icon="undo", variant="outlined", on_click=self.on_undo)
        reasons = panel.v_stack("reasons", gap=1)
        for i, (key, label) in enumerate(REASONS):
            reasons.btn("reason_%d" % (i + 1), label="%d  Reject: %s" % (i + 1, label),
                        variant="outlined", on_click=getattr(self, "on_reason_%d" % (i + 1)))
        return types.Property(panel, view=types.GridView(orientation="vertical"))


def register(p):
    p.register(SetDecision)
    p.register(AcceptCandidate)
    p.register(RejectCandidate)
    p.register(ReviewPanel)
