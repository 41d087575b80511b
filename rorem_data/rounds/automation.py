"""Automation rounds: the discriminator decides, humans audit, and every decision has a guarantee.

``auto_label`` accepts the round's undecided candidates whose calibrated score clears a
threshold chosen to meet a target precision at a stated confidence, rejects those below a low
threshold chosen the same way for failures, leaves the middle pending, and queues an audit
sample of its own decisions for humans. ``audit_report`` measures the precision of the automatic
accepts on the audited items and updates the round's automation yield.

How the thresholds are certified (``method``; the statistics: ``docs/statistics.md``)
-----------------------------------------------------------------------------------------
``"crossfit"``: this round's version ``v_r`` refitted without each fold of the active sample's
population (5 folds by hashed coins), each fold decided by the refit that never saw its labels,
averaged with the scores of the version that drew the sample when there is one; all of the
round's labels certify it (:mod:`rorem_data.stats.crossfit`).
``"active"``: the version that drew the round's active sample (``v_{r-1}``), on all of it
(:func:`rorem_data.rounds.review.queue.build_active_sample`). ``"split"``: this round's version
``v_r`` on the held-out part of the sample (its training labels were chosen by coins, so the
held-out part is a Poisson sample of the rest; the candidates it trained on are left to people).
Both certify on the equal-probability part of the sample with exact hypergeometric
fixed-sequence tests (:mod:`rorem_data.stats.certify`): with probability at least ``confidence``
over the draw, at least ``target_precision`` of all the candidates scoring at or above the
threshold (among those not judged before the draw nor used in training) are successes - no
assumption on the labels, the calibration or the shape of P(success | score). The drawn ones
among them were judged by people and only their successes kept, so the pairs accepted from that
region meet the target too; the automatic share alone is at least ``(ceil(target m) - s) / (m -
n)`` for ``m`` candidates in the region, ``n`` of them drawn and ``s`` of those successes
(``auto_precision_lo`` in the result). A version trained on the labels being tested is refused.

``"holdout"`` (for queues that are not active samples): on the version's own held-out human
labels (``meta.json["holdout"]``), with exact binomial bounds and fixed-sequence testing
(:func:`rorem_data.stats.thresholds.choose_accept_threshold`). Valid when those labels are a
uniform random sample of the candidates it is applied to and P(success | score) rises with the
score; labels from a chosen (active-learning) queue break the first assumption.

``"auto"`` (default) takes ``"crossfit"`` when the round's own version can be refitted (a
feature head, the sample judged; it decides more than the version fixed before the sample -
``benchmarks/automation_yield.py``), else ``"active"`` when it is valid, else ``"split"``, else
``"holdout"``. The round record says which and why. When no threshold qualifies nothing is
decided - an outcome, not an error: the result says per remover why and what would help.

Per-remover trust
-----------------
A discriminator trained on one remover's results can misjudge another's (RORem's users saw 0.12
against 0.83). So thresholds are chosen per remover (``generator.remover_key``, else
``generator.remover``), each at confidence ``1 - alpha / G`` for ``G`` removers (Bonferroni,
``alpha = 1 - confidence``): with probability at least ``confidence`` every remover's automatic
decisions meet the target, hence all of them together. A remover whose calibration labels
cannot support the target is left to humans, with the number of labels it needs;
``allow_unseen_remover=True`` decides it with the pooled threshold (one more share of
``alpha``; the guarantee then covers all removers together, not that one), audits it at
``shift_audit`` and records the override.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from rorem_data.core import schema
from rorem_data.core.display import Displayable
from rorem_data.core.errors import ConfigError
from rorem_data.core.progress import takes_progress
from rorem_data.dataset import ledger, queries, store
from rorem_data.rounds import defaults as D
from rorem_data.rounds.estimates import (
    UNKNOWN_REMOVER,
    active_design,
    independence_problem,
    remover_of,
    yield_counts,
)
from rorem_data.rounds.lease import holds_round
from rorem_data.rounds.versions import latest_version, load_version_meta

log = logging.getLogger(__name__)

METHODS = ("auto", "crossfit", "split", "active", "holdout")
#: The methods certified on the round's active sample (the others: on held-out labels).
ON_SAMPLE = ("crossfit", "split", "active")
POOLED = "(all removers)"


# --- result ----------------------------------------------------------------------------------

@dataclass(repr=False)
class AutoLabelResult(Displayable):
    """What ``auto_label`` decided.

    ``accept_threshold`` / ``reject_threshold`` are the thresholds when every decided remover
    shares one (one remover, or the pooled override), else None: ``removers`` holds each
    remover's thresholds, label counts, guarantee and, when it was left to humans, why and how
    many more labels it needs. ``yield_`` is the round's automation yield.
    """

    round: int
    version: str
    accept_threshold: float | None
    reject_threshold: float | None
    accepted: int
    rejected: int
    left_pending: int
    audit_ids: list = field(default_factory=list)
    shifted: int = 0
    details: dict = field(default_factory=dict)
    method: str = "holdout"
    method_reason: str = ""
    removers: dict = field(default_factory=dict)
    yield_: dict = field(default_factory=dict)

    def summary(self) -> str:
        t_a = "per remover" if self.accept_threshold is None else f"{self.accept_threshold:.3f}"
        t_r = "per remover" if self.reject_threshold is None else f"{self.reject_threshold:.3f}"
        if self.accept_threshold is None and not any(g.get("accept_threshold") is not None
                                                     for g in self.removers.values()):
            t_a = "none"
        if self.reject_threshold is None and not any(g.get("reject_threshold") is not None
                                                     for g in self.removers.values()):
            t_r = "none"
        s = (f"round {self.round} auto-label with {self.version} ({self.method} calibration): accepted "
             f"{self.accepted} (score >= {t_a}), rejected {self.rejected} (score <= {t_r}), left "
             f"{self.left_pending} for humans; {len(self.audit_ids)} queued for audit")
        if self.yield_.get("candidates"):
            s += (f"; yield {100 * self.yield_['accept_share']:.1f}% accepted, "
                  f"{100 * self.yield_['reject_share']:.1f}% rejected automatically")
        for g, info in sorted(self.removers.items()):
            if info.get("left_to_humans"):
                s += f"\n  remover {g}: left to humans - {info['message']}"
            elif info.get("override"):
                s += f"\n  remover {g}: decided by the pooled threshold (allow_unseen_remover)"
        if self.shifted:
            s += (f"\n  {self.shifted} candidates come from a remover the discriminator was not "
                  "calibrated on: audited at a higher rate")
        return s


# --- helpers ---------------------------------------------------------------------------------

def _start(min_all_correct: int, n_labels: int) -> int:
    """Labelled items the strictest tested threshold must cover: 3x the all-correct minimum,
    at most a third of the labels."""
    return int(max(min_all_correct, min(3 * min_all_correct, n_labels // 3)))


def _choose_method(project, round, version, method, design, *, crossfit_failed: str | None = None):
    """(method, version, reason): which calibration to use, with which version, and why.
    ``crossfit_failed``: why cross-fitting, tried first by ``"auto"``, could not be done."""
    latest = version or latest_version(project)
    if method == "holdout":
        if latest is None:
            raise ConfigError("no trained discriminator in this project; train one first "
                              "(rorem_data.train_discriminator)")
        return "holdout", latest, "method='holdout' was asked for"
    split_reason = (f"{latest} was trained on round {round}'s labels outside the held-out part of "
                    "its active sample, which certifies it")
    if method in ("crossfit", "auto") and crossfit_failed is None:
        problem = _own_round_problem(project, round, latest, design)
        if problem is None:
            return "crossfit", latest, (f"{latest} was trained on round {round}'s labels; models of its "
                                        "spec refitted without each fold of the active sample decide that fold")
    else:
        problem = crossfit_failed
    xf_note = f"; cross-fitting cannot: {problem}" if method == "auto" and problem else ""
    if method == "crossfit":
        raise _crossfit_refused(round, latest, problem)
    if method == "split":
        problem = _split_problem(project, round, latest, design)
        if problem is None:
            return "split", latest, split_reason
        raise ConfigError(f"the split method cannot certify {latest or 'a discriminator'} on round "
                          f"{round}: {problem}. Use method='active' or 'holdout'")
    problem = None
    if design is None:
        problem = f"round {round} has no active sample (build_active_sample draws one)"
    elif not design.finished:
        problem = (f"round {round}'s active sample was interrupted while it was drawn; repeat the "
                   "same build_active_sample call")
    elif design.pending:
        problem = (f"{design.pending} candidates of round {round}'s active sample still await a "
                   "human label; every drawn candidate must be judged")
    cand = version or (design.version if design is not None else None)
    if problem is None and cand is None:
        problem = (f"round {round}'s active sample was drawn uniformly (there was no discriminator "
                   "before it), so no version is independent of its labels: every version that "
                   "can score it was trained on them")
    if problem is None:
        drawn = [sid for sid, d in zip(design.ids, design.drawn) if d]
        try:
            problem = independence_problem(project, cand, drawn, design.at)
        except ConfigError as exc:  # e.g. the version that drew the sample was deleted
            problem = str(exc)
        if problem is None and np.isnan(design.version_scores(cand)[~design.known]).any():
            n = int(np.isnan(design.version_scores(cand)[~design.known]).sum())
            problem = (f"{n} candidates of the active sample's population have no score from {cand}; "
                       f"score round {round} with it first (rorem_data.score(project, {round}, {cand!r}))")
    if problem is None:
        return "active", cand, (f"the active sample of round {round} is judged and {cand} was fixed "
                                f"before it was drawn{xf_note}")
    if method == "active":
        raise ConfigError(f"the active method cannot calibrate {cand or 'a discriminator'} on round "
                          f"{round}: {problem}. Use method='holdout' (the version's held-out labels), "
                          "or the version that drew the sample")
    if _split_problem(project, round, latest, design) is None:  # auto: this round's own version
        return "split", latest, f"{split_reason} (the active method cannot: {problem}{xf_note})"
    if latest is None:
        raise ConfigError("no trained discriminator in this project; train one first "
                          "(rorem_data.train_discriminator)")
    return "holdout", latest, f"held-out labels: {problem}{xf_note}"


def _crossfit_refused(round, version, problem) -> ConfigError:
    return ConfigError(f"the crossfit method cannot decide round {round} with "
                       f"{version or 'a discriminator'}: {problem}. Use method='active' or 'split'")


def _own_round_problem(project, round, version, design) -> str | None:
    """Why ``version`` is not the round's own version with its active sample judged (None: it
    is) - what the crossfit and split methods need."""
    if version is None:
        return "no trained discriminator"
    if design is None:
        return f"round {round} has no active sample"
    if not design.finished or design.pending:
        return f"round {round}'s active sample is not fully judged"
    trained = load_version_meta(project, version).get("round")
    if trained != int(round):
        return f"{version} was trained on the labels of round {trained}, not {round}"
    return None


def _crossfit(project, round, version, design, *, rng):
    """(score field, how): cross-fit ``version`` over the design's population and store the
    scores as ``scores.<version>_crossfit`` (and in ``design``); (None, why) when it cannot be.

    Each candidate's score is the mean of its cross-fitted probability and the calibrated score
    of the version that drew the sample (fixed before the draw, so independent of every label
    of the round) when that version scored the whole population: the earlier rounds' (or the
    seed pairs') model and this round's labels together rank better than either
    (``docs/label-efficiency.md``)."""
    from rorem_data.rounds.discriminator import crossfit_scores

    pop = ~design.known
    ids = [sid for sid, p in zip(design.ids, pop) if p]
    keys = [k for k, p in zip(design.keys or design.ids, pop) if p]
    xs, how = crossfit_scores(project, round, version, ids, keys, rng=rng)
    if xs is None:
        return None, how
    drew = design.version
    if drew and drew != version and drew in design.scores and not np.isnan(design.scores[drew][pop]).any():
        xs = 0.5 * (xs + design.scores[drew][pop])
        how += f", averaged with the scores of {drew}, which drew the sample"
    name = f"{version}_crossfit"
    store.set_field_values(project.dataset, f"scores.{name}", ids, [float(v) for v in xs])
    col = np.full(len(design.ids), np.nan)
    col[pop] = xs
    design.scores[name] = col
    return name, how


def _split_of(used: str, meta: dict):
    """(training ids, held-out share) of a version certified on its held-out part, else None."""
    if used != "split":
        return None
    return set(meta.get("train_ids") or []), float(meta.get("holdout_share", D.HOLDOUT))


def _split_problem(project, round, version, design) -> str | None:
    """Why ``version`` cannot be certified on the held-out part of round ``round``'s active
    sample (None: it can)."""
    problem = _own_round_problem(project, round, version, design)
    if problem is not None:
        return problem
    meta = load_version_meta(project, version)
    if meta.get("split") != "coin":
        return (f"{version}'s held-out labels were split by label (too few labels for a split by "
                "coins), so they are not a random part of the sample")
    train = set(meta.get("train_ids") or [])
    pop = ~design.known & np.array([sid not in train for sid in design.ids], dtype=bool)
    if np.isnan(design.version_scores(version)[pop]).any():
        return f"round {round} has candidates without a score from {version}; score it first"
    return None


def _group_record(g, *, n_labels, need, accept, reject, override=False, message=""):
    acc_t = accept.threshold if accept is not None and accept.threshold is not None else None
    rej_t = reject.threshold if reject is not None and reject.threshold is not None else None
    return {"remover": g, "n_labels": int(n_labels), "labels_needed": int(need),
            "accept_threshold": None if acc_t is None else float(acc_t),
            "reject_threshold": None if rej_t is None else float(rej_t),
            "accept_choice": None if accept is None else accept.as_dict(),
            "reject_choice": None if reject is None else reject.as_dict(),
            "override": bool(override), "left_to_humans": acc_t is None and rej_t is None,
            "message": message}


def _holdout_groups(project, meta, groups, cand_scores, *, target, npv, alpha, allow_unseen):
    """Per-remover thresholds from the version's held-out labels."""
    from rorem_data.stats.intervals import min_trials_for_lower_bound
    from rorem_data.stats.thresholds import choose_accept_threshold, choose_reject_threshold

    hold = meta.get("holdout") or {}
    h_s = np.asarray(hold.get("scores", []), dtype=np.float64)
    h_y = np.asarray(hold.get("labels", []), dtype=np.int64)
    h_ids = hold.get("ids")
    gens = list(meta.get("generators") or [])
    if h_ids and len(h_ids) == len(h_s):
        docs = queries.by_ids(project.dataset, list(h_ids), ["generator"])
        h_g = np.array([remover_of(docs.get(sid) or {}) for sid in h_ids], dtype=object)
    else:  # labels without ids: their remover is known only when the version saw one remover
        h_g = np.full(len(h_s), gens[0] if len(gens) == 1 else UNKNOWN_REMOVER, dtype=object)
    n_tests = len(groups) + (1 if allow_unseen else 0)
    conf_g = 1.0 - alpha / max(n_tests, 1)
    need_a = min_trials_for_lower_bound(target, confidence=conf_g)
    need_r = min_trials_for_lower_bound(npv, confidence=conf_g)
    need = min(need_a, need_r)

    def choose(s, y, c):
        out, msgs = [], []
        for rule, fn, tgt, need_x in (("accept", choose_accept_threshold, target, need_a),
                                      ("reject", choose_reject_threshold, npv, need_r)):
            kw = {"target_precision" if rule == "accept" else "target_npv": tgt,
                  "min_accepted" if rule == "accept" else "min_rejected": min(_start(need_x, len(s)), len(s))}
            try:  # bad labels (one class only) raise; no threshold qualifying is a result
                ch = fn(s, y, confidence=conf_g, candidate_scores=c if len(c) else None, **kw)
            except ConfigError as exc:
                msgs.append(f"no {rule} threshold: {exc}")
                out.append(None)
                continue
            if not ch.chosen:
                msgs.append(str(ch))
            out.append(ch if ch.chosen else None)
        acc, rej = out
        return acc, rej, "; ".join(msgs)

    out = {}
    for g in groups:
        m = h_g == g
        n = int(m.sum())
        if n < need:
            out[g] = _group_record(g, n_labels=n, need=need, accept=None, reject=None, message=(
                f"{n} held-out labels of this remover; supporting the target at confidence "
                f"{conf_g:.4g} (alpha split over {n_tests} test(s)) needs at least {need}: label at least "
                f"{need - n} more of its candidates and retrain, or pass allow_unseen_remover=True"))
            continue
        acc, rej, msg = choose(h_s[m], h_y[m], cand_scores[g])
        out[g] = _group_record(g, n_labels=n, need=need, accept=acc, reject=rej, message=msg)
    pooled = None
    if allow_unseen and any(out[g]["left_to_humans"] for g in groups) and len(h_s):
        all_c = np.concatenate([cand_scores[g] for g in groups]) if groups else np.array([])
        acc, rej, msg = choose(h_s, h_y, all_c)
        pooled = _group_record(POOLED, n_labels=len(h_s), need=need, accept=acc, reject=rej, message=msg)
    return out, pooled, conf_g


