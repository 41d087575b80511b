"""Gradient-boosted trees as flat node tables: extracted once, validated, evaluated in numpy.

A forest is seven arrays of one row per node, every tree's nodes one contiguous block
(``roots[t]`` is the first node of tree ``t``; child indices are global):

==================== ======= =================================================================
``value``            float64 the leaf value (log-odds contribution)
``feature_idx``      int64   the feature a split node tests
``num_threshold``    float64 ``x <= threshold`` goes left (may be +inf, never NaN)
``missing_go_to_left`` uint8 where NaN goes (0/1)
``left``, ``right``  int64   children of a split node
``is_leaf``          uint8   0/1
==================== ======= =================================================================

:func:`check_forest` refuses tables that could make evaluation read outside an array or never
end - a child index out of range or not after its parent (which rules out self-pointing nodes
and cycles: every step moves strictly forward inside the tree's block, so a path ends within
the block's length), a feature index out of range, flags other than 0/1, NaN thresholds,
non-finite leaf values. :func:`forest_decision` then walks all trees for a block of rows at once
(numpy fancy indexing over the cells still on a split node), the rule scikit-learn uses,
summing the trees in scikit-learn's order, so its log-odds equal
``HistGradientBoostingClassifier.decision_function``'s bit for bit.

:func:`forest_from_sklearn` is the only place that reads scikit-learn's private tree predictors
(``_predictors``), at fit time; loading and predicting need none of scikit-learn's internals.
Pure numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NODE_DTYPES", "check_forest", "forest_decision", "forest_from_sklearn",
           "forest_from_sklearn_trees"]

#: Field -> dtype of the node tables.
NODE_DTYPES = {
    "value": np.dtype(np.float64),
    "feature_idx": np.dtype(np.int64),
    "num_threshold": np.dtype(np.float64),
    "missing_go_to_left": np.dtype(np.uint8),
    "left": np.dtype(np.int64),
    "right": np.dtype(np.int64),
    "is_leaf": np.dtype(np.uint8),
}


def check_forest(nodes: dict, roots: np.ndarray, n_features: int) -> tuple[dict, np.ndarray]:
    """Validate node tables; return normalised copies (leaves: feature 0, children = self).

    Parameters
    ----------
    nodes : dict of ndarray
        The seven fields of :data:`NODE_DTYPES`, each of shape (n_nodes,).
    roots : ndarray of int64, shape (n_trees,)
        First node of each tree; ``roots[0] == 0``, strictly increasing.
    n_features : int
        Number of features the trees may test.

    Returns
    -------
    nodes, roots
        Checked, contiguous, with the leaves' unused fields set so traversal can index them.

    Raises
    ------
    ValueError
        Naming the first bad node and what is wrong with it.

    Examples
    --------
    >>> nodes = {k: np.zeros(3, d) for k, d in NODE_DTYPES.items()}
    >>> nodes["is_leaf"][1:] = 1; nodes["left"][0], nodes["right"][0] = 1, 2
    >>> _ = check_forest(nodes, np.array([0]), n_features=1)
    >>> nodes["left"][0] = 0
    >>> check_forest(nodes, np.array([0]), n_features=1)
    Traceback (most recent call last):
    ...
    ValueError: node 0 (tree 0): left child 0 is not after the node inside its tree (nodes 1..2)
    """
    missing = sorted(set(NODE_DTYPES) - set(nodes))
    if missing:
        raise ValueError(f"node table lacks field(s) {missing}")
    n = len(nodes["value"])
    for k, dt in NODE_DTYPES.items():
        a = nodes[k]
        if a.dtype != dt or a.shape != (n,):
            raise ValueError(f"node field {k!r} must be {dt} of shape ({n},); got {a.dtype} "
                             f"{a.shape}")
    roots = np.asarray(roots)
    T = len(roots)
    if roots.dtype != np.int64 or roots.ndim != 1:
        raise ValueError(f"tree roots must be int64 of shape (n_trees,); got {roots.dtype} "
                         f"{roots.shape}")
    if T == 0:
        if n:
            raise ValueError(f"{n} nodes but no trees")
        return {k: np.ascontiguousarray(v) for k, v in nodes.items()}, roots
    if roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n:
        raise ValueError(f"tree roots must start at 0 and increase strictly below {n}; got "
                         f"{roots[:10].tolist()}{'...' if T > 10 else ''}")
    for k in ("is_leaf", "missing_go_to_left"):
        bad = np.flatnonzero(nodes[k] > 1)
        if bad.size:
            raise ValueError(f"node {bad[0]}: {k} must be 0 or 1; got {nodes[k][bad[0]]}")
    sizes = np.diff(np.append(roots, n))
    tree_of = np.repeat(np.arange(T), sizes)
    end = np.repeat(np.append(roots[1:], n), sizes)  # one past the last node of each node's tree
    idx = np.arange(n)
    split = nodes["is_leaf"] == 0
    for side in ("left", "right"):
        child = nodes[side]
        bad = np.flatnonzero(split & ((child <= idx) | (child >= end)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"node {i} (tree {tree_of[i]}): {side} child {child[i]} is not "
                             f"after the node inside its tree (nodes {i + 1}..{end[i] - 1})")
    bad = np.flatnonzero(split & (nodes["left"] == nodes["right"]))
    if bad.size:
        raise ValueError(f"node {bad[0]}: both children are node {nodes['left'][bad[0]]}")
    f = nodes["feature_idx"]
    bad = np.flatnonzero(split & ((f < 0) | (f >= n_features)))
    if bad.size:
        raise ValueError(f"node {bad[0]}: feature index {f[bad[0]]} is outside 0..{n_features - 1}")
    bad = np.flatnonzero(split & np.isnan(nodes["num_threshold"]))
    if bad.size:
        raise ValueError(f"node {bad[0]}: split threshold is NaN")
    bad = np.flatnonzero(~split & ~np.isfinite(nodes["value"]))
    if bad.size:
        raise ValueError(f"node {bad[0]}: leaf value is {nodes['value'][bad[0]]}")
    out = {k: np.array(v, copy=True) for k, v in nodes.items()}
    leaf = ~split
    out["feature_idx"][leaf] = 0
    out["left"][leaf] = idx[leaf]
    out["right"][leaf] = idx[leaf]
    return out, roots.copy()


def forest_decision(nodes: dict, roots: np.ndarray, X: np.ndarray, baseline: float, *,
                    block_cells: int = 131_072) -> np.ndarray:
    """``baseline`` + the sum of every tree's leaf value for each row of ``X``.

    Parameters
    ----------
    nodes, roots
        Tables checked by :func:`check_forest` (required: traversal trusts them).
    X : ndarray, float64, shape (n, d)
        NaN follows ``missing_go_to_left``; otherwise ``x <= threshold`` goes left.
    baseline : float
        The initial log-odds.
    block_cells : int
        Rows are processed in blocks of about ``block_cells / n_trees`` (small blocks keep the
        rows being walked in the CPU cache).

    Returns
    -------
    ndarray, float64, shape (n,)
        Raw log-odds, trees summed one by one in order (as scikit-learn does).
    """
    n, d = X.shape
    raw = np.full(n, baseline, dtype=np.float64)
    T = len(roots)
    if T == 0 or n == 0:
        return raw
    is_leaf = nodes["is_leaf"].astype(bool)
    miss_left = nodes["missing_go_to_left"].astype(bool)
    feature, thr = nodes["feature_idx"], nodes["num_threshold"]
    left, right, value = nodes["left"], nodes["right"], nodes["value"]
    # a path moves strictly forward inside its tree: it ends within the largest tree's size
    max_steps = int(np.diff(np.append(roots, len(value))).max())
    block = max(1, block_cells // T)
    for start in range(0, n, block):
        Xb = np.ascontiguousarray(X[start:start + block], dtype=np.float64)
        m = Xb.shape[0]
        flat = Xb.ravel()
        has_nan = bool(np.isnan(flat).any())
        node = np.tile(roots, m)  # cell r * T + t: row r in tree t
        row_off = np.repeat(np.arange(m, dtype=np.int64) * d, T)
        active = np.flatnonzero(~is_leaf[node])
        for _ in range(max_steps):  # only the cells still on a split node move
            if active.size == 0:
                break
            at = node[active]
            x = flat[row_off[active] + feature[at]]
            go_left = x <= thr[at]
            if has_nan:
                nan = np.isnan(x)
                go_left[nan] = miss_left[at[nan]]
            nxt = np.where(go_left, left[at], right[at])
            node[active] = nxt
            active = active[~is_leaf[nxt]]
        vals = value[node].reshape(m, T)
        out = raw[start:start + m]
        for t in range(T):  # tree by tree, like scikit-learn
            out += vals[:, t]
    return raw


def forest_from_sklearn(hgb) -> tuple[dict, np.ndarray, float]:
    """Node tables, roots and baseline of a fitted binary ``HistGradientBoostingClassifier``.

    Reads scikit-learn's private ``_predictors`` / ``_baseline_prediction`` (there is no public
    API for the trees); the caller checks the result against ``hgb.decision_function``.

    Raises
    ------
    ValueError
        The fitted model does not have the expected layout (another scikit-learn version, or
        categorical splits).
    """
    predictors = getattr(hgb, "_predictors", None)
    baseline = getattr(hgb, "_baseline_prediction", None)
    if predictors is None or baseline is None:
        raise ValueError("this scikit-learn's HistGradientBoostingClassifier keeps no "
                         "_predictors/_baseline_prediction")
    tables = {k: [] for k in NODE_DTYPES}
    roots, offset = [], 0
    for trees in predictors:  # one tree per iteration for binary log-loss
        if len(trees) != 1:
            raise ValueError(f"expected one tree per iteration, got {len(trees)}")
        nodes = trees[0].nodes
        names = set(nodes.dtype.names or ())
        if not set(NODE_DTYPES) <= names:
            raise ValueError(f"tree nodes lack fields {sorted(set(NODE_DTYPES) - names)}")
        if "is_categorical" in names and nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        roots.append(offset)
        for k in NODE_DTYPES:
            col = nodes[k].astype(NODE_DTYPES[k])
            if k in ("left", "right"):
                col = col + offset
            tables[k].append(col)
        offset += len(nodes)
    out = {k: (np.concatenate(v) if v else np.zeros(0, NODE_DTYPES[k])).astype(NODE_DTYPES[k])
           for k, v in tables.items()}
    return out, np.asarray(roots, dtype=np.int64), float(np.ravel(baseline)[0])


def forest_from_sklearn_trees(forest) -> tuple[dict, np.ndarray]:
    """Node tables and roots of a fitted binary random forest or extra-trees classifier.

    Each leaf's value is its share of successes divided by the number of trees, so
    :func:`forest_decision` with a baseline of 0 gives the forest's probability of success (the
    mean of its trees', as ``predict_proba``). Reads each tree's public ``tree_`` arrays.

    Raises
    ------
    ValueError
        Not a binary classifier of fitted trees.
    """
    trees = getattr(forest, "estimators_", None)
    if not trees or len(getattr(forest, "classes_", ())) != 2:
        raise ValueError("expected a fitted binary forest (estimators_, two classes)")
    tables = {k: [] for k in NODE_DTYPES}
    roots, offset, n_trees = [], 0, len(trees)
    for est in trees:
        t = est.tree_
        left = np.asarray(t.children_left, dtype=np.int64)
        right = np.asarray(t.children_right, dtype=np.int64)
        leaf = left < 0
        counts = np.asarray(t.value, dtype=np.float64)[:, 0, :]
        share = counts[:, 1] / np.maximum(counts.sum(axis=1), 1e-300)
        miss = getattr(t, "missing_go_to_left", None)
        cols = {
            "value": np.where(leaf, share / n_trees, 0.0),
            "feature_idx": np.where(leaf, 0, np.asarray(t.feature, dtype=np.int64)),
            "num_threshold": np.where(leaf, 0.0, np.asarray(t.threshold, dtype=np.float64)),
            "missing_go_to_left": (np.zeros(len(left)) if miss is None else np.asarray(miss)),
            "left": np.where(leaf, np.arange(len(left)), left) + offset,
            "right": np.where(leaf, np.arange(len(left)), right) + offset,
            "is_leaf": leaf,
        }
        roots.append(offset)
        for k, dt in NODE_DTYPES.items():
            tables[k].append(np.asarray(cols[k]).astype(dt))
        offset += len(left)
    out = {k: np.concatenate(v).astype(NODE_DTYPES[k]) for k, v in tables.items()}
    return out, np.asarray(roots, dtype=np.int64)
