"""What a round's human labels say: success rate, automation yield, agreement per remover.

Two sampling designs give valid numbers; both can live in one round.

* **Uniform estimation sample** (:func:`rorem_data.rounds.review.queue.build_estimate_sample`): a simple
  random sample of the round's candidates (``estimate_sample``). ``human`` is its
  Clopper-Pearson rate; ``ppi`` adds a discriminator's scores on every candidate (PPI++).
* **Active sample** (:func:`rorem_data.rounds.review.queue.build_active_sample`): every candidate of the
  round drawn independently with its own known probability ``pi_i`` (Poisson sampling, higher
  where the discriminator that drew it was unsure, never below a floor), recorded on each
  candidate (``inclusion_probability``) and in the round record's selection. ``active`` is the
  inverse-probability-weighted PPI++ estimate (:func:`rorem_data.stats.active.active_mean`) with
  an independent discriminator as predictor: unbiased for the round's candidates whatever the
  labels, the scores or the calibration. The same labels train the next discriminator version.

Why it is valid, and the one rule that keeps it so
--------------------------------------------------
The active guarantees are design-based: the labels of the round's ``N`` candidates are fixed and
the only randomness is the draw. They hold when the probabilities, the predictor's scores and
the thresholds to test were fixed before the draw and do not depend on it. So in round ``r``

1. the probabilities come from the latest version trained **before** the draw (``v_{r-1}``;
   uniform in the first round, when there is none); that version is recorded in the selection;
2. candidates whose human label was already known at the draw enter with ``pi = 1`` (their
   label counts exactly and costs nothing); the budget is spent on the rest;
3. the labels then (i) train ``v_r`` (training reads every human label), (ii) estimate round
   ``r``'s success rate with ``v_{r-1}`` as predictor, and (iii) certify ``v_{r-1}``'s
   auto-label thresholds on round ``r`` (:mod:`rorem_data.rounds.automation`).

A version is **independent of the draw** (:func:`independence_problem`) when none of the
labels it was trained or calibrated on (``train_ids``, ``holdout.ids`` in its ``meta.json``) was
drawn with ``pi < 1``, and it was trained no later than the draw (``trained_at``). ``v_r`` fails
that test: it was fit to the sampled labels, so its errors on them are smaller than elsewhere,
the inverse-probability residuals are biased, and the precision bound's proof (fixed scores)
is void. It is refused for the active method; its own held-out labels (the ``holdout`` method)
or the next round's active sample are the valid ways to calibrate it. A version that records
neither its labels nor its training time is refused too.

Candidates generated after the draw have no inclusion probability: the active estimates cover
the ``population`` present at the draw, and say so.

The same rule applies to ``ppi``: a version trained on the estimation sample's labels is not an
independent predictor for them, so ``ppi`` uses the latest version whose labels do not touch the
sample (and says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from rorem_data.core import schema
from rorem_data.core.display import Displayable
from rorem_data.core.errors import ConfigError
from rorem_data.dataset import queries, store
from rorem_data.rounds.versions import latest_version, list_versions, load_version_meta

__all__ = ["ActiveDesign", "RoundEstimates", "active_design", "estimates", "independence_problem", "per_remover_agreement",
           "remover_of", "round_estimates", "round_yield"]

DESIGN_POISSON = "poisson"
UNKNOWN_REMOVER = "(unknown)"


def remover_of(doc: dict) -> str:
    """The remover a candidate came from: ``generator.remover_key``, else ``generator.remover``."""
    g = doc.get("generator") or {}
    return str(g.get("remover_key") or g.get("remover") or UNKNOWN_REMOVER)


# --- the active design -----------------------------------------------------------------------

@dataclass
class ActiveDesign:
    """A round's active sample as the estimators need it: arrays over its population.

    Attributes
    ----------
    round : int
    selection : dict
        The selection record (budget, floor, rule, seed, version, ``at``, drawn ids).
    ids : list of str
        Sample ids of the population (every candidate of the round at the draw), key order.
    pi : ndarray of float, shape (N,)
        Inclusion probabilities in (0, 1].
    drawn : ndarray of bool, shape (N,)
        Drawn by the Poisson draw (and queued for review).
    known : ndarray of bool, shape (N,)
        Human label already known at the draw (``pi = 1``, always in the sample).
    labels : ndarray of float, shape (N,)
        Latest human label now (1 success, 0 failure), NaN where there is none.
    removers : ndarray of object, shape (N,)
        Remover of each candidate (:func:`remover_of`).
    scores : dict
        ``{version: float array (N,), NaN where missing}`` for every version stored.
    keys : list of str
        Candidate keys (location-independent: the coins of the certification hash them).
    """

    round: int
    selection: dict
    ids: list
    pi: np.ndarray
    drawn: np.ndarray
    known: np.ndarray
    labels: np.ndarray
    removers: np.ndarray
    scores: dict = field(default_factory=dict)
    keys: list = field(default_factory=list)

    @property
    def xi(self) -> np.ndarray:
        """Sampled indicator: drawn, or known at the draw."""
        return self.drawn | self.known

    @property
    def version(self) -> str | None:
        """The version whose scores set the probabilities (None: uniform)."""
        return self.selection.get("version")

    @property
    def at(self) -> datetime | None:
        return self.selection.get("at")

    @property
    def pending(self) -> int:
        """Drawn candidates still without a human label."""
        return int((self.drawn & np.isnan(self.labels)).sum())

    @property
    def finished(self) -> bool:
        return self.selection.get("status") == "done"

    def version_scores(self, version: str) -> np.ndarray:
        return self.scores.get(version, np.full(len(self.ids), np.nan))


def active_selection(project, round: int) -> dict | None:
    """The round's active-sample selection record (None if the round has none)."""
    for s in store.round_record(project.dataset_name, round).get("selections") or []:
        if s.get("design") == DESIGN_POISSON and s.get("status") != "withdrawn":
            return s
    return None