def _design_arrays(design, version, split):
    """(population, scores, labels, sampled, pi) of the certification: with ``split`` (the
    version's training ids and held-out share) the population leaves its training candidates out
    and the sample is the held-out part, drawn given the training part with
    :func:`rorem_data.stats.certify.split_inclusion`."""
    from rorem_data.stats.certify import split_inclusion

    pop = ~design.known
    xi = design.xi.copy()
    pi = design.pi.copy()
    if split is not None:
        train_ids, share = split
        in_train = np.array([sid in train_ids for sid in design.ids], dtype=bool)
        pop &= ~in_train
        xi &= ~in_train
        pi = split_inclusion(pi, share)
    y = np.where(xi, design.labels, np.nan)
    return pop, design.version_scores(version), y, xi, pi


#: A rule gets the second entry point of its fixed sequence (``stats.certify``) unless its hits
#: (successes for accepts, failures for rejects) were under this share of the earlier rounds'
#: human labels: then its region does not reach a third of the round, and the half of the error
#: rate the entry holds is spent for nothing (large scale of ``benchmarks/automation_yield.py``:
#: accepts at a success rate of 30-38%).
SECOND_ENTRY_MIN_SHARE = 0.5


def _earlier_success_share(project, round: int) -> float | None:
    """Share of successes among the human labels of the rounds before ``round`` (None: none):
    fixed before this round's draw, so choosing a test design by it costs no validity."""
    if round <= 1:
        return None
    labels = [d["label"] for d in queries.human_labels(project.dataset, rounds_upto=round - 1)]
    return float(np.mean(labels)) if labels else None


