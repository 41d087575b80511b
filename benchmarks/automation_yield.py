#!/usr/bin/env python
"""How much of a round does automation decide, and is it right? Through ``run_round`` itself.

    python benchmarks/automation_yield.py                       # both scales, 20 seeds
    python benchmarks/automation_yield.py --scale small --seeds 4 --variants split-uniform
    python benchmarks/automation_yield.py --json /tmp/yield.json

Each run is a real project on a ``mongod`` the script starts (never the embedded database): a
seed set (for gold items), then three rounds of ``rorem_data.run_round`` - generate, featurize,
score with the previous version, the active sample, gold, reviews, train, score, auto-label,
audit - each round on a fresh pool of synthetic scenes (48 px, one object each) with a new
remover, as in RORem where every round has the newly fine-tuned one: OpenCV Telea, then
Navier-Stokes, then Telea with a wider radius. The reviewer is simulated
(:class:`rorem_data.testing.simulate.SimulatedReviewer`): it judges against the scene's truth and
is wrong 3% of the time. Target precision (and NPV) 0.80 at confidence 0.90.

Scales: ``small`` about 600 candidates and a budget of 200 labels per round; ``large`` about
3,000 candidates and 600 labels.

Per round, over seeds (mean and a 95% t-interval):

* **yield**: automatic accepts and rejects as a share of the round's candidates;
* **precision** / **NPV**: of the automatic accepts / rejects, against the noise-free truth, and
  the share of acting rounds where it met the target (``held``);
* **oracle**: the largest accept set "score >= t" with true precision >= target, plus the
  largest reject set "score <= t" among the rest with true NPV >= target, over the candidates
  people were not asked about, scored by the version that decided (the same scores, thresholds
  chosen with the truth);
* **label oracle**: the same with the rate the reviewer's labels have (truth with 3% flipped), the
  most that any test on those labels could show: a set of true precision 0.80 reads 0.782 to
  them. **ratio** and **label ratio** = yield / oracle and yield / label oracle;
* **region**: the precision of the pairs accepted from the accept region (automatic accepts
  and the people-judged successes there: what the export holds) and the NPV of the rejected
  ones - what the certification guarantees (``docs/statistics.md``);
* **top2 .. top20** (JSON only): the true success rate of the best-scored 2, 5, 10, 20% - how
  pure the accept side can be;
* **coverage**: whether the round's 95% success-rate interval (``estimates.best``) covers the rate
  the reviewer's labels have in expectation (truth with 3% flipped); the JSON keeps the estimate
  and that rate (``estimate``, ``label_rate``). One draw per round measures coverage only to a
  few points over 60 rounds, so **redrawn coverage** also draws each finished round's design
  500 more times (its probabilities, predictor scores and truth fixed; new coins and new reviewer
  flips) and reports the share of 95% intervals that cover the rate.

Variants (``--variants``) are the levers: which version certifies (``split``: this round's new
version on the held-out part of the active sample; ``active``: the version that drew the sample,
on all of it; ``crossfit``: this round's version refitted without each fold of the sample,
averaged with the version that drew it, on all of it; ``auto``: ``crossfit`` when it applies,
else ``active``, else ``split``), training
examples made from the seed pairs (``-seeds``: 300 - ``run_round``'s default: a version trained
on them alone draws round 1's sample and is certified on all of its labels, and later versions
train on them minus one per human label; the other variants pass 0) and the sampling design (``uniform``: every candidate at ``budget / N``; ``half``:
half the budget spread evenly, half by uncertainty; ``floor05``: the old floor of 0.05).
Not part of the test run.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE] + [HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

TARGET, CONFIDENCE, NOISE = 0.80, 0.90, 0.03
#: pool images per round (about 1.5 objects each: ~600 and ~3,000 candidates) and the budget
SCALES = {"small": (400, 200), "large": (2000, 600)}
#: fresh draws of each round's design for the repeated-sampling coverage
REDRAWS = 500
REMOVERS = ["classical:telea", "classical:ns", {"kind": "classical", "method": "telea", "radius": 9}]
VARIANTS = {  # name: (calibration, sampling design, seed pairs in training)
    "auto-uniform": ("auto", "uniform", 0),
    "auto-uniform-seeds": ("auto", "uniform", 300),
    "crossfit-uniform-seeds": ("crossfit", "uniform", 300),
    "split-uniform": ("split", "uniform", 0),
    "active-uniform": ("active", "uniform", 0),
    "split-half": ("split", "half", 0),
    "active-floor05": ("active", "floor05", 0),
}


#: share of the budget spread evenly over the round (the rest by the previous version's uncertainty)
SHARES = {"uniform": 1.0, "half": 0.5, "floor05": None}


def _label_rate(truth):
    """The rate the reviewer's labels have in expectation: the truth with ``NOISE`` flipped."""
    return truth * (1 - 2 * NOISE) + NOISE


