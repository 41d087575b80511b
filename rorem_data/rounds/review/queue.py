"""``rorem-data select``: build a round's human review queue with a query strategy.

Reads the round's candidates in bulk, hands plain arrays to :func:`rorem_data.selection.strategies.select`
(positions in, positions out), and converts positions to sample ids once. The queue is stored
on the samples (``queue_round``, ``queue_rank``, ``review_quota``), as a FiftyOne saved view named
``review-round-N`` (and ``adjudicate-round-N`` for disagreements), and in the round record
(strategy, parameters, seed, ids). Selecting again adds to the queue; it never re-queues an
item already queued or judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rorem_data.core.numbers import round_half_up
from rorem_data.core import schema
from rorem_data.core.display import Displayable
from rorem_data.core.errors import ConfigError
from rorem_data.core.progress import takes_progress
from rorem_data.dataset import queries, queues, store
from rorem_data.rounds import defaults as D
from rorem_data.rounds.lease import holds_round


@dataclass(repr=False)
class Selection(Displayable):
    round: int
    strategy: str
    sample_ids: list
    double_reviewed: int
    queue_size: int
    seconds: float
    repeated: bool = False
    details: dict = field(default_factory=dict)

    def summary(self) -> str:
        if self.details.get("design") == "poisson":
            d = self.details
            src = f"discriminator {d['version']}" if d.get("version") else "uniform (no discriminator yet)"
            s = (f"active sample of round {self.round}: drew {len(self.sample_ids)} of {d['population']} "
                 f"candidates (expected {d['expected_labels']:.1f}; probabilities "
                 f"{d['pi_min']:.3f}-{d['pi_max']:.3f} from {src}, rule {d['rule']}, floor {d['floor']:g})")
            if d.get("known_at_draw"):
                s += f"; {d['known_at_draw']} already judged count with probability 1"
            if self.repeated:
                s += "; this draw was already made (nothing redrawn)"
            return s + f"; queue now {self.queue_size}"
        if self.repeated:
            return (f"this exact selection ({len(self.sample_ids)} candidates, '{self.strategy}') was "
                    f"already queued for round {self.round}; pass another --seed or --budget to add more")
        s = (f"queued {len(self.sample_ids)} candidates of round {self.round} with "
             f"'{self.strategy}' (queue now {self.queue_size})")
        if self.double_reviewed:
            s += f"; {self.double_reviewed} will be judged by two reviewers"
        return s + f" in {self.seconds:.1f} s"


def score_field(discriminator_key: str) -> str:
    """Field holding a discriminator version's scores on candidates."""
    return f"scores.{discriminator_key}"


def load_round_arrays(project, round: int, *, score_keys=(), extra_fields=()) -> dict:
    """Candidates of ``round`` as column arrays (one query). Keys: ``ids``, ``keys``,
    ``status``, ``queued``, ``decided_by``, ``mask_area``, ``category``, ``origin``, ``scores``
    (dict of float arrays with NaN for missing), plus ``extra_fields``."""
    fields = ["key", "status", "queue_round", "mask_area", "category", "origin", "decided_by",
              "scores", *extra_fields]
    docs = queries.candidates(project.dataset, round=round, fields=fields)
    out = {
        "ids": [d["id"] for d in docs],
        "keys": [d["key"] for d in docs],
        "status": np.array([d.get("status") or schema.PENDING for d in docs], dtype=object),
        "queued": np.array([d.get("queue_round") is not None for d in docs], dtype=bool),
        "decided_by": np.array([d.get("decided_by") for d in docs], dtype=object),
        "mask_area": np.array([d.get("mask_area") or 0.0 for d in docs], dtype=np.float64),
        "category": np.array([d.get("category") or "" for d in docs], dtype=object),
        "origin": np.array([d.get("origin") or "" for d in docs], dtype=object),
        "scores": {},
    }
    for k in score_keys:
        out["scores"][k] = np.array([(d.get("scores") or {}).get(k, np.nan) for d in docs], dtype=np.float64)
    for f in extra_fields:
        out[f] = [d.get(f) for d in docs]
    return out


