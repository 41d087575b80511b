"""The feature heads: scikit-learn classifiers on feature matrices, predicting in plain numpy.

Each head takes ``X`` = features of shape ``(n, d)`` from a featurizer
(:mod:`rorem_data.features`) and labels 1 = success, 0 = failure:

- :class:`LogisticHead` - standardisation + logistic regression;
- :class:`MLPHead` - standardisation + a small ReLU network (``MLPClassifier``);
- :class:`HistGradientBoostingHead` - ``HistGradientBoostingClassifier``;
- :class:`RandomForestHead` - a random forest or extra trees (``extra_trees=True``);
- :class:`CrossValidatedHead` - the best of several registered heads by cross-validation on
  the labels at hand, refit on all of them (the choice is kept with the model).

They train with scikit-learn, then keep only plain arrays (scaler statistics, coefficients,
weight matrices, tree node tables) and predict with numpy from those arrays: a saved and
re-loaded head gives bit-identical probabilities, and loading needs no scikit-learn internals.
Every saved array is checked against the layout the head's parameters and saved metadata imply
(:meth:`_array_layout`) and its values are checked on load (finite weights; for trees, the
structure: :mod:`rorem_data.discriminators.trees`).
"""

from __future__ import annotations

import numpy as np

from rorem_data.core.errors import ConfigError
from rorem_data.discriminators.base import FeatureHead, saved_int
from rorem_data.discriminators.trees import (
    NODE_DTYPES,
    check_forest,
    forest_decision,
    forest_from_sklearn,
    forest_from_sklearn_trees,
)

__all__ = ["CrossValidatedHead", "HistGradientBoostingHead", "LogisticHead", "MLPHead",
           "RandomForestHead"]

_F64 = np.dtype(np.float64)


def _expit(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _two_columns(p1: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p1, p1])


def _node_arrays(head) -> dict:
    """The saved arrays of a head kept as node tables (boosted trees, forests)."""
    arrays = {f"node_{k}": v for k, v in head.nodes_.items()}
    arrays["tree_roots"] = head.tree_roots_
    return arrays


def _node_layout(meta: dict, n_roots_key: str) -> dict:
    """The layout of those arrays, from the saved node and tree counts."""
    saved_int(meta, "n_features_in_", minimum=1)
    n_nodes = saved_int(meta, "n_nodes")
    layout = {f"node_{k}": (dt, (n_nodes,)) for k, dt in NODE_DTYPES.items()}
    layout["tree_roots"] = (np.dtype(np.int64), (saved_int(meta, n_roots_key),))
    return layout


