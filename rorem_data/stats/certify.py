"""Certify automatic decisions from an equal-probability part of a Poisson sample.

Why: the precision of "accept if score >= t" is certified on labels drawn at random from the
candidates that rule would decide. When every candidate has the same chance ``c`` of being in
the sample, the labelled ones inside the decided set are, given how many there are, a uniform
random subset of it, and the number of successes among them is **hypergeometric**. Its exact
tail gives the tightest finite-sample bound there is for a set of that size; no weights, no
worst case over which candidates hide the failures (what limits the inverse-probability bounds
of :mod:`rorem_data.stats.active` when some probabilities are small).

The sample may have unequal probabilities (the active design gives uncertain candidates more):
:func:`thin_to_equal` keeps each sampled candidate with probability ``c / pi_i`` by a coin fixed
in advance and independent of the labels, ``c`` the smallest ``pi`` of the population. The kept
ones are then an independent Bernoulli(``c``) sample of every candidate - exactly. The labels of
the candidates not kept still count for everything else (training, estimates).

Threshold choice (:func:`choose_threshold_equal`): fixed-sequence testing (Learn-then-Test,
Angelopoulos et al., 2021) over nested decided sets fixed before the labels are seen - the
``m_j`` best-scored candidates with ``c * m_j = start + j * step`` expected labels (below 300
expected labels: a fifth of them, then steps of a third of that - 40, 53, 67, ... for 200; from
300 a tenth, at least 30, then steps of 5 - 60, 65, 70, ... for 600 - with a second entry point,
below).
Each null "the set holds fewer than ``target * m_j`` successes" is tested at level ``alpha =
1 - confidence`` with the exact hypergeometric p-value given the labelled count ``n_j`` in the
set; testing stops at the first null that is not rejected and the largest rejected set is
returned. Why it is valid: a wrong answer needs a true null rejected; the first true null of the
sequence is fixed by the labels (design-based: the labels are fixed, the draw is random), and
given ``n_j`` its p-value is exact, so it is rejected with probability at most ``alpha``. With
many expected labels (``SECOND_FROM * start`` or more) the error rate is shared between two
points of the same sequence - its first set and the first set with a third of the labels -
by the fallback procedure (Wiens 2003): each set is tested at its own share plus the level of
the set before it when that one was shown, and a set not shown passes nothing on. A first
failure near the top (a few confidently misjudged candidates at the extreme score) then does not
end the sequence: it resumes at the third with half the error rate, and a sequence shown
all the way there carries on with all of it. The shares sum to ``alpha``, so a true null is
rejected with probability at most ``alpha`` in all.

Scores, the sets and the thinning coins must not depend on the labels being tested: scores
from a discriminator trained before the draw, or on a held-out split decided by coins (see
:func:`split_inclusion`).

Pure numpy and scipy.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from rorem_data.core.numbers import null_count

__all__ = ["EqualChoice", "choose_threshold_equal", "hash_uniforms", "hypergeom_lower_count",
           "split_inclusion", "thin_to_equal"]

#: Expected labels in the first tested set (at least), and in each step after it, from 300
#: expected labels: steps of 5 rather than 10 put the last certified set closer to where the
#: target stops holding (large scale of ``benchmarks/automation_yield.py``: +0.3 points). Below
#: 300 the steps stay a third of the first set: steps of 5 gained 1.3 points at the small scale
#: but made the demo's round 1 (250 labels of 371 candidates) stop at its first dip, 30.2% ->
#: 13.8% decided.
START, STEP = 30, 5
#: Below ``SECOND_FROM * START`` expected labels (one sequence) the first set holds a fifth of
#: them, at least this, and steps are a third of that: a first set of a few dozen labels
#: fails by chance too often to stake the whole sequence on it (simulation: +0.6 to +4 points of
#: a 600-candidate round with 200 labels against starting at 30).
MIN_START = 12
#: With at least ``SECOND_FROM * start`` expected labels, the sequence has a second entry point
#: at ``1 / SECOND_SHARE`` of them; the two share the error rate (fallback procedure, module
#: docstring). One sequence stops for good at its first set that is not shown, however good
#: the larger sets are (a few confidently misjudged candidates at the extreme score); the second
#: entry point is past them. (On these pools: rounds of 600 labels left with nothing in 1 of 10;
#: in simulation with 2% such candidates, 0.03 -> 0.33 of a 3,000-candidate round.)
SECOND_FROM, SECOND_SHARE = 10, 3
#: ... and the first entry point holds ``1 / FIRST_SHARE`` of them (at least ``start``): a set of
#: 30 labels can show a precision of 0.80 at half the error rate only when it is nearly pure, so
#: starting there spent half the error rate on accept sets that never pass (simulation, and
#: ``benchmarks/automation_yield.py`` at the large scale, rounds 2-3: entry points at 30 and a
#: quarter 53.0%, at a tenth and a third 53.7%).
FIRST_SHARE = 10
METHOD = "fixed-sequence equal-probability hypergeometric"


def hash_uniforms(keys, salt: str) -> np.ndarray:
    """A number in [0, 1) per key, fixed by the key and ``salt`` (independent of any label)."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        h = hashlib.blake2b(f"{salt}:{k}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") / 2.0 ** 64
    return out