#: Strategy inputs :func:`build_queue` computes from the round; never accepted as parameters.
COMPUTED_INPUTS = ("n", "reviewed", "proba", "committee", "features", "strata", "scores")


@takes_progress
@holds_round("queue")
def build_queue(
    project,
    round: int,
    budget: int,
    *,
    strategy: str,
    discriminator: str | None = None,
    committee: list[str] | None = None,
    threshold: float = 0.5,
    featurizer: str | None = None,
    strata: list[str] | None = None,
    double_share: float = 0.0,
    rng: int = 0,
    previews: bool = True,
    **params,
) -> Selection:
    """Select ``budget`` unreviewed candidates of ``round`` for human review.

    Parameters
    ----------
    project : Project
    round : int
    budget : int
        How many candidates to add to the queue.
    strategy : str
        A name from :func:`rorem_data.selection.strategies.list_strategies`.
    discriminator : str, optional
        Discriminator version whose scores (``scores.<key>``) drive score-based strategies.
    committee : list of str, optional
        Several discriminator versions, for ``disagreement``.
    threshold : float
        The accept threshold the uncertainty is measured around.
    featurizer : str, optional
        Feature cache key for ``kcenter`` / ``hybrid``.
    strata : list of {"area", "category", "origin"}, optional
        Metadata to stratify over (``stratified``).
    double_share : float in [0, 1]
        Share of the queued items that two reviewers judge independently.
    rng : int
        Seed: the same seed gives the same queue.

    Returns
    -------
    Selection

    Raises
    ------
    ConfigError
        From the strategy (missing inputs, budget too large, ...), or no candidates in the round.
    """
    from rorem_data.selection import strategies
    from rorem_data.selection.strata import quantile_bins

    t0 = time.perf_counter()
    if not 0.0 <= double_share <= 1.0:
        raise ConfigError(f"double_share must be in [0, 1]; got {double_share}")
    computed = sorted(set(params) & set(COMPUTED_INPUTS))
    if computed:
        raise ConfigError(f"select computes {', '.join(computed)} from round {round}'s "
                          "candidates; they are not strategy parameters")
    plain = {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))}
    sel_id = _selection_id(round=int(round), budget=budget, strategy=strategy, discriminator=discriminator,
                           committee=committee, threshold=threshold, featurizer=featurizer, strata=strata,
                           double_share=double_share, rng=rng, params=plain)
    done = store.find_selection(project.dataset_name, round, sel_id)
    if done is not None:
        # the same selection was made before: finish it if it was interrupted, never repeat it
        ids = done["sample_ids"]
        double = set(done.get("double_positions") or [])
        size = enqueue(project, round, ids, purpose=schema.QUEUE_ACTIVE, double=double, previews=previews)
        store.mark_selection_done(project.dataset_name, round, sel_id)
        return Selection(round=int(round), strategy=strategy, sample_ids=ids, double_reviewed=len(double),
                         queue_size=size, seconds=time.perf_counter() - t0, repeated=done.get("status") == "done")
    score_keys = list(committee or []) + ([discriminator] if discriminator else [])
    arr = load_round_arrays(project, round, score_keys=score_keys,
                            extra_fields=("filepath", "target_path"))
    n = len(arr["ids"])
    if n == 0:
        raise ConfigError(f"round {round} has no candidates; generate them first "
                          f"(rorem_data.generate(project, {round}, remover))")
    reviewed = arr["queued"] | np.isin(arr["status"], [schema.ACCEPTED, schema.REJECTED])
    kwargs = dict(rng=rng, reviewed=reviewed, threshold=threshold, n=n, **params)
    if discriminator:
        p = arr["scores"][discriminator]
        missing = np.isnan(p) & ~reviewed
        if missing.any():
            raise ConfigError(f"{int(missing.sum())} unreviewed candidates of round {round} have no "
                              f"score from discriminator {discriminator!r}; score the round with it "
                              f"first (rorem_data.score(project, {round}, {discriminator!r}))")
        kwargs["proba"] = np.where(np.isnan(p), 0.5, p)
    if committee:
        kwargs["committee"] = np.stack([np.nan_to_num(arr["scores"][k], nan=0.5) for k in committee])
    if strata:
        table = {}
        for s in strata:
            if s == "area":
                table["area"] = quantile_bins(arr["mask_area"], 4)
            elif s in ("category", "origin"):
                table[s] = arr[s]
            else:
                raise ConfigError(f"strata entries must be area, category or origin; got {s!r}")
        kwargs["strata"] = table
    if featurizer:
        from rorem_data.rounds.discriminator import load_features

        kwargs["features"] = load_features(project, featurizer, arr["ids"])
    picked = strategies.select(strategy, budget, **kwargs)
    ids = [arr["ids"][i] for i in picked]
    gen = np.random.default_rng(rng)
    n_double = round_half_up(double_share * len(ids))
    double = set(gen.choice(len(ids), size=n_double, replace=False).tolist()) if n_double else set()
    # record first (status "started"), then queue, then mark done: an interrupted select is
    # finished by the same command, and never queues a second, different batch
    store.update_round_record(project.dataset_name, round, push={"selections": {
        "id": sel_id, "status": "started", "at": schema.utcnow(), "purpose": schema.QUEUE_ACTIVE,
        "strategy": strategy, "budget": int(budget), "seed": int(rng), "threshold": float(threshold),
        "discriminator": discriminator, "committee": committee, "featurizer": featurizer,
        "strata": strata, "double_share": float(double_share), "params": plain,
        "sample_ids": ids, "double_positions": sorted(double),
    }})
    size = enqueue(project, round, ids, purpose=schema.QUEUE_ACTIVE, double=double, previews=previews)
    store.mark_selection_done(project.dataset_name, round, sel_id)
    return Selection(round=int(round), strategy=strategy, sample_ids=ids, double_reviewed=len(double),
                     queue_size=size, seconds=time.perf_counter() - t0)


