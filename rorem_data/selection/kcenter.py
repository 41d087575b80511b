"""k-center greedy (core-set) selection on feature vectors, in plain numpy.

The greedy of Gonzalez (1985) adds, one at a time, the point farthest from every centre chosen so
far; its covering radius (the largest distance from any point to its nearest centre) is at most
twice the optimum. Sener & Savarese (ICLR 2018) made it the "core-set" active-learning strategy.

Two implementations return the same greedy sequence (up to floating-point near-ties):

``method="exact"``
    The textbook loop: after each pick, one matrix-vector product over all of ``features``
    updates every point's squared distance to its nearest centre. It is bound by memory
    bandwidth: one full read of ``features`` per pick.
``method="fast"`` (the default for large inputs)
    The same greedy sequence, without a pass over ``features`` per pick. Three ideas:

    1. *Upper bounds, lazily tightened.* ``mind2[i]`` is the squared distance of point i to
       the centres folded into it so far: never below the true value. Only a "front" (the
       ``front_size`` points with the largest bounds) is updated after every pick, with a
       cache-sized matrix-vector product. A front point whose exact value is at least the
       largest bound outside the front is a true farthest point, so it is picked.
    2. *Blocked folds.* When the front runs dry, the picks made since are folded into all
       points at once with a chunked matrix-matrix product (BLAS-3, compute-bound), instead of
       one memory-bound pass per pick.
    3. *Probed folds.* The cells of the first ``n_groups`` centres become fixed groups. Each
       later centre is folded only into its ``n_probe`` nearest groups (by centroid), like an
       IVF index; a point a fold skipped keeps a bound that may be too high. Before a point is
       picked its bound is made exact against the centres it has not been checked against,
       so skipping only costs extra checks, never a wrong pick.

    Probing pays off when features are clustered (the nearest groups then hold the points a
    centre can move); on unclustered data more bounds stay loose and more checks are needed.
    ``benchmarks/bench_select.py`` measures it against the exact loop.

Memory beyond ``features``: O(N) bounds plus (initial + k) stored centres, the front and one
chunk x pending block: a few tens of MB at 200,000 x 512 with k = 10,000. Positions in,
positions out; sample ids are handled elsewhere.
"""

from __future__ import annotations

import numpy as np

from rorem_data.core.checks import bad
from rorem_data.core.errors import ConfigError
from rorem_data.selection.arrays import as_features, as_mask, as_rng

__all__ = ["KCENTER_METHODS", "check_method", "covering_radius", "kcenter_greedy", "min_distances"]

KCENTER_METHODS = ("auto", "exact", "fast")

#: ``method="auto"`` runs ``"fast"`` from this many feature values on (16 MB of float32: one
#: pass no longer sits in cache; measured break-even here is between 10 and 24 MB).
AUTO_FAST_MIN_VALUES = 4_000_000


def check_method(method) -> str:
    """``method`` if it is one of :data:`KCENTER_METHODS`, else a ConfigError."""
    if not isinstance(method, str) or method not in KCENTER_METHODS:
        raise bad("method", f"one of {', '.join(KCENTER_METHODS)}", method)
    return method


_ROW_CHUNK = 4096  # rows of `features` per matrix-matrix block (chunk x pending floats)
_CENTRE_CHUNK = 2048  # centres per block when folding many initial centres at once


# --------------------------------------------------------------------------- distance kernels


def _fold_centres(X: np.ndarray, xx: np.ndarray, mind2: np.ndarray, C: np.ndarray,
                  cc: np.ndarray) -> None:
    """mind2[i] <- min(mind2[i], min_j |X[i] - C[j]|^2), chunked over rows (BLAS-3)."""
    n = X.shape[0]
    for r0 in range(0, n, _ROW_CHUNK):
        r1 = min(r0 + _ROW_CHUNK, n)
        block = X[r0:r1] @ C.T  # (rows, centres)
        block *= -2.0
        block += cc
        best = block.min(axis=1)
        best += xx[r0:r1]
        np.minimum(mind2[r0:r1], best, out=mind2[r0:r1])


