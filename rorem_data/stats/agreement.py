"""How well does the discriminator agree with the humans, on a labelled set?

RORem's evidence that its discriminator can stand in for humans is that the success rate it
estimates is within about 3 points of the human-judged one. :func:`agreement_report` computes
that comparison for any labelled set (a round's human-reviewed candidates, a test set), with
intervals, plus the ranking quality (AUC) and the confusion at the working threshold.

Label convention: 1 = success (object removed well), 0 = failure. Scores: higher = better
removal; a candidate counts as accepted by the discriminator when ``score >= threshold``.
scipy and scikit-learn are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rorem_data.core.numbers import z_value
from rorem_data.core.errors import ConfigError
from rorem_data.stats.intervals import (
    Estimate,
    binomial_ci,
    check_confidence,
    check_labels,
    check_scores,
    proportion,
)

AUC_METHODS = ("delong", "bootstrap")




def _delong_placements(s_pos: np.ndarray, s_neg: np.ndarray):
    """Structural components of DeLong et al. (1988), via midranks (Sun & Xu, 2014).

    ``v10[i]``: share of failures scored below success ``i`` (ties count half);
    ``v01[j]``: share of successes scored above failure ``j``. ``mean(v10)`` is the AUC.
    """
    from scipy.stats import rankdata

    m, n = s_pos.size, s_neg.size
    ranks_all = rankdata(np.r_[s_pos, s_neg])
    v10 = (ranks_all[:m] - rankdata(s_pos)) / n
    v01 = 1.0 - (ranks_all[m:] - rankdata(s_neg)) / m
    return v10, v01


def auc_estimate(scores, y, *, confidence=0.95, method="delong", rng=0, n_boot=1000) -> Estimate:
    """ROC AUC of the scores against the human labels, with a confidence interval.

    The AUC is the chance that a random success scores higher than a random failure (ties
    count half): 0.5 is guessing, 1 is a perfect ranking.

    Parameters
    ----------
    scores : array_like of float, shape (n,)
        Discriminator scores, higher = better removal.
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels, 1 = success; both classes must occur.
    confidence : float, default 0.95
    method : {"delong", "bootstrap"}
        ``"delong"``: DeLong's asymptotic variance, normal interval clipped to [0, 1]
        (deterministic; degenerates to a point when the AUC is exactly 0 or 1).
        ``"bootstrap"``: percentile interval of a bootstrap stratified by class.
    rng : int or numpy.random.Generator, default 0
        Randomness for ``method="bootstrap"`` (same seed, same interval).
    n_boot : int, default 1000
        Bootstrap resamples.

    Returns
    -------
    Estimate
        ``unit="value"``; ``n`` is the number of labelled items.

    Raises
    ------
    ConfigError
        NaN/inf scores, length mismatch, labels other than 0/1, only one class, bad
        ``confidence``/``method``/``n_boot``.

    Examples
    --------
    >>> e = auc_estimate([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> e.value
    0.75
    """
    from sklearn.metrics import roc_auc_score

    conf = check_confidence(confidence)
    s = check_scores(scores)
    t = check_labels(y, s.size)
    if method not in AUC_METHODS:
        raise ConfigError(f"method must be one of {AUC_METHODS}, got {method!r}")
    n_pos = int(t.sum())
    if n_pos == 0 or n_pos == t.size:
        raise ConfigError(
            f"the AUC needs labelled successes and failures, but y has {n_pos} successes and "
            f"{t.size - n_pos} failures; label more candidates or check the label field"
        )
    value = float(roc_auc_score(t, s))
    s_pos, s_neg = s[t == 1], s[t == 0]
    if method == "delong":
        v10, v01 = _delong_placements(s_pos, s_neg)
        var = v10.var(ddof=1) / v10.size if v10.size > 1 else 0.0
        var += v01.var(ddof=1) / v01.size if v01.size > 1 else 0.0
        half = z_value(conf) * math.sqrt(var)
        lo, hi = value - half, value + half
    else:
        from scipy.stats import rankdata

        if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
            raise ConfigError(f"n_boot must be an integer >= 10, got {n_boot!r}")
        gen = np.random.default_rng(rng)
        aucs = np.empty(int(n_boot))
        m, n = s_pos.size, s_neg.size
        chunk = max(1, 2_000_000 // (m + n))
        for start in range(0, int(n_boot), chunk):
            b = min(chunk, int(n_boot) - start)
            bp = s_pos[gen.integers(0, m, size=(b, m))]
            bn = s_neg[gen.integers(0, n, size=(b, n))]
            ranks = rankdata(np.concatenate([bp, bn], axis=1), axis=1)
            aucs[start:start + b] = (ranks[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
        alpha = 1.0 - conf
        lo, hi = np.quantile(aucs, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(max(lo, 0.0)), float(min(hi, 1.0)), int(s.size), conf,
                    method, "two", "value")


def paired_rate_difference(a, b, *, confidence=0.95) -> Estimate:
    """Difference ``mean(a) - mean(b)`` of two 0/1 judgements of the same items, with interval.

    Uses Newcombe's hybrid score interval for paired proportions (Newcombe 1998, method 10):
    Wilson intervals of the two rates, combined with the correlation of the pairs. It keeps
    close to nominal coverage with few items or few disagreements, always contains the
    observed difference, and is much narrower than treating the two rates as independent
    when the judgements mostly agree.

    Parameters
    ----------
    a, b : array_like of {0, 1} or bool, shape (n,)
        Two judgements per item, e.g. the discriminator's decision and the human label.
    confidence : float, default 0.95

    Returns
    -------
    Estimate
        ``unit="difference"``, ``method="newcombe"``, bounds in [-1, 1].

    Raises
    ------
    ConfigError
        Values other than 0/1, length mismatch, no items, bad ``confidence``.

    Examples
    --------
    >>> e = paired_rate_difference([1, 1, 0, 1], [1, 0, 0, 1])
    >>> e.value, e.lo < 0 < e.hi
    (0.25, True)
    """
    conf = check_confidence(confidence)
    a = check_labels(a, np.size(b), name="a", against="b")
    b = check_labels(b, a.size, name="b", against="a")
    n = int(a.size)
    if n == 0:
        raise ConfigError("a and b are empty; a difference of rates needs items")
    both = int(np.sum((a == 1) & (b == 1)))
    only_a = int(np.sum((a == 1) & (b == 0)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    (l1, l2), (u1, u2) = binomial_ci([both + only_a, both + only_b], n, confidence=conf,
                                     method="wilson")
    denom = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(denom) if denom > 0 else 0.0
    d1, e1 = p1 - l1, u1 - p1
    d2, e2 = p2 - l2, u2 - p2
    below = math.sqrt(max(d1**2 - 2 * phi * d1 * e2 + e2**2, 0.0))
    above = math.sqrt(max(e1**2 - 2 * phi * e1 * d2 + d2**2, 0.0))
    value = p1 - p2
    return Estimate(float(value), float(max(value - below, -1.0)), float(min(value + above, 1.0)),
                    n, conf, "newcombe", "two", "difference")


@dataclass(frozen=True)
class AgreementReport:
    """Agreement of a discriminator with human labels on one labelled set.

    Attributes
    ----------
    threshold : float
        The discriminator accepts when ``score >= threshold``.
    n, n_positive : int
        Labelled items, and human successes among them.
    auc : Estimate or None
        ROC AUC with interval; ``None`` when only one class is labelled.
    accuracy : Estimate
        Share of items where the decision equals the human label.
    precision : Estimate
        Share of accepted items that humans judged successes (``n=0`` and value ``nan`` if
        nothing is accepted).
    recall : Estimate
        Share of human successes the discriminator accepts (value ``nan`` if there are none).
    human_rate : Estimate
        Human success rate.
    discriminator_rate : Estimate
        The discriminator's success rate: share of ``score >= threshold``.
    difference : Estimate
        ``discriminator_rate - human_rate`` with a paired (Newcombe) interval; RORem's
        "within 3%" claim is ``|difference.value| <= 0.03``.
    confusion : dict
        ``{"tp", "fp", "fn", "tn"}`` counts (positive = success / accepted).
    confidence : float
    """

    threshold: float
    n: int
    n_positive: int
    auc: Estimate | None
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    human_rate: Estimate
    discriminator_rate: Estimate
    difference: Estimate
    confusion: dict
    confidence: float

    def __str__(self) -> str:
        rows = [
            ("AUC", self.auc if self.auc is not None else "n/a (one class only)"),
            ("accuracy", self.accuracy),
            ("precision", self.precision),
            ("recall", self.recall),
            ("human success rate", self.human_rate),
            ("discriminator rate", self.discriminator_rate),
            ("difference (D - human)", self.difference),
        ]
        c = self.confusion
        head = (
            f"discriminator vs humans on {self.n} labels ({self.n_positive} successes), "
            f"accept if score >= {self.threshold:.6g}"
        )
        body = [f"  {name:<24}{value}" for name, value in rows]
        body.append(f"  {'confusion':<24}tp={c['tp']} fp={c['fp']} fn={c['fn']} tn={c['tn']}")
        return "\n".join([head, *body])

    def as_dict(self) -> dict:
        """Plain JSON-safe dict (Estimates as dicts, non-finite floats as ``None``)."""
        return {
            "threshold": float(self.threshold),
            "n": int(self.n),
            "n_positive": int(self.n_positive),
            "auc": None if self.auc is None else self.auc.as_dict(),
            "accuracy": self.accuracy.as_dict(),
            "precision": self.precision.as_dict(),
            "recall": self.recall.as_dict(),
            "human_rate": self.human_rate.as_dict(),
            "discriminator_rate": self.discriminator_rate.as_dict(),
            "difference": self.difference.as_dict(),
            "confusion": {k: int(v) for k, v in self.confusion.items()},
            "confidence": float(self.confidence),
        }


def agreement_report(
    scores, y, *, threshold, confidence=0.95, auc_method="delong", rng=0, n_boot=1000
) -> AgreementReport:
    """Compare discriminator decisions with human labels on a labelled set.

    Parameters
    ----------
    scores : array_like of float, shape (n,)
        Discriminator scores, higher = better removal.
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels of the same items, 1 = success.
    threshold : float
        The discriminator accepts when ``score >= threshold`` (RORem used 0.9).
    confidence : float, default 0.95
        Level of every interval. Proportions use two-sided Clopper-Pearson intervals.
    auc_method : {"delong", "bootstrap"}
        See :func:`auc_estimate`.
    rng : int or numpy.random.Generator, default 0
        Randomness for the bootstrap AUC interval.
    n_boot : int, default 1000
        Bootstrap resamples (``auc_method="bootstrap"`` only).

    Returns
    -------
    AgreementReport
        Print it for a table; ``as_dict()`` for a round record.

    Raises
    ------
    ConfigError
        NaN/inf scores, non-finite ``threshold``, length mismatch, labels other than 0/1, no
        items, bad ``confidence``.

    Examples
    --------
    >>> r = agreement_report([0.2, 0.95, 0.91, 0.5, 0.99], [0, 1, 0, 1, 1], threshold=0.9)
    >>> r.human_rate.value, r.discriminator_rate.value, r.difference.value
    (0.6, 0.6, 0.0)
    >>> r.confusion
    {'tp': 2, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    conf = check_confidence(confidence)
    if auc_method not in AUC_METHODS:
        raise ConfigError(f"auc_method must be one of {AUC_METHODS}, got {auc_method!r}")
    s = check_scores(scores)
    t = check_labels(y, s.size)
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        thr = float("nan")
    if not math.isfinite(thr):
        raise ConfigError(f"threshold must be a finite number, got {threshold!r}")
    if s.size == 0:
        raise ConfigError("scores is empty; an agreement report needs labelled items")
    decision = (s >= thr).astype(np.int64)
    tp = int(np.sum((decision == 1) & (t == 1)))
    fp = int(np.sum((decision == 1) & (t == 0)))
    fn = int(np.sum((decision == 0) & (t == 1)))
    tn = int(np.sum((decision == 0) & (t == 0)))
    n, n_pos = int(s.size), tp + fn
    auc = None
    if 0 < n_pos < n:
        auc = auc_estimate(s, t, confidence=conf, method=auc_method, rng=rng, n_boot=n_boot)
    return AgreementReport(
        threshold=thr,
        n=n,
        n_positive=n_pos,
        auc=auc,
        accuracy=proportion(tp + tn, n, confidence=conf),
        precision=proportion(tp, tp + fp, confidence=conf),
        recall=proportion(tp, n_pos, confidence=conf),
        human_rate=proportion(n_pos, n, confidence=conf),
        discriminator_rate=proportion(tp + fp, n, confidence=conf),
        difference=paired_rate_difference(decision, t, confidence=conf),
        confusion={"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        confidence=conf,
    )