@takes_progress
def select(project, round: int, budget, *, strategy: str = D.STRATEGY, version: str | None = None,
           floor: float | None = D.FLOOR, threshold: float = 0.5, featurizer: str | None = None,
           committee: list[str] | None = None, strata: list[str] | None = None,
           double_share: float = 0.0, rng: int = D.RNG, previews: bool = True,
           **params) -> Selection:
    """Build the round's human review queue (``rorem-data select``).

    Parameters
    ----------
    project : Project or str
    round : int
    budget : int
        How many candidates to queue (the expected number for ``"active-inference"``).
    strategy : str
        ``"active-inference"`` (the default, as in :func:`rorem_data.run_round`: a Poisson
        sample with known probabilities, uniform while the project has no discriminator, that
        also gives unbiased estimates and certified automation; :func:`build_active_sample`) or
        a query strategy from :func:`rorem_data.list_strategies` (:func:`build_queue`).
    version : str, optional
        Discriminator version whose scores drive the strategy (default: the latest trained).
    floor : float
        ``"active-inference"``: the smallest inclusion probability.
    threshold, featurizer, committee, strata, double_share, rng, previews
        As in :func:`build_queue`.
    **params
        A query strategy's own parameters (e.g. ``audit_share=1`` for ``hybrid-audit``).

    Returns
    -------
    Selection

    Raises
    ------
    ConfigError
        An unknown strategy; a strategy that needs a discriminator's scores in a project that
        has none yet (use ``"active-inference"``, or train one first); parameters the
        strategy does not take.

    Examples
    --------
    >>> rorem_data.select(project, 1, 60)                                  # doctest: +SKIP
    >>> rorem_data.select(project, 2, 60, strategy="hybrid-audit")         # doctest: +SKIP
    """
    from rorem_data.core.checks import choice
    from rorem_data.rounds.defaults import ACTIVE
    from rorem_data.rounds.versions import latest_version
    from rorem_data.selection.strategies import get_strategy, list_strategies

    choice(strategy, "strategy", [ACTIVE, *list_strategies()])
    if strategy == ACTIVE:
        if params:
            raise ConfigError(f"the active-inference sample takes floor and version, not strategy "
                              f"parameters; got {', '.join(sorted(params))}")
        return build_active_sample(project, round, budget, version=version, floor=floor,
                                   double_share=double_share, rng=rng, previews=previews)
    needs = set(get_strategy(strategy).needs(params))
    if "proba" in needs and version is None:
        version = latest_version(project)
        if version is None:
            raise ConfigError(
                f"strategy {strategy!r} ranks candidates by a discriminator's scores, and this "
                "project has no trained discriminator yet. Use strategy='active-inference' (the "
                "default: uniform in the first round, and its labels train the first "
                "discriminator), or train one first (rorem_data.train_discriminator)")
    if "features" in needs and featurizer is None:
        featurizer = D.FEATURIZER
    return build_queue(project, round, budget, strategy=strategy, discriminator=version,
                       committee=committee, threshold=threshold, featurizer=featurizer,
                       strata=strata, double_share=double_share, rng=rng, previews=previews,
                       **params)


