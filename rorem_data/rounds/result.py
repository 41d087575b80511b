"""What :func:`rorem_data.run_round` returns: :class:`RoundResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

from rorem_data.core.display import Displayable, html_table

FINISHED = "finished"
AWAITING_REVIEW = "awaiting review"


@dataclass(repr=False)
class RoundResult(Displayable):
    """One round: how it ended, each step's line, and the numbers a team watches.

    Attributes
    ----------
    round : int
    state : str
        ``"finished"``, or ``"awaiting review"`` (a notebook's review App is open: judge the
        queue, then make the same call again to go on).
    plan : RoundPlan or None
        The parameters it ran with.
    steps : dict
        Step name -> its summary line (``"done before (...)"`` for a step an earlier run
        finished).
    version : str or None
        The discriminator version trained this round.
    estimates : dict
        The round's success-rate estimates (``best``: the one to quote).
    automation_yield : dict or None
        Shares of the round decided automatically.
    review : dict
        ``url`` of the review App (when it is open), ``judged`` and ``open`` queue items.
    notes : list of str
        What the run noticed and did not act on (e.g. pool items imported after generation).
    seconds : float
    """

    round: int
    state: str = FINISHED
    plan: object = None
    steps: dict = field(default_factory=dict)
    version: str | None = None
    estimates: dict = field(default_factory=dict)
    automation_yield: dict | None = None
    review: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    # --- numbers -------------------------------------------------------------------------

    @property
    def success_rate(self) -> dict | None:
        """The estimate to quote (``value``, ``lo``, ``hi``, ``method``), or None."""
        e = self.estimates or {}
        best = e.get("best") or e.get("ppi") or e.get("human")
        return best if best and best.get("value") is not None else None

    # --- display -------------------------------------------------------------------------

    def _rate_text(self) -> str | None:
        rate = self.success_rate
        if not rate:
            return None
        return f"{100 * rate['value']:.1f}% [{100 * rate['lo']:.1f}, {100 * rate['hi']:.1f}]"

    def _yield_text(self) -> str | None:
        y = self.automation_yield or {}
        if y.get("accept_share") is None:
            return None
        return (f"{100 * y['accept_share']:.1f}% accepted, "
                f"{100 * (y.get('reject_share') or 0):.1f}% rejected")

    def _short(self) -> str:
        parts = [f"round {self.round}", self.state]
        if self._rate_text():
            parts.append(f"success {self._rate_text()}")
        if self._yield_text():
            parts.append(f"auto {self._yield_text()}")
        if self.state == AWAITING_REVIEW and self.review:
            parts.append(f"{self.review.get('open', '?')} to judge at {self.review.get('url', '?')}")
        if self.version:
            parts.append(f"version {self.version}")
        return ", ".join(parts)

    def summary(self) -> str:
        lines = [f"round {self.round} ({self.state}):"]
        lines += [f"  {k}: {v}" for k, v in self.steps.items()]
        rate = self.success_rate
        if rate:
            lines.append(f"  success rate {self._rate_text()} "
                         f"({rate.get('source') or rate.get('method', '')})")
        if self._yield_text():
            lines.append(f"  automation yield: {self._yield_text()} automatically")
        if self.state == AWAITING_REVIEW:
            lines.append(f"  review: {self.review.get('open', '?')} candidates to judge at "
                         f"{self.review.get('url', '?')}; run the same call again when they are judged")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  {self.seconds:.0f} s")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [("state", self.state)]
        if self._rate_text():
            rows.append(("success rate", self._rate_text()))
        if self._yield_text():
            rows.append(("automation", self._yield_text()))
        if self.version:
            rows.append(("discriminator", self.version))
        if self.review.get("url"):
            rows.append(("review", f"{self.review.get('open')} open at {self.review['url']}"))
        rows += [(f"step {k}", v) for k, v in self.steps.items()]
        rows += [("note", n) for n in self.notes]
        rows.append(("seconds", round(self.seconds, 1)))
        return html_table(f"Round {self.round}", rows)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["plan"] = self.plan.to_dict() if hasattr(self.plan, "to_dict") else self.plan
        return out

    @classmethod
    def from_record(cls, round: int, plan, rec) -> "RoundResult":
        stored = dict(rec.result or {})
        steps = {k: v.get("summary", "") for k, v in rec.steps.items() if isinstance(v, dict)}
        return cls(round=int(round), state=rec.state or stored.get("state") or "unknown", plan=plan,
                   steps=stored.get("steps") or steps, version=stored.get("version"),
                   estimates=stored.get("estimates") or {},
                   automation_yield=stored.get("automation_yield"),
                   review=stored.get("review") or {}, notes=stored.get("notes") or [],
                   seconds=float(stored.get("seconds") or 0.0))
