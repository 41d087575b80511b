"""Automation thresholds certified with inverse-probability weights on a Poisson sample.

:func:`weighted_precision_lower_bound` bounds the precision of a fixed accepted set from an
active sample with unequal probabilities (an exact-design Chernoff bound under the worst-case
null labelling, or a betting bound); :func:`choose_accept_threshold_active` and
:func:`choose_reject_threshold_active` run a fixed-sequence test with it. The project certifies
with the equal-probability part of the sample instead (:mod:`rorem_data.stats.certify`, more
decided at the same guarantee); these stay for samples with no usable equal-probability part.
Derivations and measurements: ``docs/statistics.md``. Pure numpy and scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.core.numbers import null_count
from rorem_data.stats.design import _check_design, _check_xi, _prediction
from rorem_data.stats.intervals import Estimate, check_confidence, check_scores

__all__ = ["ActiveThresholdChoice", "choose_accept_threshold_active", "choose_reject_threshold_active",
           "weighted_precision_lower_bound"]

BOUND_METHODS = ("chernoff", "betting")
DEFAULT_N_THRESHOLDS = 50
_N_ACHIEVABLE = 16  # thresholds at which a failed search reports the achievable bound
_METHOD_LABEL = {"chernoff": "poisson-chernoff", "betting": "poisson-betting"}
# Chernoff lambda grid: log-spaced with steps of at most 1.3x from 1e-5 / (largest jump 1/pi_i)
# to 100 (where one unit of surplus is worth e^-100). Any grid is valid; a finer one adds power.
_LAMBDA_LO, _LAMBDA_HI, _LAMBDA_STEP = 1e-5, 1e2, 1.3
# betting fractions of the largest admissible lambda
_BET_FRACTIONS = np.geomspace(1e-3, 0.99, 40)


# --------------------------------------------------------------------------------------------
# 4. precision bound


class _Engine:
    """Tail bounds for accepted sets that are prefixes of one fixed order of the candidates.

    ``order``: candidate indices, strictest first; the accepted set of size ``m`` is
    ``order[:m]``. ``hit``: 1 where the sampled candidate is what the rule claims (success for
    accept), 0 elsewhere; ``f``: predictions of ``hit`` in [0, 1]."""

    def __init__(self, hit, xi, pi, f, order, method):
        self.method = method
        self.pi = pi[order]
        self.f = f[order]
        x = xi[order]
        self.z = self.f + np.where(x, (hit[order] - self.f) / self.pi, 0.0)
        self.cum_z = np.r_[0.0, np.cumsum(self.z)]
        self.lower = self.f * (1.0 - 1.0 / self.pi)  # value of Z for a sampled miss
        self.cum_min_lower = np.minimum.accumulate(self.lower)
        if method == "chernoff":
            upper = self.f + (1.0 - self.f) / self.pi
            lo = _LAMBDA_LO * float(self.pi.min())
            n_grid = math.ceil(math.log(_LAMBDA_HI / lo) / math.log(_LAMBDA_STEP)) + 1
            self.lam = np.geomspace(lo, _LAMBDA_HI, n_grid)
            lam = self.lam[:, None]
            with np.errstate(divide="ignore"):
                lp, l1 = np.log(self.pi), np.log1p(-self.pi)
            stay = l1 + lam * self.f
            a = np.logaddexp(lp + lam * upper, stay)
            b = np.logaddexp(lp + lam * self.lower, stay)
            self.d = np.maximum(a - b, 0.0)  # G x N, >= 0 up to rounding
            self.cum_b = np.concatenate([np.zeros((lam.shape[0], 1)), np.cumsum(b, axis=1)], axis=1)

    # --- Chernoff -------------------------------------------------------------------------
    def _top_sum(self, m: int, k: int) -> np.ndarray:
        if k <= 0:
            return np.zeros(self.lam.size)
        if k >= m:
            return self.d[:, :m].sum(axis=1)
        return np.partition(self.d[:, :m], m - k, axis=1)[:, m - k:].sum(axis=1)

    def _chernoff_log_p(self, m: int, k: int, t: float) -> float:
        """log p-value of H0 "at most ``k`` hits among the first ``m``" at statistic ``t``."""
        w = self.cum_b[:, m] + self._top_sum(m, k)
        return float(min(0.0, np.min(w - self.lam * t)))

    def log_p_all(self, m: int, t: float | None = None) -> np.ndarray:
        """log p-values for k = 0..m (non-decreasing in k)."""
        t = self.cum_z[m] if t is None else t
        d = -np.sort(-self.d[:, :m], axis=1)
        top = np.concatenate([np.zeros((d.shape[0], 1)), np.cumsum(d, axis=1)], axis=1)
        w = self.cum_b[:, m][:, None] + top
        return np.minimum(0.0, np.min(w - self.lam[:, None] * t, axis=0))

    # --- betting --------------------------------------------------------------------------
    def _bet_log_p(self, m: int, mu0: float, best: bool) -> float:
        z = np.ones(m) if best else self.z[:m]
        gap = mu0 - float(self.cum_min_lower[m - 1])
        lam = _BET_FRACTIONS / max(gap, 1e-12)
        with np.errstate(divide="ignore"):
            logk = np.log(np.maximum(1.0 + lam[:, None] * (z[None, :] - mu0), 0.0)).sum(axis=1)
        from scipy.special import logsumexp

        return float(min(0.0, -(logsumexp(logk) - math.log(lam.size))))

    # --- shared ---------------------------------------------------------------------------
    def test(self, m: int, k: int, *, best: bool = False) -> float:
        """log p-value of H0 "<= k hits among the first m"; ``best``: as if every one were a
        hit and no prediction were off (T = m), which uses the design only."""
        if k >= m:
            return 0.0
        if self.method == "chernoff":
            return self._chernoff_log_p(m, k, float(m) if best else float(self.cum_z[m]))
        return self._bet_log_p(m, k / m, best)

    def lower_count(self, m: int, log_alpha: float, *, best: bool = False) -> int:
        """Smallest k whose null is not rejected: a (1 - alpha) lower bound on the hit count."""
        if self.method == "chernoff":
            lp = self.log_p_all(m, float(m) if best else None)
            kept = np.flatnonzero(lp > log_alpha)
            return int(kept[0]) if kept.size else m
        lo, hi = 0, m  # test(m, m) = 0 > log_alpha: not rejected
        while lo < hi:
            mid = (lo + hi) // 2
            if self.test(m, mid, best=best) > log_alpha:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def estimate(self, m: int) -> float:
        return float(np.clip(self.cum_z[m] / m, 0.0, 1.0))


_null_count = null_count


def _check_method(method: str) -> str:
    if method not in BOUND_METHODS:
        raise ConfigError(
            f"method must be one of {', '.join(map(repr, BOUND_METHODS))}, got {method!r}"
        )
    return method


def weighted_precision_lower_bound(
    y, xi, pi, accepted_mask, pred=None, *, confidence=0.95, method="chernoff"
) -> Estimate:
    """Finite-sample lower confidence bound on the precision of a fixed accepted set, from an active sample.

    With probability at least ``confidence`` over the Poisson draw, the share of successes
    among the accepted candidates (all of them, labelled or not) is at least ``lo``. Valid for
    any labels and unequal ``pi`` (design-based; method and proof in the module docstring).

    Parameters
    ----------
    y : array_like of {0, 1}, shape (N,)
        Labels (1 = success) where ``xi == 1``; ignored elsewhere (NaN is fine).
    xi : array_like of bool or {0, 1}, shape (N,)
        Sampled indicator from :func:`poisson_sample`.
    pi : array_like of float in (0, 1], shape (N,)
        The inclusion probabilities ``xi`` was drawn with.
    accepted_mask : array_like of bool or {0, 1}, shape (N,)
        The accepted set, e.g. ``scores >= t`` for a ``t`` fixed before the labels were seen.
    pred : array_like of float in [0, 1], shape (N,), optional
        Fixed predictions of success used as the control variate ``f``. ``None`` (default):
        ``f = 1``, the accept rule's own prediction, which was the most powerful choice in our
        simulations and needs no calibration.
    confidence : float, default 0.95
        One-sided confidence level.
    method : {"chernoff", "betting"}, default "chernoff"
        ``"chernoff"``: exact-design Chernoff bound with the worst-case null labelling.
        ``"betting"``: fixed-grid betting mixture (valid, less powerful; for comparison).

    Returns
    -------
    Estimate
        ``value``: the unbiased inverse-probability-weighted precision estimate, clipped to
        [0, 1]; ``lo``: the lower bound, a multiple of ``1 / m`` for ``m`` accepted; ``hi = 1``;
        ``sides="lower"``; ``n``: labelled candidates in the accepted set; ``method``
        ``"poisson-chernoff"`` or ``"poisson-betting"``.

    Raises
    ------
    ConfigError
        No candidate sampled or none accepted; labels other than 0/1 (or missing) where
        sampled; ``pi`` outside (0, 1]; length mismatches; bad ``pred``, ``confidence`` or
        ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.r_[np.ones(190), np.zeros(10)]              # 95% precision
    >>> pi = np.full(200, 0.5)
    >>> xi = poisson_sample(pi, rng=1)
    >>> e = weighted_precision_lower_bound(np.where(xi, y, np.nan), xi, pi, np.ones(200, bool))
    >>> bool(0.8 < e.lo <= 0.95), e.sides
    (True, 'lower')
    """
    conf = check_confidence(confidence)
    _check_method(method)
    yy, x, p = _check_design(y, xi, pi, binary=True)
    acc = _check_xi(accepted_mask, p.size, "accepted_mask", "e.g. scores >= threshold")
    m = int(acc.sum())
    if m == 0:
        raise ConfigError(
            "accepted_mask selects no candidate; the precision of an empty set is undefined. "
            "Loosen the threshold"
        )
    f = _prediction(pred, p.size)
    order = np.flatnonzero(acc)
    eng = _Engine(yy, x, p, f, order, method)
    k_lo = eng.lower_count(m, math.log(1.0 - conf))
    return Estimate(
        value=eng.estimate(m),
        lo=k_lo / m,
        hi=1.0,
        n=int(x[acc].sum()),
        confidence=conf,
        method=_METHOD_LABEL[method],
        sides="lower",
    )


# --------------------------------------------------------------------------------------------
# threshold choice


@dataclass(frozen=True)
class ActiveThresholdChoice:
    """The outcome of an active threshold search: a threshold with its guarantee, or none and why.

    Attributes
    ----------
    rule : {"accept", "reject"}
        ``"accept"``: candidates with ``score >= threshold`` are accepted as successes;
        ``"reject"``: ``score <= threshold`` are rejected as failures.
    threshold : float or None
        The chosen threshold; ``None`` when no candidate threshold could be certified.
    precision : Estimate or None
        For the chosen threshold: the inverse-probability-weighted precision (NPV for reject)
        of all decided candidates, with ``lo`` its one-sided lower bound (``>= target``).
    n_decided : int
        Candidates the rule decides (0 without a threshold).
    n_candidates : int
        All candidates (N).
    n_labeled_decided : int
        Sampled (labelled) candidates among the decided.
    n_labels : int
        Sampled candidates in all.
    target, confidence : float
    n_tested : int
        Thresholds tested by the fixed sequence, including the one that failed (if any).
    method : str
        ``"fixed-sequence poisson-chernoff"`` or ``"fixed-sequence poisson-betting"``.
    message : str
        One line on what was chosen, or why nothing was and what is achievable.
    achievable : float or None
        Without a threshold: the best lower bound among up to 16 evenly spaced candidate
        thresholds (on the observed labels when some threshold was testable, else in the best
        case where every decided candidate is correct); ``None`` when a threshold was chosen.
    achievable_threshold : float or None
        Where ``achievable`` is reached.
    """

    rule: str
    threshold: float | None
    precision: Estimate | None
    n_decided: int
    n_candidates: int
    n_labeled_decided: int
    n_labels: int
    target: float
    confidence: float
    n_tested: int
    method: str
    message: str
    achievable: float | None = None
    achievable_threshold: float | None = None

    @property
    def chosen(self) -> bool:
        """True when a threshold was certified."""
        return self.threshold is not None

    def __str__(self) -> str:
        if not self.chosen:
            return f"no {self.rule} threshold: {self.message}"
        op = ">=" if self.rule == "accept" else "<="
        what = "precision" if self.rule == "accept" else "failure precision (NPV)"
        return "\n".join([
            f"{self.rule} if score {op} {self.threshold:.6g}",
            f"  {what}: {self.precision}; target {100 * self.target:g}% met",
            (f"  decides {self.n_decided} of {self.n_candidates} candidates "
             f"({self.n_labeled_decided} of them labelled)"),
            f"  {self.n_labels} labels, {self.n_tested} thresholds tested, {self.method}",
        ])

    def as_dict(self) -> dict:
        """Plain JSON-safe dict (the Estimate as a dict)."""
        return {
            "rule": self.rule,
            "threshold": None if self.threshold is None else float(self.threshold),
            "precision": None if self.precision is None else self.precision.as_dict(),
            "n_decided": int(self.n_decided),
            "n_candidates": int(self.n_candidates),
            "n_labeled_decided": int(self.n_labeled_decided),
            "n_labels": int(self.n_labels),
            "target": float(self.target),
            "confidence": float(self.confidence),
            "n_tested": int(self.n_tested),
            "method": self.method,
            "message": self.message,
            "achievable": None if self.achievable is None else float(self.achievable),
            "achievable_threshold": (
                None if self.achievable_threshold is None else float(self.achievable_threshold)
            ),
        }


def _choose_active(scores, y, xi, pi, *, target, confidence, candidate_thresholds, pred,
                   min_decided, method, rule):
    target_name = "target_precision" if rule == "accept" else "target_npv"
    min_name = "min_accepted" if rule == "accept" else "min_rejected"
    target = check_confidence(target, target_name)
    conf = check_confidence(confidence)
    _check_method(method)
    if isinstance(min_decided, bool) or not isinstance(min_decided, (int, np.integer)) or min_decided < 1:
        raise ConfigError(f"{min_name} must be an integer >= 1, got {min_decided!r}")
    yy, x, p = _check_design(y, xi, pi, binary=True)
    s = check_scores(scores)
    big_n = p.size
    if s.size != big_n:
        raise ConfigError(
            f"scores has {s.size} values but pi has {big_n}; pass the discriminator score of "
            "every candidate of the round, in the same order"
        )
    f = _prediction(pred, big_n)
    # accept orientation: decide `key >= k_thr` as `hit`
    key = s if rule == "accept" else -s
    hit = yy if rule == "accept" else np.where(x, 1.0 - yy, 0.0)
    # predictions of `hit`: the given ones (1 - pred for reject), else "every decided one is a hit"
    f_hit = 1.0 - f if (rule == "reject" and pred is not None) else f
    shown = (lambda t: t) if rule == "accept" else (lambda t: -t)
    op = ">=" if rule == "accept" else "<="

    order = np.argsort(-key, kind="stable")
    key_sorted = key[order]
    if candidate_thresholds is None:
        # one threshold per distinct score, at up to DEFAULT_N_THRESHOLDS evenly spaced ranks
        ends = np.flatnonzero(np.r_[key_sorted[1:] != key_sorted[:-1], True])
        n_grid = min(DEFAULT_N_THRESHOLDS, ends.size)
        ends = ends[np.unique(np.round(np.linspace(0, ends.size - 1, n_grid)).astype(int))]
        thr = key_sorted[ends]
    else:
        c = check_scores(candidate_thresholds, "candidate_thresholds")
        if c.size == 0:
            raise ConfigError("candidate_thresholds is empty; pass at least one threshold or None")
        thr = np.unique(c if rule == "accept" else -c)[::-1]  # strictest first
    counts = np.searchsorted(-key_sorted, -thr, side="right")  # decided: key >= thr
    # thresholds deciding the same candidates are one test; keep the strictest of each
    keep = (counts >= min_decided) & np.r_[True, counts[1:] != counts[:-1]]
    thr, counts = thr[keep], counts[keep]

    eng = _Engine(hit, x, p, f_hit, order, method)
    log_alpha = math.log(1.0 - conf)
    what = "precision" if rule == "accept" else "NPV"
    base = {"rule": rule, "n_candidates": big_n, "n_labels": int(x.sum()), "target": target,
            "confidence": conf, "method": f"fixed-sequence {_METHOD_LABEL[method]}"}
    cum_x = np.r_[0, np.cumsum(x[order])]

    passed_j, n_tested, first_tested = -1, 0, -1
    for j, m in enumerate(counts):
        m = int(m)
        k0 = _null_count(m, target)
        if eng.test(m, k0, best=True) > log_alpha:
            continue  # could not pass even if every decided candidate were correct: skip
        if first_tested < 0:
            first_tested = j
        n_tested += 1
        if eng.test(m, k0) <= log_alpha:
            passed_j = j
        else:
            break

    if passed_j >= 0:
        m = int(counts[passed_j])
        # the test rejected "<= k0 hits", hence every smaller count too (p rises with k); the
        # max only guards against rounding differences between the two computations
        k_lo = max(eng.lower_count(m, log_alpha), _null_count(m, target) + 1)
        est = Estimate(eng.estimate(m), k_lo / m, 1.0, int(cum_x[m]), conf, _METHOD_LABEL[method],
                       "lower")
        t = float(shown(thr[passed_j]))
        return ActiveThresholdChoice(
            threshold=t, precision=est, n_decided=m, n_labeled_decided=int(cum_x[m]),
            n_tested=n_tested,
            message=(f"{rule} score {op} {t:.6g}: {m} of {big_n} candidates, {what} >= "
                     f"{k_lo / m:.4f} at {100 * conf:g}% confidence (target {target:g})"),
            **base,
        )

    advice = (f"Sample more of the {'high' if rule == 'accept' else 'low'}-score candidates "
              f"(raise floor or budget in sampling_probabilities), lower {target_name} or "
              "confidence, or improve the discriminator")
    if counts.size == 0:
        msg = (f"no candidate threshold decides at least {min_name}={min_decided} candidates; "
               f"lower {min_name}")
        return ActiveThresholdChoice(threshold=None, precision=None, n_decided=0,
                                     n_labeled_decided=0, n_tested=0, message=msg, **base)
    testable = first_tested >= 0
    # what is achievable, at up to _N_ACHIEVABLE evenly spaced thresholds (descriptive only)
    look = np.unique(np.r_[max(first_tested, 0), np.round(
        np.linspace(0, counts.size - 1, min(_N_ACHIEVABLE, counts.size))).astype(int)])
    bounds = np.array([eng.lower_count(int(counts[j]), log_alpha, best=not testable) / int(counts[j])
                       for j in look])
    best = int(look[np.argmax(bounds)])
    best_bound = float(bounds.max())
    best_t = float(shown(thr[best]))
    m_b = int(counts[best])
    if not testable:
        msg = (f"too few labels: even if every decided candidate were correct, no threshold "
               f"could show a {what} of {target:g} at {100 * conf:g}% confidence; the most any "
               f"could show is {best_bound:.4f} ({rule} score {op} {best_t:.6g}: {m_b} "
               f"candidates, {float(eng.pi[:m_b].sum()):.1f} expected labels). {advice}")
    else:
        j = first_tested
        m0 = int(counts[j])
        msg = (f"no threshold reaches a {what} lower bound of {target:g} at {100 * conf:g}% "
               f"confidence: the strictest testable one ({rule} score {op} "
               f"{float(shown(thr[j])):.6g}: {m0} candidates, {int(cum_x[m0])} labelled, "
               f"estimated {what} {eng.estimate(m0):.4f}) has a bound of "
               f"{eng.lower_count(m0, log_alpha) / m0:.4f}, and the fixed-sequence test stops at "
               f"the first failure. The best bound of {look.size} thresholds checked is "
               f"{best_bound:.4f} at score {op} {best_t:.6g}. {advice}")
    return ActiveThresholdChoice(
        threshold=None, precision=None, n_decided=0, n_labeled_decided=0, n_tested=n_tested,
        message=msg, achievable=best_bound, achievable_threshold=best_t, **base,
    )


def choose_accept_threshold_active(
    scores, y, xi, pi, *, target_precision, confidence=0.95, candidate_thresholds=None,
    pred=None, min_accepted=1, method="chernoff",
) -> ActiveThresholdChoice:
    """Loosest "accept if score >= t" whose precision is certified from an active sample.

    With probability at least ``confidence`` over the Poisson draw, if a threshold is
    returned, the share of successes among **all** candidates with ``score >= threshold``
    (labelled or not) is at least ``target_precision``. Fixed-sequence testing with the
    design-based precision bound; no assumption on the labels or on calibration (module
    docstring).

    Parameters
    ----------
    scores : array_like of float, shape (N,)
        Discriminator scores of every candidate in the round (higher = better removal), fixed
        before the sample was drawn. Any monotone scale.
    y : array_like of {0, 1}, shape (N,)
        Labels (1 = success) where ``xi == 1``; ignored elsewhere (NaN is fine).
    xi : array_like of bool or {0, 1}, shape (N,)
        Sampled indicator from :func:`poisson_sample`.
    pi : array_like of float in (0, 1], shape (N,)
        The inclusion probabilities ``xi`` was drawn with.
    target_precision : float
        Required precision, in (0, 1).
    confidence : float, default 0.95
        Probability that the guarantee holds, in (0, 1).
    candidate_thresholds : array_like of float, optional
        Thresholds to test, in any order (tested strictest first); fix them before seeing the
        labels. Default: up to 50 scores at evenly spaced ranks of the distinct scores.
    pred : array_like of float in [0, 1], shape (N,), optional
        Fixed predictions of success as control variate; default ``f = 1`` (see
        :func:`weighted_precision_lower_bound`).
    min_accepted : int, default 1
        Skip thresholds that accept fewer candidates. Thresholds that could not pass even if
        every accepted candidate were a success are always skipped. Raise it when the top scores
        hold a few failures, so the first test tolerates them; choose it before the labels.
    method : {"chernoff", "betting"}, default "chernoff"

    Returns
    -------
    ActiveThresholdChoice
        ``chosen`` False, with a ``message`` saying what is achievable, when the labels cannot
        certify any threshold (too few labels among the high scores, or too many failures).

    Raises
    ------
    ConfigError
        No candidate sampled; labels other than 0/1 (or missing) where sampled; ``pi`` outside
        (0, 1]; NaN scores; length mismatches; bad ``target_precision``, ``confidence``,
        ``pred``, ``min_accepted`` or ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 0.5, size=2000)                    # calibrated scores
    >>> y = (rng.uniform(size=2000) < p).astype(float)
    >>> pi = sampling_probabilities(p, 600, floor=0.2)
    >>> xi = poisson_sample(pi, rng)
    >>> c = choose_accept_threshold_active(p, np.where(xi, y, np.nan), xi, pi, target_precision=0.9)
    >>> c.chosen, bool(c.precision.lo >= 0.9)
    (True, True)
    """
    return _choose_active(
        scores, y, xi, pi, target=target_precision, confidence=confidence,
        candidate_thresholds=candidate_thresholds, pred=pred, min_decided=min_accepted,
        method=method, rule="accept",
    )


def choose_reject_threshold_active(
    scores, y, xi, pi, *, target_npv, confidence=0.95, candidate_thresholds=None,
    pred=None, min_rejected=1, method="chernoff",
) -> ActiveThresholdChoice:
    """Loosest "reject if score <= t" whose share of failures is certified from an active sample.

    The mirror image of :func:`choose_accept_threshold_active`: with probability at least
    ``confidence``, if a threshold is returned, the share of failures among all candidates
    with ``score <= threshold`` (the negative predictive value) is at least ``target_npv``.

    Parameters
    ----------
    scores, y, xi, pi, confidence, candidate_thresholds, method
        As in :func:`choose_accept_threshold_active`.
    target_npv : float
        Required share of failures among the rejected, in (0, 1).
    pred : array_like of float in [0, 1], shape (N,), optional
        Fixed predictions of **success** (as elsewhere); ``1 - pred`` predicts the failures.
        Default: every rejected candidate predicted a failure.
    min_rejected : int, default 1
        Skip thresholds that reject fewer candidates.

    Returns
    -------
    ActiveThresholdChoice
        ``rule="reject"``; ``precision`` is the NPV with its lower bound.

    Raises
    ------
    ConfigError
        As :func:`choose_accept_threshold_active`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(0.5, 2, size=2000)
    >>> y = (rng.uniform(size=2000) < p).astype(float)
    >>> pi = sampling_probabilities(p, 600, floor=0.2)
    >>> xi = poisson_sample(pi, rng)
    >>> c = choose_reject_threshold_active(p, np.where(xi, y, np.nan), xi, pi, target_npv=0.9)
    >>> c.chosen, c.rule
    (True, 'reject')
    """
    return _choose_active(
        scores, y, xi, pi, target=target_npv, confidence=confidence,
        candidate_thresholds=candidate_thresholds, pred=pred, min_decided=min_rejected,
        method=method, rule="reject",
    )

