"""One whole round, as one call: :func:`run_round` (``rorem-data round run``).

generate -> featurize -> score with the previous discriminator -> the round's queue (by default
an active-inference sample: Poisson sampling with known probabilities, so the same labels
train the discriminator and give unbiased estimates) -> reviews -> train a new discriminator
version -> score -> auto-label with a precision guarantee -> audit -> estimates.

Every step is idempotent on its own (a rerun adds nothing twice) and the driver records each
finished step in the round record (``driver.steps``), with the parameters it ran with. Running
the same call again - after a kill, a Ctrl-C in the review App, a crash - skips the finished
steps and resumes at the first unfinished one; changing a step's parameters runs it again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from rorem_data.core import checks, schema
from rorem_data.core.errors import ConfigError
from rorem_data.dataset import store

STEPS = ("generate", "featurize", "score_previous", "queue", "gold", "review", "train", "score",
         "auto_label", "audit_review")  # then audit and estimates, recomputed on every run
ACTIVE = "active-inference"


@dataclass
class RoundResult:
    """What :func:`run_round` did: one line per step, and the numbers a team watches."""

    round: int
    steps: dict = field(default_factory=dict)  # step -> summary line ("skipped: done" on resume)
    version: str | None = None
    estimates: dict = field(default_factory=dict)
    automation_yield: dict | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"round {self.round}:"]
        lines += [f"  {k}: {v}" for k, v in self.steps.items()]
        best = (self.estimates or {}).get("best") or (self.estimates or {}).get("ppi") or \
            (self.estimates or {}).get("human")
        if best and best.get("value") is not None:
            lines.append(f"  success rate {100 * best['value']:.1f}% [{100 * best['lo']:.1f}, "
                         f"{100 * best['hi']:.1f}] ({best.get('source') or best.get('method', '')})")
        y = self.automation_yield or {}
        if y.get("accept_share") is not None:
            lines.append(f"  automation yield: {100 * y['accept_share']:.1f}% of candidates accepted "
                         f"automatically, {100 * (y.get('reject_share') or 0):.1f}% rejected")
        lines.append(f"  {self.seconds:.0f} s")
        return "\n".join(lines)


def round_up(x: float) -> int:
    import math

    return int(math.ceil(x))


def _fingerprint(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


class _Record:
    """The driver's part of the round record: which steps finished with which parameters."""

    def __init__(self, project, round: int):
        self.project, self.round = project, int(round)
        rec = store.round_record(project.dataset_name, round).get("driver") or {}
        self.steps = dict(rec.get("steps") or {})

    def done(self, step: str, fp: str) -> dict | None:
        s = self.steps.get(step)
        return s if s and s.get("status") == "done" and s.get("params") == fp else None

    def finish(self, step: str, fp: str, summary: str, **extra) -> None:
        entry = {"status": "done", "params": fp, "summary": summary, "at": schema.utcnow(), **extra}
        self.steps[step] = entry
        store.update_round_record(self.project.dataset_name, self.round,
                                  set={f"driver.steps.{step}": entry})


def _previous_version(project, round: int) -> str | None:
    """The latest discriminator version trained on rounds before ``round`` (fixed before this
    round's sample is drawn, so its scores may set the sampling probabilities)."""
    from rorem_data.rounds import versions

    return versions.latest_version(project, before_round=round)