def min_distances(features, centers, *, center_features=None) -> np.ndarray:
    """Distance from every point to its nearest centre.

    Parameters
    ----------
    features : array_like, shape (n, d), real
        Points (cast to float32).
    centers : array_like of int, shape (m,), or boolean mask of shape (n,)
        Positions in ``features`` of the centres. May be empty if ``center_features`` is given.
    center_features : array_like, shape (p, d), optional
        Extra centres that are not rows of ``features`` (e.g. seed-set embeddings).

    Returns
    -------
    numpy.ndarray, shape (n,), float32
        Euclidean distance to the nearest centre (``inf`` if there is no centre at all).

    Raises
    ------
    ConfigError
        Bad shapes, NaNs, positions out of range.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=np.float32)
    >>> min_distances(X, [0]).round(3).tolist()
    [0.0, 5.0, 10.0]
    """
    X = as_features(features)
    n = X.shape[0]
    idx = np.flatnonzero(as_mask(centers, n, name="centers")) if centers is not None else []
    extra = None
    if center_features is not None:
        extra = as_features(center_features, name="center_features")
        if extra.shape[1] != X.shape[1]:
            raise ConfigError(
                f"center_features has {extra.shape[1]} dims but features has {X.shape[1]}; "
                "use features from the same featurizer"
            )
    xx = np.einsum("ij,ij->i", X, X)
    mind2 = np.full(n, np.inf, dtype=np.float32)
    _fold_initial(X, xx, mind2, np.asarray(idx, dtype=np.int64), extra)
    np.maximum(mind2, 0.0, out=mind2)
    return np.sqrt(mind2)


def covering_radius(features, centers, *, center_features=None) -> float:
    """Largest distance from any point to its nearest centre (lower is better coverage).

    Computed in row chunks with matrix-matrix products, so memory stays at a few tens of MB
    even for 200,000 x 512 points and 10,000 centres.

    Parameters
    ----------
    features : array_like, shape (n, d), real
        All points to cover.
    centers : array_like of int, shape (m,), or boolean mask of shape (n,)
        Positions of the chosen centres.
    center_features : array_like, shape (p, d), optional
        Extra centres outside ``features``.

    Returns
    -------
    float
        ``max_i min_j ||features[i] - centre_j||``; ``inf`` if there is no centre.

    Raises
    ------
    ConfigError
        Bad shapes, NaNs, positions out of range.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [4.0]], dtype=np.float32)
    >>> covering_radius(X, [0, 2])
    1.0
    """
    return float(min_distances(features, centers, center_features=center_features).max())


def _fold_initial(X, xx, mind2, init_idx: np.ndarray, init_features: np.ndarray | None) -> None:
    """Fold centres (positions and/or extra rows) into mind2, a block of centres at a time."""
    for start in range(0, len(init_idx), _CENTRE_CHUNK):
        sel = init_idx[start:start + _CENTRE_CHUNK]
        _fold_centres(X, xx, mind2, X[sel], xx[sel])
    if init_features is not None and len(init_features):
        ff = np.einsum("ij,ij->i", init_features, init_features)
        for start in range(0, len(init_features), _CENTRE_CHUNK):
            sl = slice(start, start + _CENTRE_CHUNK)
            _fold_centres(X, xx, mind2, init_features[sl], ff[sl])


# --------------------------------------------------------------------------- the two greedies


def _greedy_exact(X, xx, mind2, k, out, t):
    """Plain incremental greedy: one matrix-vector product over X per pick."""
    n = X.shape[0]
    dots = np.empty(n, dtype=np.float32)
    while t < k:
        c = int(np.argmax(mind2))
        out[t] = c
        t += 1
        if t == k:
            break
        mind2[c] = -np.inf
        np.dot(X, X[c], out=dots)
        dots *= -2.0
        dots += xx
        dots += xx[c]
        np.minimum(mind2, dots, out=mind2)