def active_design(project, round: int) -> ActiveDesign | None:
    """The round's active sample as arrays, or None when the round has none.

    Raises
    ------
    ConfigError
        The recorded population and the candidates carrying an inclusion probability disagree
        (a draw interrupted before it was written; repeating the same call finishes it).
    """
    sel = active_selection(project, round)
    if sel is None:
        return None
    docs = queries.candidates(project.dataset, round=round,
                              fields=["inclusion_probability", "decisions", "generator", "scores", "key"])
    pop = [d for d in docs if d.get("inclusion_probability") is not None]
    if len(pop) != int(sel.get("population", -1)):
        raise ConfigError(
            f"round {round}'s active sample records {sel.get('population')} candidates but "
            f"{len(pop)} carry an inclusion probability; the draw was interrupted. Repeat the "
            f"same build_active_sample call (budget={sel.get('budget')}, "
            f"version={sel.get('requested_version')!r}, floor={sel.get('floor')}, "
            f"rule={sel.get('rule')!r}, rng={sel.get('seed')}) to finish it")
    ids = [d["id"] for d in pop]
    pi = np.array([float(d["inclusion_probability"]) for d in pop])
    drawn_set = set(sel.get("sample_ids") or [])
    drawn = np.array([sid in drawn_set for sid in ids], dtype=bool)
    known = (pi >= 1.0) & ~drawn
    labels = np.array([np.nan if (y := queries.latest_human_label(d.get("decisions"))) is None
                       else float(y) for d in pop])
    scores: dict = {}
    for i, d in enumerate(pop):
        for v, s in (d.get("scores") or {}).items():
            if isinstance(s, (int, float)):
                col = scores.get(v)
                if col is None:  # one array per version, not one per (candidate, version)
                    col = scores[v] = np.full(len(pop), np.nan)
                col[i] = float(s)
    return ActiveDesign(round=int(round), selection=sel, ids=ids, pi=pi, drawn=drawn, known=known,
                        labels=labels, removers=np.array([remover_of(d) for d in pop], dtype=object),
                        scores=scores, keys=[d.get("key") or d["id"] for d in pop])