def _oracle(scores, truth, target) -> tuple[int, int]:
    """(accepts, rejects) of the largest sets whose true precision / NPV meet the target."""
    if scores.size == 0:
        return 0, 0
    o = np.argsort(-scores, kind="stable")
    ok = np.flatnonzero(np.cumsum(truth[o]) / np.arange(1, o.size + 1) >= target)
    n_acc = int(ok.max() + 1) if ok.size else 0
    rest = o[n_acc:][::-1]  # lowest scores first
    ok = np.flatnonzero(np.cumsum(1 - truth[rest]) / np.arange(1, rest.size + 1) >= target)
    return n_acc, int(ok.max() + 1) if ok.size else 0


def write_data(root: str, scale: str, seed: int) -> str:
    """The seed set and the three pools of one seed (written once, reused by every variant)."""
    from rorem_data.testing import synthetic

    n = SCALES[scale][0]
    data = os.path.join(root, f"data-{scale}-{n}-{seed}")
    if not os.path.isdir(os.path.join(data, "done")):
        shutil.rmtree(data, ignore_errors=True)
        synthetic.write_seed_set(os.path.join(data, "seeds"), 60, size=48, seed=seed * 100)
        for r in (1, 2, 3):
            synthetic.write_pool_folder(os.path.join(data, f"pool-r{r}"), n, size=48,
                                        seed=seed * 100 + r)
        os.makedirs(os.path.join(data, "done"))
    return data