def thin_to_equal(xi, pi, coins) -> tuple[np.ndarray, float]:
    """(kept, c): the sampled candidates kept so that each is kept with probability ``c``.

    ``kept_i = xi_i and coins_i < c / pi_i`` with ``c = min(pi)``: an independent Bernoulli(c)
    sample when ``xi`` is one with probabilities ``pi`` and ``coins`` are uniforms independent of
    the draw and the labels.
    """
    xi = np.asarray(xi, dtype=bool)
    pi = np.asarray(pi, dtype=np.float64)
    if pi.size == 0:
        return xi.copy(), 0.0
    c = float(pi.min())
    return xi & (np.asarray(coins) < c / pi), c


def split_inclusion(pi, share: float) -> np.ndarray:
    """Inclusion probability of the held-out part, given the training part.

    A candidate drawn with probability ``pi`` goes to the held-out part with probability
    ``share`` by its own coin. Given which candidates went to training, each other candidate is
    held out with probability ``pi * share / (1 - pi * (1 - share))``, independently.
    """
    pi = np.asarray(pi, dtype=np.float64)
    return pi * share / (1.0 - pi * (1.0 - share))


def hypergeom_lower_count(m: int, n: int, x: int, alpha: float) -> int:
    """Smallest count ``K`` of successes among ``m`` that ``x`` of ``n`` drawn uniformly cannot
    rule out at level ``alpha``: one-sided lower confidence bound on ``K``."""
    from scipy.stats import hypergeom

    if n <= 0 or x <= 0:
        return 0
    ks = np.arange(x, m - (n - x) + 1)
    p = hypergeom.sf(x - 1, m, ks, n)  # P(X >= x | K), rises with K
    j = int(np.searchsorted(p, alpha, side="right"))
    return int(ks[min(j, ks.size - 1)])


def _size_at(key_sorted, c: float, e: float) -> int:
    """Size of the set of best-scored candidates with ``e`` expected labels (ties at its last
    score go in together), at most the whole population."""
    m = min(int(math.ceil(e / c)), key_sorted.size)
    return int(np.searchsorted(-key_sorted, -key_sorted[m - 1], side="right"))


def _set_sizes(key_sorted, c: float, start: float, step: float) -> list[int]:
    """Sizes of the nested sets with ``start``, ``start + step``, ... expected labels, up to the
    whole population."""
    big_n = key_sorted.size
    sizes, e = [], start
    while True:
        m = _size_at(key_sorted, c, e)
        if not sizes or m > sizes[-1]:
            sizes.append(m)
        if m >= big_n:
            return sizes
        e += step


