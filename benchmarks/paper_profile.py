"""Compare py-spy profiles of the same step at two sizes: which function grows faster than the data.

``paper_scale.py --pyspy`` runs every step's child under ``py-spy record --format raw
--subprocesses`` (a sampling profiler: threads and worker processes included, idle time not);
each file holds collapsed stacks (``frame;frame;... count``). For every function (name and
file, lines merged) this sums the samples of stacks that contain it (inclusive) and that end in
it (self), turns samples into seconds with the sampling rate, and prints, per step, the
functions whose inclusive time is largest at the large size, with the small size's time and the
growth.

    python benchmarks/paper_profile.py [--root /tmp/rorem-paper] [--steps round1,round2] [--top 25]
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def read_profile(path: str, rate: float) -> tuple[Counter, Counter, float]:
    """(inclusive seconds, self seconds, total seconds) by ``"func (file)"`` of one raw profile."""
    incl, self_, total = Counter(), Counter(), 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not n.isdigit():
                continue
            n = int(n)
            total += n
            names = []
            for fr in stack.split(";"):
                m = _FRAME.match(fr.strip())
                names.append(f"{m['func']} ({_short(m['file'])})" if m else fr.strip())
            for name in set(names):
                incl[name] += n
            if names:
                self_[names[-1]] += n
    s = 1.0 / rate
    return (Counter({k: v * s for k, v in incl.items()}), Counter({k: v * s for k, v in self_.items()}),
            total * s)


def compare(root: str, step: str, small: str, large: str, rate: float, top: int) -> list[dict]:
    """Rows (function, small s, large s, growth) for ``step``, largest at ``large`` first."""
    paths = [os.path.join(root, "profiles", f"{shape}-{step}.pyspy.txt") for shape in (small, large)]
    if not all(os.path.exists(p) for p in paths):
        return []
    (inc_s, self_s, tot_s), (inc_l, self_l, tot_l) = (read_profile(p, rate) for p in paths)
    rows = [{"function": k, "small_s": inc_s.get(k, 0.0), "large_s": v,
             "self_small_s": self_s.get(k, 0.0), "self_large_s": self_l.get(k, 0.0),
             "growth": v / inc_s[k] if inc_s.get(k) else None}
            for k, v in inc_l.most_common()]
    rows = [r for r in rows if not r["function"].startswith(("process ", "<module>", "Thread "))]
    print(f"\n{step}: {tot_s:.1f} s sampled at {small}, {tot_l:.1f} s at {large} "
          f"({tot_l / tot_s if tot_s else 0:.1f}x); inclusive seconds by function:")
    print(f"  {'function':<86} {small:>8} {large:>8} {'growth':>7} {'self ' + large:>10}")
    for r in rows[:top]:
        g = f"{r['growth']:.1f}x" if r["growth"] else "-"
        print(f"  {r['function'][:86]:<86} {r['small_s']:>8.1f} {r['large_s']:>8.1f} {g:>7} "
              f"{r['self_large_s']:>10.1f}")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/rorem-paper")
    ap.add_argument("--steps", default="seeds,round1,round2,round3,finetune,status,report,export")
    ap.add_argument("--small", default="20k")
    ap.add_argument("--large", default="200k")
    ap.add_argument("--rate", type=float, default=20.0, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    for step in args.steps.split(","):
        compare(args.root, step, args.small, args.large, args.rate, args.top)


if __name__ == "__main__":
    main()