def one_run(args) -> list[dict]:
    """Three rounds of one seed and one variant, in its own process and dataset."""
    scale, seed, variant, root, uri, spec, dump = args
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    os.environ["ROREM_PROGRESS"] = "0"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import rorem_data
    from rorem_data.core import schema
    from rorem_data.dataset import queries, store
    from rorem_data.rounds.project import init_project
    from rorem_data.testing.simulate import SimulatedReviewer

    from rorem_data.rounds import defaults

    n, budget = SCALES[scale]
    calibration, design, seed_pairs = VARIANTS[variant]
    floor = 0.05 if SHARES[design] is None else None
    if SHARES[design] is not None:
        defaults.UNIFORM_SHARE = SHARES[design]  # the lever (read when the sample is drawn)
    data = write_data(root, scale, seed)
    folder = os.path.join(root, f"p-{scale}-{variant}-{seed}")
    shutil.rmtree(folder, ignore_errors=True)
    project = init_project(folder, name=f"y-{scale}-{variant}-{seed}")
    project.import_seeds(os.path.join(data, "seeds", "meta.json"), origin="seeds", license="CC0-1.0")
    judge = SimulatedReviewer("truth", noise=0.0)
    rows = []
    for r in (1, 2, 3):
        project.import_pool(os.path.join(data, f"pool-r{r}"), origin=f"pool-r{r}", license="CC0-1.0")
        reviewer = SimulatedReviewer("sim", noise=NOISE, rng=seed * 10 + r)
        t0 = time.perf_counter()
        res = rorem_data.run_round(project, r, remover=REMOVERS[r - 1], budget=budget,
                                   reviewer=reviewer, floor=floor, spec=spec, seed_pairs=seed_pairs,
                                   calibration=calibration, target_precision=TARGET,
                                   confidence=CONFIDENCE, pool_filter={"origin": f"pool-r{r}"},
                                   rng=seed, progress=False)
        secs = time.perf_counter() - t0
        docs = queries.candidates(project.dataset, round=r, fields=[
            "filepath", "target_path", "mask.mask_path", "decided_by", "status", "scores",
            "queue_purpose"])
        truth = np.array([judge.truth(d["filepath"], d["target_path"], d["mask"]["mask_path"])[0]
                          == schema.ACCEPTED for d in docs], dtype=float)
        auto = np.array([d.get("decided_by") == schema.BY_DISCRIMINATOR for d in docs])
        status = np.array([d.get("status") for d in docs], dtype=object)
        acc, rej = auto & (status == schema.ACCEPTED), auto & (status == schema.REJECTED)
        rec = store.round_record(project.dataset_name, r)
        phase = (rec.get("phases") or {}).get("auto") or {}
        version = phase.get("score_field") or phase.get("version") or res.version
        asked = np.array([bool(d.get("queue_purpose")) and d.get("queue_purpose") != schema.QUEUE_AUDIT
                          for d in docs])
        oracle, label_oracle, auc, top = (0, 0), (0, 0), None, {}
        if version:
            from sklearn.metrics import roc_auc_score

            s = np.array([(d.get("scores") or {}).get(version, np.nan) for d in docs])
            m = ~asked & ~np.isnan(s)
            oracle = _oracle(s[m], truth[m], TARGET)
            # the same with the rate the reviewer's labels have: the most any test on labels can show
            label_oracle = _oracle(s[m], _label_rate(truth[m]), TARGET)
            o = np.argsort(-s[m], kind="stable")
            top = {f"top{q}": float(truth[m][o[:max(1, int(q / 100 * o.size))]].mean())
                   for q in (2, 5, 10, 20)}
            if 0 < truth[m].mean() < 1:
                auc = float(roc_auc_score(truth[m], s[m]))
        # the region each automatic threshold decides: its automatic decisions and the drawn
        # candidates people judged there (their successes are the accepted pairs too)
        region_acc = region_rej = None
        for rem in phase.get("removers") or []:
            s_v = np.array([(d.get("scores") or {}).get(version, np.nan) for d in docs])
            if rem.get("accept_threshold") is not None:
                reg = (s_v >= rem["accept_threshold"]) & (acc | asked)
                kept = reg & (acc | (status == schema.ACCEPTED))
                region_acc = float(truth[kept].mean()) if kept.any() else None
            if rem.get("reject_threshold") is not None:
                reg = (s_v <= rem["reject_threshold"]) & (rej | asked)
                gone = reg & (rej | (status == schema.REJECTED))
                region_rej = float(1 - truth[gone].mean()) if gone.any() else None
        # the success-rate interval at 95% (the round records it at the plan's confidence)
        from rorem_data.rounds.estimates import round_estimates

        best = round_estimates(project, r, confidence=0.95).get("best") or {}
        rate = float(_label_rate(truth.mean()))
        covered = None if best.get("lo") is None else bool(best["lo"] <= rate <= best["hi"])
        from rorem_data.rounds.estimates import active_design

        design = active_design(project, r)
        t_of = dict(zip((doc["id"] for doc in docs), truth))
        y_design = None if design is None else np.array([t_of.get(i, np.nan) for i in design.ids])
        redrawn = _redrawn_coverage(design, y_design, best.get("version"), seed)
        if dump and version and design is not None:
            _dump(dump, project, design, version, y_design, len(docs),
                  f"{scale}-{variant}-{seed}-r{r}")
        rows.append({
            "scale": scale, "seed": seed, "variant": variant, "round": r, "candidates": len(docs),
            "labels": int(asked.sum()), "accepted": int(acc.sum()), "rejected": int(rej.sum()),
            "yield": float((acc.sum() + rej.sum()) / len(docs)),
            "precision": float(truth[acc].mean()) if acc.any() else None,
            "npv": float(1 - truth[rej].mean()) if rej.any() else None,
            "region_precision": region_acc, "region_npv": region_rej,
            "oracle": float(sum(oracle) / len(docs)), "oracle_accept": float(oracle[0] / len(docs)),
            "oracle_reject": float(oracle[1] / len(docs)),
            "label_oracle": float(sum(label_oracle) / len(docs)), "covered": covered, "auc": auc,
            "estimate": {k: best.get(k) for k in ("value", "lo", "hi", "source")}, "label_rate": rate,
            "redrawn_coverage": redrawn,
            "method": phase.get("method"), "auto_line": str(res.steps.get("auto_label", ""))[:600],
            "seconds": secs, "true_rate": float(truth.mean()), **top})
    import fiftyone as fo

    fo.delete_dataset(project.dataset_name)
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def _dump(folder, project, d, version, truth, n_candidates, name) -> None:
    """Save the round's certification inputs (the active design ``d`` over its population, the
    scores that decided, the truth in the design's order) to ``folder/name.npz``: certification
    variants can then be replayed on the same inputs in seconds (``--dump``)."""
    from rorem_data.rounds.automation import _earlier_success_share, thinning_coins

    share = _earlier_success_share(project, d.round)
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, name + ".npz"), known=d.known, pi=d.pi, xi=d.xi,
             labels=np.asarray(d.labels, dtype=float), removers=np.asarray(d.removers, dtype=str),
             scores=d.version_scores(version), truth=truth, coins=thinning_coins(d),
             share=np.nan if share is None else share, n_candidates=n_candidates)