class _Coverage:
    """Upper bounds ``mind2`` of every point's squared distance to its nearest centre.

    ``mind2[i]`` is the minimum over the centres *folded into* point i, so it is never below
    the true value. The first ``n_anchors`` centres are folded into every point (dense,
    BLAS-3) while each point remembers its nearest one; their cells then become fixed groups
    with centroids. Every later centre is folded only into the ``n_probe`` groups whose
    centroids are nearest (like an IVF index): the points it can move are almost always
    there. A point the fold skipped keeps a bound that may be too high; :meth:`exact` removes
    that slack for the one point the greedy is about to pick, which keeps the greedy exact.
    Ineligible points carry ``mind2 = -inf`` and never change.
    """

    def __init__(self, X, xx, mind2, n_anchors: int, n_probe: int, capacity: int):
        self.X, self.xx, self.mind2 = X, xx, mind2
        self.n_anchors = int(n_anchors)
        self.n_probe = int(n_probe)
        self.n_dense = 0  # centres folded into every point
        self.n_total = 0  # centres stored (folded or not)
        self.store = np.empty((capacity, X.shape[1]), dtype=np.float32) if n_anchors else None
        self.store_cc = np.empty(capacity, dtype=np.float32) if n_anchors else None
        self.anchor = np.full(len(X), -1, dtype=np.int64) if n_anchors else None
        self.groups = None
        # mind2[i] is exact w.r.t. the first checked_upto[i] stored centres
        self.checked_upto = np.zeros(len(X), dtype=np.int64) if n_anchors else None

    @property
    def probing(self) -> bool:
        return self.groups is not None

    # -- dense fold: all rows x the given centres
    def _fold_dense(self, C, cc, label0=None):
        X, xx, mind2 = self.X, self.xx, self.mind2
        n = X.shape[0]
        for r0 in range(0, n, _ROW_CHUNK):
            r1 = min(r0 + _ROW_CHUNK, n)
            block = X[r0:r1] @ C.T
            block *= -2.0
            block += cc
            if label0 is None:
                best = block.min(axis=1)
                best += xx[r0:r1]
                np.minimum(mind2[r0:r1], best, out=mind2[r0:r1])
            else:
                j = block.argmin(axis=1)
                best = block[np.arange(r1 - r0), j] + xx[r0:r1]
                better = best < mind2[r0:r1]
                mind2[r0:r1][better] = best[better]
                self.anchor[r0:r1][better] = label0 + j[better]

    def _build_groups(self):
        X = self.X
        members = np.flatnonzero(self.anchor >= 0)
        labels = self.anchor[members]
        order = members[np.argsort(labels, kind="stable")]
        counts = np.bincount(labels, minlength=self.n_anchors)
        counts = counts[counts > 0]
        starts = np.concatenate([[0], np.cumsum(counts)])
        mu = np.empty((len(counts), X.shape[1]), dtype=np.float32)
        for g in range(len(counts)):
            mu[g] = X[order[starts[g]:starts[g + 1]]].mean(axis=0, dtype=np.float64)
        self.groups = (order, starts, mu, np.einsum("ij,ij->i", mu, mu))
        self.anchor = None

    # -- probed fold: each centre into its n_probe nearest groups
    def _fold_probed(self, C, cc):
        X, xx, mind2 = self.X, self.xx, self.mind2
        order, starts, mu, mumu = self.groups
        n_groups = len(mumu)
        if n_groups == 0:  # no open point had a cell: nothing left to update
            return
        d2 = mumu[None, :] - 2.0 * (C @ mu.T)  # + cc, constant per row
        probe = min(self.n_probe, n_groups)
        if probe < n_groups:
            near = np.argpartition(d2, probe - 1, axis=1)[:, :probe]
        else:
            near = np.broadcast_to(np.arange(n_groups), (len(C), n_groups))
        pair_group = near.ravel()
        pair_centre = np.repeat(np.arange(len(C)), probe)
        by_group = np.argsort(pair_group, kind="stable")
        pair_group, pair_centre = pair_group[by_group], pair_centre[by_group]
        cut = np.flatnonzero(np.diff(pair_group)) + 1
        for gs, cs in zip(np.split(pair_group, cut), np.split(pair_centre, cut)):
            g = gs[0]
            rows = order[starts[g]:starts[g + 1]]
            block = X[rows] @ C[cs].T
            block *= -2.0
            block += cc[cs]
            best = block.min(axis=1)
            best += xx[rows]
            mind2[rows] = np.minimum(mind2[rows], best)

    def _remember(self, C, cc):
        if self.store is not None:
            self.store[self.n_total:self.n_total + len(C)] = C
            self.store_cc[self.n_total:self.n_total + len(C)] = cc
        self.n_total += len(C)

    def fold(self, C, cc):
        """Fold centres ``C`` (rows, float32) with squared norms ``cc`` into ``mind2``."""
        self._remember(C, cc)
        while len(C):
            if self.probing:
                self._fold_probed(C, cc)
                return
            if not self.n_anchors:
                self._fold_dense(C, cc)
                self.n_dense += len(C)
                return
            take = min(len(C), self.n_anchors - self.n_dense)
            self._fold_dense(C[:take], cc[:take], label0=self.n_dense)
            self.n_dense += take
            C, cc = C[take:], cc[take:]
            if self.n_dense == self.n_anchors:
                self._build_groups()

    def exact(self, i: int, n_recent: int = 0) -> float:
        """True squared distance of point ``i`` to every stored centre but the newest
        ``n_recent`` (which the caller tracks itself). Centres folded densely are in
        ``mind2`` already, and so are those before the point's last check (``checked_upto``)."""
        lo = max(self.n_dense, int(self.checked_upto[i]))
        hi = self.n_total - n_recent
        best = float(self.mind2[i])
        if hi > lo:
            x = self.X[i]
            dots = self.store[lo:hi] @ x
            dots *= -2.0
            dots += self.store_cc[lo:hi]
            best = min(best, float(dots.min()) + float(self.xx[i]))
        return best

    def fold_positions(self, idx):
        for start in range(0, len(idx), _CENTRE_CHUNK):
            sel = idx[start:start + _CENTRE_CHUNK]
            self.fold(self.X[sel], self.xx[sel])

    def fold_rows(self, F):
        ff = np.einsum("ij,ij->i", F, F)
        for start in range(0, len(F), _CENTRE_CHUNK):
            self.fold(F[start:start + _CENTRE_CHUNK], ff[start:start + _CENTRE_CHUNK])


