"""One whole round, as one call: :func:`run_round` (``rorem-data round run``).

The round is one sound unit:

* **One plan** (:mod:`rorem_data.rounds.plan`): every parameter is validated before any work
  and stored in the round record; :func:`rorem_data.rounds.record.load_round` gives it back.
* **Chained steps** (:mod:`rorem_data.rounds.steps`, :mod:`rorem_data.rounds.record`): each
  finished step is recorded with a fingerprint of its parameters, the items it saw and the step
  before it. Running the same call again skips the finished steps and resumes at the first
  unfinished one; a *changed* parameter on a finished step is refused before anything is
  written (``redo=STEP`` runs the round again from that step, withdrawing what it and the later
  steps recorded; :mod:`rorem_data.rounds.redo`). A generate step that made no candidate is not
  recorded as done; pool items imported after it are named in the result.
* **One writer** (:mod:`rorem_data.dataset.leases`): the run holds the round's lease; a second
  process is refused and told who holds the round.
* **Judgments are stored as they are made**; Ctrl-C ends with one line (``round N stopped in
  STEP (k of n judged, stored); run the same call again to resume``).
* In a notebook, ``reviewer="app"`` opens the review App and returns at once, in state
  ``"awaiting review"`` with the URL; the next call goes on from there.
"""

from __future__ import annotations

import logging
import time

from rorem_data.core import schema
from rorem_data.core.errors import RoundInterrupted
from rorem_data.rounds import defaults as D
from rorem_data.rounds.plan import STEPS, make_plan
from rorem_data.rounds.result import AWAITING_REVIEW, FINISHED, RoundResult

log = logging.getLogger("rorem_data")


