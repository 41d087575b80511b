"""Scoring throughput: read cached features of N candidates and run a logistic head on them.

Measures the featurizer-side part of an automation round at the paper's scale (200,000
candidates): open a :class:`~rorem_data.features.cache.FeatureCache`, read every candidate's
features in a given id order, ``predict_proba`` with a fitted
:class:`~rorem_data.discriminators.heads.LogisticHead`. The database write-back of the scores is measured by
the dataset layer's benchmark, not here.

Same-run baselines:

- ``np.load`` of the same matrix from a single ``.npy`` file (the read floor);
- ``sigmoid(X @ w + b)`` in numpy (the compute floor);
- ``sklearn LogisticRegression.predict_proba`` on the same matrix.

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
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from rorem_data.features.cache import FeatureCache
    from rorem_data.features.featurizers import FeatureMatrix
    from rorem_data.discriminators.heads import LogisticHead

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
            head = LogisticHead(max_iter=200).fit(FeatureMatrix(X[:m], key), y)
            sk = LogisticRegression(max_iter=200).fit(X[:m], y)
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
            _, t_predict = timed(lambda: head.predict_proba(FeatureMatrix(Xr, key)), args.reps)
            _, t_npy = timed(lambda: np.load(npy), args.reps)
            _, t_floor = timed(lambda: 1 / (1 + np.exp(-(Xo @ head.coef_.astype(np.float32)))),
                               args.reps)
            _, t_sk = timed(lambda: sk.predict_proba(Xo), args.reps)
            FeatureCache(tmp, key, {"d": d}).compact()
            _, t_read_c = timed(read_fresh, args.reps)
            rows.append((d, n_chunks, t_write, t_read, t_read_c, t_predict, t_npy, t_floor, t_sk))
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
    for d, nc, tw, tr, trc, tp, tn, tf, ts in rows:
        print(f"| {d} | {nc} | {tw:.2f} | {tr:.2f} | {trc:.2f} | {tp:.3f} | **{tr + tp:.2f}** "
              f"({n / (tr + tp):,.0f}/s) | {tn:.3f} | {tf:.3f} | {ts:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