def _redrawn_coverage(d, y, version, seed, draws: int = REDRAWS):
    """Share of ``draws`` fresh draws of the round's own design ``d`` whose 95% interval covers
    the label rate: its inclusion probabilities, predictor scores and truth ``y`` (in the
    design's order) held fixed, new coins and new reviewer flips each time (the design-based
    repeated-sampling coverage, which one realised draw per round measures only to a few points
    over 60 rounds)."""
    from rorem_data.stats.active import active_mean

    if d is None or not version or d.known.any() or np.isnan(y).any():
        return None
    round_ = d.round
    f = np.clip(d.version_scores(version), 0.0, 1.0)
    if np.isnan(f).any():
        return None
    rate = _label_rate(y.mean())
    gen = np.random.default_rng([seed, round_, 0xC0])
    hits = 0
    for _ in range(draws):
        xi = gen.uniform(size=y.size) < d.pi
        lab = np.where(gen.uniform(size=y.size) < NOISE, 1 - y, y)
        e = active_mean(np.where(xi, lab, np.nan), xi, d.pi, f, confidence=0.95)
        hits += e.lo <= rate <= e.hi
    return hits / draws


def _ratio(g, key) -> str:
    x = [r["yield"] / r[key] for r in g if r.get(key)]
    return f"{np.mean(x):.2f}" if x else "-"


def _pct(x) -> str:
    x = [v for v in x if v is not None]
    return f"{100 * np.mean(x):.1f}" if x else "-"


def _mean_ci(x) -> str:
    x = np.asarray([v for v in x if v is not None], dtype=float)
    if x.size == 0:
        return "-"
    if x.size == 1:
        return f"{100 * x[0]:.1f}"
    from scipy.stats import t

    h = t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return f"{100 * x.mean():.1f} [{100 * (x.mean() - h):.1f}, {100 * (x.mean() + h):.1f}]"


