"""Does the active-learning loop save labels? Every registered strategy against random.

    python benchmarks/active_learning.py                     # both pools, every strategy, 40 seeds
    python benchmarks/active_learning.py --quick             # 3 seeds, 6 batches: a sanity run
    python benchmarks/active_learning.py --pools mixed --strategies random,hybrid --seeds 8
    python benchmarks/active_learning.py --spec stats-hgb --seeds 12 --no-ablations \
        --strategies random,uncertainty,hybrid,hybrid-audit            # another head

Results and what they mean: ``docs/label-efficiency.md``.

Not part of the test run; prints markdown tables. The loop is simulated on synthetic pools whose
truth is known exactly:

* **Pools.** Scenes from :func:`rorem_data.testing.synthetic.make_scene` (64 px, one or two
  objects). Every (image, object mask) item gets the results of the two classical removers
  (OpenCV Telea and Navier-Stokes, :func:`rorem_data.removers.factory.load_remover`) and of
  :func:`~rorem_data.testing.synthetic.degrade` (a clean fill, or residue / hallucination /
  blur / outside damage of random strength). Each candidate's truth is the noise-free
  judgment of :func:`rorem_data.testing.simulate.judge` (the rule the simulated reviewer uses).
  ``mixed``: one degraded result per item (about half the candidates succeed; automation at
  90% precision is rarely provable with 600 labels). ``mostly-clean``: two degraded results
  per item, 70% of them clean (about 63% succeed, like a decent remover). Features come from
  the ``stats`` featurizer, computed once and cached in ``--cache-dir`` (a .npy per pool).
* **Reviewer.** Judges each queued candidate against the truth and flips it with probability
  ``--noise`` (3%), drawn once per seed so every strategy meets the same mistakes.
* **Loop.** ``--batches`` batches of ``--batch-size`` labels. The first batch is random for
  every strategy that needs a discriminator (the same batch for a given seed); ``kcenter`` and
  ``stratified`` choose it themselves. After each batch the ``stats-logistic`` head is trained
  the way ``rorem-data discriminator train`` does it (a stratified 30% held-out split, Platt
  calibration on it); its calibrated scores drive the next selection (``proba``), as the
  stored scores of a version drive ``rorem-data select``. ``--spec`` trains another
  discriminator spec's head instead (``--head-params`` overrides its parameters).
* **Designs from the literature** (rows, not registered strategies): *typical clusters*
  (Hacohen et al., ICML 2022, TypiClust: k-means with as many clusters as labels after the
  batch, the most typical candidate - nearest its centre - of each of the largest clusters no
  label covers yet) and *importance-weighted uncertainty* (Beygelzimer et al., ICML 2009,
  IWAL: candidates drawn with probability rising with uncertainty from a floor of 0.3, the
  head trained with weights 1/q, which removes the sampling bias uncertainty sampling gives a
  misspecified model; scikit-learn's weighted logistic regression on the standardised
  features, as the ``logistic`` head, since heads take no weights). With ``--spec`` other than
  a logistic head the IWAL row is skipped. And one row no real loop can run, as a check on the
  idea that labels at the boundary are what a head lacks: *oracle boundary* takes the candidates
  nearest 0.5 under the head trained on every candidate's noise-free truth.
* **References** per pool: the head's AUC with every candidate labelled by the noisy reviewer
  (the most labels could ever give) and with ``2 x`` the budget drawn at random, so that
  "half of random's labels" can be read against what doubling the labels is worth.
* **(a) AUC**: a head trained on every label so far, against the noise-free truth on all
  candidates.
* **(b) Automation yield**: the share of all candidates auto-accepted at ``--target``
  precision with ``--confidence`` - :func:`rorem_data.stats.thresholds.choose_accept_threshold`
  on the held-out calibrated scores with the ``min_accepted`` start of
  ``rounds/automation.py``, applied to the unreviewed candidates (one threshold for the whole
  pool; the project also runs it per remover) - counted only when the true precision of those
  accepts holds; runs where it did not are reported as failures. Averaged over ``--splits``
  random held-out splits per step (the expected yield of the project's random split).

Means come with 95% t-intervals over seeds. "Labels to reach" interpolates the mean curves and
gives a paired bootstrap interval over seeds (the same seeds, noise and first batch for every
strategy), as a multiple of random's labels. Workers are processes (``--workers``, one BLAS
thread each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # parallel over processes, not inside BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rorem_data.selection.strata import quantile_bins  # noqa: E402
from rorem_data.selection.strategies import get_strategy, list_strategies, select  # noqa: E402

CACHE_VERSION = 1

POOLS = {
    "mixed": {"n_scenes": 1050, "n_degraded": 1, "p_clean": None, "seed": 0},
    "mostly-clean": {"n_scenes": 790, "n_degraded": 2, "p_clean": 0.7, "seed": 0},
}

#: Benchmark rows beyond "every registered strategy with its defaults": label -> (strategy,
#: fixed params, params from the current discriminator version).
ABLATIONS = {
    "hybrid beta=5 std": ("hybrid", {"beta": 5.0, "standardize": True}, None),
    "hybrid-audit t=accept": ("hybrid-audit", {}, lambda version: (
        {"accept_threshold": version["threshold"]} if version["threshold"] is not None else {})),
    "hybrid-audit share=0.5 region=0.4": ("hybrid-audit",
                                          {"audit_share": 0.5, "region_share": 0.4}, None),
    "hybrid-audit share=0.4 region=0.4": ("hybrid-audit",
                                          {"audit_share": 0.4, "region_share": 0.4}, None),
    # the whole batch in the accept region: labels for the threshold test, none for learning
    "hybrid-audit share=1": ("hybrid-audit", {"audit_share": 1.0}, None),
    # the default until the version certifies an accept threshold, then the whole batch
    # uniformly among the candidates at or above it
    "hybrid-audit share=1 once certified": ("hybrid-audit", {}, lambda version: (
        {"audit_share": 1.0, "accept_threshold": version["threshold"]}
        if version["threshold"] is not None else {})),
}

#: Designs that are not registered strategies - two from the literature (they did not beat the
#: registered ones here) and an oracle no real loop can run: label -> the :class:`Loop` method
#: ``method(version, reviewed, rng, batch) -> (picks, training weights of the picks or None)``.
DESIGNS = {
    "typical clusters (TypiClust)": "typical",
    "importance-weighted uncertainty (IWAL)": "iwal",
    "oracle boundary (knows the all-label head)": "oracle_boundary",
}


# ============================================================================ the pools


def build_pool(name: str, cache_dir: str, stats_config: dict | None = None) -> dict:
    """Features, truth and metadata of pool ``name`` (built once, then read from the cache);
    ``stats_config``: options of the ``stats`` featurizer (e.g. ``{"difficulty": false}``, the
    44 columns of earlier releases)."""
    from rorem_data.features.base import get_featurizer

    cfg = POOLS[name]
    featurizer = get_featurizer("stats", **(stats_config or {}))
    tag = hashlib.sha256(json.dumps([CACHE_VERSION, name, cfg, featurizer.key],
                                    sort_keys=True).encode()).hexdigest()[:12]
    feat_path = os.path.join(cache_dir, f"rorem-al-{name}-{tag}.npy")
    meta_path = os.path.join(cache_dir, f"rorem-al-{name}-{tag}-meta.npz")
    if os.path.exists(feat_path) and os.path.exists(meta_path):
        with np.load(meta_path, allow_pickle=False) as meta:
            out = {k: meta[k] for k in meta.files}
        out["features"] = np.load(feat_path, allow_pickle=False)
        out["cached"] = True
        return out
    from rorem_data.removers.factory import load_remover
    from rorem_data.testing import synthetic
    from rorem_data.testing.simulate import judge

    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg["seed"])
    removers = [load_remover("classical:telea"), load_remover("classical:ns")]
    modes = ("clean",) + synthetic.FAILURES
    sources, results, masks = [], [], []
    truth, kind, category, area = [], [], [], []
    for _ in range(cfg["n_scenes"]):
        scene = synthetic.make_scene(rng, size=64, n_objects=int(rng.integers(1, 3)),
                                     max_frac=0.35)
        for k, mask in enumerate(scene.masks):
            src, tru = scene.source, scene.truths[k]
            outs = [(r.spec.method, r.remove([src], [mask], output="numpy")[0]) for r in removers]
            for _ in range(cfg["n_degraded"]):
                if cfg["p_clean"] is None:
                    mode = modes[rng.integers(len(modes))]
                elif rng.random() < cfg["p_clean"]:
                    mode = "clean"
                else:
                    mode = synthetic.FAILURES[rng.integers(len(synthetic.FAILURES))]
                outs.append((mode, synthetic.degrade(src, tru, mask, mode, seed=rng,
                                                     strength=rng.uniform(0.0, 1.0))))
            for what, res in outs:
                sources.append(src)
                results.append(res)
                masks.append(mask)
                truth.append(judge(src, res, tru, mask)[0] == "accepted")
                kind.append(what)
                category.append(scene.categories[k])
                area.append(float(mask.mean()))
    features = np.asarray(featurizer.featurize_arrays(sources, results, masks), dtype=np.float32)
    out = {"truth": np.array(truth, dtype=bool), "kind": np.array(kind),
           "category": np.array(category), "area": np.array(area)}
    os.makedirs(cache_dir, exist_ok=True)
    np.save(feat_path, features, allow_pickle=False)
    np.savez(meta_path, **out)
    out["features"] = features
    out["cached"] = False
    out["seconds"] = time.perf_counter() - t0
    return out


# ============================================================================ one simulated loop


class Loop:
    """One strategy, one seed: batches of labels, a discriminator after each, and the metrics."""

    def __init__(self, pool: dict, args):
        from rorem_data.discriminators.specs import get_spec

        self.X = pool["features"]
        self.truth = pool["truth"]
        self.n = len(self.truth)
        self.args = args
        self.spec = get_spec(args.spec)
        self.head_params = json.loads(args.head_params) if args.head_params else {}
        self.strata = {"category": pool["category"], "area": quantile_bins(pool["area"], 4)}
        mean, std = self.X.mean(axis=0), self.X.std(axis=0)
        self.Z = (self.X - mean) / np.where(std > 0, std, 1.0)
        self.z_norm = np.linalg.norm(self.Z, axis=1)
        self._p_star = None  # the all-truth head's P(success), for the oracle row

    def reviewer(self, seed: int) -> np.ndarray:
        """The simulated reviewer's judgments of every candidate: the truth, flipped with
        probability ``--noise``, drawn once per seed so every row meets the same mistakes."""
        return self.truth ^ (np.random.default_rng([seed, 0xF11B]).random(self.n) < self.args.noise)

    def _fit(self, idx, y):
        return self.spec.build(**self.head_params).fit(self.X[idx], y)

    def _fit_weighted(self, idx, y, w):
        """The ``logistic`` head's model (z-scored features, L2 logistic regression, its C)
        with sample weights, which :class:`LogisticHead` does not take."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        params = {**self.spec.params, **self.head_params}
        model = make_pipeline(StandardScaler(), LogisticRegression(
            C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 1000))))
        return model.fit(self.X[idx], y, logisticregression__sample_weight=w)

    def typical(self, version, reviewed, rng, batch):
        """TypiClust: the most typical candidate of each of the largest uncovered clusters."""
        from sklearn.cluster import MiniBatchKMeans

        k = int(reviewed.sum()) + batch
        km = MiniBatchKMeans(k, random_state=int(rng.integers(2**31)), n_init=1,
                             batch_size=2048).fit(self.Z)
        lab = km.labels_
        covered = np.zeros(k, dtype=bool)
        covered[lab[reviewed]] = True
        dist = np.linalg.norm(self.Z - km.cluster_centers_[lab], axis=1)
        dist[reviewed] = np.inf
        best = np.full(k, -1)
        order = np.lexsort((dist, lab))  # by cluster, then nearest the centre first
        first = order[np.r_[True, lab[order][1:] != lab[order][:-1]]]
        best[lab[first]] = first
        sizes = np.bincount(lab, minlength=k)
        picks = [int(best[c]) for c in np.argsort(-sizes, kind="stable")
                 if not covered[c] and best[c] >= 0 and np.isfinite(dist[best[c]])][:batch]
        if len(picks) < batch:  # fewer uncovered clusters than the batch: fill at random
            free = np.flatnonzero(~reviewed)
            free = free[~np.isin(free, picks)]
            picks += rng.choice(free, batch - len(picks), replace=False).tolist()
        return np.asarray(picks, dtype=np.int64), None

    def iwal(self, version, reviewed, rng, batch, floor: float = 0.3):
        """IWAL: draw by uncertainty from a floor; weights 1/q for training (mean 1)."""
        free = np.flatnonzero(~reviewed)
        u = 1.0 - 2.0 * np.abs(version["p_all"][free] - 0.5)
        q = floor + (1.0 - floor) * u
        q = q / q.sum()
        pos = rng.choice(len(free), batch, replace=False, p=q)
        return free[pos], 1.0 / (q[pos] * len(free))

    def oracle_boundary(self, version, reviewed, rng, batch):
        """The free candidates nearest P = 0.5 under the head fit on all noise-free truth."""
        if self._p_star is None:
            every = np.arange(self.n)
            self._p_star = self._fit(every, self.truth.astype(np.int64)).predict_proba(self.X)[:, 1]
        free = np.flatnonzero(~reviewed)
        gap = np.abs(self._p_star[free] - 0.5)
        return free[np.argsort(gap, kind="stable")[:batch]], None

    def references(self, seed: int) -> tuple[float, float]:
        """AUC with every candidate labelled by the noisy reviewer, and with 2x the budget."""
        from sklearn.metrics import roc_auc_score

        a = self.args
        reviewer = self.reviewer(seed).astype(np.int64)
        every = np.arange(self.n)
        double = np.random.default_rng([seed, 0xD0]).permutation(self.n)[
            :min(self.n, 2 * a.batches * a.batch_size)]
        return tuple(float(roc_auc_score(self.truth,
                                         self._fit(i, reviewer[i]).predict_proba(self.X)[:, 1]))
                     for i in (every, double))

    def version(self, idx, y, seed: int, step: int, weights=None) -> dict:
        """The discriminator versions after a batch: AUC (all labels), yield (held-out splits).

        ``weights`` (IWAL): training weights of the labels, used by every fit."""
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split

        from rorem_data.core.errors import ConfigError
        from rorem_data.stats.calibration import get_calibrator
        from rorem_data.stats.intervals import min_trials_for_lower_bound
        from rorem_data.stats.thresholds import choose_accept_threshold

        a = self.args

        def fit(pos):  # the head on the labels at positions ``pos`` of ``idx``
            if weights is None:
                return self._fit(idx[pos], y[pos])
            return self._fit_weighted(idx[pos], y[pos], weights[pos])

        p_all = fit(np.arange(len(idx))).predict_proba(self.X)[:, 1]
        out = {"auc": float(roc_auc_score(self.truth, p_all)), "p_all": p_all, "labels": idx,
               "y": y, "scores": p_all, "threshold": None}
        free = np.ones(self.n, dtype=bool)
        free[idx] = False
        need = min_trials_for_lower_bound(a.target, confidence=a.confidence)
        yields, fails, found = [], [], []
        for split in range(a.splits):
            try:
                tr, ho = train_test_split(np.arange(len(idx)), test_size=a.holdout, stratify=y,
                                          random_state=(seed * 1009 + step) * 31 + split)
            except ValueError:  # a class with a single label: no split yet
                break
            if len(set(y[tr].tolist())) < 2:
                break
            raw = fit(tr).predict_proba(self.X)[:, 1]
            scores = get_calibrator("platt").fit(raw[idx[ho]], y[ho]).predict(raw)
            threshold = None
            try:
                start = int(max(need, min(3 * need, len(ho) // 3)))  # rounds/automation.py
                threshold = choose_accept_threshold(
                    scores[idx[ho]], y[ho], target_precision=a.target, confidence=a.confidence,
                    min_accepted=start).threshold
            except ConfigError:
                pass
            if split == 0:  # the version the next selection uses
                out["scores"], out["threshold"] = scores, threshold
            held, share = True, 0.0
            if threshold is not None:
                accepted = free & (scores >= threshold)
                share = accepted.sum() / self.n
                held = bool(accepted.sum() == 0
                            or self.truth[accepted].mean() >= a.target)
            found.append(threshold is not None)
            yields.append(share if held else 0.0)
            fails.append(not held)
        out["yield"] = float(np.mean(yields)) if yields else 0.0
        out["fail"] = float(np.mean(fails)) if fails else 0.0
        out["found"] = float(np.mean(found)) if found else 0.0
        return out

    def committee(self, version: dict, rng, members: int = 5) -> np.ndarray:
        """Query by bagging: P(success) of heads trained on bootstrap resamples of the labels."""
        idx, y = version["labels"], version["y"]
        rows = []
        for _ in range(members):
            b = rng.choice(len(idx), size=len(idx), replace=True)
            if len(set(y[b].tolist())) < 2:
                b = np.arange(len(idx))
            rows.append(self._fit(idx[b], y[b]).predict_proba(self.X)[:, 1])
        return np.stack(rows)

    def inputs(self, strategy: str, params: dict, version: dict | None, rng) -> dict:
        """What the benchmark hands ``select`` for this strategy, from the current version."""
        needs = get_strategy(strategy).needs(params)
        kw = {"n": self.n}
        if "proba" in needs:
            kw["proba"] = version["scores"]
        if "features" in needs:
            kw["features"] = self.X  # raw, as `rorem-data featurize` caches them
        if "committee" in needs:
            kw["committee"] = self.committee(version, rng)
        if "scores" in needs:  # expected gradient length of the logistic head: p(1-p)|z|
            p = version["scores"]
            kw["scores"] = p * (1.0 - p) * self.z_norm
        if "strata" in needs:
            kw["strata"] = self.strata
        return kw

    def run(self, strategy: str, params: dict, dynamic, seed: int) -> np.ndarray:
        """Per batch: labels, AUC, yield, failure share, threshold found; shape (batches, 5).

        ``strategy`` is a registered strategy, or ``"design:<name>"`` with a :class:`Loop`
        method name from :data:`DESIGNS`; a design that returns training weights (IWAL) has
        every fit of the run weighted."""
        a = self.args
        design = getattr(self, strategy.split(":", 1)[1]) if strategy.startswith("design:") \
            else None
        weights: list[np.ndarray] = []  # training weights per batch (1 unless the design sets them)
        weighted_run = False
        reviewer = self.reviewer(seed)
        reviewed = np.zeros(self.n, dtype=bool)
        order: list[int] = []
        needs_model = design is not None or any(
            x in get_strategy(strategy).needs(params) for x in ("proba", "committee", "scores"))
        version = None
        rows = []
        for step in range(a.batches):
            rng = np.random.default_rng([seed, step])
            w = None
            if version is None and needs_model:
                picks = select("random", a.batch_size, n=self.n, reviewed=reviewed, rng=rng)
            elif design is not None:
                picks, w = design(version, reviewed, rng, a.batch_size)
            else:
                extra = dynamic(version) if (dynamic is not None and version) else {}
                kw = self.inputs(strategy, {**params, **extra}, version, rng)
                picks = select(strategy, a.batch_size, reviewed=reviewed, rng=rng,
                               **kw, **params, **extra)
            if reviewed[picks].any() or len(np.unique(picks)) != a.batch_size:
                raise RuntimeError(f"{strategy} broke the contract at step {step}")
            reviewed[picks] = True
            order.extend(picks.tolist())
            weights.append(np.ones(len(picks)) if w is None else w)
            weighted_run |= w is not None
            idx = np.asarray(order)
            weighted = np.concatenate(weights) if weighted_run else None
            version = self.version(idx, reviewer[idx].astype(np.int64), seed, step, weighted)
            rows.append((len(idx), version["auc"], version["yield"], version["fail"],
                         version["found"]))
        return np.asarray(rows)


# ============================================================================ running the rows

_STATE: dict = {}

#: The row of per-seed reference AUCs (every candidate labelled; twice the budget at random).
REFERENCES = "__references__"


def _init_worker(pools, args):
    warnings.simplefilter("ignore")
    _STATE["loops"] = {name: Loop(pool, args) for name, pool in pools.items()}


def _task(job):
    pool_name, label, strategy, params, seed = job
    if strategy == "references":
        t0 = time.perf_counter()
        res = np.asarray(_STATE["loops"][pool_name].references(seed))
        return pool_name, label, seed, res, time.perf_counter() - t0
    dynamic = ABLATIONS[label][2] if label in ABLATIONS else None
    t0 = time.perf_counter()
    res = _STATE["loops"][pool_name].run(strategy, params, dynamic, seed)
    return pool_name, label, seed, res, time.perf_counter() - t0


def run_all(pools: dict, rows: dict, seeds, args) -> dict:
    """{pool: {label: array (seeds, batches, 5)}}, running (row, seed) jobs in worker processes."""
    import multiprocessing as mp

    jobs = [(p, label, strat, params, s) for p in pools for label, (strat, params) in rows.items()
            for s in seeds]
    out = {p: {label: [None] * len(seeds) for label in rows} for p in pools}
    pos = {s: i for i, s in enumerate(seeds)}
    t0 = time.perf_counter()
    done = 0
    if args.workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers, initializer=_init_worker, initargs=(pools, args)) as workers:
            for p, label, seed, res, dt in workers.imap_unordered(_task, jobs):
                out[p][label][pos[seed]] = res
                done += 1
                _progress(done, len(jobs), t0, p, label, seed, dt)
    else:
        _init_worker(pools, args)
        for job in jobs:
            p, label, seed, res, dt = _task(job)
            out[p][label][pos[seed]] = res
            done += 1
            _progress(done, len(jobs), t0, p, label, seed, dt)
    return {p: {label: np.stack(v) for label, v in d.items()} for p, d in out.items()}


def _progress(done, total, t0, pool, label, seed, dt):
    if done % 10 == 0 or done == total:
        print(f"  [{done}/{total}] {time.perf_counter() - t0:.0f} s (last: {pool} {label} seed "
              f"{seed}, {dt:.1f} s)", file=sys.stderr, flush=True)


# ============================================================================ statistics


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of ``values`` (one per seed)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def _clip(interval):
    m, lo, hi = interval
    return m, max(lo, 0.0), min(hi, 1.0)


def labels_to_reach(curve: np.ndarray, target: float, labels: np.ndarray) -> float:
    """First label count (linear interpolation) where the mean ``curve`` reaches ``target``."""
    hit = np.flatnonzero(curve >= target - 1e-12)
    if len(hit) == 0:
        return float("inf")
    i = int(hit[0])
    if i == 0:
        return float(labels[0])
    v0, v1 = curve[i - 1], curve[i]
    return float(labels[i - 1] + (labels[i] - labels[i - 1]) * (target - v0) / (v1 - v0))


def _reach_multiple(res, base, col, idx, labels):
    target = base[idx, -1, col].mean()
    if target <= 0:
        return float("nan")
    return labels_to_reach(res[idx, :, col].mean(axis=0), target, labels) / labels[-1]


def bootstrap(fn, n_seeds: int, n_boot: int, rng) -> tuple[float, float]:
    """95% percentile interval of ``fn(seed indices)`` over paired seed resamples.

    Resamples where ``fn`` is undefined (nan: random's own value is 0 there) are dropped; an
    upper bound of ``inf`` means more than 2.5% of the resamples never reach the target.
    """
    vals = np.array([fn(rng.integers(0, n_seeds, n_seeds)) for _ in range(n_boot)])
    vals = vals[~np.isnan(vals)]
    if len(vals) == 0:
        return float("nan"), float("nan")
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def _fmt_multiple(v, lo, hi) -> str:
    def f(x):
        if np.isnan(x):
            return "n/a"
        return "never" if not np.isfinite(x) else f"{x:.2f}x"
    if np.isnan(v):
        return "n/a (random's is 0)"
    return f"{f(v)} [{f(lo)}, {f(hi)}]"


def _ratio(res, base, col, idx, step):
    b = base[idx, step, col].mean()
    return res[idx, step, col].mean() / b if b > 0 else float("nan")


def summarise(pool_name: str, results: dict, args, refs: np.ndarray) -> dict:
    """Print the tables of one pool; return the headline numbers per row.

    ``refs`` (seeds, 2): AUC with every candidate labelled, and with twice the budget at random.
    """
    base = results["random"]
    labels = base[0, :, 0]
    n_seeds = base.shape[0]
    gen = np.random.default_rng(12345)
    all_idx = np.arange(n_seeds)
    shown = sorted({len(labels) // 4 - 1, len(labels) // 2 - 1, 3 * len(labels) // 4 - 1,
                    len(labels) - 1} - {-1})
    print(f"\n### Pool `{pool_name}`: {args.pool_sizes[pool_name]} candidates, "
          f"{100 * args.pool_success[pool_name]:.1f}% succeed; {n_seeds} seeds\n")
    print("Mean AUC against the noise-free truth, by labels so far:\n")
    print("| strategy | " + " | ".join(str(int(v)) for v in labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for label, res in results.items():
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in res[:, :, 1].mean(axis=0)) + " |")
    print("\nMean automation yield, by labels so far:\n")
    print("| strategy | " + " | ".join(str(int(v)) for v in labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for label, res in results.items():
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in res[:, :, 2].mean(axis=0)) + " |")
    print("\nAUC (mean [95% t-interval] over seeds):\n")
    print("| strategy | " + " | ".join(f"{int(labels[i])} labels" for i in shown) + " |")
    print("|---|" + "---:|" * len(shown))
    for label, res in results.items():
        cells = [t_interval(res[:, i, 1]) for i in shown]
        print(f"| {label} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in cells)
              + " |")
    print(f"\nAutomation yield: share of all candidates auto-accepted at {args.target:g} "
          f"precision ({args.confidence:g} confidence), counted when the true precision held "
          "(mean [95% t-interval]); failures: share of (run, step, split) where it did not:\n")
    print("| strategy | " + " | ".join(f"{int(labels[i])} labels" for i in shown)
          + " | mean over budgets | threshold found | failures |")
    print("|---|" + "---:|" * (len(shown) + 3))
    for label, res in results.items():
        cells = [_clip(t_interval(res[:, i, 2])) for i in shown]
        mean_curve = _clip(t_interval(res[:, :, 2].mean(axis=1)))
        print(f"| {label} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in cells)
              + f" | {mean_curve[0]:.3f} [{mean_curve[1]:.3f}, {mean_curve[2]:.3f}] | "
              f"{res[:, :, 4].mean():.2f} | {res[:, :, 3].mean():.3f} |")
    final_auc = base[:, -1, 1].mean()
    final_yield = base[:, -1, 2].mean()
    every, double = (t_interval(refs[:, 0]), t_interval(refs[:, 1]))
    budget = int(labels[-1])
    half = base[:, len(labels) // 2 - 1, 1].mean()
    print(f"\nReferences (the same head): every candidate labelled by the reviewer, AUC "
          f"{every[0]:.3f} [{every[1]:.3f}, {every[2]:.3f}]; random labels {budget // 2} -> "
          f"{budget} -> {2 * budget}: {half:.3f} -> {final_auc:.3f} -> {double[0]:.3f} "
          f"[{double[1]:.3f}, {double[2]:.3f}]. Reaching random's final AUC with half the "
          f"labels means gaining by the choice of labels what random gains by doubling them "
          f"({final_auc - half:+.3f}; the next doubling gives {double[0] - final_auc:+.3f}).")
    print(f"\nLabels each strategy needs, as a multiple of random's {int(labels[-1])}, to reach "
          f"random's final AUC ({final_auc:.3f}) and final yield ({final_yield:.3f}); yield at "
          "equal labels as a multiple of random's (final budget, and averaged over budgets); "
          "[95% paired bootstrap over seeds]:\n")
    print("| strategy | labels to random's final AUC | labels to random's final yield | "
          "yield vs random, final | yield vs random, all budgets |")
    print("|---|---:|---:|---:|---:|")
    headline = {}
    for label, res in results.items():
        auc_x = _reach_multiple(res, base, 1, all_idx, labels)
        auc_ci = bootstrap(lambda i, res=res: _reach_multiple(res, base, 1, i, labels), n_seeds,
                           args.boot, gen)
        yld_x = _reach_multiple(res, base, 2, all_idx, labels)
        yld_ci = bootstrap(lambda i, res=res: _reach_multiple(res, base, 2, i, labels), n_seeds,
                           args.boot, gen)
        fin = _ratio(res, base, 2, all_idx, -1)
        fin_ci = bootstrap(lambda i, res=res: _ratio(res, base, 2, i, -1), n_seeds, args.boot, gen)

        def area(i, res=res):
            b = base[i, :, 2].mean()
            return res[i, :, 2].mean() / b if b > 0 else float("nan")
        are = area(all_idx)
        are_ci = bootstrap(area, n_seeds, args.boot, gen)
        headline[label] = {"auc_labels_x": auc_x, "auc_labels_ci": auc_ci,
                           "yield_labels_x": yld_x, "yield_final_x": fin, "yield_final_ci": fin_ci,
                           "yield_all_x": are, "yield_all_ci": are_ci}
        print(f"| {label} | {_fmt_multiple(auc_x, *auc_ci)} | {_fmt_multiple(yld_x, *yld_ci)} | "
              f"{_fmt_multiple(fin, *fin_ci)} | {_fmt_multiple(are, *are_ci)} |")
    return headline


# ============================================================================ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pools", default=",".join(POOLS), help="comma-separated: " + ", ".join(POOLS))
    ap.add_argument("--strategies", default=None,
                    help="comma-separated strategy names (default: every registered one)")
    ap.add_argument("--no-ablations", action="store_true", help="skip the parameter variants")
    ap.add_argument("--no-designs", action="store_true",
                    help="skip the literature designs that are not registered strategies")
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--noise", type=float, default=0.03, help="reviewer flip probability")
    ap.add_argument("--target", type=float, default=0.9, help="auto-accept target precision")
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--holdout", type=float, default=0.3, help="held-out share, as `train`")
    ap.add_argument("--splits", type=int, default=5, help="held-out splits averaged per step")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--spec", default="stats-logistic",
                    help="discriminator spec whose head is trained after each batch")
    ap.add_argument("--head-params", default=None, help="JSON overrides of the spec's params")
    ap.add_argument("--default", default="hybrid-audit",
                    help="the strategy checked against the targets")
    ap.add_argument("--cache-dir", default="/tmp")
    ap.add_argument("--stats-config", default=None,
                    help='JSON options of the stats featurizer, e.g. \'{"difficulty": false}\' '
                         "(the 44 columns of earlier releases)")
    ap.add_argument("--quick", action="store_true", help="3 seeds, 6 batches, 200 resamples")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.batches, args.boot = 3, 6, 200
    names = list_strategies() if args.strategies is None else args.strategies.split(",")
    rows = {name: (name, {}) for name in ["random"] + [n for n in names if n != "random"]}
    if not args.no_ablations:
        rows.update({label: (strat, params) for label, (strat, params, _) in ABLATIONS.items()
                     if strat in names or args.strategies is None})
    if not args.no_designs:
        from rorem_data.discriminators.specs import get_spec

        logistic = get_spec(args.spec).head == "logistic"
        rows.update({label: ("design:" + name, {}) for label, name in DESIGNS.items()
                     if name != "iwal" or logistic})
    rows[REFERENCES] = ("references", {})
    t0 = time.perf_counter()
    pools = {}
    args.pool_sizes, args.pool_success = {}, {}
    for name in args.pools.split(","):
        pool = build_pool(name, args.cache_dir,
                          json.loads(args.stats_config) if args.stats_config else None)
        pools[name] = {k: pool[k] for k in ("features", "truth", "category", "area")}
        args.pool_sizes[name] = len(pool["truth"])
        args.pool_success[name] = float(pool["truth"].mean())
        how = "cached" if pool["cached"] else f"built in {pool['seconds']:.0f} s"
        print(f"# pool {name}: {len(pool['truth'])} candidates x {pool['features'].shape[1]} "
              f"features ({how})", file=sys.stderr)
    print(f"# active-learning benchmark: {len(rows)} rows x {args.seeds} seeds x "
          f"{len(pools)} pools; {args.batches} batches of {args.batch_size}; reviewer noise "
          f"{args.noise:g}; target precision {args.target:g} at {args.confidence:g} confidence; "
          f"{args.splits} held-out splits of {args.holdout:g}; {args.workers} workers; "
          f"cpus={os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    results = run_all(pools, rows, list(range(args.seeds)), args)
    for name in pools:
        refs = results[name].pop(REFERENCES)
        head = summarise(name, results[name], args, refs)
        d = head.get(args.default)
        if d is not None:
            ok_auc = d["auc_labels_x"] <= 0.5
            ok_yield = d["yield_final_x"] >= 1.3
            print(f"\n# targets for {args.default!r} on {name}: labels to random's final AUC "
                  f"{d['auc_labels_x']:.2f}x (target <= 0.5x: {'MET' if ok_auc else 'NOT MET'}); "
                  f"yield at {args.batches * args.batch_size} labels {d['yield_final_x']:.2f}x "
                  f"random's, {d['yield_all_x']:.2f}x averaged over budgets (target >= 1.3x: "
                  f"{'MET' if ok_yield else 'NOT MET'})")
    print(f"\n# {time.perf_counter() - t0:.0f} s in total; load average after: "
          f"{os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