def _second_entries(success_share: float | None) -> dict:
    """Per rule, whether its sequence gets the second entry point (module constant above)."""
    if success_share is None:
        return {"accept": True, "reject": True}
    return {"accept": success_share >= SECOND_ENTRY_MIN_SHARE,
            "reject": 1.0 - success_share >= SECOND_ENTRY_MIN_SHARE}


def thinning_coins(design) -> np.ndarray:
    """The coins that thin a round's active sample to its equal-probability part
    (:func:`rorem_data.stats.certify.thin_to_equal`): fixed by the candidate keys, the round and
    the sample's seed, so independent of the draw and the labels."""
    from rorem_data.stats.certify import hash_uniforms

    return hash_uniforms(design.keys or design.ids,
                         f"thin:{design.round}:{design.selection.get('seed', 0)}")


def _active_groups(design, version, *, target, npv, alpha, allow_unseen, split=None, entries=None):
    """Per-remover thresholds certified on the active sample (population: not judged at the
    draw, nor used to train ``version``), from its equal-probability part; ``entries``: per
    rule, whether its sequence gets a second entry point (:func:`_second_entries`)."""
    from rorem_data.stats.certify import choose_threshold_equal, thin_to_equal
    from rorem_data.stats.intervals import min_trials_for_lower_bound

    pop, s_all, y_all, xi_all, pi_all = _design_arrays(design, version, split)
    coins = thinning_coins(design)
    groups = sorted(set(design.removers[pop].tolist()))
    n_tests = len(groups) + (1 if allow_unseen else 0)
    conf_g = 1.0 - alpha / max(n_tests, 1)
    need = min(min_trials_for_lower_bound(target, confidence=conf_g),
               min_trials_for_lower_bound(npv, confidence=conf_g))

    def choose(m):
        s, y, xi, pi = s_all[m], y_all[m], xi_all[m], pi_all[m]
        if not xi.any():
            return None, None, "none of its candidates was drawn"
        kept, c = thin_to_equal(xi, pi, coins[m])
        acc = choose_threshold_equal(s, np.where(kept, y == 1, 0), kept, c, rule="accept",
                                     target=target, confidence=conf_g,
                                     second_entry=(entries or {}).get("accept", True))
        # candidates at or above the accept threshold are accepted: the reject set in use is
        # the largest set the reject sequence showed below it
        rej = choose_threshold_equal(s, np.where(kept, y == 0, 0), kept, c, rule="reject",
                                     target=npv, confidence=conf_g,
                                     second_entry=(entries or {}).get("reject", True),
                                     below=acc.threshold)
        msgs = [str(c) for c in (acc, rej) if not c.chosen]
        return acc, rej, "; ".join(msgs)

    out = {}
    for g in groups:
        m = pop & (design.removers == g)
        acc, rej, msg = choose(m)
        n = int(xi_all[m].sum())
        rec = _group_record(g, n_labels=n, need=need, accept=acc, reject=rej, message=msg)
        if rec["left_to_humans"] and n < need:
            rec["message"] = (
                f"{n} of its candidates are in the active sample; even if all were correct they "
                f"could not show the target at confidence {conf_g:.4g} (alpha split over "
                f"{n_tests} test(s)), which needs at least {need} labelled among those it would decide - "
                f"label about {max(need - n, 1)} or more of its candidates, e.g. with a larger "
                "budget or floor in the next active sample, or pass allow_unseen_remover=True. "
                + msg)
        out[g] = rec
    pooled = None
    if allow_unseen and any(out[g]["left_to_humans"] for g in groups):
        acc, rej, msg = choose(pop)
        pooled = _group_record(POOLED, n_labels=int(xi_all[pop].sum()), need=need, accept=acc,
                               reject=rej, message=msg)
    for g in groups:  # what the automatic share alone is guaranteed (drawn ones are human-judged)
        for rule, sign in (("accept", 1), ("reject", -1)):
            t = out[g][f"{rule}_threshold"]
            if t is None:
                continue
            m = pop & (design.removers == g) & ((s_all >= t) if sign > 0 else (s_all <= t))
            hits = (y_all == 1) if sign > 0 else (y_all == 0)
            n_m, n_s, h_s = int(m.sum()), int((m & xi_all).sum()), int((m & xi_all & hits).sum())
            tgt = target if sign > 0 else npv
            auto_n = n_m - n_s
            out[g][f"auto_{'precision' if sign > 0 else 'npv'}_lo"] = (
                None if auto_n <= 0 else float(max(0.0, (np.ceil(tgt * n_m - 1e-9) - h_s) / auto_n)))
    return out, pooled, conf_g