def run_round(project, round: int, *, remover, budget: int, strategy: str = D.STRATEGY,
              reviewer="app", reviewer_name: str | None = None, spec: str = D.SPEC,
              featurizer: str = D.FEATURIZER, candidates: int = D.CANDIDATES,
              batch_size: int = D.BATCH_SIZE, target_precision: float = D.TARGET_PRECISION,
              confidence: float = D.CONFIDENCE, audit: float = D.AUDIT, estimate_budget: int = 0,
              double_share: float = 0.0, floor: float = D.FLOOR, holdout: float = D.HOLDOUT,
              gold_rate: float = D.GOLD_RATE, allow_unseen_remover: bool = False,
              calibration: str = D.CALIBRATION, seed_pairs: int = D.SEED_PAIRS,
              pool_filter=None, port: int = D.PORT, rng: int = D.RNG, redo: str | None = None,
              allow_gap: bool = False, progress: bool | None = None, echo=None) -> RoundResult:
    """Run one round of the loop (see the module docstring).

    Parameters
    ----------
    project : Project or str
        The project, or the path of its folder.
    round : int
        The round (>= 1); it must follow the project's last round (see ``allow_gap``).
    remover : str, dict or RemoverSpec
        What :func:`rorem_data.generate` accepts (``"classical:telea"``, a pipeline folder, a
        spec file or dict).
    budget : int
        Human judgments to spend on the round's queue (the expected size of an
        active-inference sample; the exact size of a strategy queue).
    strategy : str
        ``"active-inference"`` (default; Poisson sampling with known probabilities rising with
        the previous discriminator's uncertainty, uniform in round 1) or a query strategy from
        :func:`rorem_data.list_strategies`.
    reviewer : "app", str path, callable or object
        Who judges the queue and the audit sample (:func:`rorem_data.review`). A function's
        judgments are stored in small batches as it goes.
    reviewer_name : str, optional
        Recorded with the judgments of functions, label files without a reviewer column, the App.
    spec : str
        Discriminator spec to train this round's version from (:func:`rorem_data.list_discriminators`).
    featurizer : str
        Featurizer for the features the queue and the discriminator use.
    candidates, batch_size : int
        Candidates per pool item; candidates per remover call.
    target_precision, confidence : float
        Automatic accepts must reach ``target_precision`` with this confidence.
    audit : float
        Share of automatic decisions queued for human audit.
    estimate_budget : int
        With a query strategy: the size of a separate uniform estimation sample (0: none).
    double_share : float
        Share of the queue judged by two reviewers.
    floor : float
        Active inference: the smallest inclusion probability.
    holdout : float
        Share of labels held out to calibrate the discriminator.
    seed_pairs : int
        Examples made from the project's seed pairs (a success and a failure per seed). In a
        round with no discriminator before it (round 1), a first version learns from them
        alone before any human label (step ``seed_version``,
        :func:`rorem_data.rounds.discriminator.train_from_seeds`), draws the round's sample and
        is certified on all of its labels; every version also trains on them, minus one per
        human training label (:func:`rorem_data.train_discriminator`). 0: none (round 1 then
        certifies its own version on the held-out part of its labels).
    gold_rate : float
        Gold items (known answers made from seed pairs) mixed into the queue, as a share of its
        size, to measure each reviewer (0: none; skipped when the project has no seeds).
    calibration : str
        How automatic decisions are certified: ``"auto"`` (default: ``"crossfit"`` when it
        applies, else ``"active"``), ``"crossfit"`` (this round's version refitted without each
        fold of the active sample, on all of it), ``"split"`` (this round's
        version on the held-out part of the active sample), ``"active"`` (the version that drew
        the sample, on all of it) or ``"holdout"`` (:func:`rorem_data.auto_label`).
    allow_unseen_remover : bool
        Let the discriminator decide candidates of removers its calibration labels barely cover.
    pool_filter : dict or FiftyOne view, optional
        Only pool items matching this field filter (e.g. ``{"origin": "openimages"}``).
    port : int
        Port of the review App.
    rng : int
        Seed of every random draw of the round.
    redo : str, optional
        Run the round again from this step (one of ``generate``, ``featurize``, ...,
        ``audit_review``) with changed parameters; what that step and the later ones recorded
        is withdrawn first (human judgments stay).
    allow_gap : bool
        Allow a round number more than one above the project's last round.
    progress : bool, optional
        Progress bars: True shows them (terminal and Jupyter), False hides them, None decides
        by itself.
    echo : callable, optional
        Called with a line per finished step (e.g. ``print``); the lines also go to the
        ``rorem_data`` logger at INFO.

    Returns
    -------
    RoundResult
        ``state`` is ``"finished"``, or ``"awaiting review"`` when a notebook's review App was
        opened (judge the queue, then make the same call again).

    Raises
    ------
    ConfigError
        A bad parameter (before any work), a step's own refusal (nothing of that step is
        half-written; rerun after fixing). :class:`PlanChanged` (a ``ConfigError``): a finished
        step ran with other parameters.
    RoundBusy
        Another process is running a step of this round.
    RoundInterrupted
        Ctrl-C (a ``KeyboardInterrupt``): what was done is stored; the same call resumes.

    Examples
    --------
    >>> result = rorem_data.run_round("my-project", 1, remover="classical:telea", budget=200,
    ...                               reviewer="labels.csv")        # doctest: +SKIP
    >>> result                                                      # doctest: +SKIP
    RoundResult(round 1, finished, success 48.2% [40.1, 56.3], version v1-...)
    """
    from rorem_data.dataset.leases import lease_wait, round_lease
    from rorem_data.rounds.project import as_project
    from rorem_data.rounds.record import RoundRecord

    t0 = time.perf_counter()
    project = as_project(project)
    plan = make_plan(project, round, remover=remover, budget=budget, allow_gap=allow_gap,
                     strategy=strategy, spec=spec, featurizer=featurizer, reviewer=reviewer,
                     reviewer_name=reviewer_name, candidates=candidates,
                     target_precision=target_precision, confidence=confidence, audit=audit,
                     estimate_budget=estimate_budget, double_share=double_share, floor=floor,
                     holdout=holdout, gold_rate=gold_rate, allow_unseen_remover=allow_unseen_remover,
                     calibration=calibration, seed_pairs=seed_pairs,
                     pool_filter=pool_filter, rng=rng, batch_size=batch_size, port=port)
    if redo is not None and redo not in STEPS:
        from rorem_data.core.checks import choice

        choice(redo, "redo", STEPS)

    def say(line: str) -> None:
        log.info(line)
        if echo is not None:
            echo(line)

    with round_lease(project.dataset_name, plan.round, step="run_round", wait=lease_wait()):
        rec = RoundRecord(project, plan.round)
        rec.check(plan, redo=redo)
        res = RoundResult(round=plan.round, plan=plan)
        if redo is not None:
            from rorem_data.rounds.redo import withdraw_from

            taken = withdraw_from(project, plan.round, redo)
            rec.forget_from(redo)
            say(f"  redo from {redo}: withdrew {taken['automatic_withdrawn']} automatic decisions, "
                f"{taken['dequeued']} unjudged queue items, {taken['gold_deleted']} gold items")
        rec.save_plan(plan)
        ctx = _context(project, plan, progress)
        for name in STEPS:
            if not _run_step(name, ctx, rec, res, say):
                res.state = AWAITING_REVIEW
                res.seconds = time.perf_counter() - t0
                rec.end(AWAITING_REVIEW, res.to_dict())
                return res
        _finish(ctx, res, say)
        res.seconds = time.perf_counter() - t0
        rec.end(FINISHED, res.to_dict())
        return res