def _as_time(x) -> datetime | None:
    if isinstance(x, datetime):
        return x.replace(tzinfo=None)
    if isinstance(x, str):
        try:
            return datetime.fromisoformat(x).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def _label_ids(meta: dict) -> set | None:
    """Sample ids a version was trained or calibrated on; None when it records none."""
    train = meta.get("train_ids")
    hold = (meta.get("holdout") or {}).get("ids")
    if train is None and hold is None:
        return None
    return set(train or []) | set(hold or [])


def independence_problem(project, version: str, sample_ids, at=None) -> str | None:
    """Why ``version`` is not independent of a sample, or None when it is.

    Parameters
    ----------
    version : str
    sample_ids : iterable of str
        Candidates drawn at random (``pi < 1``) whose labels the estimate or bound uses.
    at : datetime, optional
        Time of the draw; the version must have been trained no later. With ``at``, a version
        that records neither its labels nor its training time is refused; without it (a uniform
        sample made of several draws), only the label overlap is checked.

    Returns
    -------
    str or None
        The reason (names the version, the overlap, and what to use instead).
    """
    meta = load_version_meta(project, version)
    ids = _label_ids(meta)
    trained = _as_time(meta.get("trained_at"))
    drawn = set(sample_ids)
    if ids is not None:
        overlap = len(ids & drawn)
        if overlap:
            return (f"version {version} was trained or calibrated on {overlap} of the sampled "
                    "candidates' labels, so its scores are not independent of them: their "
                    "residuals are too small and an estimate or bound built on them is biased")
    at = _as_time(at)
    if at is not None and trained is not None and trained > at:
        return (f"version {version} was trained at {trained.isoformat()}, after the sample was "
                f"drawn ({at.isoformat()}); the predictor must be fixed before the draw")
    if ids is None and at is not None and trained is None:
        return (f"version {version} records neither the labels it was trained on nor a training "
                "time before the draw, so its independence from the sample cannot be checked")
    return None


def _independent_version(project, sample_ids, at, *, has_scores, exclude=()) -> str | None:
    """The most recently trained version independent of the sample with scores everywhere."""
    found = []
    for v in list_versions(project):
        if v in exclude or not has_scores(v):
            continue
        try:
            meta = load_version_meta(project, v)
            if independence_problem(project, v, sample_ids, at) is None:
                found.append((str(meta.get("trained_at", "")), v))
        except ConfigError:
            continue
    return max(found)[1] if found else None


# --- success rate ----------------------------------------------------------------------------

def _active_estimate(project, design: ActiveDesign, version, confidence, notes) -> dict:
    n_pop = len(design.ids)
    base = {"population": n_pop, "selection": design.selection.get("id"),
            "drawn": int(design.drawn.sum()), "known_at_draw": int(design.known.sum()),
            "pending": design.pending}
    if not design.finished:
        return {**base, "value": None, "message": "the draw was interrupted; repeat the same "
                "build_active_sample call to finish it"}
    if design.pending:
        return {**base, "value": None, "message": f"{design.pending} drawn candidates still await a "
                "human label; every drawn candidate must be judged for an unbiased estimate"}
    from rorem_data.stats.active import active_mean

    drawn_ids = [sid for sid, d in zip(design.ids, design.drawn) if d]
    rest = ~design.known

    def scored(v):
        return not np.isnan(design.version_scores(v)[rest]).any()

    predictor = None
    if version is not None:
        why = independence_problem(project, version, drawn_ids, design.at)
        if why is None and not scored(version):
            why = f"version {version} has no scores on some candidates of the sample's population"
        if why is None:
            predictor = version
        else:
            notes.append(f"active: {why}; using an independent predictor instead")
    if predictor is None:
        cand = design.version
        if cand is not None and scored(cand) and \
                independence_problem(project, cand, drawn_ids, design.at) is None:
            predictor = cand
        else:
            predictor = _independent_version(project, drawn_ids, design.at, has_scores=scored)
    y = np.where(design.xi, design.labels, np.nan)
    if predictor is None:
        est = active_mean(y, design.xi, design.pi, confidence=confidence)
    else:
        f = np.where(design.known, 0.5, design.version_scores(predictor))  # known: f is irrelevant
        est = active_mean(y, design.xi, design.pi, np.clip(f, 0.0, 1.0), confidence=confidence)
    return {**base, **est.as_dict(), "version": predictor}