ACTIVE_RULES = ("uncertainty", "threshold", "uniform")


@takes_progress
@holds_round("queue")
def build_active_sample(
    project,
    round: int,
    budget,
    *,
    version: str | None = None,
    floor: float | None = D.FLOOR,
    rule: str = "uncertainty",
    double_share: float = 0.0,
    rng: int = 0,
    previews: bool = True,
) -> Selection:
    """Draw the round's active sample: each candidate with its own known probability.

    Poisson sampling (Zrnic & Candès 2024): candidate ``i`` is drawn independently with
    probability ``pi_i`` from :func:`rorem_data.stats.active.sampling_probabilities` - higher where
    ``version`` is unsure, never below ``floor`` - so that the same labels train the next
    discriminator and give unbiased estimates (:mod:`rorem_data.rounds.estimates`) and certified
    auto-label thresholds (:mod:`rorem_data.rounds.automation`). Candidates whose human label is
    already known get ``pi = 1`` (their label counts exactly and costs nothing); ``budget`` is
    the expected number of the others to draw. Every candidate of the round carries its
    ``inclusion_probability``; the drawn ones are queued for review (purpose ``active``); the
    round record's selection holds the parameters, the version, the drawn ids and their
    probabilities.

    One active sample per round: its probabilities must stay exact. Calling again with the
    same arguments finishes an interrupted draw and never redraws; other arguments are refused.

    Parameters
    ----------
    project : Project
    round : int
    budget : float
        Expected number of candidates to draw, in (0, number not yet judged].
    version : str, optional
        Discriminator version whose calibrated scores (``scores.<version>``) set the
        probabilities. Default: the latest trained version, which in the loop is the one trained
        before this round's labels (``v_{r-1}``); uniform probabilities when there is none.
    floor : float, optional
        Smallest probability, in (0, 1]; needs ``floor * N <= budget``. Default:
        ``rorem_data.rounds.defaults.UNIFORM_SHARE`` (1.0) of the budget spread evenly, i.e.
        ``budget / N`` for every candidate. Automatic decisions are certified on the part of the
        sample drawn with equal probability (the smallest one), so a low floor starves them.
    rule : {"uncertainty", "threshold", "uniform"}, default "uncertainty"
        ``"uncertainty"``: ``pi`` proportional to ``sqrt(p (1 - p))`` (best for the success rate);
        ``"threshold"``: largest near ``p = 0.5``; ``"uniform"``: ``budget / N`` for every
        candidate, whatever the scores.
    double_share : float in [0, 1]
        Share of the drawn candidates that two reviewers judge independently (their agreement
        is measured; a disagreement waits for adjudication).
    rng : int
        Seed of the draw.
    previews : bool
        Write review previews of the drawn candidates.

    Returns
    -------
    Selection
        ``sample_ids``: the drawn candidates; ``details``: population, expected labels,
        probability range, version, rule, floor, selection id.

    Raises
    ------
    ConfigError
        No candidates; candidates without scores from ``version``; a bad ``budget``,
        ``floor`` or ``rule``; the round already has a different active sample.

    Examples
    --------
    >>> sel = build_active_sample(project, 2, 500, floor=0.1)      # doctest: +SKIP
    >>> print(sel.summary())                                       # doctest: +SKIP
    active sample of round 2: drew 497 of 20000 candidates (expected 500.0; ...)
    """
    from rorem_data.core.checks import choice
    from rorem_data.rounds.estimates import DESIGN_POISSON, active_selection
    from rorem_data.rounds.versions import latest_version, load_version_meta
    from rorem_data.stats.active import poisson_sample, sampling_probabilities

    t0 = time.perf_counter()
    choice(rule, "rule", ACTIVE_RULES)
    if not 0.0 <= double_share <= 1.0:
        raise ConfigError(f"double_share must be in [0, 1]; got {double_share}")
    ds = project.dataset
    extra_id = {"double_share": float(double_share)} if double_share else {}
    sel_id = _selection_id(round=int(round), purpose="active-sample", budget=budget, version=version,
                           floor=floor, rule=rule, rng=rng, **extra_id)
    prior = active_selection(project, round)
    if prior is not None and prior.get("id") != sel_id:
        raise ConfigError(
            f"round {round} already has an active sample (drawn {prior.get('at')}, budget "
            f"{prior.get('budget')}, version {prior.get('version')!r}, floor {prior.get('floor')}, "
            f"rule {prior.get('rule')!r}, rng {prior.get('seed')}); one per round keeps its "
            "inclusion probabilities exact. Repeat that call to finish it, or queue more "
            "candidates with build_queue (their labels train the discriminator but do not enter "
            "the active estimates)")
    if prior is None:
        docs = queries.candidates(ds, round=round, fields=["decisions", "scores"])
        if not docs:
            raise ConfigError(f"round {round} has no candidates; generate them first "
                              f"(rorem_data.generate(project, {round}, ...))")
        used = version if version is not None else (None if rule == "uniform" else latest_version(project))
        if used is not None:
            load_version_meta(project, used)  # unknown version: one clear error
        known = np.array([queries.latest_human_label(d.get("decisions")) is not None for d in docs])
        rest = np.flatnonzero(~known)
        if rest.size == 0:
            raise ConfigError(f"every candidate of round {round} already has a human label; "
                              "there is nothing left to draw")
        pi = np.ones(len(docs))
        if floor is None:
            floor = min(1.0, D.UNIFORM_SHARE * float(budget) / rest.size) if isinstance(
                budget, (int, float)) and not isinstance(budget, bool) and budget > 0 else 0.05
        if rule == "uniform" or used is None:
            # every probability is budget / n: the floor only needs checking, not applying
            fl = floor
            if isinstance(budget, (int, float)) and isinstance(floor, (int, float)) and 0 < floor <= 1:
                fl = min(floor, max(float(budget), 1e-12) / rest.size)
            pi[rest] = sampling_probabilities(None, budget, floor=fl, n=int(rest.size))
        else:
            p = np.array([(docs[i].get("scores") or {}).get(used, np.nan) for i in rest], dtype=np.float64)
            if np.isnan(p).any():
                raise ConfigError(
                    f"{int(np.isnan(p).sum())} candidates of round {round} have no score from "
                    f"discriminator {used!r}; score the round with it first "
                    f"(rorem_data.score(project, {round}, {used!r})), or pass rule='uniform'")
            pi[rest] = sampling_probabilities(p, budget, floor=floor, rule=rule)
        xi = np.zeros(len(docs), dtype=bool)
        xi[rest] = poisson_sample(pi[rest], rng)
        ids = [d["id"] for d in docs]
        drawn = [ids[i] for i in np.flatnonzero(xi)]
        n_double = round_half_up(double_share * len(drawn))
        double_pos = sorted(np.random.default_rng([int(rng), int(round), 0xD0]).choice(
            len(drawn), size=n_double, replace=False).tolist()) if n_double else []
        # probabilities on every candidate first, then the record, then the queue: an
        # interruption before the record leaves nothing drawn (the rerun draws afresh and
        # overwrites); after it, the rerun finishes this draw
        store.set_field_values(ds, "inclusion_probability", ids, [float(v) for v in pi])
        prior = {
            "id": sel_id, "status": "started", "at": schema.utcnow(), "purpose": schema.QUEUE_ACTIVE,
            "design": DESIGN_POISSON, "strategy": f"active-{rule}", "budget": float(budget),
            "floor": float(floor), "rule": rule, "seed": int(rng), "version": used,
            "requested_version": version, "population": len(ids), "known_at_draw": int(known.sum()),
            "expected_labels": float(pi[rest].sum()), "pi_min": float(pi[rest].min()),
            "pi_max": float(pi[rest].max()), "sample_ids": drawn,
            "probabilities": [float(pi[i]) for i in np.flatnonzero(xi)],
            "double_positions": double_pos,
        }
        store.update_round_record(project.dataset_name, round, push={"selections": prior})
        repeated = False
    else:
        drawn = list(prior["sample_ids"])
        repeated = prior.get("status") == "done"
    probs = dict(zip(drawn, prior.get("probabilities") or []))
    double = set(prior.get("double_positions") or [])
    size = enqueue(project, round, drawn, purpose=schema.QUEUE_ACTIVE, previews=previews, double=double,
                   extra={sid: {"inclusion_probability": p} for sid, p in probs.items()})
    store.mark_selection_done(project.dataset_name, round, sel_id)
    details = {k: prior.get(k) for k in ("design", "population", "known_at_draw", "expected_labels",
                                         "pi_min", "pi_max", "version", "rule", "floor", "budget")}
    details["selection_id"] = sel_id
    return Selection(round=int(round), strategy=f"active-{rule}", sample_ids=drawn, double_reviewed=len(double),
                     queue_size=size, seconds=time.perf_counter() - t0, repeated=repeated,
                     details=details)