def _context(project, plan, progress):
    from rorem_data.rounds.steps import StepContext, seed_pairs_only
    from rorem_data.rounds.versions import latest_version

    # the latest version trained on rounds before this one, fixed before the round's sample is
    # drawn (so its scores may set the sampling probabilities)
    prev = latest_version(project, before_round=plan.round)
    if prev is not None and seed_pairs_only(project, prev):
        prev = None  # a seed-pair version draws only through the seed_version step (its plan)
    return StepContext(project=project, plan=plan, previous_version=prev, progress=progress)


def _run_step(name: str, ctx, rec, res: RoundResult, say) -> bool:
    """Run or skip one step; False when the round now awaits review."""
    from rorem_data.rounds import steps

    if not steps.applies(name, ctx):
        return True
    done = rec.done(name)
    if done is not None:
        ctx.feature_key = done.get("key", ctx.feature_key)
        if name == "seed_version":  # the version that draws this round's sample
            ctx.previous_version = done.get("version", ctx.previous_version)
        else:
            ctx.version = done.get("version", ctx.version)
        res.steps[name] = f"done before ({done.get('summary', '')})"
        if name == "generate":
            new = steps.new_pool_items(ctx)
            if new:
                note = (f"{len(new)} pool items matching this round's filter were imported after "
                        f"its generate step and are not in round {ctx.plan.round} (e.g. "
                        f"{', '.join(new[:3])}); they go into the next round")
                res.notes.append(note)
                log.warning(note)
        say(f"  {name}: already done")
        return True
    t = time.perf_counter()
    try:
        out = steps.STEP_FUNCTIONS[name](ctx)
    except KeyboardInterrupt:
        rec.end(f"stopped in {name}")
        raise _interrupted(ctx, name) from None
    if out.awaiting is not None:
        res.review = out.awaiting
        res.steps[name] = out.summary
        say(f"  {name}: {out.summary}")
        return False
    summary = out.summary.splitlines()[0] if out.summary else ""
    if out.record:
        rec.finish(name, ctx.plan, summary=summary, inputs=out.inputs,
                   seconds=time.perf_counter() - t, **out.extra)
    res.steps[name] = out.summary
    say(f"  {name}: {out.summary}")
    return True


def _finish(ctx, res: RoundResult, say) -> None:
    from rorem_data.rounds import estimates, steps

    p = ctx.plan
    res.version = ctx.version
    res.steps["audit"] = steps.audit_line(ctx.project, p.round, p.confidence)
    say(f"  audit: {res.steps['audit']}")
    res.estimates = estimates.round_estimates(ctx.project, p.round, confidence=p.confidence)
    res.automation_yield = estimates.round_yield(ctx.project, p.round)
    res.steps["estimates"] = "recorded"
    from rorem_data.dataset import store

    store.update_round_record(ctx.project.dataset_name, p.round, set={
        "driver.estimates": res.estimates, "driver.version": ctx.version,
        "driver.params": p.to_dict()})


def _interrupted(ctx, step: str) -> RoundInterrupted:
    from rorem_data.dataset import queries
    from rorem_data.rounds.steps import AUDIT_PURPOSES, QUEUE_PURPOSES

    r = ctx.plan.round
    judged = total = None
    try:
        if step in ("review", "audit_review"):
            purposes = list(QUEUE_PURPOSES if step == "review" else AUDIT_PURPOSES)
            members = queries.queue_members(ctx.project.dataset, r, ["decided_by"], purpose=purposes)
            total = len(members)
            judged = sum(d.get("decided_by") == schema.BY_HUMAN for d in members)
            what = f"{judged} of {total} judged, stored"
        elif step == "generate":
            made = len(queries.candidate_ids(ctx.project.dataset, round=r))
            what = f"{made} candidates stored"
        else:
            what = "nothing of it half-written"
    except Exception:  # noqa: BLE001 - the line must come out whatever the database says
        what = "what was done is stored"
    return RoundInterrupted(f"round {r} stopped in {step} ({what}); run the same call again to "
                            "resume", round=r, step=step, judged=judged, total=total)