# --- auto-labelling --------------------------------------------------------------------------

@takes_progress
@holds_round("auto_label")
def auto_label(
    project,
    round: int,
    *,
    version: str | None = None,
    target_precision: float = D.TARGET_PRECISION,
    confidence: float = D.CONFIDENCE,
    reject_npv: float | None = None,
    audit: float = D.AUDIT,
    method: str = "auto",
    allow_unseen_remover: bool = False,
    shift_audit: float = 0.25,
    rng: int = 0,
    previews: bool = True,
) -> AutoLabelResult:
    """Let a calibrated discriminator decide the round's undecided candidates, with a guarantee.

    Parameters
    ----------
    project : Project
    round : int
    version : str, optional
        Discriminator version whose stored scores (``scores.<version>``) decide. Default: for the
        active method the version that drew the round's active sample (``v_{r-1}``), else the
        most recently trained one.
    target_precision : float
        Required precision of automatic accepts (share of true successes among them), in (0, 1).
    confidence : float
        Probability that every remover's target is met, in (0, 1).
    reject_npv : float, optional
        Required share of true failures among automatic rejects; default ``target_precision``.
    audit : float
        Share of automatic decisions (accepts and rejects, drawn separately) queued for humans.
        Each decision is audited or not by a fixed draw (a hash of its key and the round's
        audit seed), so running auto-label again adds no audit items for decisions it
        already made; a kind of decision with none audited gets one.
    method : {"auto", "crossfit", "active", "split", "holdout"}
        How the thresholds are calibrated (module docstring). ``"auto"`` picks ``"crossfit"``,
        else ``"active"``, when valid.
    allow_unseen_remover : bool
        Decide removers whose calibration labels cannot support the target with the pooled
        threshold (recorded in the round record) instead of leaving them to humans.
    shift_audit : float
        Audit share for candidates decided by the pooled override and, with held-out
        calibration, of removers the version never saw.
    rng : int
        Seed of the cross-fitting folds and of the audit draw; the round's first auto-label
        fixes each (later calls reuse the recorded seeds, so a rerun neither redraws the folds -
        trying seeds until more is decided would void the guarantee - nor audits decisions
        again).
    previews : bool
        Write review previews of the audit sample.

    Returns
    -------
    AutoLabelResult

    Raises
    ------
    ConfigError
        No trained version; an unknown version; candidates without scores; ``method="active"``
        when it is not valid (says why and points at ``"holdout"``); bad arguments. When no
        threshold qualifies, nothing is decided and the result says, per remover, why and what
        is achievable - that is an outcome, not an error.

    Examples
    --------
    >>> res = auto_label(project, 2, target_precision=0.95, confidence=0.95)   # doctest: +SKIP
    >>> res.method, res.yield_["accept_share"]                                 # doctest: +SKIP
    ('active', 0.41)
    """
    from rorem_data.core.checks import choice, fraction
    from rorem_data.rounds.review.queue import enqueue
    from rorem_data.stats.intervals import check_confidence

    t0 = time.perf_counter()
    target = check_confidence(target_precision, "target_precision")
    conf = check_confidence(confidence)
    npv = target if reject_npv is None else check_confidence(reject_npv, "reject_npv")
    audit = fraction(audit, "audit")
    shift_audit = fraction(shift_audit, "shift_audit")
    choice(method, "method", METHODS)
    if version is not None:
        load_version_meta(project, version)  # unknown version: one clear error
    design = active_design(project, round) if method != "holdout" else None
    version_arg = version
    used, version, reason = _choose_method(project, round, version, method, design)
    alpha = 1.0 - conf
    meta = load_version_meta(project, version)
    score_field = version
    if used == "crossfit":
        # the folds are fixed once per round, like the audit draw: a rerun with another seed
        # must not redraw them (each draw is valid; picking the best of several is not)
        xf_seed = store.round_field_once(project.dataset_name, round, "crossfit_seed", int(rng))
        score_field, how = _crossfit(project, round, version, design, rng=xf_seed)
        if score_field is None and method == "crossfit":
            raise _crossfit_refused(round, version, how)
        if score_field is None:  # auto: the next valid method
            used, version, reason = _choose_method(project, round, version_arg, method, design,
                                                   crossfit_failed=how)
            meta = load_version_meta(project, version)
            score_field = version
        else:
            reason = f"{reason} ({how})"

    # Every candidate of the round that humans were not asked about (audits included, so that a
    # rerun after an interruption sees the same set and ends in the same state), minus those a
    # human decided outside an audit.
    docs = queries.automation_candidates(project.dataset, round, ["key", "scores", "generator", "status", "queue_purpose"])
    ids = [d["id"] for d in docs]
    scores = np.array([(d.get("scores") or {}).get(score_field, np.nan) for d in docs], dtype=np.float64)
    groups_of = np.array([remover_of(d) for d in docs], dtype=object)
    decidable = np.ones(len(ids), dtype=bool)
    outside = 0
    if used in ON_SAMPLE:
        pos = {sid: i for i, sid in enumerate(design.ids)}
        where = np.array([pos.get(sid, -1) for sid in ids])
        in_pop = where >= 0
        in_pop[in_pop] &= ~design.known[where[in_pop]]
        outside = int((~in_pop).sum())
        decidable = in_pop
    missing = np.isnan(scores) & decidable
    if missing.any():
        raise ConfigError(f"{int(missing.sum())} undecided candidates of round {round} have no "
                          f"score from {version}; score the round with it first "
                          f"(rorem_data.score(project, {round}, {version!r}))")
    if used in ON_SAMPLE:
        split = _split_of(used, meta)
        entries = _second_entries(_earlier_success_share(project, round))
        removers, pooled, conf_g = _active_groups(design, score_field, target=target, npv=npv, alpha=alpha,
                                                  allow_unseen=allow_unseen_remover, split=split,
                                                  entries=entries)
    else:
        groups = sorted(set(groups_of.tolist()))
        cand = {g: scores[(groups_of == g) & decidable] for g in groups}
        removers, pooled, conf_g = _holdout_groups(project, meta, groups, cand, target=target, npv=npv,
                                                   alpha=alpha, allow_unseen=allow_unseen_remover)

    # thresholds per candidate: its remover's, the pooled override's, or none
    t_acc = np.full(len(ids), np.inf)
    t_rej = np.full(len(ids), -np.inf)
    override = np.zeros(len(ids), dtype=bool)
    applied = {}  # remover -> (accept, reject) thresholds applied to its candidates
    for g, info in removers.items():
        src = info
        if info["left_to_humans"] and pooled is not None and not pooled["left_to_humans"]:
            src = pooled
            info["override"] = True
        m = groups_of == g
        override[m] = info["override"]
        if src["accept_threshold"] is not None:
            t_acc[m] = src["accept_threshold"]
        if src["reject_threshold"] is not None:
            t_rej[m] = src["reject_threshold"]
        if (m & decidable).any():
            applied[g] = (src["accept_threshold"], src["reject_threshold"])
    # no threshold qualifying is an outcome, not an error: nothing is decided, and the result
    # and the round record say per remover why and what would help
    status = np.full(len(ids), schema.PENDING, dtype=object)
    status[decidable & (scores >= t_acc)] = schema.ACCEPTED
    status[decidable & (scores <= t_rej) & (scores < t_acc)] = schema.REJECTED

    # audited at the higher rate: the pooled override and, with held-out calibration, removers the
    # version never saw (with the active method each remover is certified on its own labels)
    seen = set(meta.get("generators") or [])
    unseen = np.array([used == "holdout" and bool(seen) and g not in seen for g in groups_of], dtype=bool)
    shifted = override | unseen
    decided = status != schema.PENDING
    if (override & decided).any():
        log.warning(f"{int((override & decided).sum())} candidates of round {round} come from a remover "
                      f"the discriminator {version} was not calibrated on and were decided by the pooled "
                      f"threshold (allow_unseen_remover); auditing them at {shift_audit:.0%}. Label some "
                      "of them for trustworthy automation.")
    elif (shifted & decided).any():
        log.warning(f"{int((shifted & decided).sum())} candidates of round {round} come from a remover "
                      f"the discriminator {version} was not calibrated on; auditing them at "
                      f"{shift_audit:.0%}.")

    at = schema.utcnow()
    dec_ids, dec_docs = [], []
    for i, sid in enumerate(ids):
        if status[i] == schema.PENDING or docs[i].get("decided_by") == schema.BY_HUMAN:
            continue  # undecided, or a human has overruled it (the ledger checks again, atomically)
        thr = t_acc[i] if status[i] == schema.ACCEPTED else t_rej[i]
        dec_ids.append(sid)
        dec_docs.append(schema.decision_doc(round=round, phase=schema.PHASE_AUTO, status=status[i],
                                            by=schema.BY_DISCRIMINATOR, at=at, discriminator=version,
                                            threshold=float(thr), score=float(scores[i])))
    ledger.decide_automatically(project.dataset, dec_ids, dec_docs)  # a rerun adds nothing

    seed = store.round_field_once(project.dataset_name, round, "audit_seed", int(rng))
    # a uniform number per decision, fixed by its key, the round and the seed: audited when below
    # the audit share (the same hashed coins as the certification's, another salt)
    from rorem_data.stats.certify import hash_uniforms

    u = hash_uniforms([d["key"] for d in docs], f"{seed}:{int(round)}")
    audited = np.array([d.get("queue_purpose") == schema.QUEUE_AUDIT for d in docs], dtype=bool)
    audit_idx: list[int] = []
    for st in (schema.ACCEPTED, schema.REJECTED):
        for shift in (False, True):
            stratum = (status == st) & (shifted == shift)
            share = shift_audit if shift else audit
            pick = np.flatnonzero(stratum & (u < share) & ~audited)
            if share > 0 and stratum.any() and not (stratum & audited).any() and pick.size == 0:
                pick = np.flatnonzero(stratum)[[int(np.argmin(u[stratum]))]]
            audit_idx += pick.tolist()
    audit_ids = [ids[i] for i in sorted(audit_idx)]
    if audit_ids:
        enqueue(project, round, audit_ids, purpose=schema.QUEUE_AUDIT, previews=previews)

    def single(j):
        vals = {t[j] for t in applied.values()}
        return vals.pop() if len(vals) == 1 else None

    y = {**yield_counts(project, round), "method": used, "audited_precision": None}
    first = next(iter(removers.values()), {}) if len(removers) == 1 else {}
    result = AutoLabelResult(
        round=int(round), version=version, accept_threshold=single(0), reject_threshold=single(1),
        accepted=int((status == schema.ACCEPTED).sum()), rejected=int((status == schema.REJECTED).sum()),
        left_pending=int((status == schema.PENDING).sum()), audit_ids=audit_ids, shifted=int(shifted.sum()),
        details={"accept_choice": first.get("accept_choice"), "reject_choice": first.get("reject_choice"),
                 "pooled": pooled, "confidence_per_remover": conf_g, "outside_design": outside},
        method=used, method_reason=reason, removers=removers, yield_=y,
    )
    store.update_round_record(project.dataset_name, round, set={"phases.auto": {
        "version": version, "method": used, "method_reason": reason, "target_precision": target,
        "confidence": conf, "confidence_per_remover": conf_g, "reject_npv": npv,
        "accept_threshold": result.accept_threshold, "reject_threshold": result.reject_threshold,
        "accepted": result.accepted, "rejected": result.rejected, "left_pending": result.left_pending,
        "outside_design": outside, "audit_share": audit, "shift_audit": shift_audit,
        "audit_ids": audit_ids, "shifted": result.shifted,
        "allow_unseen_remover": bool(allow_unseen_remover),
        "overridden_removers": sorted(g for g, info in removers.items() if info["override"]),
        "removers": [removers[g] for g in sorted(removers)], "pooled": pooled,
        "active_selection": design.selection.get("id") if used in ON_SAMPLE else None,
        "score_field": score_field,
        "accept_choice": result.details["accept_choice"], "reject_choice": result.details["reject_choice"],
        "yield": y, "at": at, "seconds": time.perf_counter() - t0,
    }})
    return result


