"""Need scores: how much each candidate needs a human, from discriminator probabilities.

One direction everywhere: **higher score = more in need of a human**. Every function takes
P(success) of the removal (label 1 = accept) as a 1-D array or ``predict_proba`` output whose
column 1 is success, and returns a float64 array of shape (n,) in [0, 1]. Pick the neediest
with :func:`rorem_data.selection.topk.top_k`::

    indices = top_k(margin_score(proba), 100, rng=0, exclude=reviewed)
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.selection.arrays import (
    as_committee,
    as_proba,
    check_threshold,
    success_proba,
)

__all__ = [
    "DISAGREEMENT_MEASURES",
    "binary_entropy",
    "disagreement_score",
    "entropy_score",
    "margin_score",
    "uncertainty_score",
]

DISAGREEMENT_MEASURES = ("kl_to_mean", "vote_entropy", "std")
_LOG2 = math.log(2.0)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) / log 2 in [0, 1] for probabilities ``p`` (any shape), with 0 log 0 = 0."""
    q = 1.0 - p
    h = -(p * np.log(np.maximum(p, 1e-300)) + q * np.log(np.maximum(q, 1e-300)))
    return np.clip(h / _LOG2, 0.0, 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def uncertainty_score(proba, threshold: float = 0.5) -> np.ndarray:
    """Closeness of P(success) to the decision threshold, in [0, 1].

    ``1 - |p - threshold| / max(threshold, 1 - threshold)``: 1 at the threshold, 0 at the
    farthest possible probability. Use it when auto-labelling accepts at ``threshold``, which
    need not be 0.5 (e.g. a high-precision threshold such as 0.8).

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, 2), float in [0, 1]
        P(success), or ``predict_proba`` output whose column 1 is success.
    threshold : float in [0, 1]
        The discriminator's accept threshold.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = closer to the threshold = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], bad shape, more than two classes, threshold outside [0, 1].

    Examples
    --------
    >>> uncertainty_score([0.5, 0.9, 0.0]).tolist()
    [1.0, 0.19999999999999996, 0.0]
    >>> uncertainty_score([0.8, 0.5], threshold=0.8).round(3).tolist()
    [1.0, 0.625]
    """
    t = check_threshold(threshold)
    p = success_proba(as_proba(proba))
    return 1.0 - np.abs(p - t) / max(t, 1.0 - t)


def margin_score(proba) -> np.ndarray:
    """One minus the margin between the two most likely classes, in [0, 1].

    For binary ``p`` this is ``1 - |2p - 1|``.

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, n_classes), float in [0, 1]
        P(success) or class probabilities (rows sum to 1).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = smaller margin = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], rows not summing to 1, bad shape.

    Examples
    --------
    >>> margin_score([0.5, 0.75, 1.0]).tolist()
    [1.0, 0.5, 0.0]
    """
    p = as_proba(proba)
    if p.ndim == 1:
        return 1.0 - np.abs(2.0 * p - 1.0)
    if p.shape[1] == 2:
        return 1.0 - np.abs(p[:, 1] - p[:, 0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy_score(proba) -> np.ndarray:
    """Predictive entropy, normalised to [0, 1] (divided by log of the number of classes).

    Parameters
    ----------
    proba : array_like, shape (n,) or (n, n_classes), float in [0, 1]
        P(success) or class probabilities (rows sum to 1).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = more uncertain = more in need of a human.

    Raises
    ------
    ConfigError
        NaN, values outside [0, 1], rows not summing to 1, bad shape.

    Examples
    --------
    >>> entropy_score([0.5, 1.0]).tolist()
    [1.0, 0.0]
    """
    p = as_proba(proba)
    if p.ndim == 1:
        return binary_entropy(p)
    if p.shape[1] == 2:
        return binary_entropy(p[:, 1])
    h = -(p * np.log(np.maximum(p, 1e-300))).sum(axis=1)
    return np.clip(h / math.log(p.shape[1]), 0.0, 1.0) + 0.0


def disagreement_score(committee, measure: str = "kl_to_mean",
                       threshold: float = 0.5) -> np.ndarray:
    """How much several discriminators (a committee) disagree, in [0, 1].

    Parameters
    ----------
    committee : array_like, shape (n_members, n) or (n_members, n, 2), float in [0, 1]
        P(success) from each member (at least two).
    measure : {"kl_to_mean", "vote_entropy", "std"}
        ``"kl_to_mean"`` (default): mean KL divergence of each member from the consensus,
        ``H(mean p) - mean H(p)`` (the committee's mutual information, as in BALD), / log 2.
        ``"vote_entropy"``: entropy of the accept/reject votes at ``threshold``, / log 2;
        coarse with few members (many ties, broken by ``rng`` in ``top_k``).
        ``"std"``: standard deviation of P(success) across members, x 2.
    threshold : float in [0, 1]
        Vote cut for ``"vote_entropy"`` (a member votes accept when ``p >= threshold``).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Higher = more disagreement = more in need of a human.

    Raises
    ------
    ConfigError
        Fewer than two members, NaN, values outside [0, 1], unknown ``measure``.

    Examples
    --------
    >>> c = [[0.1, 0.9, 0.5], [0.1, 0.1, 0.5]]
    >>> disagreement_score(c, "std").round(2).tolist()
    [0.0, 0.8, 0.0]
    >>> disagreement_score(c, "vote_entropy").tolist()
    [0.0, 1.0, 0.0]
    """
    c = as_committee(committee)
    if measure == "kl_to_mean":
        return np.clip(binary_entropy(c.mean(axis=0)) - binary_entropy(c).mean(axis=0), 0.0, 1.0)
    if measure == "vote_entropy":
        return binary_entropy((c >= check_threshold(threshold)).mean(axis=0))
    if measure == "std":
        return np.clip(2.0 * c.std(axis=0), 0.0, 1.0)
    raise ConfigError(f"measure must be one of {', '.join(DISAGREEMENT_MEASURES)}; "
                      f"got {measure!r}")
