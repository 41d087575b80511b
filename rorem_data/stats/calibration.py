"""Turn discriminator scores into probabilities of success, and check how well they match.

A discriminator score (RORem's is a softplus output, roughly 0..1.5) orders candidates but is
not a probability. A calibrator maps it to ``P(success | score)``, fitted on human labels:

- :class:`PlattCalibrator`: a logistic curve ``sigmoid(slope * score + intercept)`` (Platt 1999,
  with Platt's smoothed targets). Two parameters: stable with few labels.
- :class:`IsotonicCalibrator`: the best non-decreasing step function (pool adjacent
  violators, via scikit-learn), linearly interpolated between knots. Flexible; wants
  a few hundred labels.
- :class:`IdentityCalibrator`: the scores already are probabilities (clipped to [0, 1]).

All three are monotone non-decreasing in the score, so calibrating never changes which
candidates a threshold accepts; it changes what the numbers mean. Each saves to and loads
from a plain JSON-safe dict (``to_dict`` / ``from_dict``), never a pickle. Calibrators are
plug-ins of :data:`CALIBRATORS` (:func:`list_calibrators`, :func:`get_calibrator`,
:func:`register_calibrator`); a saved dict names its kind, and only registered kinds load.

:func:`reliability_curve` and :func:`expected_calibration_error` measure calibration on
held-out labels. Label convention: 1 = success (object removed well), 0 = failure.

scipy and scikit-learn are imported inside the functions that use them.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.core.registry import Registry
from rorem_data.stats.intervals import binomial_ci, check_labels, check_scores

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
STRATEGIES = ("uniform", "quantile")


# ----------------------------------------------------------------------------- input checks


def _both_classes(y: np.ndarray, who: str) -> None:
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        missing = "successes (1)" if n_pos == 0 else "failures (0)"
        raise ConfigError(
            f"{who} needs labelled successes and failures, but y has {n_pos} successes and "
            f"{n_neg} failures (no {missing}); label more candidates or check the label field"
        )


def _check_fitted(obj, attr: str) -> None:
    if getattr(obj, attr, None) is None:
        name = type(obj).__name__
        raise ConfigError(
            f"this {name} is not fitted yet; call {name}().fit(scores, y) first "
            f"or load a fitted one with {name}.from_dict(d)"
        )


def _check_dict(d, kind: str, keys: tuple) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"a calibrator dict must be a dict, got {type(d).__name__}")
    if d.get("kind") != kind:
        raise ConfigError(
            f"expected a calibrator dict with kind={kind!r}, got kind={d.get('kind')!r}; "
            "use calibrator_from_dict(d) to load any kind"
        )
    if d.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"calibrator dict has format_version={d.get('format_version')!r}, this version of "
            f"rorem_data reads {FORMAT_VERSION}; refit the calibrator"
        )
    missing = [k for k in keys if k not in d]
    if missing:
        raise ConfigError(f"{kind} calibrator dict lacks key(s) {missing}; refit the calibrator")


# ----------------------------------------------------------------------------- calibrators


class PlattCalibrator:
    """Logistic (Platt) calibration: ``p = sigmoid(slope * score + intercept)``.

    Fitted by maximum likelihood against Platt's smoothed targets
    ``(n_pos + 1) / (n_pos + 2)`` and ``1 / (n_neg + 2)``, which keeps the curve off 0 and 1
    when the labels separate perfectly. The slope is constrained to be ``>= 0`` so the
    probability never falls as the score rises: if the data prefer a negative slope (scores
    point the wrong way), the fit falls back to the constant base rate and warns.

    Attributes
    ----------
    slope_, intercept_ : float
        Fitted parameters, in raw-score units (set by :meth:`fit` or :meth:`from_dict`).
    n_samples_ : int
        Number of labels the fit used.

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    >>> y = np.array([0, 0, 1, 0, 1, 1])
    >>> cal = PlattCalibrator().fit(scores, y)
    >>> p = cal.predict([0.0, 0.5, 1.0])
    >>> bool(p[0] < p[1] < p[2])
    True
    >>> PlattCalibrator.from_dict(cal.to_dict()).predict([0.5]).round(6).tolist() == p[1:2].round(6).tolist()
    True
    """

    kind = "platt"

    def fit(self, scores, y) -> PlattCalibrator:
        """Fit on discriminator scores and human labels.

        Parameters
        ----------
        scores : array_like of float, shape (n,)
            Discriminator scores, higher = better removal. Finite.
        y : array_like of {0, 1} or bool, shape (n,)
            Human labels, 1 = success.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            NaN/inf scores, length mismatch, labels other than 0/1, or only one class.

        Notes
        -----
        When the best-fitting slope is negative (higher scores go with more failures) the
        calibrator predicts the base rate for every score and says so on the
        ``rorem_data`` logger (WARNING).
        """
        from sklearn.linear_model import LogisticRegression

        s = check_scores(scores)
        t = check_labels(y, s.size)
        _both_classes(t, "PlattCalibrator.fit")
        n_pos = int(t.sum())
        n_neg = int(t.size - n_pos)
        hi = (n_pos + 1.0) / (n_pos + 2.0)
        lo = 1.0 / (n_neg + 2.0)
        target = np.where(t == 1, hi, lo)
        # Platt's smoothed targets as a weighted logistic regression: each item appears once
        # as a success with weight target and once as a failure with weight 1 - target.
        mean, std = s.mean(), s.std()
        std = std if std > 0 else 1.0
        z = ((s - mean) / std)[:, None]
        X = np.vstack([z, z])
        Y = np.r_[np.ones(s.size), np.zeros(s.size)]
        W = np.r_[target, 1.0 - target]
        model = LogisticRegression(C=np.inf, max_iter=1000).fit(X, Y, sample_weight=W)
        a = float(model.coef_[0, 0])
        b = float(model.intercept_[0])
        if a < 0:
            log.warning(
                "PlattCalibrator: higher scores go with more failures in these labels (best "
                f"slope {a / std:.3g} < 0); predicting the base rate for every score. Check "
                "that scores follow 'higher = better removal' and that labels are 1 = success."
            )
            a = 0.0
            p = float(np.mean(target))
            b = math.log(p / (1 - p))
        self.slope_ = a / std
        self.intercept_ = b - a * mean / std
        self.n_samples_ = int(s.size)
        return self

    def predict(self, scores) -> np.ndarray:
        """Probability of success for each score.

        Parameters
        ----------
        scores : array_like of float, shape (n,)

        Returns
        -------
        ndarray of float64, shape (n,)
            In [0, 1], non-decreasing in the score.

        Raises
        ------
        ConfigError
            Not fitted, or NaN/inf scores.
        """
        from scipy.special import expit

        _check_fitted(self, "slope_")
        s = check_scores(scores)
        return expit(self.slope_ * s + self.intercept_)

    def to_dict(self) -> dict:
        """Fitted parameters as a JSON-safe dict (``kind``, ``format_version``, parameters)."""
        _check_fitted(self, "slope_")
        return {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "slope": float(self.slope_),
            "intercept": float(self.intercept_),
            "n_samples": int(self.n_samples_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> PlattCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output.

        Raises
        ------
        ConfigError
            Wrong ``kind``, unknown ``format_version``, missing or non-finite parameters,
            or a negative slope.
        """
        _check_dict(d, cls.kind, ("slope", "intercept"))
        slope, intercept = float(d["slope"]), float(d["intercept"])
        if not (math.isfinite(slope) and math.isfinite(intercept)) or slope < 0:
            raise ConfigError(
                f"platt calibrator dict needs a finite slope >= 0 and a finite intercept, got "
                f"slope={d['slope']!r}, intercept={d['intercept']!r}; refit the calibrator"
            )
        cal = cls()
        cal.slope_, cal.intercept_ = slope, intercept
        cal.n_samples_ = int(d.get("n_samples", 0))
        return cal


