"""The driver's round record: the plan, a chain of step records, the last result.

Stored in the round's record (``rorem_data_rounds``, one document per dataset and round):

* ``plan``: the :class:`~rorem_data.rounds.plan.RoundPlan` of the latest run, in JSON form;
* ``driver.steps.<step>``: one entry per finished step: ``fingerprint`` (a hash of its
  parameters, the items it saw and the fingerprint of the step before it), ``prev``,
  ``params`` (the plan parameters it used, :data:`~rorem_data.rounds.plan.STEP_PARAMS`),
  ``inputs`` (how many items it saw, and their digest), ``summary``, ``at``, ``seconds``;
* ``driver.state`` and ``driver.result``: how the last run ended and what it returned.

:meth:`RoundRecord.check` compares a new plan with what the finished steps used, before the
driver writes anything, and refuses a difference by name (:class:`PlanChanged`).
:func:`load_round` gives a past round's plan and result back.
"""

from __future__ import annotations

import json

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, PlanChanged
from rorem_data.dataset import store
from rorem_data.rounds.plan import STEP_PARAMS, STEPS, fingerprint


def _same(a, b) -> bool:
    """Equal as stored; a remover's ``given`` (how the caller spelled it: a name, a folder, a
    dict) is not part of what it is."""
    def norm(v):
        return {k: x for k, x in v.items() if k != "given"} if isinstance(v, dict) else v

    return json.dumps(norm(a), sort_keys=True, default=str) == \
        json.dumps(norm(b), sort_keys=True, default=str)


def _show(name: str, value) -> str:
    if name == "remover" and isinstance(value, dict):
        label = value.get("given") or value.get("name") or (
            f"classical:{value.get('method')}" if value.get("kind") == "classical" else value.get("model"))
        return repr(label)
    return repr(value)


class RoundRecord:
    """What the driver has recorded for one round (read once, updated step by step)."""

    def __init__(self, project, round: int):
        self.project, self.round = project, int(round)
        doc = store.round_record(project.dataset_name, round)
        driver = doc.get("driver") or {}
        self.plan = doc.get("plan")
        self.steps: dict = dict(driver.get("steps") or {})
        self.state = driver.get("state")
        self.result = driver.get("result")

    # --- reading ---------------------------------------------------------------------------

    def done(self, step: str) -> dict | None:
        entry = self.steps.get(step)
        return entry if entry and entry.get("status") == "done" else None

    def last_fingerprint(self, before: str) -> str:
        """Fingerprint of the last finished step before ``before`` (the chain's link)."""
        fp = ""
        for s in STEPS[: STEPS.index(before)]:
            entry = self.done(s)
            if entry is not None:
                fp = entry.get("fingerprint") or fp
        return fp

    # --- checks before any work -------------------------------------------------------------

    def check(self, plan, *, redo: str | None = None) -> None:
        """Refuse a plan whose parameters differ from what the finished steps used.

        Parameters
        ----------
        plan : RoundPlan
        redo : str, optional
            Run the round again from this step: its parameters (and the later steps') may
            change.

        Raises
        ------
        PlanChanged
            Naming the parameter, both values and the way forward. Nothing is written.
        """
        start = STEPS.index(redo) if redo else len(STEPS)
        for step in STEPS[:start]:
            entry = self.done(step)
            if entry is None:
                continue
            used = entry.get("params")
            if not isinstance(used, dict):
                continue  # a record from before plans were stored: nothing to compare with
            for name in STEP_PARAMS[step]:
                if name not in used:
                    continue
                before, after = used[name], plan.describe(name)
                if _same(before, after):
                    continue
                raise PlanChanged(
                    f"round {self.round} already ran its {step} step with {name}={_show(name, before)}; "
                    f"this call asks for {name}={_show(name, after)}. A finished step is never "
                    f"redone silently: run the new {name} as a new round (round {self.round + 1}), "
                    f"or pass redo={step!r} to run round {self.round} again from the {step} step "
                    "(what that step and the later ones recorded is withdrawn; human judgments stay)",
                    parameter=name, before=before, after=after, step=step)

    # --- writing ---------------------------------------------------------------------------

    def save_plan(self, plan) -> None:
        self.plan = plan.to_dict()
        store.update_round_record(self.project.dataset_name, self.round,
                                  set={"plan": self.plan, "driver.state": "running"})

    def finish(self, step: str, plan, *, summary: str, inputs: dict, seconds: float,
               **extra) -> dict:
        """Record ``step`` as done, chained to the step before it."""
        prev = self.last_fingerprint(step)
        params = plan.step_params(step)
        entry = {"status": "done", "fingerprint": fingerprint(step, params, inputs, prev),
                 "prev": prev, "params": params, "inputs": inputs, "summary": summary,
                 "at": schema.utcnow(), "seconds": round(float(seconds), 3), **extra}
        self.steps[step] = entry
        store.update_round_record(self.project.dataset_name, self.round,
                                  set={f"driver.steps.{step}": entry})
        return entry

    def forget_from(self, step: str) -> list[str]:
        """Drop the records of ``step`` and every later step (a redo); returns their names."""
        names = [s for s in STEPS[STEPS.index(step):] if s in self.steps]
        if names:
            store.unset_round_fields(self.project.dataset_name, self.round,
                                     [f"driver.steps.{s}" for s in names])
        for s in names:
            self.steps.pop(s, None)
        return names

    def end(self, state: str, result: dict | None = None) -> None:
        self.state = state
        fields = {"driver.state": state}
        if result is not None:
            fields["driver.result"] = result
            self.result = result
        store.update_round_record(self.project.dataset_name, self.round, set=fields)


def load_round(project, round: int):
    """A past round's plan and result, as the driver stored them.

    Returns
    -------
    RoundResult
        ``plan`` is a :class:`~rorem_data.rounds.plan.RoundPlan` rebuilt from the record (a
        function reviewer comes back as its name), ``state`` how its last run ended, ``steps``
        each finished step's summary.

    Raises
    ------
    ConfigError
        The round was never run with :func:`rorem_data.run_round`.

    Examples
    --------
    >>> r = rorem_data.load_round(project, 1)          # doctest: +SKIP
    >>> r.plan.budget, r.state                          # doctest: +SKIP
    (60, 'finished')
    """
    import dataclasses

    from rorem_data.core import checks
    from rorem_data.rounds.plan import RoundPlan
    from rorem_data.rounds.project import as_project
    from rorem_data.rounds.result import RoundResult

    project = as_project(project)
    round = checks.round_number(round, "round", minimum=1)
    rec = RoundRecord(project, round)
    if rec.plan is None and not rec.steps:
        raise ConfigError(f"round {round} was never run with run_round in this project; "
                          f"rorem_data.status(project) lists the rounds it has")
    plan = None
    if rec.plan:
        names = {f.name for f in dataclasses.fields(RoundPlan)}
        fields = {k: v for k, v in rec.plan.items() if k in names}
        rem = fields.get("remover")
        if isinstance(rem, dict):  # the spec as given (a name, a folder) or its fields
            fields["remover"] = rem.get("given") or {k: v for k, v in rem.items() if k != "given"}
        plan = RoundPlan(**fields)
    return RoundResult.from_record(round, plan, rec)
