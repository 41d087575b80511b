"""Discriminator base class and the feature heads (scikit-learn classifiers on feature matrices).

Every discriminator in rorem-data is a scikit-learn classifier: hyperparameters in
``__init__`` only, ``fit(X, y) -> self``, ``predict_proba(X) -> (n, 2)``, fitted state in
attributes ending in ``_``, ``sklearn.base.clone`` gives an unfitted copy, ``random_state``
makes training repeatable. Labels: **1 = success** (the object was removed well), **0 =
failure**; ``predict_proba(X)[:, 1]`` is P(success), higher = better.

On top of sklearn, :class:`BaseDiscriminator` adds ``save(folder)`` / ``load(folder)``: a
JSON config (class, parameters, fitted metadata) plus the fitted arrays in safetensors, never
pickle (see :mod:`rorem_data.discriminators.specs`).

The feature heads here take ``X`` = features of shape ``(n, d)`` from a featurizer
(:mod:`rorem_data.features.featurizers`):

- :class:`LogisticHead` - standardisation + logistic regression;
- :class:`MLPHead` - standardisation + a small ReLU network (``MLPClassifier``);
- :class:`HistGradientBoostingHead` - ``HistGradientBoostingClassifier``.

They train with scikit-learn, then keep only plain arrays (scaler statistics, coefficients,
weight matrices, tree node tables) and predict with numpy from those arrays, so a saved and
re-loaded head gives bit-identical probabilities. A head records the featurizer key it was
trained on (from its ``featurizer``/``featurizer_config`` parameters or from a
:class:`~rorem_data.features.featurizers.FeatureMatrix`) and refuses features from another featurizer.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from rorem_data.core.errors import ConfigError, ValidationError

__all__ = [
    "BaseDiscriminator",
    "FeatureHead",
    "HistGradientBoostingHead",
    "LogisticHead",
    "MLPHead",
]


def _expit(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class BaseDiscriminator(ClassifierMixin, BaseEstimator):
    """Shared behaviour of every rorem-data discriminator (binary, label 1 = success).

    Subclasses implement ``fit``, ``predict_proba``, ``_get_state()`` -> ``(arrays, meta)`` and
    ``_set_state(arrays, meta)``; this class gives ``predict``, label checks, and ``save`` /
    ``load``.

    Attributes (after fit)
    ----------------------
    classes_ : ndarray, shape (2,)
        The two labels seen in ``y``, sorted; column 1 of ``predict_proba`` is ``classes_[1]``
        (1 = success with the project's 0/1 labels).
    """

    #: what ``X`` is: ``"features"`` (an (n, d) matrix) or ``"pairs"`` (raw image pairs)
    input_kind = "features"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # -- labels --------------------------------------------------------------------------------
    def _encode_labels(self, y) -> np.ndarray:
        """Validate binary labels; set ``classes_``; return y as 0/1 (1 = ``classes_[1]``)."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValidationError(
                f"{type(self).__name__}: y holds only one class ({classes.tolist()}); a "
                "discriminator needs both labels, 0 (failure) and 1 (success). Label some "
                "candidates of the other class first.")
        if kind != "binary":
            raise ValidationError(
                f"{type(self).__name__}: Only binary classification is supported. The type of "
                f"the target is {kind} (labels {classes.tolist()[:10]}); use 1 = success, "
                "0 = failure.")
        self.classes_ = classes
        return (y == classes[1]).astype(np.int64)

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Labels: ``classes_[1]`` where P(success) > 0.5, else ``classes_[0]``.

        Returns
        -------
        ndarray, shape (n,)
        """
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] > 0.5).astype(np.int64)]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, folder: str) -> str:
        """Write the fitted discriminator to ``folder`` (JSON config + safetensors).

        Returns
        -------
        str
            ``folder``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        from rorem_data.discriminators.specs import save_discriminator

        return save_discriminator(self, folder)

    @classmethod
    def load(cls, folder: str, **overrides):
        """Load a discriminator saved with :meth:`save` (must be this class or a subclass).

        Parameters
        ----------
        folder : str
        **overrides
            Runtime parameters to change on load (e.g. ``device``; see
            :func:`rorem_data.discriminators.specs.load_discriminator`).
        """
        from rorem_data.discriminators.specs import load_discriminator

        return load_discriminator(folder, expect_class=cls, **overrides)

    def _get_state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def _set_state(self, arrays: dict, meta: dict) -> None:
        raise NotImplementedError