class IsotonicCalibrator:
    """Isotonic calibration: the best non-decreasing fit of labels on scores.

    Fitted with :class:`sklearn.isotonic.IsotonicRegression` (``increasing=True``, outputs
    bounded to [0, 1]); predictions interpolate linearly between the fitted knots and are
    constant beyond the first and last knot, exactly as scikit-learn predicts with
    ``out_of_bounds="clip"``. Only the knots are stored.

    Attributes
    ----------
    x_knots_, y_knots_ : ndarray of float64, shape (m,)
        Fitted knots: scores (increasing) and probabilities (non-decreasing).
    n_samples_ : int

    Examples
    --------
    >>> cal = IsotonicCalibrator().fit([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1])
    >>> cal.predict([0.0, 0.375, 2.0]).tolist()
    [0.0, 0.5, 1.0]
    """

    kind = "isotonic"

    def fit(self, scores, y) -> IsotonicCalibrator:
        """Fit on discriminator scores and human labels.

        Parameters
        ----------
        scores : array_like of float, shape (n,)
            Discriminator scores, higher = better removal. Finite.
        y : array_like of {0, 1} or bool, shape (n,)
            Human labels, 1 = success.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            NaN/inf scores, length mismatch, labels other than 0/1, or only one class.
        """
        from sklearn.isotonic import IsotonicRegression

        s = check_scores(scores)
        t = check_labels(y, s.size)
        _both_classes(t, "IsotonicCalibrator.fit")
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(s, t.astype(np.float64))
        self.x_knots_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.y_knots_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        self.n_samples_ = int(s.size)
        return self

    def predict(self, scores) -> np.ndarray:
        """Probability of success for each score.

        Parameters
        ----------
        scores : array_like of float, shape (n,)

        Returns
        -------
        ndarray of float64, shape (n,)
            In [0, 1], non-decreasing in the score.

        Raises
        ------
        ConfigError
            Not fitted, or NaN/inf scores.
        """
        _check_fitted(self, "x_knots_")
        s = check_scores(scores)
        return np.interp(s, self.x_knots_, self.y_knots_)

    def to_dict(self) -> dict:
        """Fitted knots as a JSON-safe dict (``kind``, ``format_version``, ``x``, ``y``)."""
        _check_fitted(self, "x_knots_")
        return {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "x": [float(v) for v in self.x_knots_],
            "y": [float(v) for v in self.y_knots_],
            "n_samples": int(self.n_samples_),
        }

    @classmethod
    def from_dict(cls, d: dict) -> IsotonicCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output.

        Raises
        ------
        ConfigError
            Wrong ``kind``, unknown ``format_version``, or knots that are empty, of different
            lengths, not finite, not increasing in x, decreasing in y, or outside [0, 1].
        """
        _check_dict(d, cls.kind, ("x", "y"))
        x = np.asarray(d["x"], dtype=np.float64)
        y = np.asarray(d["y"], dtype=np.float64)
        ok = (
            x.ndim == 1 and x.shape == y.shape and x.size >= 1
            and np.isfinite(x).all() and np.isfinite(y).all()
            and (np.diff(x) > 0).all() and (np.diff(y) >= 0).all()
            and y.min() >= 0 and y.max() <= 1
        )
        if not ok:
            raise ConfigError(
                "isotonic calibrator dict needs equal-length, non-empty, finite knots with x "
                "strictly increasing and y non-decreasing in [0, 1]; refit the calibrator"
            )
        cal = cls()
        cal.x_knots_, cal.y_knots_ = x, y
        cal.n_samples_ = int(d.get("n_samples", 0))
        return cal


class IdentityCalibrator:
    """No calibration: scores are read as probabilities, clipped to [0, 1].

    For discriminators whose output already is a probability. ``fit`` only checks its input.

    Examples
    --------
    >>> IdentityCalibrator().fit([0.2, 0.9], [0, 1]).predict([-0.1, 0.5, 1.3]).tolist()
    [0.0, 0.5, 1.0]
    """

    kind = "none"

    def fit(self, scores, y) -> IdentityCalibrator:
        """Check the input; nothing is learned. Raises :class:`ConfigError` on bad input."""
        s = check_scores(scores)
        check_labels(y, s.size)
        return self

    def predict(self, scores) -> np.ndarray:
        """``clip(scores, 0, 1)`` as float64, shape (n,). Raises on NaN/inf scores."""
        return np.clip(check_scores(scores), 0.0, 1.0)

    def to_dict(self) -> dict:
        """``{"kind": "none", "format_version": 1}``."""
        return {"kind": self.kind, "format_version": FORMAT_VERSION}

    @classmethod
    def from_dict(cls, d: dict) -> IdentityCalibrator:
        """Rebuild from :meth:`to_dict` output; raises :class:`ConfigError` on a wrong kind."""
        _check_dict(d, cls.kind, ())
        return cls()


def _check_calibrator(name: str, obj) -> None:
    """A calibrator plug-in is a class with ``fit``, ``predict``, ``to_dict`` and ``from_dict``
    whose ``kind`` is the name it is registered under (``to_dict`` output dispatches on it)."""
    methods = ("fit", "predict", "to_dict", "from_dict")
    if not isinstance(obj, type) or not all(callable(getattr(obj, m, None)) for m in methods):
        raise ConfigError(f"calibrator {name!r} must be a class with {', '.join(methods)}; got "
                          f"{obj!r}")
    if getattr(obj, "kind", None) != name:
        raise ConfigError(f"calibrator {name!r}: its class {obj.__qualname__} has kind="
                          f"{getattr(obj, 'kind', None)!r}; register it under its kind")


#: Calibrator plug-ins: name (the ``kind`` in saved dicts) -> class.
CALIBRATORS = Registry("calibrator", {
    "platt": "rorem_data.stats.calibration:PlattCalibrator",
    "isotonic": "rorem_data.stats.calibration:IsotonicCalibrator",
    "none": "rorem_data.stats.calibration:IdentityCalibrator",
}, check=_check_calibrator)


def list_calibrators() -> list[str]:
    """Names of the registered calibrators, sorted.

    Examples
    --------
    >>> list_calibrators()
    ['isotonic', 'none', 'platt']
    """
    return CALIBRATORS.names()


def register_calibrator(name: str, target, *, overwrite: bool = False) -> None:
    """Register a calibrator class (``"package.module:Class"`` or the class) under ``name``.

    The class needs ``fit(scores, y) -> self``, ``predict(scores)`` (non-decreasing in the
    score), ``to_dict()`` and the classmethod ``from_dict(d)``, and ``kind = name``: saved
    dicts name their calibrator by kind, and only registered kinds are loaded.

    Raises
    ------
    ConfigError
        A bad name, or a name already taken (without ``overwrite``).
    """
    CALIBRATORS.register(name, target, overwrite=overwrite)


def get_calibrator(name: str):
    """A new, unfitted calibrator by name.

    Parameters
    ----------
    name : str
        One of :func:`list_calibrators` (built in: "platt", "isotonic", "none").

    Returns
    -------
    PlattCalibrator or IsotonicCalibrator or IdentityCalibrator (or a registered class)

    Raises
    ------
    ConfigError
        Unknown name (the message lists the choices).

    Examples
    --------
    >>> type(get_calibrator("isotonic")).__name__
    'IsotonicCalibrator'
    """
    return CALIBRATORS.get(name)()


def calibrator_from_dict(d: dict):
    """Load any calibrator saved with ``to_dict()``, dispatching on ``d["kind"]``.

    Only registered kinds load: a dict cannot name code to run.

    Raises
    ------
    ConfigError
        Not a dict, unknown kind (the message lists the choices), or malformed content.

    Examples
    --------
    >>> calibrator_from_dict({"kind": "none", "format_version": 1}).predict([2.0]).tolist()
    [1.0]
    """
    kind = d.get("kind") if isinstance(d, dict) else None
    if not isinstance(kind, str) or kind not in CALIBRATORS:
        raise ConfigError(f"calibrator dict has kind={kind!r}; expected one of "
                          f"{', '.join(list_calibrators())} (a dict written by a calibrator's "
                          "to_dict(), or a kind registered with register_calibrator)")
    return CALIBRATORS.get(kind).from_dict(d)


# ----------------------------------------------------------------------------- diagnostics


def _probs(p) -> np.ndarray:
    arr = check_scores(p, "probs")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ConfigError(
            f"probs must lie in [0, 1], got values from {arr.min():g} to {arr.max():g}; "
            "calibrate the scores first (e.g. get_calibrator('platt').fit(...).predict(...))"
        )
    return arr


def reliability_curve(probs, y, *, n_bins=10, strategy="uniform", confidence=0.95) -> dict:
    """Binned predicted probability against the observed success rate.

    A calibrated model has ``fraction_positive`` close to ``mean_predicted`` in every bin.

    Parameters
    ----------
    probs : array_like of float, shape (n,)
        Predicted probabilities of success, in [0, 1].
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels, 1 = success.
    n_bins : int, default 10
        Number of bins (>= 1).
    strategy : {"uniform", "quantile"}
        ``"uniform"``: equal-width bins on [0, 1]. ``"quantile"``: edges at quantiles of
        ``probs`` so bins hold about equally many items (tied edges are merged, so fewer bins
        may come back).
    confidence : float, default 0.95
        Level of the per-bin Clopper-Pearson interval on the observed fraction.

    Returns
    -------
    dict
        JSON-safe, one list entry per bin (bin ``i`` is ``[edges[i], edges[i+1])``, the last
        bin also holds its right edge): ``bin_edges`` (length n_bins + 1), ``mean_predicted``,
        ``fraction_positive``, ``fraction_positive_lo``, ``fraction_positive_hi``, ``counts``;
        empty bins hold ``None`` for the means. Also ``n``, ``n_bins``, ``strategy``,
        ``confidence`` and ``ece`` (expected calibration error, see
        :func:`expected_calibration_error`).

    Raises
    ------
    ConfigError
        Probabilities outside [0, 1] or not finite, length mismatch, labels other than 0/1,
        no items, bad ``n_bins``/``strategy``/``confidence``.

    Examples
    --------
    >>> curve = reliability_curve([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], n_bins=2)
    >>> curve["counts"], [round(m, 6) for m in curve["mean_predicted"]]
    ([2, 2], [0.15, 0.85])
    """
    p = _probs(probs)
    t = check_labels(y, p.size, against="probs")
    if p.size == 0:
        raise ConfigError("probs is empty; a reliability curve needs labelled items")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    else:
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, int(n_bins) + 1)))
        if edges.size == 1:  # every probability equal
            edges = np.array([edges[0], edges[0]])
    k = edges.size - 1
    idx = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, k - 1)
    counts = np.bincount(idx, minlength=k)
    sum_p = np.bincount(idx, weights=p, minlength=k)
    sum_y = np.bincount(idx, weights=t, minlength=k)
    lo, hi = binomial_ci(sum_y.round().astype(np.int64), counts, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = sum_p / counts
        frac = sum_y / counts
    ece = float(np.sum(np.abs(np.nan_to_num(mean_p - frac)) * counts) / p.size)

    def listed(a):
        return [float(v) if c else None for v, c in zip(a, counts, strict=True)]

    return {
        "strategy": strategy,
        "n_bins": int(k),
        "n": int(p.size),
        "confidence": float(confidence),
        "bin_edges": [float(e) for e in edges],
        "mean_predicted": listed(mean_p),
        "fraction_positive": listed(frac),
        "fraction_positive_lo": [float(v) for v in lo],
        "fraction_positive_hi": [float(v) for v in hi],
        "counts": [int(c) for c in counts],
        "ece": ece,
    }


def expected_calibration_error(probs, y, *, n_bins=10, strategy="uniform") -> float:
    """Expected calibration error: count-weighted mean ``|mean predicted - observed rate|``.

    Parameters
    ----------
    probs : array_like of float, shape (n,)
        Predicted probabilities of success, in [0, 1].
    y : array_like of {0, 1} or bool, shape (n,)
        Human labels, 1 = success.
    n_bins : int, default 10
    strategy : {"uniform", "quantile"}
        Binning, as in :func:`reliability_curve`.

    Returns
    -------
    float
        In [0, 1]; 0 means every bin's mean prediction equals its observed success rate.
        Lower is better. With few items per bin it is biased upwards by noise.

    Raises
    ------
    ConfigError
        As :func:`reliability_curve`.

    Examples
    --------
    >>> round(expected_calibration_error([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], n_bins=2), 6)
    0.15
    """
    return reliability_curve(probs, y, n_bins=n_bins, strategy=strategy)["ece"]
