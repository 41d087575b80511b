"""Cross-fitted predictions: every row scored by a model that never saw its fold's labels.

A round's new discriminator is trained on the round's own labels, so its scores cannot be
certified on them: a candidate it was trained on looks better to it than it is. Cross-fitting
(cross-prediction, Zrnic & Candes 2024) cuts the population into ``K`` folds by coins that
depend on neither the draw nor the labels, and scores fold ``k`` with a model fitted on every
label outside fold ``k``. Given that model, fold ``k``'s drawn labels are still a random sample of
fold ``k``, so they can test thresholds on fold ``k``'s scores; the certification pools the folds'
tests (:mod:`rorem_data.stats.certify`). The folds' models share most of their training data,
so the pooled test is not exact the way a single independent model's is; its error rate is
checked by simulation (``tests/stats/test_crossfit.py``: adversarial and realistic worlds, 500
trials each).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["crossfit_predict", "fold_of"]


def fold_of(keys, folds: int, salt: str) -> np.ndarray:
    """The fold (0..folds-1) of each key: a hashed coin, fixed by the key and ``salt``."""
    from rorem_data.stats.certify import hash_uniforms

    if int(folds) < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    return np.minimum((hash_uniforms(list(keys), f"crossfit:{salt}") * folds).astype(int), folds - 1)


def crossfit_predict(make_model: Callable[[], object], X, y, fold, *, folds: int, score_rows,
                     extra: tuple | None = None) -> np.ndarray:
    """P(class 1) of ``score_rows``, each from a model fitted without its fold's labels.

    Parameters
    ----------
    make_model : callable
        Returns an unfitted model with ``fit(X, y)`` and ``predict_proba(X)``.
    X : array (N, d)
    y : int array (N,)
        1 / 0 where a row is labelled, -1 where it is not (unlabelled rows are only scored).
    fold : int array (N,)
        Each row's fold; -1 puts a labelled row in every fold's training set (labels from
        outside the population being decided, e.g. earlier rounds').
    folds : int
    score_rows : bool array (N,)
        Rows to score; each must have a fold in ``0..folds-1``.
    extra : (X, y), optional
        Examples added to every fold's training set (e.g. seed pairs).

    Returns
    -------
    float array (N,)
        NaN outside ``score_rows``.

    Raises
    ------
    ValueError
        A scored row without a fold, or a fold whose training set lacks two labels of a class.
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    fold = np.asarray(fold, dtype=np.int64)
    score_rows = np.asarray(score_rows, dtype=bool)
    if ((fold[score_rows] < 0) | (fold[score_rows] >= folds)).any():
        raise ValueError("every scored row needs a fold in 0..folds-1")
    out = np.full(len(y), np.nan)
    for k in range(int(folds)):
        train = (y >= 0) & (fold != k)
        Xk, yk = X[train], y[train]
        if extra is not None and len(extra[1]):
            Xk = np.concatenate([Xk, np.asarray(extra[0], dtype=Xk.dtype)])
            yk = np.concatenate([yk, np.asarray(extra[1], dtype=np.int64)])
        if min(int((yk == 1).sum()), int((yk == 0).sum())) < 2:
            raise ValueError(f"fold {k + 1} of {folds} would train on {yk.size} labels with fewer "
                             "than two of a class")
        rows = score_rows & (fold == k)
        if not rows.any():
            continue
        model = make_model()
        model.fit(Xk, yk)
        out[rows] = model.predict_proba(X[rows])[:, 1]
    return out