def run_round(project, round: int, *, remover, budget: int, strategy: str = ACTIVE,
              reviewer="app", reviewer_name: str | None = None, spec: str = "stats-logistic",
              featurizer: str = "stats", candidates: int = 1, batch_size: int = 4,
              target_precision: float = 0.9, confidence: float = 0.9, audit: float = 0.05,
              estimate_budget: int = 0, double_share: float = 0.0, floor: float = 0.05,
              holdout: float = 0.3, gold_rate: float = 0.05, allow_unseen_remover: bool = False,
              pool_filter=None,
              port: int = 5151, rng: int = 0, progress: bool = True, echo=None) -> RoundResult:
    """Run one round of the loop (see the module docstring).

    Parameters
    ----------
    project : Project
    round : int
        The round (>= 1).
    remover : str, dict or RemoverSpec
        What :func:`rorem_data.rounds.generate.generate` accepts.
    budget : int
        Human judgments to spend on the round's queue (the expected size of an
        active-inference sample; the exact size of a strategy queue).
    strategy : str
        ``"active-inference"`` (default; Poisson sampling with known probabilities rising with
        the previous discriminator's uncertainty) or a query strategy from
        :func:`rorem_data.selection.strategies.list_strategies`.
    reviewer : "app", str path, callable or object
        Who judges the queue and the audit sample (:func:`rorem_data.rounds.reviewers.review`).
    reviewer_name : str, optional
        Recorded with the judgments of callables, label files without a reviewer column, the App.
    spec : str
        Discriminator spec to train this round's version from.
    featurizer : str
        Featurizer for the features the queue and the discriminator use.
    target_precision, confidence : float
        Automatic accepts must reach ``target_precision`` with this confidence.
    audit : float
        Share of automatic decisions queued for human audit.
    estimate_budget : int
        With a query strategy: the size of a separate uniform estimation sample (0: none).
    floor : float
        Active inference: the smallest inclusion probability.
    gold_rate : float
        Gold items (known answers made from seed pairs) mixed into the queue, as a share of its
        size, to measure each reviewer (0: none; skipped when the project has no seeds).
    allow_unseen_remover : bool
        Let the discriminator decide candidates of removers its calibration labels barely cover.
    pool_filter : dict, optional
        Only pool items matching this field filter (e.g. ``{"origin": "openimages"}``).
    rng : int
        Seed of every random draw of the round.
    echo : callable, optional
        Called with a line per finished step (e.g. ``print``).

    Returns
    -------
    RoundResult

    Raises
    ------
    ConfigError
        Bad parameters, or a step's own refusal (nothing of that step is half-written; rerun
        after fixing).
    KeyboardInterrupt
        Stopping the review App: the judgments so far are stored; rerun to resume.
    """
    from rorem_data.rounds import automation, discriminator, estimates, queue, reviewers
    from rorem_data.rounds.generate import generate

    checks.round_number(round, "round", minimum=1)
    checks.positive_int(budget, "budget")
    checks.fraction(target_precision, "target_precision", open_low=True)
    checks.fraction(confidence, "confidence", open_low=True, open_high=True)
    checks.fraction(gold_rate, "gold_rate", high=0.5)
    t0 = time.perf_counter()
    say = echo or (lambda _line: None)
    rec = _Record(project, round)
    res = RoundResult(round=int(round))

    def step(name: str, params: dict, fn):
        fp = _fingerprint(params)
        done = rec.done(name, fp)
        if done is not None:
            res.steps[name] = f"done before ({done.get('summary', '')})"
            say(f"  {name}: already done")
            return done
        out = fn()
        summary = out if isinstance(out, str) else getattr(out, "summary", lambda: str(out))()
        extra = {k: getattr(out, k) for k in ("version", "key") if hasattr(out, k)}
        rec.finish(name, fp, summary.splitlines()[0] if summary else "", **extra)
        res.steps[name] = summary
        say(f"  {name}: {summary}")
        return rec.steps[name]

    remover_desc = remover if isinstance(remover, (str, dict)) else repr(remover)
    step("generate", {"remover": remover_desc, "candidates": candidates, "filter": pool_filter},
         lambda: generate(project, round, remover, candidates=candidates, batch_size=batch_size,
                          pool_filter=pool_filter, progress=progress))
    feats = step("featurize", {"featurizer": featurizer},
                 lambda: discriminator.featurize(project, featurizer, round=round, progress=progress))
    feature_key = feats.get("key")
    prev = _previous_version(project, round)
    if prev is not None:
        step("score_previous", {"version": prev},
             lambda: discriminator.score(project, round, prev, progress=progress))

    def build():
        if strategy == ACTIVE:
            return queue.build_active_sample(project, round, budget, version=prev, floor=floor,
                                             double_share=double_share, rng=rng, previews=True)
        if estimate_budget:
            queue.build_estimate_sample(project, round, estimate_budget, rng=rng)
        return queue.build_queue(project, round, budget, strategy=strategy, discriminator=prev,
                                 featurizer=feature_key, double_share=double_share, rng=rng)

    step("queue", {"strategy": strategy, "budget": budget, "version": prev, "floor": floor,
                   "estimate_budget": estimate_budget, "double": double_share, "rng": rng}, build)

    def mix_gold():
        from rorem_data.dataset import queries, queues
        from rorem_data.rounds.gold import add_gold

        n = int(round_up(gold_rate * queries.queue_size(project.dataset, round)))
        try:
            ids = add_gold(project, round, n, rng=rng)
        except ConfigError as exc:
            return f"no gold items ({exc})"
        queues.mix_in(project.dataset, round, ids, purpose=schema.QUEUE_GOLD, rng=rng)
        return f"{len(ids)} gold items mixed into the queue"

    if gold_rate > 0:
        step("gold", {"rate": gold_rate, "rng": rng}, mix_gold)

    def judge(purposes):
        def fn():
            out = reviewers.review(project, round, reviewer, purposes=purposes,
                                   reviewer_name=reviewer_name, port=port)
            if out["open"]:
                raise ConfigError(f"{out['open']} queued candidates of round {round} are still "
                                  "unjudged; judge them, then run the round again to resume")
            return f"{out['judged']} judged"
        return fn

    step("review", {"purposes": "queue"},
         judge([schema.QUEUE_ACTIVE, schema.QUEUE_ESTIMATE, schema.QUEUE_GOLD]))
    trained = step("train", {"spec": spec, "holdout": holdout, "rng": rng},
                   lambda: discriminator.train(project, round, spec, holdout=holdout, rng=rng,
                                               progress=progress))
    version = trained.get("version")
    res.version = version
    step("score", {"version": version},
         lambda: discriminator.score(project, round, version, progress=progress))

    def decide():
        use = prev if (strategy == ACTIVE and prev is not None) else version
        try:
            return automation.auto_label(project, round, version=use,
                                         target_precision=target_precision, confidence=confidence,
                                         audit=audit, allow_unseen_remover=allow_unseen_remover,
                                         rng=rng)
        except ConfigError as exc:  # the labels cannot support the target: decide nothing
            return f"nothing decided automatically: {exc}"

    step("auto_label", {"target": target_precision, "confidence": confidence, "audit": audit,
                        "version": version, "prev": prev, "unseen": allow_unseen_remover}, decide)
    step("audit_review", {"purposes": "audit"}, judge([schema.QUEUE_AUDIT]))

    def audit_step():
        try:
            out = automation.audit_report(project, round, confidence=confidence)
        except ConfigError as exc:
            return f"no audit: {exc}"
        p = out.get("accept_precision") or {}
        if p.get("value") is None:
            return f"audit: {out.get('flag')}"
        return (f"precision of automatic accepts {100 * p['value']:.1f}% [{100 * p['lo']:.1f}, "
                f"{100 * p['hi']:.1f}] vs target {100 * out['target_precision']:.0f}%: {out['flag']}")

    res.steps["audit"] = audit_step()  # cheap, and new audit judgments change it: always run
    say(f"  audit: {res.steps['audit']}")
    res.estimates = estimates.round_estimates(project, round, confidence=confidence)
    res.automation_yield = estimates.round_yield(project, round)
    res.steps["estimates"] = "recorded"
    store.update_round_record(project.dataset_name, round, set={
        "driver.estimates": res.estimates, "driver.version": version,
        "driver.params": {"remover": remover_desc, "budget": budget, "strategy": strategy,
                          "spec": spec, "featurizer": featurizer, "target_precision": target_precision,
                          "confidence": confidence, "audit": audit, "rng": rng}})
    res.seconds = time.perf_counter() - t0
    return res
