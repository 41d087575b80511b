"""Active sample vs uniform sample + held-out split, at equal label counts, on known truth.

    python benchmarks/active_inference.py            # N=5,000, labels 300 and 600, 20 seeds
    python benchmarks/active_inference.py --quick    # N=2,000, labels 300, 6 seeds

Array level, with the library's own statistics (``rorem_data.stats``). Each round has ``N``
candidates with a score ``s`` from a discriminator trained before the round (fixed before any
draw) and a true label; both designs spend the same ``L`` human labels:

* **today** (uniform + held-out): a uniform estimation sample of ``L/3`` and an uncertainty
  queue (scores closest to 0.5) of ``2L/3``. The success rate is PPI++ on the uniform sample
  (``ppi_mean``, predictor ``s``); the auto-label thresholds come from a random 30% held-out split
  of all ``L`` labels (``choose_accept_threshold`` / ``choose_reject_threshold`` with the start
  ``auto_label`` uses), as when a version is calibrated on its own held-out labels.
* **active**: one Poisson sample with ``pi`` from ``sampling_probabilities(s, L, floor)``; the
  success rate is ``active_mean`` (predictor ``s``), the thresholds
  ``choose_accept_threshold_active`` / ``choose_reject_threshold_active`` on the same labels.

Reported per design: mean width of the 95% interval of the success rate and its coverage;
automation yield (share of the round accepted / rejected automatically, 0 when no threshold
is certified), how often a threshold was certified, and how often the automatic accepts'
realised precision (on the unlabelled candidates they decide) fell below the target.

Worlds: ``calibrated`` (scores are the true success probabilities, a good discriminator),
``weak`` (overlapping classes), ``overconfident`` (truth from ``p``, scores ``p**3``: a
miscalibrated but well-ranked discriminator, which breaks nothing in the active design).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rorem_data.core.errors import ConfigError  # noqa: E402
from rorem_data.stats.active import (  # noqa: E402
    active_mean,
    choose_accept_threshold_active,
    choose_reject_threshold_active,
    poisson_sample,
    sampling_probabilities,
)
from rorem_data.stats.intervals import min_trials_for_lower_bound  # noqa: E402
from rorem_data.stats.ppi import ppi_mean  # noqa: E402
from rorem_data.stats.thresholds import choose_accept_threshold, choose_reject_threshold  # noqa: E402

TARGET, CONF, EST_CONF = 0.9, 0.9, 0.95


def world(name: str, n: int, rng):
    """(scores, truth) of one round."""
    if name == "calibrated":
        good = rng.uniform(size=n) < 0.6
        p = np.where(good, rng.beta(8, 1, n), rng.beta(1, 8, n))
        s = p
    elif name == "weak":
        p = rng.beta(2, 1.2, n)
        s = p
    elif name == "overconfident":
        good = rng.uniform(size=n) < 0.6
        p = np.where(good, rng.beta(8, 1, n), rng.beta(1, 8, n))
        s = p**3
    else:
        raise ValueError(name)
    y = (rng.uniform(size=n) < p).astype(float)
    return s, y


def _start(min_all_correct: int, n_labels: int) -> int:  # as rorem_data.rounds.automation
    return int(max(min_all_correct, min(3 * min_all_correct, n_labels // 3)))


def _outcome(s, y, labelled, acc_t, rej_t):
    """Yield shares and realised precision of the automatic decisions (unlabelled only)."""
    free = ~labelled
    acc = free & (s >= acc_t) if acc_t is not None else np.zeros(s.size, bool)
    rej = free & (s <= rej_t) & ~acc if rej_t is not None else np.zeros(s.size, bool)
    prec = y[acc].mean() if acc.any() else np.nan
    return acc.mean(), rej.mean(), prec


def today(s, y, budget, rng, start=True):
    n = s.size
    n_e = budget // 3
    uni = rng.choice(n, size=n_e, replace=False)
    rest = np.setdiff1d(np.arange(n), uni)
    queue = rest[np.argsort(np.abs(s[rest] - 0.5), kind="stable")[: budget - n_e]]
    labelled = np.zeros(n, bool)
    labelled[uni] = labelled[queue] = True
    est = ppi_mean(y[uni], s[uni], s, confidence=EST_CONF)
    lab = np.flatnonzero(labelled)
    hold = rng.choice(lab, size=int(round(0.3 * lab.size)), replace=False)
    need = min_trials_for_lower_bound(TARGET, confidence=CONF)
    first = _start(need, hold.size) if start else need
    acc_t = rej_t = None
    try:
        acc_t = choose_accept_threshold(s[hold], y[hold], target_precision=TARGET, confidence=CONF,
                                        min_accepted=first).threshold
    except ConfigError:
        pass
    try:
        rej_t = choose_reject_threshold(s[hold], y[hold], target_npv=TARGET, confidence=CONF,
                                        min_rejected=first).threshold
    except ConfigError:
        pass
    return est, (acc_t, rej_t), labelled


def active(s, y, budget, rng, floor):
    pi = sampling_probabilities(np.clip(s, 0, 1), budget, floor=floor)
    xi = poisson_sample(pi, rng)
    yo = np.where(xi, y, np.nan)
    est = active_mean(yo, xi, pi, pred=np.clip(s, 0, 1), confidence=EST_CONF)
    a = choose_accept_threshold_active(s, yo, xi, pi, target_precision=TARGET, confidence=CONF)
    r = choose_reject_threshold_active(s, yo, xi, pi, target_npv=TARGET, confidence=CONF)
    return est, (a.threshold, r.threshold), xi


def run(name, n, budget, seeds, floors):
    rows = {"today": [], "today, first test at the minimum": [],
            **{f"active floor {f:g}": [] for f in floors}}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, budget, n])
        s, y = world(name, n, rng)
        truth = y.mean()
        designs = [("today", lambda: today(s, y, budget, rng)),
                   ("today, first test at the minimum", lambda: today(s, y, budget, rng, start=False))]
        designs += [(f"active floor {f:g}", lambda f=f: active(s, y, budget, rng, f)) for f in floors]
        for key, fn in designs:
            est, (a_t, r_t), labelled = fn()
            acc, rej, prec = _outcome(s, y, labelled, a_t, r_t)
            rows[key].append({"labels": int(labelled.sum()), "width": est.hi - est.lo,
                              "covered": est.lo <= truth <= est.hi, "acc": acc, "rej": rej,
                              "certified": a_t is not None, "violated": bool(np.isfinite(prec) and prec < TARGET)})
    return rows


def table(name, n, budget, rows):
    print(f"\n### {name}: N={n}, {budget} labels, target precision {TARGET:g} at {100 * CONF:g}% "
          f"confidence, {len(next(iter(rows.values())))} seeds\n")
    print("| design | labels (mean) | 95% CI width | coverage | accept share | reject share | "
          "accept certified | precision < target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, rs in rows.items():
        m = lambda k: float(np.mean([r[k] for r in rs]))  # noqa: E731
        print(f"| {key} | {m('labels'):.0f} | {m('width'):.4f} | {100 * m('covered'):.0f}% | "
              f"{100 * m('acc'):.1f}% | {100 * m('rej'):.1f}% | {100 * m('certified'):.0f}% | "
              f"{100 * m('violated'):.0f}% |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    args = ap.parse_args(argv)
    n = 2000 if args.quick else 5000
    budgets = [300] if args.quick else [300, 600]
    seeds = args.seeds or (6 if args.quick else 20)
    floors = [0.02, 0.05, 0.1] if not args.quick else [0.1]
    t0 = time.perf_counter()
    for name in ("calibrated", "weak", "overconfident"):
        for b in budgets:
            if min(floors) * n > b:
                continue
            table(name, n, b, run(name, n, b, seeds, [f for f in floors if f * n <= b]))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