def round_estimates(project, round: int, *, version: str | None = None, confidence: float = 0.95) -> dict:
    """The remover's success rate on round ``round``'s candidates, with intervals.

    Parameters
    ----------
    project : Project
    round : int
    version : str, optional
        Discriminator version to use as predictor (default: the latest trained). A version that
        is not independent of a sample's labels (module docstring) is not used for that sample;
        the latest independent one is, and ``notes`` says so.
    confidence : float, default 0.95

    Returns
    -------
    dict
        ``round``, ``candidates`` (all of the round), ``estimate_labels`` (judged members of the
        uniform estimation sample), and when available (Estimates as dicts):

        * ``human``: the uniform sample's human labels alone (Clopper-Pearson);
        * ``ppi``: PPI++ from those labels and an independent version's scores on every
          candidate (``version`` says which);
        * ``active``: the active sample's inverse-probability-weighted PPI++ estimate over its
          ``population`` (``version``: the predictor; without one, Horvitz-Thompson), or
          ``value`` None with a ``message`` while drawn candidates await labels;
        * ``discriminator``: ``{"version", "value"}``, the mean calibrated score (no interval:
          biased if the calibration is off);
        * ``best``: the estimate to show - ``active``, else ``ppi``, else ``human`` - with
          ``source``; None when there is none;
        * ``notes``: why a version or a sample was not used.

    Raises
    ------
    ConfigError
        A bad ``confidence``; an unknown ``version``.

    Examples
    --------
    >>> est = round_estimates(project, 1)            # doctest: +SKIP
    >>> est["best"]["source"], est["best"]["value"]  # doctest: +SKIP
    ('active', 0.62)
    """
    from rorem_data.stats.intervals import check_confidence, proportion
    from rorem_data.stats.ppi import ppi_mean

    confidence = check_confidence(confidence)
    if version is not None:
        load_version_meta(project, version)  # unknown version: one clear error
    docs = queries.candidates(project.dataset, round=round,
                              fields=["estimate_sample", "scores", "decisions"])
    out: dict = {"round": int(round), "candidates": len(docs), "notes": []}
    labelled = []
    for i, d in enumerate(docs):
        if d.get("estimate_sample"):
            y = queries.latest_human_label(d.get("decisions"))
            if y is not None:
                labelled.append((i, y))
    out["estimate_labels"] = len(labelled)
    y = np.array([v for _i, v in labelled], dtype=np.float64)
    if labelled:
        out["human"] = proportion(int(y.sum()), len(y), confidence=confidence).as_dict()

    def all_scores(v):
        return np.array([(d.get("scores") or {}).get(v, np.nan) for d in docs], dtype=np.float64)

    def scored(v):
        return len(docs) > 0 and not np.isnan(all_scores(v)).any()

    chosen = version or latest_version(project)
    if chosen and scored(chosen):
        out["discriminator"] = {"version": chosen, "value": float(all_scores(chosen).mean())}
    if len(labelled) >= 2:
        sample_ids = [docs[i]["id"] for i, _v in labelled]
        predictor = None
        if chosen and scored(chosen):
            why = independence_problem(project, chosen, sample_ids)
            if why is None:
                predictor = chosen
            else:
                out["notes"].append(f"ppi: {why}")
        if predictor is None:
            predictor = _independent_version(project, sample_ids, None, has_scores=scored,
                                             exclude=(chosen,) if chosen else ())
        if predictor is not None:
            s_all = all_scores(predictor)
            s_lab = s_all[[i for i, _v in labelled]]
            out["ppi"] = {**ppi_mean(y, s_lab, s_all, confidence=confidence).as_dict(),
                          "version": predictor}
    design = active_design(project, round)
    if design is not None:
        out["active"] = _active_estimate(project, design, version, confidence, out["notes"])
    out["best"] = None
    for key in ("active", "ppi", "human"):
        e = out.get(key)
        if e and e.get("value") is not None:
            out["best"] = {**e, "source": key}
            break
    return out


