"""Selection benchmark: uncertainty top-k and k-center greedy, each against its baseline.

    python benchmarks/bench_select.py                       # n=200,000, k=10,000, d=512, 3 repeats
    python benchmarks/bench_select.py --quick               # n=30,000, k=1,000, d=256, sanity run
    python benchmarks/bench_select.py --n 50000 --k 2000 --d 256 --repeats 5

Every configuration runs in the same process as its baseline, interleaved (baseline, ours,
baseline, ours, ...), and the table reports medians and ratios: this 2-core machine is shared
and absolute seconds are noisy (see docs in shared/reference/perf-anchors.md section 4).

Features are synthetic and clustered (fixed seed): an L2-normalised Gaussian mixture with n/200
clusters of Zipf-like sizes, float32. Peak extra memory is tracemalloc's peak above the memory
held before the call (numpy reports its buffers to tracemalloc), so it excludes the features.
The covering radius is measured in the full feature space, in chunks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc

if "--threads" in sys.argv:  # BLAS reads this once, at import: set it before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rorem_data.selection.kcenter import covering_radius, kcenter_greedy  # noqa: E402
from rorem_data.selection.scores import uncertainty_score  # noqa: E402
from rorem_data.selection.strategies import select  # noqa: E402
from rorem_data.selection.topk import top_k  # noqa: E402


def clustered_features(n: int, d: int, *, seed: int = 0, spread: float = 0.6) -> np.ndarray:
    """L2-normalised Gaussian mixture: n/200 clusters, Zipf-like sizes, float32 (n, d)."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n // 200)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
    labels = rng.choice(n_clusters, size=n, p=weights / weights.sum())
    centres = rng.standard_normal((n_clusters, d), dtype=np.float32) / np.float32(np.sqrt(d))
    X = rng.standard_normal((n, d), dtype=np.float32)
    X *= np.float32(spread / np.sqrt(d))
    X += centres[labels]
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def measure(fn):
    """(seconds, peak extra bytes, result) of one call."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return dt, peak, out


def run_cases(cases, repeats):
    """Interleave the cases ``repeats`` times; return name -> (times, peaks, last result)."""
    res = {name: ([], [], None) for name, _ in cases}
    for r in range(repeats):
        for name, fn in cases:
            dt, peak, out = measure(fn)
            times, peaks, _ = res[name]
            times.append(dt)
            peaks.append(peak)
            res[name] = (times, peaks, out)
            print(f"  [{r + 1}/{repeats}] {name}: {dt:.4f} s, peak +{peak / 2**20:.1f} MB",
                  file=sys.stderr, flush=True)
    return res


def fmt_s(x):
    return f"{x:.4f}" if x < 1 else f"{x:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="n=30,000, k=1,000, d=256")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads (default: the library's own choice)")
    ap.add_argument("--ablation", action="store_true",
                    help="also time the fast variant without probed folds")
    ap.add_argument("--skip-exact", action="store_true",
                    help="do not run the exact k-center baseline (no ratio then)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.k, args.d = 30_000, 1_000, 256
    n, k, d, reps = args.n, args.k, args.d, args.repeats
    print(f"# selection benchmark: n={n:,} k={k:,} d={d} repeats={reps} seed={args.seed}")
    print(f"# numpy {np.__version__}, cpus={os.cpu_count()}, BLAS threads="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []

    # ---------------------------------------------------------------- uncertainty top-k
    rng = np.random.default_rng(args.seed)
    p = rng.beta(0.7, 0.7, n)
    print("uncertainty top-k ...", file=sys.stderr)
    cases = [
        ("np.argsort(|p-0.5|)[:k] (baseline)", lambda: np.argsort(np.abs(p - 0.5))[:k]),
        ("argpartition + sort of k (limit)", lambda: (lambda i: i[np.argsort(
            np.abs(p[i] - 0.5))])(np.argpartition(np.abs(p - 0.5), k - 1)[:k])),
        ("top_k(uncertainty_score(p))", lambda: top_k(uncertainty_score(p), k, rng=0)),
        ('select("uncertainty")', lambda: select("uncertainty", k, proba=p, rng=0)),
    ]
    # more inner repeats for the sub-ms cases, medians of medians
    res = run_cases(cases, max(reps, 7))
    base_t = statistics.median(res[cases[0][0]][0])
    ref = set(res[cases[0][0]][2].tolist())
    for name, _ in cases:
        times, peaks, out = res[name]
        same = len(ref & set(out.tolist())) / k
        rows.append(("uncertainty", name, statistics.median(times), times,
                     statistics.median(times) / base_t, max(peaks), f"overlap {same:.3f}", ""))

    # ---------------------------------------------------------------- k-center
    print("generating features ...", file=sys.stderr)
    X = clustered_features(n, d, seed=args.seed)
    v = X[0].copy()
    buf = np.empty(n, dtype=np.float32)
    gemv = []
    for _ in range(15):
        t0 = time.perf_counter()
        np.dot(X, v, out=buf)
        gemv.append(time.perf_counter() - t0)
    floor = statistics.median(gemv) * k
    print("k-center ...", file=sys.stderr)
    cases = []
    if not args.skip_exact:
        cases.append(("exact greedy (baseline)",
                      lambda: kcenter_greedy(X, k, method="exact", rng=args.seed)))
    cases.append(("fast greedy (default)",
                  lambda: kcenter_greedy(X, k, method="fast", rng=args.seed)))
    if args.ablation:
        cases.append(("fast, blocked folds only (n_groups=0)",
                      lambda: kcenter_greedy(X, k, method="fast", n_groups=0, rng=args.seed)))
    res = run_cases(cases, reps)
    radii = {}
    for name, _ in cases:
        picks = res[name][2]
        t0 = time.perf_counter()
        radii[name] = covering_radius(X, picks)
        print(f"  radius {name}: {radii[name]:.4f} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr)
    base = cases[0][0]
    base_t = statistics.median(res[base][0])
    for name, _ in cases:
        times, peaks, picks = res[name]
        note = f"radius {radii[name]:.4f}"
        extra = ""
        if name != base:
            same = len(np.intersect1d(picks, res[base][2])) / k
            extra = f"radius ratio {radii[name] / radii[base]:.4f}; same picks {same:.3f}"
        rows.append(("k-center", name, statistics.median(times), times,
                     statistics.median(times) / base_t, max(peaks), note, extra))

    # ---------------------------------------------------------------- table
    print()
    print(f"one matrix-vector pass over X ({n:,} x {d} float32, {X.nbytes / 2**20:.0f} MB): "
          f"median {statistics.median(gemv) * 1e3:.2f} ms -> k passes = {floor:.1f} s "
          "(the exact greedy's memory-bandwidth floor)")
    print()
    print("| task | method | median s | runs s | ratio vs baseline | peak extra MB | quality "
          "| notes |")
    print("|---|---|---:|---|---:|---:|---|---|")
    for task, name, med, times, ratio, peak, quality, extra in rows:
        runs = ", ".join(fmt_s(t) for t in times)
        print(f"| {task} | {name} | {fmt_s(med)} | {runs} | {ratio:.3f} | "
              f"{peak / 2**20:.1f} | {quality} | {extra} |")
    print()
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    if not args.skip_exact:
        fast = [r for r in rows if r[1].startswith("fast greedy")][0]
        exact = [r for r in rows if r[1].startswith("exact")][0]
        r_ratio = radii[fast[1]] / radii[exact[1]]
        ok = fast[4] <= 0.35 and r_ratio <= 1.05 and fast[5] < 2**30
        print(f"# target (fast <= 0.35x exact time, radius within 5%, < 1 GB extra): "
              f"time {fast[4]:.3f}x, radius {r_ratio:.4f}x, "
              f"memory {fast[5] / 2**20:.0f} MB -> {'MET' if ok else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