@dataclass(repr=False)
class AuditReport(Displayable):
    """The measured precision of a round's automatic decisions (:func:`audit`).

    Attributes
    ----------
    round : int
    target_precision : float
    audited, pending : int
        Audited automatic decisions a human has judged, and those still waiting.
    accept_precision, reject_npv : dict
        Estimates (``value``, ``lo``, ``hi``) over the judged audited accepts / rejects.
    flag : str
        ``"ok"``, ``"below target"``, ``"significantly below target"`` (the worse of the
        accepts' and the rejects') or ``"not audited yet"``.
    reject_npv_target : float
        The NPV the automatic rejects were certified at.
    """

    round: int
    target_precision: float
    audited: int
    pending: int
    accept_precision: dict
    reject_npv: dict
    flag: str
    reject_npv_target: float | None = None

    def _short(self) -> str:
        return f"round {self.round}: {audit_text(self.__dict__)}"

    summary = _short


#: Audit flags, worst first: a round's flag is the worst of its accepts' and rejects'.
AUDIT_FLAGS = ("significantly below target", "below target", "ok")


def _audit_flag(est, target: float) -> str | None:
    if not est.n:
        return None
    if est.hi < target:
        return AUDIT_FLAGS[0]
    return AUDIT_FLAGS[1] if est.value < target else AUDIT_FLAGS[2]