def _set_nodes(head, arrays: dict) -> None:
    """Checked node tables back onto ``head`` (after its base state)."""
    nodes = {k: arrays[f"node_{k}"] for k in NODE_DTYPES}
    head.nodes_, head.tree_roots_ = check_forest(nodes, arrays["tree_roots"], head.n_features_in_)


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

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> head = LogisticHead().fit(X, y)
    >>> head.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, C=1.0, class_weight=None, max_iter=1000, tol=1e-4, random_state=None):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
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
            Bad parameters.
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
        ValidationError
            Wrong number of features, non-finite values.
        """
        return _two_columns(_expit(self.decision_function(X)))

    def _get_state(self):
        arrays = {"mean": self.mean_, "scale": self.scale_, "coef": self.coef_,
                  "intercept": np.array([self.intercept_])}
        return arrays, {**self._base_state(), "n_iter_": self.n_iter_}

    def _array_layout(self, meta):
        d = saved_int(meta, "n_features_in_", minimum=1)
        return {"mean": (_F64, (d,)), "scale": (_F64, (d,)), "coef": (_F64, (d,)),
                "intercept": (_F64, (1,))}

    def _set_state(self, arrays, meta):
        self._finite(arrays, ("mean", "scale", "coef", "intercept"))
        if (arrays["scale"] <= 0).any():
            raise ValueError("array 'scale' must be positive")
        self._set_base_state(meta)
        self.mean_, self.scale_, self.coef_ = arrays["mean"], arrays["scale"], arrays["coef"]
        self.intercept_ = float(arrays["intercept"][0])
        self.n_iter_ = saved_int(meta, "n_iter_")


# --------------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------------


def _hidden_sizes(value) -> list[int]:
    sizes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(sizes, (list, tuple)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
            for s in sizes):
        raise ConfigError(f"MLPHead: hidden_layer_sizes must be a list of positive integers; got "
                          f"{value!r}")
    return [int(s) for s in sizes]


class MLPHead(FeatureHead):
    """Standardised features + a small ReLU network trained with Adam (``MLPClassifier``).

    Parameters
    ----------
    hidden_layer_sizes : tuple or list of int, default (64,)
    alpha : float, default 1e-3
        L2 penalty.
    learning_rate_init : float, default 1e-3
    max_iter : int, default 300
        Epochs.
    early_stopping : bool, default False
        Hold out 10% to stop early.
    random_state : int, RandomState or None
        Weight init and batch order; the same seed gives the same network.

    Attributes
    ----------
    classes_, mean_, scale_
    coefs_, intercepts_ : list of ndarray
        Layer weights ``(fan_in, fan_out)`` and biases; the output layer has one unit (logit).
    n_iter_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    >>> MLPHead(hidden_layer_sizes=(8,), random_state=0).fit(X, y).predict_proba(X[:1]).shape
    (1, 2)
    """

    def __init__(self, hidden_layer_sizes=(64,), alpha=1e-3, learning_rate_init=1e-3,
                 max_iter=300, early_stopping=False, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
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
        mlp = MLPClassifier(hidden_layer_sizes=tuple(_hidden_sizes(self.hidden_layer_sizes)),
                            alpha=self.alpha, learning_rate_init=self.learning_rate_init,
                            max_iter=self.max_iter, early_stopping=self.early_stopping,
                            random_state=self.random_state)
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
        """P(failure), P(success): float64 (n, 2), rows sum to 1, column 1 higher = better.

        The forward pass in numpy: ReLU hidden layers, a logistic output unit.
        """
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
        return _two_columns(_expit(h[:, 0]))

    def _get_state(self):
        arrays = {"mean": self.mean_, "scale": self.scale_}
        for k, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            arrays[f"coef_{k}"] = W
            arrays[f"intercept_{k}"] = b
        return arrays, {**self._base_state(), "n_iter_": self.n_iter_,
                        "n_layers": len(self.coefs_)}

    def _array_layout(self, meta):
        d = saved_int(meta, "n_features_in_", minimum=1)
        sizes = [d] + _hidden_sizes(self.hidden_layer_sizes) + [1]
        n_layers = saved_int(meta, "n_layers", minimum=1)
        if n_layers != len(sizes) - 1:
            raise ValueError(f"saved state 'n_layers' is {n_layers} but hidden_layer_sizes="
                             f"{self.hidden_layer_sizes!r} gives {len(sizes) - 1} layers")
        layout = {"mean": (_F64, (d,)), "scale": (_F64, (d,))}
        for k in range(n_layers):
            layout[f"coef_{k}"] = (_F64, (sizes[k], sizes[k + 1]))
            layout[f"intercept_{k}"] = (_F64, (sizes[k + 1],))
        return layout

    def _set_state(self, arrays, meta):
        self._finite(arrays, sorted(arrays))
        if (arrays["scale"] <= 0).any():
            raise ValueError("array 'scale' must be positive")
        self._set_base_state(meta)
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        n = saved_int(meta, "n_layers", minimum=1)
        self.coefs_ = [arrays[f"coef_{k}"] for k in range(n)]
        self.intercepts_ = [arrays[f"intercept_{k}"] for k in range(n)]
        self.n_iter_ = saved_int(meta, "n_iter_")


# --------------------------------------------------------------------------------------------
# Histogram gradient boosting
# --------------------------------------------------------------------------------------------


class HistGradientBoostingHead(FeatureHead):
    """Gradient-boosted trees (``HistGradientBoostingClassifier``), stored as node tables.

    After fitting, the trees are kept as flat arrays (one row per node: value, feature,
    threshold, missing-values direction, children, leaf flag; see
    :mod:`rorem_data.discriminators.trees`) and evaluated with numpy, the same rule
    scikit-learn uses (``x <= threshold`` goes left; NaN follows ``missing_go_to_left``). No
    categorical features.

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
                 early_stopping="auto", random_state=None):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y):
        """Fit on features ``X`` (n, d; NaN allowed) and labels ``y``, 1 = success. Returns self.

        The trees are copied out of scikit-learn's fitted model, validated, and the numpy
        evaluation is checked against scikit-learn's own ``decision_function`` on the training
        features, so a scikit-learn whose internals differ fails here, not later.

        Raises
        ------
        ValidationError, ConfigError
            As :meth:`LogisticHead.fit`; ConfigError also when this scikit-learn's trees cannot
            be read.
        """
        import sklearn
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
        unreadable = (f"HistGradientBoostingHead: cannot read the trees of scikit-learn "
                      f"{sklearn.__version__}'s HistGradientBoostingClassifier")
        try:
            nodes, roots, baseline = forest_from_sklearn(hgb)
            self.nodes_, self.tree_roots_ = check_forest(nodes, roots, X.shape[1])
        except ValueError as exc:
            raise ConfigError(f"{unreadable} ({exc}); use the 'logistic' or 'mlp' head, or a "
                              "scikit-learn version rorem-data is tested with") from None
        self.baseline_ = baseline
        self.n_iter_ = int(hgb.n_iter_)
        ours = forest_decision(self.nodes_, self.tree_roots_, X, self.baseline_)
        if not np.allclose(ours, hgb.decision_function(X), rtol=1e-9, atol=1e-9):
            raise ConfigError(f"{unreadable} (its trees evaluate differently here); use the "
                              "'logistic' or 'mlp' head, or a scikit-learn version rorem-data is "
                              "tested with")
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of success, float64 (n,)."""
        X = self._validate_predict(X)
        return forest_decision(self.nodes_, self.tree_roots_, X, self.baseline_)

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success): float64 (n, 2), rows sum to 1, column 1 higher = better."""
        return _two_columns(_expit(self.decision_function(X)))

    def _get_state(self):
        return _node_arrays(self), {**self._base_state(), "n_iter_": self.n_iter_,
                                    "baseline_": self.baseline_,
                                    "n_nodes": int(len(self.nodes_["value"]))}

    def _array_layout(self, meta):
        return _node_layout(meta, "n_iter_")

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        baseline = meta.get("baseline_")
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or \
                not np.isfinite(baseline):
            raise ValueError(f"saved state 'baseline_' must be a finite number; got {baseline!r}")
        _set_nodes(self, arrays)
        self.n_iter_ = saved_int(meta, "n_iter_")
        self.baseline_ = float(baseline)