@dataclass(repr=False)
class RoundEstimates(Displayable):
    """A round's success rate, with intervals (:func:`estimates`).

    Attributes
    ----------
    round, candidates : int
    best : dict or None
        The estimate to quote (``value``, ``lo``, ``hi``, ``confidence``, ``source``).
    active, ppi, human : dict or None
        Each estimator's result (see :func:`round_estimates`).
    discriminator : dict or None
        ``{"version", "value"}``: the mean calibrated score (no interval).
    estimate_labels : int
        Judged members of the uniform estimation sample.
    notes : list of str
        Why a version or a sample was not used.
    """

    round: int
    candidates: int = 0
    best: dict | None = None
    active: dict | None = None
    ppi: dict | None = None
    human: dict | None = None
    discriminator: dict | None = None
    estimate_labels: int = 0
    notes: list = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return (self.best or {}).get("value")

    @property
    def interval(self) -> tuple | None:
        b = self.best or {}
        return (b["lo"], b["hi"]) if b.get("lo") is not None else None

    def _short(self) -> str:
        b = self.best
        if not b or b.get("value") is None:
            return f"round {self.round}: no estimate yet ({self.candidates} candidates)"
        return (f"round {self.round}: success {100 * b['value']:.1f}% [{100 * b['lo']:.1f}, "
                f"{100 * b['hi']:.1f}] ({b.get('source')}, {self.candidates} candidates)")

    summary = _short


def estimates(project, round: int, *, version: str | None = None,
              confidence: float = 0.95) -> RoundEstimates:
    """The remover's success rate on round ``round``'s candidates, with intervals.

    The typed face of :func:`round_estimates` (same parameters; see it for the estimators).

    Returns
    -------
    RoundEstimates

    Examples
    --------
    >>> rorem_data.estimates(project, 1)          # doctest: +SKIP
    RoundEstimates(round 1: success 40.0% [23.4, 56.6] (active, 128 candidates))
    """
    out = round_estimates(project, round, version=version, confidence=confidence)
    return RoundEstimates(round=out["round"], candidates=out["candidates"], best=out.get("best"),
                          active=out.get("active"), ppi=out.get("ppi"), human=out.get("human"),
                          discriminator=out.get("discriminator"),
                          estimate_labels=out.get("estimate_labels", 0), notes=out.get("notes") or [])


# --- automation yield ------------------------------------------------------------------------

def yield_counts(project, round: int) -> dict:
    """Live counts of the round's candidates decided by the discriminator (the ledger's view)."""
    docs = queries.candidates(project.dataset, round=round, fields=["status", "decided_by"])
    n = len(docs)
    acc = sum(1 for d in docs if d.get("decided_by") == schema.BY_DISCRIMINATOR
              and d.get("status") == schema.ACCEPTED)
    rej = sum(1 for d in docs if d.get("decided_by") == schema.BY_DISCRIMINATOR
              and d.get("status") == schema.REJECTED)
    return {"candidates": n, "auto_accepted": acc, "auto_rejected": rej,
            "accept_share": acc / n if n else 0.0, "reject_share": rej / n if n else 0.0}


def round_yield(project, round: int) -> dict:
    """Automation yield of a round: the share of its candidates decided automatically.

    Returns
    -------
    dict
        ``candidates``, ``auto_accepted``, ``auto_rejected``, ``accept_share``,
        ``reject_share`` (counted now, so human overrules in the audit are reflected),
        ``method`` (``"active"`` / ``"holdout"``, None before auto-label) and
        ``audited_precision`` (the audit's measured precision of the automatic accepts, an
        Estimate dict, or None before anything was audited).

    Examples
    --------
    >>> round_yield(project, 2)["accept_share"]       # doctest: +SKIP
    0.41
    """
    auto = (store.round_record(project.dataset_name, round).get("phases") or {}).get("auto") or {}
    rec = auto.get("yield") or {}
    return {**yield_counts(project, round), "method": rec.get("method") or auto.get("method"),
            "audited_precision": rec.get("audited_precision")}