def _greedy_fast(X, xx, cover: _Coverage, k, out, t, front_size, max_pending):
    """Blocked lazy greedy: the same picks as `_greedy_exact`, without a pass per pick.

    Invariants: ``mind2`` is an upper bound of every point's true squared distance to the
    centres; ``front_val`` is exact, w.r.t. the centres picked since the last rebuild, for the
    points in ``front`` (and exact w.r.t. all centres where ``checked``); every point outside
    the front has ``mind2 <= bound``, so its true value is at most ``bound``. A front point is
    picked only when checked and at least ``bound``: it is a true farthest point.
    """
    mind2 = cover.mind2
    n = X.shape[0]
    pending: list[int] = []
    state = {}

    def rebuild():
        if state:
            # hand what the front learnt back to mind2 (both are upper bounds); a checked
            # front point is exact w.r.t. every centre stored so far, pending ones included
            front, val = state["front"], state["val"]
            open_ = val > -np.inf
            mind2[front[open_]] = np.minimum(mind2[front[open_]], val[open_])
            if cover.probing:
                done = state["checked"] & open_
                cover.checked_upto[front[done]] = cover.n_total
        if pending:
            sel = np.asarray(pending, dtype=np.int64)
            cover.n_total -= len(sel)  # stored at pick time; fold without storing twice
            cover.fold(X[sel], xx[sel])
            pending.clear()
        n_open = int(np.count_nonzero(mind2 > -np.inf))
        size = min(front_size, n_open)
        if size >= n_open:
            front = np.flatnonzero(mind2 > -np.inf)
            bound = -np.inf
        else:
            part = np.argpartition(mind2, n - size - 1)
            front = part[n - size:]
            bound = float(mind2[part[n - size - 1]])
        front = np.sort(front)  # sequential gather; also keeps lowest-index-first among ties
        if cover.probing:
            checked = cover.checked_upto[front] >= cover.n_total
        else:
            checked = np.ones(len(front), dtype=bool)
        state.update(front=front, Xf=X[front], xxf=xx[front], val=mind2[front].copy(),
                     bound=bound, checked=checked, dots=np.empty(len(front), dtype=np.float32))

    rebuild()
    while t < k:
        front, val, checked = state["front"], state["val"], state["checked"]
        j = int(np.argmax(val))
        if val[j] < state["bound"] or len(pending) >= max_pending:
            rebuild()
            continue
        if not checked[j]:
            i = int(front[j])
            exact = cover.exact(i, n_recent=len(pending))
            val[j] = min(val[j], exact)
            mind2[i] = min(mind2[i], exact)
            cover.checked_upto[i] = cover.n_total - len(pending)
            checked[j] = True
            continue
        c = int(front[j])
        out[t] = c
        t += 1
        if t == k:
            break
        mind2[c] = -np.inf
        val[j] = -np.inf
        dots = state["dots"]
        np.dot(state["Xf"], X[c], out=dots)
        dots *= -2.0
        dots += state["xxf"]
        dots += xx[c]
        np.minimum(val, dots, out=val)
        cover._remember(X[c:c + 1], xx[c:c + 1])
        pending.append(c)


