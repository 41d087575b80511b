"""Scoring throughput: read cached features of N candidates and run feature heads on them.

Measures the featurizer-side part of an automation round at the paper's scale (200,000
candidates): open a :class:`~rorem_data.features.cache.FeatureCache`, read every candidate's
features in a given id order, ``predict_proba`` with a fitted
:class:`~rorem_data.discriminators.heads.LogisticHead` and a fitted
:class:`~rorem_data.discriminators.heads.HistGradientBoostingHead` (200 trees, evaluated in plain
numpy from validated node tables). The database write-back of the scores is measured by the
dataset layer's benchmark, not here.

Same-run baselines:

- ``np.load`` of the same matrix from a single ``.npy`` file (the read floor);
- ``sigmoid(X @ w + b)`` in numpy (the compute floor);
- ``sklearn LogisticRegression.predict_proba`` on the same matrix;
- ``sklearn HistGradientBoostingClassifier.predict_proba`` (compiled, OpenMP) for the trees.

Cases: the cache as featurization leaves it (chunks of 256 rows, like ``featurize_paths``'s
default), and after ``compact()`` (one chunk). Feature widths: 44 (``stats``) and 516 (a CLIP
model with 128-d embeddings); pass ``--dims`` for others (e.g. 2052 for ViT-B-32: 1.6 GB).

Run: ``python benchmarks/score.py [--n 200000] [--dims 44 516] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]  # no stdlib shadowing
sys.path.insert(0, os.path.dirname(_HERE))


def timed(fn, reps):
    out, times = None, []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dims", type=int, nargs="+", default=[44, 516])
    ap.add_argument("--chunk", type=int, default=256, help="rows per chunk as written")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--trees", type=int, default=200, help="boosting iterations of the HGB head")
    args = ap.parse_args(argv)

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from rorem_data.discriminators.heads import HistGradientBoostingHead, LogisticHead
    from rorem_data.features.cache import FeatureCache

    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="rorem-bench-score-")
    n = args.n
    ids = [f"{i:024x}" for i in rng.permutation(n)]  # ObjectId-like, written in shuffled order
    order = list(ids)
    rng.shuffle(order)  # read back in another order (as the dataset hands them out)
    rows = []
    try:
        for d in args.dims:
            key = f"bench-{d:010d}"
            X = rng.normal(size=(n, d)).astype(np.float32)
            w = rng.normal(size=d)
            m = min(5000, n)  # the head is trained on the first rows (labelled candidates)
            y = (X[:m] @ w + rng.normal(size=m) > 0).astype(int)
            head = LogisticHead(max_iter=200).fit(X[:m], y)
            sk = LogisticRegression(max_iter=200).fit(X[:m], y)
            hgb_kw = dict(max_iter=args.trees, early_stopping=False, random_state=0)
            hgb = HistGradientBoostingHead(**hgb_kw).fit(X[:m], y)
            sk_hgb = HistGradientBoostingClassifier(**hgb_kw).fit(X[:m], y)
            cache = FeatureCache(tmp, key, {"d": d})
            t = time.perf_counter()
            for k in range(0, n, args.chunk):
                cache.write_chunk(ids[k:k + args.chunk], X[k:k + args.chunk])
            t_write = time.perf_counter() - t
            n_chunks = len(cache.chunk_files())
            pos = {i: k for k, i in enumerate(ids)}
            Xo = X[np.fromiter((pos[i] for i in order), np.int64, n)]
            npy = os.path.join(tmp, f"floor-{d}.npy")
            np.save(npy, Xo)

            def read_fresh():
                return FeatureCache(tmp, key, {"d": d}).read(order)

            Xr, t_read = timed(read_fresh, args.reps)
            assert np.array_equal(Xr, Xo)
            _, t_predict = timed(lambda: head.predict_proba(Xr), args.reps)
            Xd = Xr.astype(np.float64)  # the trees compare in float64, like scikit-learn
            p_hgb, t_hgb = timed(lambda: hgb.predict_proba(Xd), args.reps)
            p_sk_hgb, t_sk_hgb = timed(lambda: sk_hgb.predict_proba(Xd), args.reps)
            assert np.allclose(p_hgb, p_sk_hgb, atol=1e-12)
            _, t_npy = timed(lambda: np.load(npy), args.reps)
            _, t_floor = timed(lambda: 1 / (1 + np.exp(-(Xo @ head.coef_.astype(np.float32)))),
                               args.reps)
            _, t_sk = timed(lambda: sk.predict_proba(Xo), args.reps)
            FeatureCache(tmp, key, {"d": d}).compact()
            _, t_read_c = timed(read_fresh, args.reps)
            rows.append((d, n_chunks, t_write, t_read, t_read_c, t_predict, t_npy, t_floor, t_sk,
                         t_hgb, t_sk_hgb))
            print(f"  d={d}: done", flush=True)
            shutil.rmtree(os.path.join(tmp, key), ignore_errors=True)
            os.remove(npy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"Scoring {n:,} candidates from cached features (median of {args.reps}; seconds)")
    print()
    print("| d | chunks | write (featurize side) | read, chunked | read, compacted | "
          "predict_proba (ours) | **read + predict** | np.load floor | numpy sigmoid floor | "
          "sklearn predict_proba |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d, nc, tw, tr, trc, tp, tn, tf, ts, _, _ in rows:
        print(f"| {d} | {nc} | {tw:.2f} | {tr:.2f} | {trc:.2f} | {tp:.3f} | **{tr + tp:.2f}** "
              f"({n / (tr + tp):,.0f}/s) | {tn:.3f} | {tf:.3f} | {ts:.3f} |")
    print()
    print(f"HistGradientBoosting head, {args.trees} trees (same probabilities, atol 1e-12)")
    print()
    print("| d | ours: numpy traversal of validated tables | sklearn predict_proba (compiled) |")
    print("|---:|---:|---:|")
    for d, *_, th, tsh in rows:
        print(f"| {d} | {th:.2f} s ({n / th:,.0f}/s) | {tsh:.2f} s ({n / tsh:,.0f}/s) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