# --- agreement per remover -------------------------------------------------------------------

def per_remover_agreement(project, round: int, version: str, *, threshold: float | None = None,
                          confidence: float = 0.95) -> dict:
    """How well ``version`` agrees with humans on round ``round``, per remover.

    Uses the round's human-labelled candidates that ``version`` was not trained on
    (``train_ids``), with the version's stored scores (``scores.<version>``). Labels from an
    active sample are over-represented where the discriminator was unsure, so these figures
    describe the labelled candidates, not the whole round.

    Parameters
    ----------
    threshold : float, optional
        Accept threshold for precision/recall. Default: the remover's auto-label threshold of
        this version in the round record, else the round's, else 0.5 (``threshold_source``
        says which).

    Returns
    -------
    dict
        ``round``, ``version``, ``confidence``, ``excluded_training``, ``unscored`` and
        ``removers``: ``{remover: {"n", "n_positive", "threshold", "threshold_source", "auc",
        "precision", "recall", "accuracy", "human_rate", "discriminator_rate", "difference"}}``
        (Estimates as dicts; ``auc`` None with one class), or ``{"n", "message"}`` with fewer
        than 2 labels.

    Examples
    --------
    >>> per_remover_agreement(project, 2, "stats_logistic_r1_ab12cd")["removers"]["telea"]["auc"]  # doctest: +SKIP
    {'value': 0.91, 'lo': 0.86, 'hi': 0.96, ...}
    """
    from rorem_data.stats.agreement import agreement_report
    from rorem_data.stats.intervals import check_confidence

    confidence = check_confidence(confidence)
    meta = load_version_meta(project, version)
    train = set(meta.get("train_ids") or [])
    auto = (store.round_record(project.dataset_name, round).get("phases") or {}).get("auto") or {}
    same = auto.get("version") == version
    recorded = auto.get("removers") or []
    by_remover = ({x.get("remover"): x for x in recorded if isinstance(x, dict)}
                  if isinstance(recorded, list) else dict(recorded))  # a list: names may hold dots
    groups: dict = {}
    excluded = unscored = 0
    for d in queries.candidates(project.dataset, round=round, fields=["decisions", "generator", "scores"]):
        y = queries.latest_human_label(d.get("decisions"))
        if y is None:
            continue
        if d["id"] in train:
            excluded += 1
            continue
        s = (d.get("scores") or {}).get(version)
        if not isinstance(s, (int, float)) or not math.isfinite(s):
            unscored += 1
            continue
        groups.setdefault(remover_of(d), []).append((float(s), int(y)))
    out = {"round": int(round), "version": version, "confidence": confidence,
           "excluded_training": excluded, "unscored": unscored, "removers": {}}
    for g, rows in sorted(groups.items()):
        if threshold is not None:
            thr, src = float(threshold), "given"
        elif same and (by_remover.get(g) or {}).get("accept_threshold") is not None:
            thr, src = float(by_remover[g]["accept_threshold"]), "auto-label (this remover)"
        elif same and auto.get("accept_threshold") is not None:
            thr, src = float(auto["accept_threshold"]), "auto-label"
        else:
            thr, src = 0.5, "default 0.5"
        if len(rows) < 2:
            out["removers"][g] = {"n": len(rows), "threshold": thr, "threshold_source": src,
                                  "message": "fewer than 2 labels not used in training"}
            continue
        s, y = np.array(rows).T
        rep = agreement_report(s, y.astype(int), threshold=thr, confidence=confidence).as_dict()
        out["removers"][g] = {"n": rep["n"], "n_positive": rep["n_positive"], "threshold": thr,
                              "threshold_source": src,
                              **{k: rep[k] for k in ("auc", "precision", "recall", "accuracy",
                                                     "human_rate", "discriminator_rate", "difference")}}
    return out