def audit_text(out: dict) -> str:
    """One line of an audit (:func:`audit_report`'s dict): the measured precision of the
    automatic accepts and NPV of the automatic rejects that people judged, against their
    targets, and the flag."""
    parts = []
    for key, what, tkey in (("accept_precision", "precision of automatic accepts", "target_precision"),
                            ("reject_npv", "NPV of automatic rejects", "reject_npv_target")):
        e = out.get(key) or {}
        if e.get("value") is not None and e.get("n"):
            tgt = out.get(tkey) if out.get(tkey) is not None else out["target_precision"]
            parts.append(f"{what} {100 * e['value']:.1f}% [{100 * e['lo']:.1f}, "
                         f"{100 * e['hi']:.1f}] vs target {100 * tgt:.0f}%")
    if not parts:
        return f"{out['flag']} ({out['pending']} audit items waiting)"
    wait = f", {out['pending']} waiting" if out.get("pending") else ""
    return f"{'; '.join(parts)}: {out['flag']} ({out['audited']} audited{wait})"


def audit(project, round: int, *, confidence: float = D.CONFIDENCE) -> AuditReport:
    """Measured precision of the round's automatic decisions on human-audited items (the typed
    face of :func:`audit_report`, which also stores it in the round record).

    Returns
    -------
    AuditReport

    Raises
    ------
    ConfigError
        The round has no automatic decisions.

    Examples
    --------
    >>> rorem_data.audit(project, 2)          # doctest: +SKIP
    AuditReport(round 2: precision of automatic accepts 96.0% [88.0, 99.5] vs target 90%: ok ...)
    """
    out = audit_report(project, round, confidence=confidence)
    return AuditReport(**{k: out[k] for k in ("round", "target_precision", "audited", "pending",
                                              "accept_precision", "reject_npv", "flag",
                                              "reject_npv_target")})