def _fallback(sizes, weights: dict, cum_n, cum_x, target: float, m_max: int | None = None):
    """(largest rejected (m, n, x) or None, the first test's (m, n, x, p), tests run): the
    fallback procedure (Wiens 2003) over the nested sets in order. Set ``j`` is tested at
    ``weights.get(j, 0)`` plus the level of set ``j - 1`` when that one was shown; a set not
    shown passes nothing on, so the chain waits for the next set with a weight of its own. With
    the weights summing to ``alpha``, a true null is rejected with probability at most
    ``alpha`` whatever the labels; ``{0: alpha}`` is plain fixed-sequence testing. ``m_max``:
    only sets of at most that many candidates may be returned (testing stops past it) - every
    set the procedure shows is covered by its guarantee, so any one of them may be used."""
    best, first, tested, level = None, None, 0, 0.0
    last = max(weights)
    for j, m in enumerate(sizes):
        if m_max is not None and m > m_max:
            break
        level += weights.get(j, 0.0)
        if level <= 0.0:
            if j > last:
                break
            continue
        n, x = int(cum_n[m]), int(cum_x[m])
        tested += 1
        p = _p_value(m, n, x, null_count(m, target))
        if first is None:
            first = (m, n, x, p)
        if p <= level:
            best = (m, n, x)
        else:
            level = 0.0
    return best, first, tested


def _fixed_sequence(sizes, cum_n, cum_x, target: float, alpha: float):
    """Fixed-sequence testing at level ``alpha``: stop at the first set not shown."""
    return _fallback(sizes, {0: alpha}, cum_n, cum_x, target)


def _split_note(starts) -> str:
    if len(starts) == 1:
        return ""
    return (f"; half the error rate at {starts[0]:.0f} expected labels and half at "
            f"{starts[1]:.0f}, carried on while sets are shown")


def _p_value(m: int, n: int, x: int, k0: int) -> float:
    """P(X >= x) when the set of ``m`` holds ``k0`` successes and ``n`` are drawn uniformly."""
    from scipy.stats import hypergeom

    if n <= 0:
        return 1.0
    if k0 < 0:
        return 0.0
    return float(hypergeom.sf(x - 1, m, k0, n))