def enqueue(project, round: int, sample_ids: list, *, purpose: str, double=(), previews: bool = True,
            extra: dict | None = None) -> int:
    """Append candidates to the round's review queue (skipping any already queued).

    Writes previews, then one bulk update; refreshes the saved views. Returns the queue size.
    """
    ds = project.dataset
    paths = {}
    if previews and sample_ids:
        from rorem_data.dataset.previews import ensure_previews

        docs = queries.by_ids(ds, sample_ids, ["filepath", "target_path", "mask.mask_path"],
                              unqueued_only=True)
        rows = [(sid, docs[sid]["filepath"], docs[sid]["mask"]["mask_path"], docs[sid]["target_path"])
                for sid in sample_ids if sid in docs]
        paths = dict(zip([r[0] for r in rows], ensure_previews(project, rows)))
    return queues.enqueue(ds, round, sample_ids, purpose=purpose, double=double,
                          preview_paths=paths, extra=extra)


@takes_progress
@holds_round("queue")
def build_estimate_sample(project, round: int, size: int, *, rng: int = 0, previews: bool = True) -> Selection:
    """Draw a uniform random sample of the round's candidates for unbiased success-rate estimates.

    The sample is uniform over ALL candidates of the round not yet in it: members a human already
    judged keep their judgment; the others are queued. Marks members with ``estimate_sample``.
    Running the same call again after an interruption finishes it instead of drawing again.
    """
    t0 = time.perf_counter()
    ds = project.dataset
    sel_id = _selection_id(round=int(round), purpose=schema.QUEUE_ESTIMATE, size=int(size), rng=int(rng))
    done = store.find_selection(project.dataset_name, round, sel_id)
    if done is not None:
        chosen = done["sample_ids"]
    else:
        pool = queries.candidate_ids(ds, round=round, estimate_sample=False)
        if size <= 0 or size > len(pool):
            raise ConfigError(f"estimation sample size must be in 1..{len(pool)} (candidates of round "
                              f"{round} not yet in the sample); got {size}")
        gen = np.random.default_rng(rng)
        chosen = [pool[i] for i in sorted(gen.choice(len(pool), size=size, replace=False).tolist())]
        store.update_round_record(project.dataset_name, round, push={"selections": {
            "id": sel_id, "status": "started", "at": schema.utcnow(), "purpose": schema.QUEUE_ESTIMATE,
            "strategy": "uniform", "budget": int(size), "seed": int(rng), "sample_ids": chosen}})
    queues.mark_estimate_sample(ds, chosen)
    size_q = enqueue(project, round, chosen, purpose=schema.QUEUE_ESTIMATE, previews=previews)
    store.mark_selection_done(project.dataset_name, round, sel_id)
    return Selection(round=int(round), strategy="uniform (estimate)", sample_ids=chosen,
                     double_reviewed=0, queue_size=size_q, seconds=time.perf_counter() - t0,
                     repeated=bool(done and done.get("status") == "done"))


def _selection_id(**what) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