class FeatureHead(BaseDiscriminator):
    """Base of the sklearn feature heads: featurizer bookkeeping and input validation.

    Parameters shared by every head
    -------------------------------
    featurizer : str or None
        Registry name of the featurizer whose features this head takes (set from the spec).
    featurizer_config : dict or None
        That featurizer's config; with ``featurizer`` it fixes the expected featurizer key.
    """

    input_kind = "features"

    def _expected_key(self) -> str | None:
        if self.featurizer is None:
            return None
        from rorem_data.features.featurizers import featurizer_key

        return featurizer_key(self.featurizer, dict(self.featurizer_config or {}))

    def _check_key(self, X, key: str | None) -> None:
        got = getattr(X, "featurizer_key", None)
        if key is not None and got is not None and got != key:
            raise ConfigError(
                f"{type(self).__name__} expects features of featurizer {key!r} but got features "
                f"of {got!r}; featurize with the featurizer of this discriminator's spec (or "
                "train a head for this featurizer).")

    def _validate_fit(self, X, y):
        key = self._expected_key()
        self._check_key(X, key)
        got_key = getattr(X, "featurizer_key", None)
        try:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                                 ensure_all_finite=not self._allow_nan, reset=True)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None
        y01 = self._encode_labels(y)
        self.featurizer_key_ = key or got_key
        return X, y01

    _predict_dtypes = (np.float64, np.float32)

    def _validate_predict(self, X):
        check_is_fitted(self)
        self._check_key(X, self.featurizer_key_)
        try:
            return validate_data(self, X, dtype=list(self._predict_dtypes), reset=False,
                                 ensure_all_finite=not self._allow_nan)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None

    _allow_nan = False

    def _base_state(self) -> dict:
        meta = {"n_features_in_": int(self.n_features_in_), "featurizer_key_": self.featurizer_key_}
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(c) for c in self.feature_names_in_]
        return meta

    def _set_base_state(self, meta: dict) -> None:
        self.n_features_in_ = int(meta["n_features_in_"])
        self.featurizer_key_ = meta.get("featurizer_key_")
        if "feature_names_in_" in meta:
            self.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)


# --------------------------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------------------------