# --------------------------------------------------------------------------------------------
# Random forest / extra trees
# --------------------------------------------------------------------------------------------


class RandomForestHead(FeatureHead):
    """A random forest (or extra trees), stored as node tables like the boosted trees.

    Averages fully grown trees, so it learns non-linear rules from few labels without the
    tuning boosting needs (on this project's ``stats`` features, extra trees reach the logistic
    head's 600-label AUC at about 300 labels: ``docs/label-efficiency.md``). Each leaf holds its
    share of successes over the number of trees; the probability is the sum over trees
    (:func:`rorem_data.discriminators.trees.forest_from_sklearn_trees`).

    Parameters
    ----------
    n_estimators : int, default 300
    min_samples_leaf : int, default 2
    max_features : "sqrt", "log2", float or None, default "sqrt"
    extra_trees : bool, default True
        Extremely randomised trees (random split points) instead of a random forest.
    class_weight : None or "balanced", default None
    random_state : int or None
    """

    def __init__(self, n_estimators=300, min_samples_leaf=2, max_features="sqrt", extra_trees=True,
                 class_weight=None, random_state=None):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.extra_trees = extra_trees
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and labels ``y``, 1 = success. Returns self.

        Raises
        ------
        ValidationError, ConfigError
            As :meth:`LogisticHead.fit`.
        """
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        X, y01 = self._validate_fit(X, y)
        cls = ExtraTreesClassifier if self.extra_trees else RandomForestClassifier
        try:
            forest = cls(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                         max_features=self.max_features, class_weight=self.class_weight,
                         random_state=self.random_state, n_jobs=1).fit(X, y01)
            nodes, roots = forest_from_sklearn_trees(forest)
        except ValueError as exc:
            raise ConfigError(f"RandomForestHead: {exc}") from None
        self.nodes_, self.tree_roots_ = check_forest(nodes, roots, X.shape[1])
        ours = self._proba1(X)
        if not np.allclose(ours, forest.predict_proba(X)[:, 1], rtol=1e-9, atol=1e-9):
            raise ConfigError("RandomForestHead: this scikit-learn's trees evaluate differently "
                              "here; use the 'logistic' head or a tested scikit-learn version")
        return self

    def _proba1(self, X):
        return np.clip(forest_decision(self.nodes_, self.tree_roots_, X, 0.0), 0.0, 1.0)

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success): float64 (n, 2), rows sum to 1, column 1 higher = better."""
        return _two_columns(self._proba1(self._validate_predict(X)))

    def _get_state(self):
        return _node_arrays(self), {**self._base_state(), "n_trees": int(len(self.tree_roots_)),
                                    "n_nodes": int(len(self.nodes_["value"]))}

    def _array_layout(self, meta):
        return _node_layout(meta, "n_trees")

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        _set_nodes(self, arrays)