class EqualChoice(dict):
    """The result of :func:`choose_threshold_equal`: a plain dict (it goes into the round
    record) whose keys also read as attributes (``choice.threshold``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def chosen(self) -> bool:
        return self.get("threshold") is not None

    def as_dict(self) -> dict:
        return dict(self)

    def __str__(self) -> str:
        return self["message"]


def choose_threshold_equal(scores, hits, kept, c: float, *, rule: str, target: float,
                           confidence: float, start: float = START, step: float = STEP,
                           second_entry: bool = True, below: float | None = None) -> EqualChoice:
    """Largest certified set "score >= t" (``rule="accept"``) or "score <= t" (``"reject"``).

    Parameters
    ----------
    scores : array (N,)
        Scores of the population (every candidate the rule may decide), fixed before the draw.
    hits : array (N,)
        1 where a kept candidate is a hit (a success for accept, a failure for reject), 0 where
        it is not; read only where ``kept``.
    kept : bool array (N,)
        An equal-probability sample (:func:`thin_to_equal`).
    c : float
        Its inclusion probability.
    target, confidence : float
        The share of hits to certify, and the probability the claim holds.
    start, step : float
        Expected labels in the first tested set and per step (module docstring). When the
        whole population holds fewer than ``SECOND_FROM * start`` expected labels, the first
        set holds a fifth of them (at least ``MIN_START``) and steps are a third of that;
        with more, the first set holds ``1 / FIRST_SHARE`` of them (at least ``start``)
        and the error rate is shared with a second entry point at ``1 / SECOND_SHARE`` of
        them (fallback procedure).
    second_entry : bool, default True
        ``False``: from ``SECOND_FROM * start`` expected labels too, one sequence from the first
        entry point at the whole error rate - for a rule whose hits are too rare for its region
        to reach the second entry point (see ``rounds.automation``), where that entry's share
        would be spent for nothing. Decided before the labels are seen.
    below : float, optional
        ``rule="reject"`` only: return the largest shown set whose scores all lie below this
        (the accept threshold: candidates at or above it are accepted, so the reject set in use
        must itself be a set the sequence showed - not a certified set with its top cut off).

    Returns
    -------
    EqualChoice
        ``threshold`` (None when nothing is certified), ``n_decided``, ``n_labeled_decided``,
        ``hits`` and ``lower`` (the bound on the share of hits), ``n_tested``, ``message``.
    """
    s = np.asarray(scores, dtype=np.float64)
    kept = np.asarray(kept, dtype=bool)
    hits = np.asarray(hits, dtype=np.float64)
    big_n = s.size
    alpha = 1.0 - float(confidence)
    what = "precision" if rule == "accept" else "NPV"
    op = ">=" if rule == "accept" else "<="
    base = EqualChoice(rule=rule, threshold=None, n_decided=0, n_labeled_decided=0, hits=0,
                       lower=None, n_tested=0, n_candidates=int(big_n), n_labels=int(kept.sum()),
                       inclusion=float(c), target=float(target), confidence=float(confidence),
                       method=METHOD, message="")
    expected = c * big_n
    if big_n == 0 or c <= 0:
        base["message"] = f"no {rule} threshold: no candidates to decide"
        return base
    second = expected >= SECOND_FROM * start
    if not second:  # one sequence: its first set holds a fifth of the labels (module docstring)
        start = max(MIN_START, expected / 5)
        step = max(start / 3, 1.0)
    key = s if rule == "accept" else -s
    order = np.argsort(-key, kind="stable")
    key_sorted = key[order]
    kept_sorted = kept[order]
    hit_sorted = np.where(kept_sorted, hits[order], 0.0)
    cum_n = np.r_[0, np.cumsum(kept_sorted)]
    cum_x = np.r_[0, np.cumsum(hit_sorted)]
    starts = [max(start, expected / FIRST_SHARE)] if second else [start]
    if second and second_entry:
        starts.append(expected / SECOND_SHARE)
    start = starts[0]
    sizes = _set_sizes(key_sorted, c, start, step)
    weights: dict = {}
    for e0 in starts:  # alpha shared by the starts; a start's weight goes to its first set
        m0 = _size_at(key_sorted, c, e0)
        j = next(j for j, m in enumerate(sizes) if m >= m0)
        weights[j] = weights.get(j, 0.0) + alpha / len(starts)
    m_max = None
    if below is not None and rule == "reject":  # key = -score: scores below ``below``
        m_max = int(np.searchsorted(-key_sorted, below, side="left"))
        base["below"] = float(below)
    best, first, tested = _fallback(sizes, weights, cum_n, cum_x, target, m_max)
    base["n_tested"] = tested
    base["sequences"] = [round(float(e0), 1) for e0 in starts]
    if best is None and first is None:  # the first set already reaches the accepted scores
        base["message"] = (f"no {rule} threshold: even the smallest tested set reaches the scores "
                           f"the accept threshold ({below:.6g}) decides")
        return base
    if best is None:
        m, n, x, p = first
        base["message"] = (
            f"no {rule} threshold: the first tested set ({m} best-scored candidates, {n} of them in "
            f"the equal-probability sample, {x} {'successes' if rule == 'accept' else 'failures'}) "
            f"does not show a {what} of {target:g} at {100 * confidence:g}% confidence "
            f"(p = {p:.3g}{_split_note(starts)}); more labels or a better discriminator are needed")
        return base
    m, n, x = best
    k_lo = max(hypergeom_lower_count(m, n, x, alpha / len(starts)), int(math.ceil(target * m - 1e-9)))
    t = float(key_sorted[m - 1] if rule == "accept" else -key_sorted[m - 1])
    base.update(threshold=t, n_decided=int(m), n_labeled_decided=int(n), hits=int(x),
                lower=k_lo / m)
    base["message"] = (f"{rule} score {op} {t:.6g}: {m} of {big_n} candidates, {what} >= "
                       f"{k_lo / m:.4f} at {100 * confidence:g}% confidence ({x} of {n} labelled "
                       f"in the equal-probability sample; target {target:g}{_split_note(starts)})")
    return base