def table(rows: list[dict]) -> str:
    out = ["| scale | variant | round | seeds | yield % | accept % | reject % | precision % (held) | "
           "NPV % (held) | region held | oracle % | ratio | label oracle % | label ratio | coverage | redrawn coverage % | s/round |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["scale"], r["variant"], r["round"]) for r in rows},
                  key=lambda k: (list(SCALES).index(k[0]), list(VARIANTS).index(k[1]), k[2]))
    for sc, var, rd in keys:
        g = [r for r in rows if (r["scale"], r["variant"], r["round"]) == (sc, var, rd)]
        prec = [r["precision"] for r in g if r["precision"] is not None]
        npv = [r["npv"] for r in g if r["npv"] is not None]
        held_p = f"{sum(p >= TARGET for p in prec)}/{len(prec)}" if prec else "-"
        held_n = f"{sum(p >= TARGET for p in npv)}/{len(npv)}" if npv else "-"
        ratio = np.mean([r["yield"] / r["oracle"] for r in g if r["oracle"] > 0] or [np.nan])
        cov = [r["covered"] for r in g if r["covered"] is not None]
        reg = [v >= TARGET for r in g for v in (r.get("region_precision"), r.get("region_npv"))
               if v is not None]
        out.append(
            f"| {sc} | {var} | {rd} | {len(g)} | {_mean_ci([r['yield'] for r in g])} | "
            f"{100 * np.mean([r['accepted'] / r['candidates'] for r in g]):.1f} | "
            f"{100 * np.mean([r['rejected'] / r['candidates'] for r in g]):.1f} | "
            f"{_mean_ci(prec)} ({held_p}) | {_mean_ci(npv)} ({held_n}) | "
            f"{(f'{sum(reg)}/{len(reg)}' if reg else '-')} | "
            f"{_mean_ci([r['oracle'] for r in g])} | {ratio:.2f} | "
            f"{_mean_ci([r.get('label_oracle') for r in g])} | {_ratio(g, 'label_oracle')} | "
            f"{(f'{sum(cov)}/{len(cov)}' if cov else '-')} | "
            f"{_pct([r.get('redrawn_coverage') for r in g])} | "
            f"{np.mean([r['seconds'] for r in g]):.0f} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=["small", "large", "both"], default="both")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--variants", default="auto-uniform,split-uniform,active-uniform,active-floor05")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--spec", default=None, help="discriminator spec (default: run_round's)")
    ap.add_argument("--root", default="/tmp/rorem-yield")
    ap.add_argument("--json", default=None)
    ap.add_argument("--dump", default=None, help="folder for each round's certification inputs")
    a = ap.parse_args(argv)
    from _db import start_server

    uri = start_server()
    scales = list(SCALES) if a.scale == "both" else [a.scale]
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    os.makedirs(a.root, exist_ok=True)
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    with ProcessPoolExecutor(a.workers) as ex:  # the data first, once per seed
        list(ex.map(write_data, [a.root] * (len(scales) * len(seeds)),
                    [sc for sc in scales for _ in seeds], [s for _ in scales for s in seeds]))
    from rorem_data.rounds import defaults

    spec = a.spec or defaults.SPEC
    jobs = [(sc, s, v, a.root, uri, spec, a.dump) for sc in scales for s in seeds for v in variants]
    rows: list[dict] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as ex:
        for i, out in enumerate(ex.map(one_run, jobs), 1):
            rows += out
            print(f"[{i}/{len(jobs)}] {out[0]['scale']} {out[0]['variant']} seed {out[0]['seed']}: "
                  + ", ".join(f"r{r['round']} {100 * r['yield']:.0f}% (oracle {100 * r['oracle']:.0f}%)"
                              for r in out) + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(rows, f)
    print()
    print(f"Automation yield through run_round, target {TARGET} at confidence {CONFIDENCE}, "
          f"reviewer noise {NOISE}, discriminator spec {spec}")
    print(table(rows))


if __name__ == "__main__":
    main()
