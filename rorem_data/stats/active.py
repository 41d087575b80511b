"""Active statistical inference: the success rate of a round from a sample drawn where the
discriminator is unsure (Zrnic & Candès, ICML 2024).

:func:`active_mean` is the design-based estimator: inverse-probability weighted, with the
discriminator's predictions as a control variate and power tuning, unbiased for the round's
candidates however the probabilities were chosen. The sampling lives in
:mod:`rorem_data.stats.sampling`, the inverse-probability threshold bounds in
:mod:`rorem_data.stats.ipw_thresholds` (both re-exported here), the equal-probability
certification in :mod:`rorem_data.stats.certify`; the derivations, the design choices and their
measurements in ``docs/statistics.md``. Label convention: 1 = success, 0 = failure. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.numbers import z_value
from rorem_data.stats.design import _check_design, _unit_array
from rorem_data.stats.intervals import Estimate, check_confidence
from rorem_data.stats.ipw_thresholds import (
    ActiveThresholdChoice,
    choose_accept_threshold_active,
    choose_reject_threshold_active,
    weighted_precision_lower_bound,
)
from rorem_data.stats.sampling import RULES, poisson_sample, sampling_probabilities

__all__ = [
    "RULES",
    "ActiveThresholdChoice",
    "active_mean",
    "choose_accept_threshold_active",
    "choose_reject_threshold_active",
    "poisson_sample",
    "sampling_probabilities",
    "weighted_precision_lower_bound",
]


# --------------------------------------------------------------------------------------------
# 3. the mean


def _power_lambda(y, xi, pi, f) -> float:
    """Variance-minimising ``lam`` for Poisson sampling, estimated from the sample, in [0, 1].

    The variance is ``sum_i (1 - pi_i)/pi_i (y_i - lam f_i)^2`` (over N^2); its minimiser is
    ``sum (1-pi)/pi y f / sum (1-pi)/pi f^2``, each sum estimated by weighting the sampled
    items by ``1 / pi``."""
    w = np.where(xi, (1.0 - pi) / pi**2, 0.0)
    den = float(np.sum(w * f * f))
    if den <= 0:  # census, or no prediction on the sampled: lam does not matter / is unknown
        return 0.0
    return float(np.clip(np.sum(w * y * f) / den, 0.0, 1.0))


def active_mean(y, xi, pi, pred=None, *, confidence=0.95, tuned=True) -> Estimate:
    """Unbiased estimate of the success rate of all N candidates from an actively drawn sample.

    ``theta = mean_i(lam * pred_i + xi_i / pi_i * (y_i - lam * pred_i))`` over all N candidates,
    with the CLT interval from the design-based variance estimate (see the module docstring).

    Parameters
    ----------
    y : array_like of float, shape (N,)
        Labels in [0, 1] (1 = success) where ``xi == 1``; ignored elsewhere (NaN is fine).
    xi : array_like of bool or {0, 1}, shape (N,)
        Sampled indicator from :func:`poisson_sample`.
    pi : array_like of float in (0, 1], shape (N,)
        The inclusion probabilities ``xi`` was drawn with.
    pred : array_like of float in [0, 1], shape (N,), optional
        The discriminator's calibrated probability of success for every candidate, fixed
        before the sample was drawn. ``None``: Horvitz-Thompson (inverse-probability weighting
        of the labels alone).
    confidence : float, default 0.95
        Two-sided confidence level of the interval.
    tuned : bool, default True
        ``True``: ``lam`` estimated to minimise the variance, clipped to [0, 1] (never much
        worse than ``pred=None``). ``False``: ``lam = 1``. Ignored without ``pred``.

    Returns
    -------
    Estimate
        ``value``, ``lo``, ``hi`` clipped to [0, 1]; ``n`` = number of sampled candidates;
        ``method`` ``"active-ppi++"`` (tuned), ``"active-ppi"`` (``lam = 1``) or
        ``"active-ht"`` (no predictions). The CLT wants a few dozen sampled candidates.

    Raises
    ------
    ConfigError
        No candidate sampled; labels missing or outside [0, 1] where sampled; ``pi`` outside
        (0, 1]; length mismatches; ``pred`` outside [0, 1]; bad ``confidence``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 1, size=5000)                    # calibrated discriminator output
    >>> y = (rng.uniform(size=5000) < p).astype(float)   # true labels of every candidate
    >>> pi = sampling_probabilities(p, 500)
    >>> xi = poisson_sample(pi, rng)
    >>> e = active_mean(np.where(xi, y, np.nan), xi, pi, pred=p)
    >>> bool(e.lo <= y.mean() <= e.hi), e.method
    (True, 'active-ppi++')
    """
    conf = check_confidence(confidence)
    yy, x, p = _check_design(y, xi, pi, binary=False)
    if pred is None:
        f = np.zeros(p.size)
        lam, method = 0.0, "active-ht"
    else:
        f = _unit_array(pred, "pred", p.size)
        lam = _power_lambda(yy, x, p, f) if tuned else 1.0
        method = "active-ppi++" if tuned else "active-ppi"
    big_n = p.size
    resid = np.where(x, yy - lam * f, 0.0)
    value = float(np.sum(lam * f + resid / p)) / big_n
    var = float(np.sum(resid**2 * (1.0 - p) / p**2)) / big_n**2
    half = z_value(conf) * math.sqrt(max(var, 0.0))
    return Estimate(
        value=float(np.clip(value, 0.0, 1.0)),
        lo=float(np.clip(value - half, 0.0, 1.0)),
        hi=float(np.clip(value + half, 0.0, 1.0)),
        n=int(x.sum()),
        confidence=conf,
        method=method,
    )