class LogisticHead(FeatureHead):
    """Standardised features + L2 logistic regression; the fastest, most robust head.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength.
    class_weight : None or "balanced", default None
        Reweight classes inversely to their frequency.
    max_iter : int, default 1000
        lbfgs iterations.
    tol : float, default 1e-4
        lbfgs tolerance.
    featurizer, featurizer_config
        See :class:`FeatureHead`.
    random_state : int, RandomState or None
        Accepted for a uniform interface (lbfgs is deterministic).

    Attributes
    ----------
    classes_ : ndarray (2,)
    mean_, scale_ : ndarray (d,)
        Standardisation.
    coef_ : ndarray (d,)
        Weights on standardised features; positive = evidence of success.
    intercept_ : float
    n_iter_ : int
    featurizer_key_ : str or None

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> head = LogisticHead().fit(X, y)
    >>> head.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, C=1.0, class_weight=None, max_iter=1000, tol=1e-4, featurizer=None,
                 featurizer_config=None, random_state=None):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.featurizer = featurizer
        self.featurizer_config = featurizer_config
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and labels ``y`` (n,) with 1 = success, 0 = failure.

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            One class only, non-binary labels, bad shapes or non-finite values.
        ConfigError
            Features from another featurizer than the head's.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        X, y01 = self._validate_fit(X, y)
        scaler = StandardScaler().fit(X)
        lr = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                                tol=self.tol, random_state=self.random_state)
        try:
            lr.fit(scaler.transform(X), y01)
        except ValueError as exc:
            raise ConfigError(f"LogisticHead: {exc}") from None
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.coef_ = lr.coef_[0].astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        self.n_iter_ = int(np.max(lr.n_iter_))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of success, float64 (n,); > 0 means P(success) > 0.5.

        The standardisation is folded into the weights (``w = coef_ / scale_``), and float32
        features are multiplied in float32 (no float64 copy of a large matrix).
        """
        X = self._validate_predict(X)
        w = self.coef_ / self.scale_
        b = self.intercept_ - float(self.mean_ @ w)
        return (X @ w.astype(X.dtype)).astype(np.float64) + b

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success) per row: float64 (n, 2), rows sum to 1, column 1 higher = better.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValidationError, ConfigError
            Wrong number of features; features of another featurizer.
        """
        p1 = _expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def _get_state(self):
        arrays = {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_,
                  "intercept": np.array([self.intercept_])}
        return arrays, {**self._base_state(), "n_iter_": self.n_iter_}

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        self.mean_, self.scale_, self.coef_ = arrays["mean"], arrays["scale"], arrays["coef"]
        self.intercept_ = float(arrays["intercept"][0])
        self.n_iter_ = int(meta["n_iter_"])


# --------------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------------


class MLPHead(FeatureHead):
    """Standardised features + a small ReLU network trained with Adam (``MLPClassifier``).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (64,)
    alpha : float, default 1e-3
        L2 penalty.
    learning_rate_init : float, default 1e-3
    max_iter : int, default 300
        Epochs.
    early_stopping : bool, default False
        Hold out 10% to stop early.
    featurizer, featurizer_config
        See :class:`FeatureHead`.
    random_state : int, RandomState or None
        Weight init and batch order; the same seed gives the same network.

    Attributes
    ----------
    classes_, mean_, scale_
    coefs_, intercepts_ : list of ndarray
        Layer weights ``(fan_in, fan_out)`` and biases; the output layer has one unit (logit).
    n_iter_ : int
    featurizer_key_ : str or None

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> MLPHead(hidden_layer_sizes=(8,), random_state=0).fit(X, y).predict_proba(X[:1]).shape
    (1, 2)
    """

    def __init__(self, hidden_layer_sizes=(64,), alpha=1e-3, learning_rate_init=1e-3,
                 max_iter=300, early_stopping=False, featurizer=None, featurizer_config=None,
                 random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.featurizer = featurizer
        self.featurizer_config = featurizer_config
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and labels ``y`` (n,), 1 = success. Returns self.

        Raises
        ------
        ValidationError, ConfigError
            As :meth:`LogisticHead.fit`.
        """
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler

        X, y01 = self._validate_fit(X, y)
        scaler = StandardScaler().fit(X)
        mlp = MLPClassifier(hidden_layer_sizes=tuple(self.hidden_layer_sizes), alpha=self.alpha,
                            learning_rate_init=self.learning_rate_init, max_iter=self.max_iter,
                            early_stopping=self.early_stopping, random_state=self.random_state)
        try:
            mlp.fit(scaler.transform(X), y01)
        except ValueError as exc:
            raise ConfigError(f"MLPHead: {exc}") from None
        if mlp.out_activation_ != "logistic" or mlp.activation != "relu":
            raise ConfigError(f"MLPHead: unexpected network (activation {mlp.activation!r}, "
                              f"output {mlp.out_activation_!r})")
        self.mean_ = scaler.mean_.astype(np.float64)
        self.scale_ = scaler.scale_.astype(np.float64)
        self.coefs_ = [c.astype(np.float64) for c in mlp.coefs_]
        self.intercepts_ = [b.astype(np.float64) for b in mlp.intercepts_]
        self.n_iter_ = int(mlp.n_iter_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success): float64 (n, 2), rows sum to 1, column 1 higher = better."""
        X = self._validate_predict(X)
        # first layer with the standardisation folded in, in the features' precision
        W0 = self.coefs_[0] / self.scale_[:, None]
        b0 = self.intercepts_[0] - self.mean_ @ W0
        h = (X @ W0.astype(X.dtype)).astype(np.float64) + b0
        last = len(self.coefs_) - 1
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            if k:
                h = h @ W + b
            if k < last:
                np.maximum(h, 0, out=h)
        p1 = _expit(h[:, 0])
        return np.column_stack([1.0 - p1, p1])

    def _get_state(self):
        arrays = {"mean": self.mean_, "scale": self.scale_}
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"coef_{k}"] = W
            arrays[f"intercept_{k}"] = b
        return arrays, {**self._base_state(), "n_iter_": self.n_iter_,
                        "n_layers": len(self.coefs_)}

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        n = int(meta["n_layers"])
        self.coefs_ = [arrays[f"coef_{k}"] for k in range(n)]
        self.intercepts_ = [arrays[f"intercept_{k}"] for k in range(n)]
        self.n_iter_ = int(meta["n_iter_"])


# --------------------------------------------------------------------------------------------
# Histogram gradient boosting
# --------------------------------------------------------------------------------------------

_TREE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right",
                "is_leaf")


class HistGradientBoostingHead(FeatureHead):
    """Gradient-boosted trees (``HistGradientBoostingClassifier``), stored as node tables.

    After fitting, the trees are kept as flat arrays (one row per node: value, feature,
    threshold, missing-values direction, children, leaf flag) and evaluated with numpy, the
    same rule scikit-learn uses (``x <= threshold`` goes left; NaN follows
    ``missing_go_to_left``). No categorical features.

    Parameters
    ----------
    learning_rate : float, default 0.1
    max_iter : int, default 200
        Boosting iterations (trees).
    max_leaf_nodes : int, default 31
    max_depth : int or None, default None
    min_samples_leaf : int, default 20
    l2_regularization : float, default 0.0
    class_weight : None or "balanced", default None
    early_stopping : "auto" or bool, default "auto"
        scikit-learn's rule: on when n > 10,000 (10% held out, ``random_state`` picks it).
    featurizer, featurizer_config
        See :class:`FeatureHead`.
    random_state : int, RandomState or None

    Attributes
    ----------
    classes_
    n_iter_ : int
        Trees actually built.
    baseline_ : float
        Initial log-odds.
    nodes_ : dict of ndarray
        Concatenated node tables of every tree (child indices are global).
    tree_roots_ : ndarray of int64
        Index of each tree's root in ``nodes_``.
    featurizer_key_ : str or None

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 3)); y = (X[:, 0] > 0).astype(int)
    >>> HistGradientBoostingHead(max_iter=10).fit(X, y).predict_proba(X[:1]).shape
    (1, 2)
    """

    _allow_nan = True
    _predict_dtypes = (np.float64,)  # thresholds compare in float64, like scikit-learn

    def __init__(self, learning_rate=0.1, max_iter=200, max_leaf_nodes=31, max_depth=None,
                 min_samples_leaf=20, l2_regularization=0.0, class_weight=None,
                 early_stopping="auto", featurizer=None, featurizer_config=None,
                 random_state=None):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.featurizer = featurizer
        self.featurizer_config = featurizer_config
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y):
        """Fit on features ``X`` (n, d; NaN allowed) and labels ``y``, 1 = success. Returns self.

        Raises
        ------
        ValidationError, ConfigError
            As :meth:`LogisticHead.fit`.
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        X, y01 = self._validate_fit(X, y)
        hgb = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            class_weight=self.class_weight, early_stopping=self.early_stopping,
            random_state=self.random_state)
        try:
            hgb.fit(X, y01)
        except ValueError as exc:
            raise ConfigError(f"HistGradientBoostingHead: {exc}") from None
        tables = {k: [] for k in _TREE_FIELDS}
        roots = []
        offset = 0
        for trees in hgb._predictors:  # one tree per iteration for binary log-loss
            (pred,) = trees
            nodes = pred.nodes
            if nodes["is_categorical"].any():
                raise ConfigError("HistGradientBoostingHead: categorical splits are not supported")
            roots.append(offset)
            for k in _TREE_FIELDS:
                col = nodes[k]
                if k in ("left", "right"):
                    col = col.astype(np.int64) + offset
                tables[k].append(col)
            offset += len(nodes)
        self.nodes_ = {
            "value": np.concatenate(tables["value"]).astype(np.float64),
            "feature_idx": np.concatenate(tables["feature_idx"]).astype(np.int64),
            "num_threshold": np.concatenate(tables["num_threshold"]).astype(np.float64),
            "missing_go_to_left": np.concatenate(tables["missing_go_to_left"]).astype(np.uint8),
            "left": np.concatenate(tables["left"]).astype(np.int64),
            "right": np.concatenate(tables["right"]).astype(np.int64),
            "is_leaf": np.concatenate(tables["is_leaf"]).astype(np.uint8),
        } if roots else {k: np.zeros(0) for k in _TREE_FIELDS}
        self.tree_roots_ = np.asarray(roots, dtype=np.int64)
        self.baseline_ = float(np.ravel(hgb._baseline_prediction)[0])
        self.n_iter_ = int(hgb.n_iter_)
        self._build_fast_trees()
        return self

    def _build_fast_trees(self) -> None:
        """Rebuild scikit-learn's compiled tree predictors from the node tables (fast path).

        Uses scikit-learn internals; when they are unavailable or differ, prediction falls back
        to the pure-numpy traversal (same rule, same results up to summation order).
        """
        self._fast_trees = None
        try:
            from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
            from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
        except ImportError:
            return
        if not set(_TREE_FIELDS) <= set(PREDICTOR_RECORD_DTYPE.names or ()):
            return
        nd = self.nodes_
        bounds = list(self.tree_roots_) + [len(nd["value"])]
        empty = np.zeros((0, 8), dtype=np.uint32)
        trees = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            rec = np.zeros(b - a, dtype=PREDICTOR_RECORD_DTYPE)
            for k in _TREE_FIELDS:
                col = nd[k][a:b]
                if k in ("left", "right"):
                    col = np.where(nd["is_leaf"][a:b] == 1, 0, col - a)
                rec[k] = col
            trees.append(TreePredictor(rec, empty, empty))
        self._fast_trees = trees

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of success, shape (n,)."""
        X = self._validate_predict(X)
        n = X.shape[0]
        raw = np.full(n, self.baseline_, dtype=np.float64)
        T = len(self.tree_roots_)
        if T == 0 or n == 0:
            return raw
        fast = getattr(self, "_fast_trees", None)
        if fast:
            try:
                from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

                n_threads = _openmp_effective_n_threads()
            except ImportError:
                n_threads = 1
            Xc = np.ascontiguousarray(X, dtype=np.float64)
            no_cats = np.zeros((0, 8), dtype=np.uint32)
            f_idx = np.zeros(X.shape[1], dtype=np.uint32)
            try:
                for tree in fast:
                    raw += tree.predict(Xc, no_cats, f_idx, n_threads)
                return raw
            except (TypeError, ValueError):  # internals changed: use the numpy traversal
                raw[:] = self.baseline_
        nd = self.nodes_
        is_leaf = nd["is_leaf"].astype(bool)
        miss_left = nd["missing_go_to_left"].astype(bool)
        block = max(1, 2_000_000 // T)
        for start in range(0, n, block):
            Xb = X[start:start + block]
            rows = np.arange(Xb.shape[0])[:, None]
            node = np.broadcast_to(self.tree_roots_, (Xb.shape[0], T)).copy()
            while True:
                leaf = is_leaf[node]
                if leaf.all():
                    break
                x = Xb[rows, nd["feature_idx"][node]]
                with np.errstate(invalid="ignore"):
                    go_left = np.where(np.isnan(x), miss_left[node], x <= nd["num_threshold"][node])
                nxt = np.where(go_left, nd["left"][node], nd["right"][node])
                node = np.where(leaf, node, nxt)
            vals = nd["value"][node]
            for t in range(T):  # tree by tree, like scikit-learn
                raw[start:start + block] += vals[:, t]
        return raw

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success): float64 (n, 2), rows sum to 1, column 1 higher = better."""
        p1 = _expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def _get_state(self):
        arrays = {f"node_{k}": v for k, v in self.nodes_.items()}
        arrays["tree_roots"] = self.tree_roots_
        return arrays, {**self._base_state(), "n_iter_": self.n_iter_, "baseline_": self.baseline_}

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        self.nodes_ = {k: arrays[f"node_{k}"] for k in _TREE_FIELDS}
        self.tree_roots_ = arrays["tree_roots"]
        self.n_iter_ = int(meta["n_iter_"])
        self.baseline_ = float(meta["baseline_"])
        self._build_fast_trees()