@holds_round("audit")
def audit_report(project, round: int, *, confidence: float = D.CONFIDENCE) -> dict:
    """Measured precision of the round's automatic decisions on human-audited items.

    Returns a dict with ``accept_precision`` and ``reject_npv`` (Estimates as dicts, over the
    audited automatic accepts / rejects that a human has judged), ``audited``/``pending`` counts,
    the targets (``target_precision``, ``reject_npv_target``), and ``flag``: ``"ok"``,
    ``"below target"`` (a point estimate under its target) or ``"significantly below target"``
    (a whole interval under it) - the worse of the accepts' and the rejects' - or ``"not audited
    yet"`` (no audited decision judged). Stored in the round record,
    which also updates the automation yield (``phases.auto.yield``: counts now, and the audited
    precision).
    """
    from rorem_data.stats.intervals import check_confidence, proportion

    confidence = check_confidence(confidence)
    rec = store.round_record(project.dataset_name, round)
    auto = (rec.get("phases") or {}).get("auto")
    if not auto:
        raise ConfigError(f"round {round} has no automatic decisions to audit; run auto_label first")
    pairs = []  # (auto status, human status)
    pending = 0
    for d in queries.queue_members(project.dataset, round, ["decisions", "decided_by", "status"],
                                   purpose=schema.QUEUE_AUDIT):
        auto_dec = [x for x in d.get("decisions") or [] if x and x.get("by") == schema.BY_DISCRIMINATOR]
        if not auto_dec:
            continue
        if d.get("decided_by") != schema.BY_HUMAN or d.get("status") not in (schema.ACCEPTED, schema.REJECTED):
            pending += 1
            continue
        pairs.append((auto_dec[-1]["status"], d["status"]))
    acc = [h for a, h in pairs if a == schema.ACCEPTED]
    rej = [h for a, h in pairs if a == schema.REJECTED]
    prec = proportion(sum(h == schema.ACCEPTED for h in acc), len(acc), confidence=confidence)
    npv = proportion(sum(h == schema.REJECTED for h in rej), len(rej), confidence=confidence)
    target = float(auto["target_precision"])
    npv_target = float(auto.get("reject_npv") or target)
    flags = [f for f in (_audit_flag(prec, target), _audit_flag(npv, npv_target)) if f]
    flag = min(flags, key=AUDIT_FLAGS.index) if flags else "not audited yet"
    out = {"round": int(round), "target_precision": target, "reject_npv_target": npv_target,
           "audited": len(pairs), "pending": pending, "accept_precision": prec.as_dict(),
           "reject_npv": npv.as_dict(), "flag": flag}
    y = {**yield_counts(project, round), "method": auto.get("method", "holdout"),
         "audited_precision": prec.as_dict() if acc else None}
    store.update_round_record(project.dataset_name, round, set={"phases.audit": out, "phases.auto.yield": y})
    return out
