"""Automation rounds: the discriminator decides, humans audit, and every number has an interval.

``auto_label`` accepts the round's undecided candidates whose calibrated score clears a
threshold chosen (on held-out human labels) to meet a target precision at a stated confidence,
rejects those below a low threshold chosen the same way for failures, leaves the middle pending,
and queues an audit sample of its own decisions for humans. ``audit_report`` then measures the
precision of the automatic accepts on the audited items. ``round_estimates`` gives the remover's
success rate per round from human labels alone and, combined with the discriminator's scores on
every candidate, a prediction-powered estimate.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from rorem_data.core import schema
from rorem_data.dataset import ledger, queries, store
from rorem_data.core.errors import ConfigError
from rorem_data.rounds.versions import latest_version, load_version_meta


# --- auto-labelling --------------------------------------------------------------------------

@dataclass
class AutoLabelResult:
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

    def summary(self) -> str:
        t_a = "none" if self.accept_threshold is None else f"{self.accept_threshold:.3f}"
        t_r = "none" if self.reject_threshold is None else f"{self.reject_threshold:.3f}"
        s = (f"round {self.round} auto-label with {self.version}: accepted {self.accepted} (score >= {t_a}), "
             f"rejected {self.rejected} (score <= {t_r}), left {self.left_pending} for humans; "
             f"{len(self.audit_ids)} queued for audit")
        if self.shifted:
            s += (f"; {self.shifted} candidates come from a remover the discriminator was not "
                  "calibrated on: audited at a higher rate")
        return s


def _start(min_all_correct: int, n_labels: int) -> int:
    """Labelled items the strictest tested threshold must cover: 3x the all-correct minimum,
    at most a third of the labels."""
    return int(max(min_all_correct, min(3 * min_all_correct, n_labels // 3)))


def _audit_pick(indices: np.ndarray, share: float, gen: np.random.Generator) -> list[int]:
    if len(indices) == 0 or share <= 0:
        return []
    k = max(1, int(np.ceil(share * len(indices))))
    k = min(k, len(indices))
    return sorted(gen.choice(indices, size=k, replace=False).tolist())


def auto_label(
    project,
    round: int,
    *,
    version: str | None = None,
    target_precision: float = 0.95,
    confidence: float = 0.95,
    reject_npv: float | None = None,
    audit: float = 0.05,
    shift_audit: float = 0.25,
    rng: int = 0,
    previews: bool = True,
) -> AutoLabelResult:
    """Let a calibrated discriminator decide the round's undecided candidates.

    Parameters
    ----------
    project : Project
    round : int
    version : str, optional
        Discriminator version (default: the most recently trained). Its calibrated scores must
        be stored on the candidates (``rorem-data score``).
    target_precision : float
        Required precision of automatic accepts (share of true successes among them).
    confidence : float
        Confidence that the precision is met (exact binomial bound, fixed-sequence testing on
        the version's held-out human labels).
    reject_npv : float, optional
        Required precision of automatic rejects (share of true failures); default
        ``target_precision``.
    audit : float
        Share of automatic decisions (accepts and rejects, drawn separately) queued for humans.
    shift_audit : float
        Audit share for candidates whose remover the discriminator never saw in its labels.
    rng : int
        Seed of the audit draw.

    Returns
    -------
    AutoLabelResult

    Raises
    ------
    ConfigError
        Unknown version, candidates without scores, or no threshold reaching the target
        (the message says what is achievable and what to do).
    """
    from rorem_data.stats.intervals import min_trials_for_lower_bound
    from rorem_data.rounds.queue import enqueue
    from rorem_data.stats.thresholds import choose_accept_threshold, choose_reject_threshold

    t0 = time.perf_counter()
    version = version or latest_version(project)
    if version is None:
        raise ConfigError("no trained discriminator in this project; run `rorem-data discriminator train` first")
    meta = load_version_meta(project, version)
    hold = meta.get("holdout") or {}
    h_scores = np.asarray(hold.get("scores", []), dtype=np.float64)
    h_labels = np.asarray(hold.get("labels", []), dtype=np.int64)
    # Every candidate of the round that humans were not asked about (audits included, so that a
    # rerun after an interruption sees the same set and ends in the same state), minus those a
    # human decided outside an audit.
    docs = queries.automation_candidates(project.dataset, round, ["scores", "generator", "status"])
    ids = [d["id"] for d in docs]
    scores = np.array([(d.get("scores") or {}).get(version, np.nan) for d in docs], dtype=np.float64)
    if np.isnan(scores).any():
        raise ConfigError(f"{int(np.isnan(scores).sum())} undecided candidates of round {round} have no "
                          f"score from {version}; run `rorem-data score --round {round} "
                          f"--discriminator {version}` first")
    npv = target_precision if reject_npv is None else reject_npv
    # Start the fixed-sequence test where a few labelled errors can still pass (a start chosen
    # from counts alone, never from labels, keeps the guarantee): the strictest thresholds hold
    # too few labels to prove anything, and one error there would end the whole search.
    start_a = _start(min_trials_for_lower_bound(target_precision, confidence=confidence), len(h_scores))
    start_r = _start(min_trials_for_lower_bound(npv, confidence=confidence), len(h_scores))
    acc = choose_accept_threshold(h_scores, h_labels, target_precision=target_precision,
                                  confidence=confidence, candidate_scores=scores if len(scores) else None,
                                  min_accepted=start_a)
    try:
        rej = choose_reject_threshold(h_scores, h_labels, target_npv=npv, confidence=confidence,
                                      candidate_scores=scores if len(scores) else None,
                                      min_rejected=start_r)
    except ConfigError as exc:
        warnings.warn(f"no automatic rejects: {exc}", stacklevel=2)
        rej = None
    t_acc = acc.threshold if acc.threshold is not None else np.inf
    t_rej = rej.threshold if rej is not None and rej.threshold is not None else -np.inf
    status = np.full(len(ids), schema.PENDING, dtype=object)
    status[scores >= t_acc] = schema.ACCEPTED
    status[(scores <= t_rej) & (scores < t_acc)] = schema.REJECTED

    seen = set(meta.get("generators") or [])
    gen_keys = [((d.get("generator") or {}).get("remover_key") or (d.get("generator") or {}).get("remover")) for d in docs]
    shifted = np.array([bool(seen) and g not in seen for g in gen_keys], dtype=bool)
    if shifted.any():
        warnings.warn(f"{int(shifted.sum())} candidates of round {round} come from a remover the "
                      f"discriminator {version} was not calibrated on; auditing them at "
                      f"{shift_audit:.0%}. Label some of them and retrain for trustworthy automation.",
                      stacklevel=2)

    at = schema.utcnow()
    dec_ids, dec_docs = [], []
    for i, sid in enumerate(ids):
        if status[i] == schema.PENDING or docs[i].get("decided_by") == schema.BY_HUMAN:
            continue  # undecided, or a human has overruled it (the ledger checks again, atomically)
        thr = t_acc if status[i] == schema.ACCEPTED else t_rej
        dec_ids.append(sid)
        dec_docs.append(schema.decision_doc(round=round, phase=schema.PHASE_AUTO, status=status[i],
                                            by=schema.BY_DISCRIMINATOR, at=at, discriminator=version,
                                            threshold=float(thr), score=float(scores[i])))
    ledger.decide_automatically(project.dataset, dec_ids, dec_docs)  # a rerun adds nothing

    gen = np.random.default_rng(rng)
    audit_idx: list[int] = []
    for st in (schema.ACCEPTED, schema.REJECTED):
        for shift in (False, True):
            pool = np.flatnonzero((status == st) & (shifted == shift))
            audit_idx += _audit_pick(pool, shift_audit if shift else audit, gen)
    audit_ids = [ids[i] for i in sorted(audit_idx)]
    if audit_ids:
        enqueue(project, round, audit_ids, purpose=schema.QUEUE_AUDIT, previews=previews)

    result = AutoLabelResult(
        round=int(round), version=version,
        accept_threshold=None if not np.isfinite(t_acc) else float(t_acc),
        reject_threshold=None if not np.isfinite(t_rej) else float(t_rej),
        accepted=int((status == schema.ACCEPTED).sum()), rejected=int((status == schema.REJECTED).sum()),
        left_pending=int((status == schema.PENDING).sum()), audit_ids=audit_ids, shifted=int(shifted.sum()),
        details={"accept_choice": acc.as_dict(), "reject_choice": rej.as_dict() if rej else None},
    )
    store.update_round_record(project.dataset_name, round, set={"phases.auto": {
        "version": version, "target_precision": target_precision, "confidence": confidence,
        "reject_npv": npv, "accept_threshold": result.accept_threshold,
        "reject_threshold": result.reject_threshold, "accepted": result.accepted,
        "rejected": result.rejected, "left_pending": result.left_pending,
        "audit_share": audit, "audit_ids": audit_ids, "shifted": result.shifted,
        "accept_choice": result.details["accept_choice"], "reject_choice": result.details["reject_choice"],
        "at": at, "seconds": time.perf_counter() - t0,
    }})
    return result


def audit_report(project, round: int, *, confidence: float = 0.95) -> dict:
    """Measured precision of the round's automatic decisions on human-audited items.

    Returns a dict with ``accept_precision`` and ``reject_npv`` (Estimates as dicts, over the
    audited automatic accepts / rejects that a human has judged), ``audited``/``pending`` counts,
    the target, and ``flag``: ``"ok"``, ``"below target"`` (point estimate under it) or
    ``"significantly below target"`` (the whole interval under it). Stored in the round record.
    """
    from rorem_data.stats.intervals import proportion

    rec = store.round_record(project.dataset_name, round)
    auto = (rec.get("phases") or {}).get("auto")
    if not auto:
        raise ConfigError(f"round {round} has no automatic decisions to audit; run `rorem-data auto-label` first")
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
    if not acc:
        flag = "not audited yet"
    elif prec.hi < target:
        flag = "significantly below target"
    elif prec.value < target:
        flag = "below target"
    else:
        flag = "ok"
    out = {"round": int(round), "target_precision": target, "audited": len(pairs), "pending": pending,
           "accept_precision": prec.as_dict(), "reject_npv": npv.as_dict(), "flag": flag}
    store.update_round_record(project.dataset_name, round, set={"phases.audit": out})
    return out


# --- estimates -------------------------------------------------------------------------------

def round_estimates(project, round: int, *, version: str | None = None, confidence: float = 0.95) -> dict:
    """The remover's success rate on round ``round``'s candidates, with intervals.

    * ``human``: from the uniform estimation sample's human labels alone (Clopper-Pearson);
    * ``ppi``: prediction-powered (PPI++) from those labels plus the discriminator's calibrated
      scores on every candidate of the round - valid, and narrower when the discriminator is good;
    * ``discriminator``: the mean calibrated score over all candidates (no interval: biased if
      the calibration is off), for comparison.

    Labels from the active-learning queue are NOT used: that sample is chosen, not random.
    """
    from rorem_data.stats.intervals import proportion
    from rorem_data.stats.ppi import ppi_mean

    docs = queries.candidates(project.dataset, round=round,
                              fields=["estimate_sample", "status", "decided_by", "scores", "decisions"])
    out: dict = {"round": int(round), "candidates": len(docs)}
    labelled = []
    for d in docs:
        if not d.get("estimate_sample"):
            continue
        human = [x for x in d.get("decisions") or [] if x and x.get("by") == schema.BY_HUMAN
                 and x.get("status") in (schema.ACCEPTED, schema.REJECTED)]
        if human:
            labelled.append((d, int(human[-1]["status"] == schema.ACCEPTED)))
    out["estimate_labels"] = len(labelled)
    if labelled:
        y = np.array([v for _d, v in labelled])
        out["human"] = proportion(int(y.sum()), len(y), confidence=confidence).as_dict()
    version = version or latest_version(project)
    if version:
        s_all = np.array([(d.get("scores") or {}).get(version, np.nan) for d in docs], dtype=np.float64)
        if len(s_all) and not np.isnan(s_all).any():
            out["discriminator"] = {"version": version, "value": float(s_all.mean())}
            if len(labelled) >= 2:
                s_lab = np.array([(d.get("scores") or {}).get(version) for d, _v in labelled], dtype=np.float64)
                est = ppi_mean(y, s_lab, s_all, confidence=confidence)
                out["ppi"] = {**est.as_dict(), "version": version}
    return out
