"""The discriminator base class every head subclasses, and the shared base of the feature heads.

Every discriminator in rorem-data is a scikit-learn classifier: hyperparameters in
``__init__`` only, ``fit(X, y) -> self``, ``predict_proba(X) -> (n, 2)``, fitted state in
attributes ending in ``_``, ``sklearn.base.clone`` gives an unfitted copy, ``random_state``
makes training repeatable. Labels: **1 = success** (the object was removed well), **0 =
failure**; ``predict_proba(X)[:, 1]`` is P(success), higher = better.

On top of sklearn, :class:`BaseDiscriminator` defines how a fitted discriminator becomes plain
arrays and JSON and back (``_get_state`` / ``_array_layout`` / ``_set_state``), which
:mod:`rorem_data.discriminators.persistence` writes as safetensors + JSON - never pickle.
A head takes no featurizer settings: which featurizer made its ``X`` is the spec's business
(:mod:`rorem_data.discriminators.specs`), saved beside the trained head.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from rorem_data.core.errors import ValidationError

__all__ = ["BaseDiscriminator", "FeatureHead", "saved_int"]


def saved_int(meta: dict, key: str, *, minimum: int = 0) -> int:
    """An integer entry of saved metadata, checked (raises ValueError naming ``key``)."""
    value = meta.get(key) if isinstance(meta, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"saved state {key!r} must be an integer >= {minimum}; got {value!r}")
    return value


class BaseDiscriminator(ClassifierMixin, BaseEstimator):
    """Shared behaviour of every rorem-data discriminator (binary, label 1 = success).

    Subclasses implement ``fit``, ``predict_proba`` and the persistence trio:

    - ``_get_state() -> (arrays, meta)``: the fitted state as named numpy arrays and a
      JSON-safe dict;
    - ``_array_layout(meta) -> {name: (dtype, shape)}``: what the arrays of a save with this
      ``meta`` (and the instance's parameters) must be - every array is checked against it
      before ``_set_state`` sees it; ``None`` when the class checks its arrays itself (torch
      state dicts, checked by ``load_state_dict``);
    - ``_set_state(arrays, meta)``: restore; raises ValueError on values that cannot be
      right (non-finite weights, broken trees).

    Attributes (after fit)
    ----------------------
    classes_ : ndarray, shape (2,)
        The two labels seen in ``y``, sorted; column 1 of ``predict_proba`` is ``classes_[1]``
        (1 = success with the project's 0/1 labels).
    """

    #: what ``X`` is: ``"features"`` (an (n, d) matrix) or ``"pairs"`` (raw image pairs)
    input_kind = "features"
    #: parameters that may change when a saved discriminator is loaded (e.g. ``device``)
    _runtime_params: tuple[str, ...] = ()

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

    # -- persistence (see rorem_data.discriminators.persistence) -------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def _array_layout(self, meta: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]] | None:
        return None

    def _set_state(self, arrays: dict, meta: dict) -> None:
        raise NotImplementedError


class FeatureHead(BaseDiscriminator):
    """Base of the sklearn feature heads: input validation and the shared saved metadata.

    ``X`` is a float feature matrix ``(n, d)``; ``n_features_in_`` (and
    ``feature_names_in_`` for DataFrames) are recorded at fit and checked at predict.
    """

    input_kind = "features"
    _allow_nan = False
    _predict_dtypes = (np.float64, np.float32)

    def _validate_fit(self, X, y):
        try:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                                 ensure_all_finite=not self._allow_nan, reset=True)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None
        return X, self._encode_labels(y)

    def _validate_predict(self, X):
        check_is_fitted(self)
        try:
            return validate_data(self, X, dtype=list(self._predict_dtypes), reset=False,
                                 ensure_all_finite=not self._allow_nan)
        except ValueError as exc:
            raise ValidationError(f"{type(self).__name__}: {exc}") from None

    def _base_state(self) -> dict:
        meta = {"n_features_in_": int(self.n_features_in_)}
        if hasattr(self, "feature_names_in_"):
            meta["feature_names_in_"] = [str(c) for c in self.feature_names_in_]
        return meta

    def _set_base_state(self, meta: dict) -> None:
        self.n_features_in_ = saved_int(meta, "n_features_in_", minimum=1)
        if "feature_names_in_" in meta:
            names = meta["feature_names_in_"]
            if not (isinstance(names, list) and len(names) == self.n_features_in_
                    and all(isinstance(c, str) for c in names)):
                raise ValueError(f"saved state 'feature_names_in_' must be "
                                 f"{self.n_features_in_} strings")
            self.feature_names_in_ = np.asarray(names, dtype=object)

    @staticmethod
    def _finite(arrays: dict, names) -> None:
        for k in names:
            if not np.isfinite(arrays[k]).all():
                raise ValueError(f"array {k!r} holds NaN or infinite values")
