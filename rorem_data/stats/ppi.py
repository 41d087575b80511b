"""Prediction-powered inference (PPI) for a round's success rate.

Humans label a few hundred candidates; the discriminator scores all of them. PPI
(Angelopoulos, Bates, Fannjiang, Jordan & Zrnic, *Science* 2023) combines the two: the mean
of the predictions on the unlabelled candidates, corrected by the average prediction error
measured on the labelled ones. The correction removes the discriminator's bias, so the
estimate stays valid however bad the predictions are; good predictions make the interval
narrower than labels alone. PPI++ (Angelopoulos, Duchi & Zrnic, 2023) weights the predictions
by a factor ``lambda`` estimated from the data, so useless predictions cost (almost) nothing:

    theta = lambda * mean(pred_unlabeled) + mean(y_labeled - lambda * pred_labeled)

with ``lambda = Cov(y, pred) / ((1 + n/N) Var(pred))`` clipped to [0, 1] (``lambda = 1`` is
plain PPI, ``lambda = 0`` the classical mean). The interval is the normal (CLT) interval,
clipped to [0, 1].

Assumption: the labelled candidates are a **uniform random sample** of the round's candidates
(not the ones a selection strategy picked for review - those are not representative), and
``pred_unlabeled`` comes from the same candidates population. The CLT interval wants a few
dozen labels at least; with fewer, or a rate very near 0 or 1, prefer
:func:`rorem_data.stats.intervals.proportion` on the labels alone.
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.numbers import z_value
from rorem_data.core.errors import ConfigError
from rorem_data.stats.intervals import Estimate, check_confidence, check_scores


def _unit_values(x, name: str) -> np.ndarray:
    arr = check_scores(x, name)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ConfigError(
            f"{name} must lie in [0, 1] (0/1 labels or decisions, or probabilities), got values "
            f"from {arr.min():g} to {arr.max():g}; calibrate raw scores first "
            "(rorem_data.stats.calibration) or threshold them into 0/1 decisions"
        )
    return arr


def _min_size(arr: np.ndarray, name: str, minimum: int = 2) -> None:
    if arr.size < minimum:
        raise ConfigError(
            f"{name} has {arr.size} value(s); at least {minimum} are needed to estimate a "
            "variance. Label (or score) more candidates"
        )




def ppi_lambda(y_labeled, pred_labeled, pred_unlabeled) -> float:
    """The PPI++ power-tuning weight, ``Cov(y, pred) / ((1 + n/N) Var(pred))`` in [0, 1].

    ``Var(pred)`` pools the labelled and unlabelled predictions. Constant predictions give 0.

    Parameters
    ----------
    y_labeled : array_like of float in [0, 1], shape (n,)
        Human labels (1 = success).
    pred_labeled : array_like of float in [0, 1], shape (n,)
        Discriminator predictions for the same items.
    pred_unlabeled : array_like of float in [0, 1], shape (N,)
        Predictions for the unlabelled candidates.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        As :func:`ppi_mean`.

    Examples
    --------
    >>> ppi_lambda([0, 1, 0, 1], [0, 1, 0, 1], [0, 1] * 50)   # perfect predictions
    1.0
    >>> ppi_lambda([0, 1, 0, 1], [0.5] * 4, [0.5] * 100)      # constant: ignored
    0.0
    """
    y, f, f_u = _check(y_labeled, pred_labeled, pred_unlabeled)
    return _lambda(y, f, f_u)


def _check(y_labeled, pred_labeled, pred_unlabeled):
    y = _unit_values(y_labeled, "y_labeled")
    f = _unit_values(pred_labeled, "pred_labeled")
    f_u = _unit_values(pred_unlabeled, "pred_unlabeled")
    if f.size != y.size:
        raise ConfigError(
            f"pred_labeled has {f.size} values but y_labeled has {y.size}; pass the "
            "discriminator's prediction for each labelled item, in the same order"
        )
    _min_size(y, "y_labeled")
    _min_size(f_u, "pred_unlabeled")
    return y, f, f_u


def _lambda(y, f, f_u) -> float:
    n, big_n = y.size, f_u.size
    var_f = float(np.var(np.r_[f, f_u], ddof=1))
    if var_f <= 0:
        return 0.0
    cov = float(np.cov(y, f, ddof=1)[0, 1])
    return float(np.clip(cov / ((1.0 + n / big_n) * var_f), 0.0, 1.0))


def ppi_mean(y_labeled, pred_labeled, pred_unlabeled, *, confidence=0.95, tuned=True) -> Estimate:
    """Prediction-powered estimate of the success rate, with a CLT confidence interval.

    Parameters
    ----------
    y_labeled : array_like of float in [0, 1], shape (n,)
        Human labels of a uniform random sample of the candidates, 1 = success.
    pred_labeled : array_like of float in [0, 1], shape (n,)
        Discriminator predictions for those items: calibrated probabilities of success
        (higher = better removal) or 0/1 accept decisions.
    pred_unlabeled : array_like of float in [0, 1], shape (N,)
        Predictions, on the same scale, for the candidates that were not labelled.
    confidence : float, default 0.95
    tuned : bool, default True
        ``True``: PPI++, ``lambda`` chosen from the data (:func:`ppi_lambda`), never much
        wider than :func:`classical_mean`. ``False``: plain PPI (``lambda = 1``).

    Returns
    -------
    Estimate
        ``method`` is ``"ppi++"`` or ``"ppi"``; value and bounds clipped to [0, 1];
        ``n`` is the number of labelled items.

    Raises
    ------
    ConfigError
        Values outside [0, 1] or not finite, fewer than 2 labelled or 2 unlabelled items,
        ``pred_labeled`` and ``y_labeled`` of different lengths, bad ``confidence``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=20_000)                 # calibrated discriminator output
    >>> y = (rng.uniform(size=20_000) < p).astype(int)
    >>> e = ppi_mean(y[:300], p[:300], p[300:])
    >>> bool(e.lo < 0.5 < e.hi), bool(e.hi - e.lo < classical_mean(y[:300]).hi - classical_mean(y[:300]).lo)
    (True, True)
    """
    conf = check_confidence(confidence)
    y, f, f_u = _check(y_labeled, pred_labeled, pred_unlabeled)
    lam = _lambda(y, f, f_u) if tuned else 1.0
    n, big_n = y.size, f_u.size
    rectifier = y - lam * f
    value = lam * float(f_u.mean()) + float(rectifier.mean())
    var = lam**2 * float(f_u.var(ddof=1)) / big_n + float(rectifier.var(ddof=1)) / n
    half = z_value(conf) * math.sqrt(var)
    return Estimate(
        value=float(np.clip(value, 0.0, 1.0)),
        lo=float(np.clip(value - half, 0.0, 1.0)),
        hi=float(np.clip(value + half, 0.0, 1.0)),
        n=int(n),
        confidence=conf,
        method="ppi++" if tuned else "ppi",
    )


def classical_mean(y_labeled, *, confidence=0.95) -> Estimate:
    """The labels-only estimate of the success rate with the same CLT interval as PPI.

    For comparing with :func:`ppi_mean`; for small samples prefer the exact
    :func:`rorem_data.stats.intervals.proportion`.

    Parameters
    ----------
    y_labeled : array_like of float in [0, 1], shape (n,)
        Human labels, 1 = success; ``n >= 2``.
    confidence : float, default 0.95

    Returns
    -------
    Estimate
        ``method="clt"``, bounds clipped to [0, 1].

    Raises
    ------
    ConfigError
        Values outside [0, 1] or not finite, fewer than 2 labels, bad ``confidence``.

    Examples
    --------
    >>> print(classical_mean([1, 0] * 50))
    50.0% [40.2%, 59.8%] (n=100, 95% CLT)
    """
    conf = check_confidence(confidence)
    y = _unit_values(y_labeled, "y_labeled")
    _min_size(y, "y_labeled")
    mean = float(y.mean())
    half = z_value(conf) * math.sqrt(float(y.var(ddof=1)) / y.size)
    return Estimate(mean, max(mean - half, 0.0), min(mean + half, 1.0), int(y.size), conf, "clt")