# --------------------------------------------------------------------------------------------
# The best of several heads, by cross-validation
# --------------------------------------------------------------------------------------------


class CrossValidatedHead(FeatureHead):
    """Chooses among registered heads by cross-validated AUC on the labels at hand.

    ``fit`` scores each candidate head (by its registered name, with its default parameters)
    with stratified ``folds``-fold cross-validation (folds by ``random_state``), refits the
    best on every label, and keeps it: ``chosen_`` names it and ``cv_auc_`` holds every
    candidate's mean AUC (a trained version records both). With fewer than ``min_labels``
    labels, or fewer than ``folds`` of a class, the first candidate is taken without a contest.

    Parameters
    ----------
    candidates : list of str, default ["logistic", "random-forest", "hist-gradient-boosting"]
        Registered head names (``rorem_data.discriminators.registry.list_heads``).
    folds : int, default 5
    min_labels : int, default 40
    random_state : int or None
    """

    def __init__(self, candidates=("logistic", "random-forest", "hist-gradient-boosting"), folds=5,
                 min_labels=40, random_state=0):
        self.candidates = candidates
        self.folds = folds
        self.min_labels = min_labels
        self.random_state = random_state

    def _head(self, name: str):
        from rorem_data.discriminators.registry import resolve_head

        _name, cls = resolve_head(name, where="CrossValidatedHead candidates")
        if not issubclass(cls, FeatureHead) or cls is CrossValidatedHead:
            raise ConfigError(f"CrossValidatedHead: candidate {name!r} is not a feature head")
        params = {"random_state": self.random_state} if "random_state" in cls().get_params() else {}
        return cls(**params)

    def fit(self, X, y):
        """Choose the head, refit it on all of ``X``, ``y``. Returns self."""
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        names = list(self.candidates)
        if not names:
            raise ConfigError("CrossValidatedHead: candidates is empty; name at least one head")
        X, y01 = self._validate_fit(X, y)
        heads = {n: self._head(n) for n in names}
        scores = {}
        if len(y01) >= self.min_labels and min(np.bincount(y01, minlength=2)) >= self.folds:
            cv = StratifiedKFold(self.folds, shuffle=True, random_state=self.random_state)
            for n in names:
                pred = np.empty(len(y01))
                for tr, te in cv.split(X, y01):
                    pred[te] = self._head(n).fit(X[tr], y01[tr]).predict_proba(X[te])[:, 1]
                scores[n] = float(roc_auc_score(y01, pred))
            best = max(names, key=lambda n: (scores[n], -names.index(n)))
        else:
            best = names[0]
        self.chosen_, self.cv_auc_ = best, scores
        self.head_ = heads[best].fit(X, y01)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The chosen head's probabilities."""
        X = self._validate_predict(X)
        return self.head_.predict_proba(X)

    def _get_state(self):
        arrays, meta = self.head_._get_state()
        return arrays, {**self._base_state(), "chosen_": self.chosen_, "cv_auc_": self.cv_auc_,
                        "inner": meta}

    def _inner(self, meta):
        from rorem_data.discriminators.registry import list_heads

        name = meta.get("chosen_")
        if name not in self.candidates or name not in list_heads():
            raise ValueError(f"saved state 'chosen_' must be one of the candidates "
                             f"{list(self.candidates)}; got {name!r}")
        inner = meta.get("inner")
        if not isinstance(inner, dict):
            raise ValueError("saved state 'inner' must be a dict")
        return self._head(name), inner

    def _array_layout(self, meta):
        head, inner = self._inner(meta)
        return head._array_layout(inner)

    def _set_state(self, arrays, meta):
        self._set_base_state(meta)
        head, inner = self._inner(meta)
        head._set_state(arrays, inner)
        self.head_, self.chosen_ = head, meta["chosen_"]
        cv = meta.get("cv_auc_") or {}
        self.cv_auc_ = {str(k): float(v) for k, v in cv.items()} if isinstance(cv, dict) else {}
