"""Choose discriminator thresholds that keep a stated precision, with a real guarantee.

An automation round accepts every candidate whose discriminator score is at or above a
threshold, with no human looking. The threshold is chosen on held-out human labels so that

    P( precision of the accepted candidates < target ) <= 1 - confidence,

where the probability is over the draw of the labelled set. :func:`choose_accept_threshold`
does this; :func:`choose_reject_threshold` is the mirror image (reject at or below a low
threshold, so that the rejected are failures with the stated precision).

How, and why it holds
---------------------
Scanning every threshold and keeping the loosest one whose lower confidence bound clears the
target tests many hypotheses at once and breaks the guarantee (the tests in
``tests/test_thresholds.py`` show it failing). Instead we use **fixed-sequence testing**, as in
Learn-then-Test (Angelopoulos, Bates, Candès, Jordan & Lei, 2021):

1. Candidate thresholds are the distinct labelled scores, tested from the strictest (highest)
   to the loosest. Thresholds that accept fewer labelled items than could ever pass (fewer than
   :func:`~rorem_data.stats.intervals.min_trials_for_lower_bound` items, or fewer than
   ``min_accepted``) are skipped; that decision uses the scores only, never the labels.
2. Each threshold ``t`` is tested at level ``alpha = 1 - confidence`` with the exact one-sided
   Clopper-Pearson lower bound on the precision of ``score >= t``: it passes when the bound is
   ``>= target``.
3. The sequence stops at the first failure; the loosest threshold that passed is returned.

Assumptions: the labelled items are a uniform random (i.i.d.) sample of the candidates the
threshold will be applied to, scored by the same discriminator; and the chance of success
never falls as the score rises, ``P(success | score)`` non-decreasing (what "higher score =
better removal" means). Why it holds: then the precision of ``score >= t`` falls as ``t``
falls, so the thresholds whose true precision is below target ("bad") are the loose end of the
sequence, below the score ``tau`` where the precision equals the target. A wrong answer needs
the test at the first bad threshold tested to pass. Given how many labelled items score above
``tau``, their labels are i.i.d. with success rate equal to the target, and each labelled item
below ``tau`` succeeds with probability at most the target; so the successes that test counts
are stochastically at most Binomial(n, target), and it passes with probability at most
``alpha``. The argument is exact for continuous scores and approximate with heavily tied
scores (the tests simulate both, and the error rate stays below ``alpha``).

Check monotonicity on your labels before trusting the guarantee: the observed success rate per
score bin should not fall as the score rises (e.g. :func:`rorem_data.stats.calibration.reliability_curve`
on scores mapped to [0, 1]). A discriminator that ranks some kind of failure highly breaks the
assumption, and then the guarantee is not proven.

Power: the first test sits at the smallest accepted count that could pass, where every accepted
label must be a success (59 of 59 for 0.95 at 95%). If the top scores hold a few failures the
sequence stops there and no threshold comes back; ``min_accepted`` moves the start to a larger
count where a few failures are tolerated. Choose it before looking at the labels.

Scores are used only through their order, so raw scores and calibrated probabilities give the
same accepted set. Label convention: 1 = success (object removed well), 0 = failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.stats.intervals import (
    Estimate,
    binomial_ci,
    check_confidence,
    check_labels,
    check_scores,
    min_trials_for_lower_bound,
    proportion,
)

METHOD = "fixed-sequence Clopper-Pearson"


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and what it achieves on the labels.

    Attributes
    ----------
    rule : {"accept", "reject"}
        ``"accept"``: candidates with ``score >= threshold`` are accepted as successes.
        ``"reject"``: candidates with ``score <= threshold`` are rejected as failures.
    threshold : float
        The threshold, one of the labelled scores.
    precision : Estimate
        Of the labelled items the rule decides, the share it decides correctly (successes
        for accept, failures for reject: the negative predictive value). ``lo`` is the
        exact one-sided Clopper-Pearson lower bound at ``confidence`` (``sides="lower"``);
        ``lo >= target``.
    recall : Estimate
        Share of the labelled successes (failures for reject) that the rule decides;
        two-sided Clopper-Pearson. Descriptive: it is measured on the same labels that chose
        the threshold, so it is slightly optimistic.
    candidate_share : Estimate or None
        Share of ``candidate_scores`` the rule decides, with a two-sided Clopper-Pearson
        interval for that share in a fresh pool from the same source. ``None`` when no
        candidates were given.
    n_candidates_decided : int or None
        How many of ``candidate_scores`` the rule decides.
    n_labels, n_positive : int
        Labelled items, and labelled successes among them.
    n_decided : int
        Labelled items the rule decides (``precision.n``).
    target, confidence : float
        The requested precision and confidence.
    n_tested : int
        Thresholds tested by the fixed sequence, including the one that failed (if any).
    method : str
        ``"fixed-sequence Clopper-Pearson"``.
    """

    rule: str
    threshold: float | None
    precision: Estimate | None
    recall: Estimate | None
    candidate_share: Estimate | None
    n_candidates_decided: int | None
    n_labels: int
    n_positive: int
    n_decided: int
    target: float
    confidence: float
    n_tested: int
    method: str = METHOD
    message: str = ""

    @property
    def chosen(self) -> bool:
        """True when a threshold was certified; False when none qualifies (``message`` says
        why and what is achievable) - an outcome, not an error, as everywhere in rorem-data."""
        return self.threshold is not None

    def __str__(self) -> str:
        if not self.chosen:
            return f"no {self.rule} threshold: {self.message}"
        op = ">=" if self.rule == "accept" else "<="
        what = "precision" if self.rule == "accept" else "failure precision (NPV)"
        lines = [
            f"{self.rule} if score {op} {self.threshold:.6g}",
            f"  {what}: {self.precision}; target {100 * self.target:g}% met",
            f"  recall:    {self.recall}",
        ]
        if self.candidate_share is not None:
            lines.append(
                f"  decides {self.n_candidates_decided} of {self.candidate_share.n} candidates: "
                f"{self.candidate_share}"
            )
        lines.append(
            f"  {self.n_labels} labels ({self.n_positive} successes), "
            f"{self.n_tested} thresholds tested, {self.method}"
        )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Plain JSON-safe dict (Estimates as dicts, non-finite floats as ``None``)."""
        return {
            "rule": self.rule,
            "threshold": None if self.threshold is None else float(self.threshold),
            "precision": None if self.precision is None else self.precision.as_dict(),
            "recall": None if self.recall is None else self.recall.as_dict(),
            "candidate_share": None if self.candidate_share is None else self.candidate_share.as_dict(),
            "n_candidates_decided": self.n_candidates_decided,
            "n_labels": int(self.n_labels),
            "n_positive": int(self.n_positive),
            "n_decided": int(self.n_decided),
            "target": float(self.target),
            "confidence": float(self.confidence),
            "n_tested": int(self.n_tested),
            "method": self.method,
            "message": self.message,
        }


def _check_min(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _choose(scores, y, *, target, confidence, candidate_scores, min_decided, rule):
    """Shared engine. ``rule="accept"``: decide ``score >= t`` as successes; ``"reject"``:
    decide ``score <= t`` as failures (run as accept on ``-score`` and ``1 - y``)."""
    from scipy import special

    target_name = "target_precision" if rule == "accept" else "target_npv"
    min_name = "min_accepted" if rule == "accept" else "min_rejected"
    target = check_confidence(target, target_name)
    confidence = check_confidence(confidence)
    min_decided = _check_min(min_decided, min_name)
    s = check_scores(scores)
    labels = check_labels(y, s.size)
    cand = None if candidate_scores is None else check_scores(candidate_scores, "candidate_scores")

    n = int(s.size)
    n_pos = int(labels.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "successes (1)" if n_neg == 0 else "failures (0)"
        raise ConfigError(
            f"y holds only {only} ({n} labels); choosing a threshold needs both labelled "
            "successes and failures. Check the label field, or label more candidates"
        )
    # work in "accept" orientation: the class we decide is `hit`
    key = s if rule == "accept" else -s
    hit = labels if rule == "accept" else 1 - labels
    n_hit = int(hit.sum())
    hit_name = "labelled successes" if rule == "accept" else "labelled failures"
    alpha = 1.0 - confidence
    n_min = min_trials_for_lower_bound(target, confidence=confidence)
    none = dict(rule=rule, threshold=None, precision=None, recall=None, candidate_share=None,
                n_candidates_decided=None, n_labels=n, n_positive=n_pos, n_decided=0, target=target,
                confidence=confidence)
    if n_hit < n_min:
        return ThresholdChoice(**none, n_tested=0, message=(
            f"at {100 * confidence:g}% confidence a {'precision' if rule == 'accept' else 'NPV'} "
            f"lower bound of {target:g} needs at least {n_min} {rule}ed labels all correct; you "
            f"have {n_hit} {hit_name}. Label more candidates, or lower {target_name} or "
            "confidence"))
    start = max(n_min, min_decided)
    if start > n:
        raise ConfigError(
            f"{min_name}={min_decided} exceeds the {n} labelled items; lower {min_name} or "
            "label more candidates"
        )

    order = np.argsort(-key, kind="stable")
    key_sorted = key[order]
    cum_hit = np.cumsum(hit[order])
    # last position of each run of tied scores: one candidate threshold per distinct score
    ends = np.flatnonzero(np.r_[key_sorted[1:] != key_sorted[:-1], True])
    m = ends + 1  # items decided at each threshold
    k = cum_hit[ends]  # of which correct
    tested = m >= start
    m, k, thr = m[tested], k[tested], key_sorted[ends][tested]
    # Exact binomial test of H0 "precision < target": p = P(Binomial(m, target) >= k). It
    # passes (p <= alpha) exactly when the one-sided Clopper-Pearson lower bound is >= target;
    # the forward incomplete beta is much cheaper than inverting it at every threshold.
    p_value = np.where(k > 0, special.betainc(np.maximum(k, 1), m - k + 1, target), 1.0)
    passed = p_value <= alpha
    n_pass = int(np.argmin(passed)) if not passed.all() else int(passed.size)
    n_tested = min(n_pass + 1, int(passed.size))
    shown = (lambda t: t) if rule == "accept" else (lambda t: -t)
    op = ">=" if rule == "accept" else "<="

    if n_pass == 0:
        lower, _ = binomial_ci(k, m, confidence=confidence, sides="lower")
        best = int(np.argmax(lower))
        return ThresholdChoice(**none, n_tested=n_tested, message=(
            f"no threshold reaches a {'precision' if rule == 'accept' else 'NPV'} lower bound of "
            f"{target:g} at {100 * confidence:g}% confidence: the strictest testable threshold "
            f"({rule} score {op} {shown(thr[0]):.6g}: {k[0]} of {m[0]} correct) has a bound of "
            f"{lower[0]:.4f}, and the fixed-sequence test stops at the first failure. The best "
            f"bound of any threshold is {lower[best]:.4f} at score {op} {shown(thr[best]):.6g} "
            f"({k[best]} of {m[best]} correct). Label more candidates, lower {target_name}, or "
            "improve the discriminator"))
    j = n_pass - 1
    threshold = float(shown(thr[j]))
    precision = Estimate(
        value=float(k[j] / m[j]),
        lo=binomial_ci(int(k[j]), int(m[j]), confidence=confidence, sides="lower")[0],
        hi=1.0,
        n=int(m[j]),
        confidence=confidence,
        method="clopper-pearson",
        sides="lower",
    )
    recall = proportion(int(k[j]), n_hit, confidence=confidence)
    share = n_decided_cand = None
    if cand is not None:
        n_decided_cand = int(np.sum(cand >= threshold) if rule == "accept" else np.sum(cand <= threshold))
        share = proportion(n_decided_cand, int(cand.size), confidence=confidence)
    return ThresholdChoice(
        rule=rule,
        threshold=threshold,
        precision=precision,
        recall=recall,
        candidate_share=share,
        n_candidates_decided=n_decided_cand,
        n_labels=n,
        n_positive=n_pos,
        n_decided=int(m[j]),
        target=target,
        confidence=confidence,
        n_tested=n_tested,
    )


def choose_accept_threshold(
    scores, y, *, target_precision, confidence=0.95, candidate_scores=None, min_accepted=1
) -> ThresholdChoice:
    """Lowest score threshold whose accepted candidates meet ``target_precision``, guaranteed.

    With probability at least ``confidence`` over the labelled sample, the true precision of
    "accept if ``score >= threshold``" on the population the labels were drawn from is at
    least ``target_precision`` (fixed-sequence testing; see the module docstring for the
    method and its assumptions: labels a uniform random sample of the candidates, and
    ``P(success | score)`` non-decreasing).

    Parameters
    ----------
    scores : array_like of float, shape (n,)
        Discriminator scores of held-out, human-labelled candidates; higher = better removal.
        Any monotone scale (raw scores or calibrated probabilities give the same result).
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels, 1 = success.
    target_precision : float
        Required precision of the accepted, in (0, 1), e.g. 0.95.
    confidence : float, default 0.95
        Probability that the guarantee holds, in (0, 1).
    candidate_scores : array_like of float, shape (N,), optional
        Scores of the unlabelled pool the threshold will be applied to; used only to report
        the share it accepts (it does not influence the threshold).
    min_accepted : int, default 1
        Never return a threshold that accepts fewer labelled items than this (and never fewer
        than the minimum that could pass, see Raises). It is also where the fixed sequence
        starts: raise it (e.g. to 2-3 times that minimum) when the top scores hold a few
        failures, so the first test tolerates them. Uses the scores only, so the guarantee
        stands; pick it before looking at the labels.

    Returns
    -------
    ThresholdChoice
        ``rule="accept"``; ``precision.lo`` is the exact one-sided lower bound, ``>= target``.
        When no threshold qualifies - fewer labelled successes than the smallest sample that
        could prove the target even if all were correct (``min_trials_for_lower_bound``, 59
        for 0.95 at 95%), or no threshold passes - ``chosen`` is False and ``message`` gives
        the best achievable bound and where (the one convention of rorem-data's threshold
        searches: an outcome, not an error).

    Raises
    ------
    ConfigError
        NaN/inf scores, length mismatch, labels other than 0/1, only one class; bad
        ``target_precision``, ``confidence`` or ``min_accepted``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < scores).astype(int)   # P(success | s) = s
    >>> choice = choose_accept_threshold(scores, y, target_precision=0.9, candidate_scores=scores)
    >>> bool(choice.precision.lo >= 0.9), choice.rule
    (True, 'accept')
    """
    return _choose(
        scores, y, target=target_precision, confidence=confidence,
        candidate_scores=candidate_scores, min_decided=min_accepted, rule="accept",
    )


def choose_reject_threshold(
    scores, y, *, target_npv, confidence=0.95, candidate_scores=None, min_rejected=1
) -> ThresholdChoice:
    """Highest score threshold whose rejected candidates are failures at ``target_npv``.

    The mirror image of :func:`choose_accept_threshold`: "reject if ``score <= threshold``",
    and with probability at least ``confidence`` the share of failures among the rejected
    (the negative predictive value) is at least ``target_npv``. Same method and assumptions.

    Parameters
    ----------
    scores : array_like of float, shape (n,)
        Discriminator scores of held-out, human-labelled candidates; higher = better removal.
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels, 1 = success.
    target_npv : float
        Required share of failures among the rejected, in (0, 1).
    confidence : float, default 0.95
    candidate_scores : array_like of float, shape (N,), optional
        Unlabelled pool; only used to report the share it rejects.
    min_rejected : int, default 1
        Never return a threshold that rejects fewer labelled items than this.

    Returns
    -------
    ThresholdChoice
        ``rule="reject"``; ``precision`` is the NPV with its one-sided lower bound,
        ``recall`` the share of labelled failures rejected.

    Raises
    ------
    ConfigError
        As :func:`choose_accept_threshold`, counting labelled failures instead of successes.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < scores).astype(int)
    >>> choice = choose_reject_threshold(scores, y, target_npv=0.9)
    >>> bool(choice.precision.lo >= 0.9), bool(choice.threshold < 0.3)
    (True, True)
    """
    return _choose(
        scores, y, target=target_npv, confidence=confidence,
        candidate_scores=candidate_scores, min_decided=min_rejected, rule="reject",
    )