def kcenter_greedy(features, k: int, *, exclude=None, initial=None, initial_features=None,
                   method: str = "auto", rng=0, front_size: int = 2048,
                   max_pending: int = 1024, n_groups: int | None = None,
                   n_probe: int = 8) -> np.ndarray:
    """Pick ``k`` points by k-center greedy (farthest-first traversal).

    Each pick is the selectable point farthest (Euclidean) from every centre so far: the
    ``initial`` points, the ``initial_features`` rows and the earlier picks. Diversity, not
    model uncertainty: a batch of these does not hold near-duplicates. The covering radius is
    at most twice the best possible with the same number of centres (Gonzalez 1985).

    Parameters
    ----------
    features : array_like, shape (n, d), real
        One feature row per candidate; used as float32 (a float64 input is copied once).
    k : int
        Number of points to pick, ``1 <= k <= number of selectable points``.
    exclude : boolean mask of shape (n,) or int positions, optional
        Points that must not be picked (e.g. already reviewed).
    initial : boolean mask of shape (n,) or int positions, optional
        Points that already count as centres (e.g. already reviewed); they are never picked.
        Without any initial centre the first pick is drawn uniformly by ``rng``.
    initial_features : array_like, shape (m, d), optional
        Extra centres that are not candidates (e.g. seed-set embeddings).
    method : {"auto", "exact", "fast"}
        ``"exact"``: the plain loop, one pass over ``features`` per pick. ``"fast"``: the same
        greedy with blocked lazy updates and triangle-inequality pruning (module docstring);
        same picks up to float rounding, several times faster at scale. ``"auto"`` uses
        ``"fast"`` from n x d >= 4,000,000 values (16 MB) on.
    rng : int or numpy.random.Generator
        Seed for the first pick (used only when there is no initial centre).
    front_size : int
        ``"fast"`` only: points kept exactly up to date between folds.
    max_pending : int
        ``"fast"`` only: fold after at most this many picks.
    n_groups : int, optional
        ``"fast"`` only: the cells of the first ``n_groups`` centres become the groups used for
        probing (default ``clip(k // 8, 16, 1024)``; 0 folds every centre into every point).
    n_probe : int
        ``"fast"`` only: each later centre is folded into its ``n_probe`` nearest groups; the
        others are caught by an exact check of each pick, so this trades speed, not quality.

    Returns
    -------
    numpy.ndarray, shape (k,), int64
        Distinct positions in pick order (first = farthest from the initial centres).

    Raises
    ------
    ConfigError
        Bad shapes or dtypes, NaN/inf features, positions out of range, ``k`` not in
        ``1..selectable``, unknown ``method``, non-positive tuning parameters.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.1, 0.0]])
    >>> kcenter_greedy(X, 2, initial=[0]).tolist()
    [3, 1]
    """
    X = as_features(features)
    n, d = X.shape
    method = check_method(method)
    for pname, val, low in (("front_size", front_size, 1), ("max_pending", max_pending, 1),
                            ("n_groups", 0 if n_groups is None else n_groups, 0),
                            ("n_probe", n_probe, 1)):
        if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, np.integer)) or val < low:
            raise bad(pname, f"an integer >= {low}", val)
    excluded = as_mask(exclude, n, name="exclude")
    init_mask = as_mask(initial, n, name="initial")
    extra = None
    if initial_features is not None:
        extra = as_features(initial_features, name="initial_features")
        if extra.shape[1] != d:
            raise ConfigError(
                f"initial_features has {extra.shape[1]} dims but features has {d}; "
                "use features from the same featurizer"
            )
        if len(extra) == 0:
            extra = None
    selectable = ~(excluded | init_mask)
    n_sel = int(selectable.sum())
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ConfigError(f"k must be an int, got {k!r}")
    if k < 1 or k > n_sel:
        raise ConfigError(
            f"k={k} but there are {n_sel} selectable points (of {n}); pass 1 <= k <= {n_sel}"
        )
    gen = as_rng(rng)
    if method == "auto":
        method = "fast" if n * d >= AUTO_FAST_MIN_VALUES else "exact"
    if n_groups is None:
        n_groups = int(np.clip(k // 8, 16, 1024))

    xx = np.einsum("ij,ij->i", X, X)
    mind2 = np.full(n, np.inf, dtype=np.float32)
    mind2[~selectable] = -np.inf  # never picked, never updated
    n_init = int(init_mask.sum()) + (0 if extra is None else len(extra))
    cover = _Coverage(X, xx, mind2, n_groups if method == "fast" else 0, n_probe,
                      capacity=n_init + k)
    init_idx = np.flatnonzero(init_mask)
    cover.fold_positions(init_idx)
    if extra is not None:
        cover.fold_rows(extra)

    out = np.empty(k, dtype=np.int64)
    t = 0
    if len(init_idx) == 0 and extra is None:
        first = int(gen.choice(np.flatnonzero(selectable)))
        out[0] = first
        t = 1
        mind2[first] = -np.inf
        if k > 1:
            cover.fold(X[first:first + 1], xx[first:first + 1])
    if t < k:
        if method == "exact":
            _greedy_exact(X, xx, mind2, k, out, t)
        else:
            _greedy_fast(X, xx, cover, k, out, t, int(front_size), int(max_pending))
    return out
