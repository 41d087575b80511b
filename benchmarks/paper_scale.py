#!/usr/bin/env python
"""The RORem paper's shape at full size on one machine: 60K seeds, three rounds, 200K candidates.

    python benchmarks/paper_scale.py [--scale small|large|both] [--root /tmp/rorem-paper]
                                     [--no-app] [--reuse-results] [--profile STEP[,STEP]]
                                     [--json /tmp/paper_scale.json]

One ``mongod`` server started for the run (FiftyOne's binary, a fresh database folder; never the
embedded database nor a running server) holds every project. For each shape

=========  =====  =========================  ======================  ==========
shape      seeds  pools (rounds 1, 2, 3)      queues (human, auto x2) candidates
=========  =====  =========================  ======================  ==========
``20k``    6,000  5,000 + 7,000 + 8,000       1,000 / 200 / 200       20,000
``200k``   60,000 50,000 + 70,000 + 80,000    10,000 / 2,000 / 2,000  200,000
=========  =====  =========================  ======================  ==========

the script writes synthetic scenes (48 px, one object per pool image; reused from
``<root>/data-<shape>/`` when present; timed apart from the rehearsal), then runs the
rehearsal, each step in its own child process through the public API:

1. a fresh project and ``rorem_data.import_seeds(project, [meta], license=...)``;
2. rounds 1-3: ``rorem_data.import_pool`` of the round's pool, then ``rorem_data.run_round``
   (round 1 ``classical:telea`` with a 10K active-inference queue; rounds 2-3 ``classical:ns``,
   2K queues; ``audit=0.05``; the simulated reviewer judges queue and audit items against the
   scenes' truth); every driver step (generate, featurize, queue, review, train, score,
   auto_label, audit_review, ...) is its own row;
3. ``rorem_data.finetune`` on round 3 with a tiny SD-inpaint built from a config (4 steps at
   64 px; "not run: ..." when the fine-tuning module cannot be imported);
4. ``rorem_data.status``, ``rorem_data.report``, ``rorem_data.export(project, 3, out)``;
5. the review App on round 1's queue in headless Chromium (``paper_app.py``): time to the
   first sample modal and to store 10 judgments made with ``y``/``n``.

Per row: wall seconds, CPU seconds (the step's process and its workers), the peak RSS summed
over the step's process and its live workers (psutil, every 0.1 s), and the ``mongod``'s peak
RSS and CPU. Growth = 200K seconds / 20K seconds (target <= 12x for 10x the items); the
rehearsal's total (data writing and the App excluded) has a 45-minute target at 200K.
``--scale small`` runs the 20K shape only. Results go to ``<root>/results-<shape>.json``
(``--reuse-results`` takes a shape's table from there instead of running it again) and the
whole table to ``--json``.

Profiling and resuming: ``--pyspy PATH`` records every step's child with py-spy (sampling;
threads and workers included) and prints, per step, the functions whose time grows most from
20K to 200K (``paper_profile.py``); ``--profile STEP`` runs a step under cProfile instead.
Profiled runs write ``results-<shape>-profiled.json`` and never replace the plain timings.
``--keep-db`` keeps the database folder (``<root>/db``) so that ``--only STEP,...`` can run
single steps again on the projects a previous run built (``--only status,app``).
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds modules named like libraries' (score.py, generate.py, ...): keep the standard
# library and site-packages first, this folder last (for the paper_* helpers).
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE] + [HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

RESULT = "PAPER_RESULT "
PYSPY_RATE = 20  # samples per second (paper_profile.py's --rate)
REHEARSAL = ("seeds", "round1", "round2", "round3", "finetune", "status", "report", "export")
GROWTH_TARGET = 12.0
BUDGET_SECONDS = 45 * 60


# --- child: one step ------------------------------------------------------------------------


def run_child(step: str, shape: str, root: str, args) -> None:
    import cProfile
    import pstats

    from paper_measure import Sampler, StepClock
    from paper_steps import STEPS

    os.environ["ROREM_PROGRESS"] = "0"
    if os.environ.get("FIFTYONE_DATABASE_URI") != os.environ.get("PAPER_DB_URI"):
        raise SystemExit("refusing to run: FIFTYONE_DATABASE_URI is not the benchmark's own server")
    sampler = Sampler(int(os.environ.get("PAPER_MONGOD_PID") or 0) or None)
    sampler.start()
    clock = StepClock(sampler)
    kwargs = {"workers": args.workers, "batch_size": args.batch_size,
              "target_precision": args.target_precision}
    if step.startswith("round"):
        kwargs["round"] = int(step[len("round"):])
    prof = cProfile.Profile() if step in args.profile else None
    clock.start()
    if prof:
        prof.enable()
    try:
        extra = STEPS[step](root, shape, clock, **kwargs)
    finally:
        if prof:
            prof.disable()
        sampler.stop()
    if prof:
        os.makedirs(os.path.join(root, "profiles"), exist_ok=True)
        path = os.path.join(root, "profiles", f"{shape}-{step}.prof")
        prof.dump_stats(path)
        print(f"profile: {path}", flush=True)
        pstats.Stats(path).sort_stats("cumulative").print_stats(45)
        pstats.Stats(path).sort_stats("tottime").print_stats(30)
    print(RESULT + json.dumps({"step": step, "shape": shape, "parts": clock.parts, "extra": extra},
                              default=str), flush=True)


# --- parent: orchestration and the table ----------------------------------------------------


def _mongod_pid() -> int | None:
    import psutil

    for c in psutil.Process().children(recursive=True):
        try:
            if "mongod" in c.name():
                return c.pid
        except psutil.NoSuchProcess:
            pass
    return None


def _run_step(step: str, shape: str, args, log) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", step, "--shape", shape,
           "--root", args.root, "--workers", str(args.workers), "--batch-size", str(args.batch_size),
           "--target-precision", str(args.target_precision),
           "--profile", ",".join(args.profile) or "-"]
    if args.pyspy and step != "data":
        os.makedirs(os.path.join(args.root, "profiles"), exist_ok=True)
        cmd = [args.pyspy, "record", "--format", "raw", "--rate", str(PYSPY_RATE), "--subprocesses",
               "--nonblocking", "-o", os.path.join(args.root, "profiles", f"{shape}-{step}.pyspy.txt"),
               "--", *cmd]
    t = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ)
    result, tail = None, []
    for line in proc.stdout:
        log.write(line)
        log.flush()
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT):])
            continue
        tail = (tail + [line.rstrip()])[-40:]
        print(f"  [{shape} {step}] {line.rstrip()}", flush=True)
    proc.wait()
    wall = time.monotonic() - t
    if proc.returncode != 0 or result is None:
        return {"step": step, "shape": shape, "failed": True, "returncode": proc.returncode,
                "tail": tail, "wall_seconds": wall, "parts": []}
    result["wall_seconds"] = wall  # includes the child's start (imports), not in the parts
    return result


def run_shape(shape: str, args) -> dict:
    os.makedirs(args.root, exist_ok=True)
    steps = ["data", *REHEARSAL] + (["app"] if args.app and shape in args.app else [])
    if args.only:
        steps = [s for s in steps if s in args.only]
    out = {"shape": shape, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
           "load_avg_start": os.getloadavg(), "cores": os.cpu_count(), "steps": [],
           "profiled": bool(args.pyspy or args.profile), "only": args.only or None}
    with open(os.path.join(args.root, f"log-{shape}.txt"), "a" if args.only else "w") as log:
        for step in steps:
            print(f"[{shape}] {step} (1-min load average {os.getloadavg()[0]:.1f})", flush=True)
            res = _run_step(step, shape, args, log)
            out["steps"].append(res)
            if res.get("failed"):
                print(f"[{shape}] {step} FAILED:\n  " + "\n  ".join(res["tail"][-20:]), flush=True)
                if step in ("data", "seeds", "round1", "round2", "round3"):
                    break
    out["load_avg_end"] = os.getloadavg()
    out["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    path = os.path.join(args.root, f"results-{shape}{'-profiled' if out['profiled'] else ''}.json")
    if args.only and os.path.exists(path):  # merge: the steps run now replace the stored ones
        with open(path) as fh:
            old = json.load(fh)
        new = {s["step"]: s for s in out["steps"]}
        merged = [new.pop(s["step"], s) for s in old.get("steps", [])] + list(new.values())
        out = {**old, "steps": merged, "only": args.only, "load_avg_end": out["load_avg_end"]}
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, default=str)
    return out


def _rows(res: dict) -> dict:
    """``{row name: part}`` of one shape's results (data rows and setup parts included)."""
    rows = {}
    for s in res.get("steps", []):
        if s.get("failed"):
            rows[f"{s['step']} (FAILED)"] = {"seconds": None, "failed": True, "step": s["step"]}
        for p in s.get("parts", []):
            rows[p["name"]] = {**p, "step": s["step"]}
    return rows


def build_table(results: dict) -> dict:
    small, large = results.get("20k"), results.get("200k")
    rs, rl = (_rows(small) if small else {}), (_rows(large) if large else {})
    names = list(dict.fromkeys([*rl, *rs]))
    table = []
    for n in names:
        a, b = rs.get(n), rl.get(n)
        row = {"step": n, "group": (b or a)["step"],
               "setup": bool((b or a).get("setup")),
               "s_20k": a and a.get("seconds"), "s_200k": b and b.get("seconds"),
               "cpu_20k": a and a.get("cpu_seconds"), "cpu_200k": b and b.get("cpu_seconds"),
               "rss_20k_mb": a and a.get("peak_rss_mb"), "rss_200k_mb": b and b.get("peak_rss_mb"),
               "pss_20k_mb": a and a.get("peak_pss_mb"), "pss_200k_mb": b and b.get("peak_pss_mb"),
               "mongod_rss_200k_mb": b and b.get("mongod_rss_mb"),
               "mongod_cpu_200k": b and b.get("mongod_cpu_seconds"),
               "status": (b or a).get("status"),
               "items_20k": a and a.get("items"), "items_200k": b and b.get("items")}
        if row["s_20k"] and row["s_200k"]:
            row["growth"] = row["s_200k"] / row["s_20k"]
        if row["cpu_20k"] and row["cpu_200k"] and row["cpu_20k"] > 0.05:
            row["growth_cpu"] = row["cpu_200k"] / row["cpu_20k"]
        if row["items_20k"] and row["items_200k"]:
            row["growth_items"] = row["items_200k"] / row["items_20k"]
        table.append(row)
    totals = {}
    for key, res in (("20k", small), ("200k", large)):
        if not res:
            continue
        reh = [p for s in res["steps"] if s["step"] in REHEARSAL for p in s.get("parts", [])
               if not p.get("setup")]
        data = [p for s in res["steps"] if s["step"] == "data" for p in s.get("parts", [])]
        totals[key] = {"rehearsal_seconds": sum(p["seconds"] for p in reh),
                       "rehearsal_cpu_seconds": sum(p["cpu_seconds"] for p in reh),
                       "rehearsal_mongod_cpu_seconds": sum(p["mongod_cpu_seconds"] for p in reh),
                       "data_seconds": sum(p["seconds"] for p in data),
                       "data_written_seconds": (sum(p["written_seconds"] for p in data)
                                                if data and all(p.get("written_seconds") for p in data)
                                                else None),
                       "data_reused": all(p.get("reused") for p in data) if data else None,
                       "peak_rss_mb": max([p["peak_rss_mb"] for p in reh] or [0]),
                       "peak_pss_mb": max([p.get("peak_pss_mb") or 0 for p in reh] or [0]),
                       "mongod_peak_rss_mb": max([p["mongod_rss_mb"] for p in reh] or [0]),
                       "load_avg_start": res.get("load_avg_start"),
                       "load_avg_end": res.get("load_avg_end"),
                       "failed_steps": [s["step"] for s in res["steps"] if s.get("failed")]}
    if "20k" in totals and "200k" in totals and totals["20k"]["rehearsal_seconds"]:
        totals["growth"] = totals["200k"]["rehearsal_seconds"] / totals["20k"]["rehearsal_seconds"]
    app = {k: next((s.get("extra") for s in r["steps"] if s["step"] == "app" and not s.get("failed")), None)
           for k, r in (("20k", small), ("200k", large)) if r}
    return {"rows": table, "totals": totals, "app": app}


def _f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)


def _items(r: dict) -> str:
    a, b = r.get("items_20k"), r.get("items_200k")
    if a is None and b is None:
        return ""
    g = f" ({r['growth_items']:.0f}x)" if r.get("growth_items") else ""
    return f"{a if a is not None else '-'} -> {b if b is not None else '-'}{g}"


def print_table(t: dict) -> None:
    print("\nstep                                           |   20K s |  200K s | growth | CPU growth "
          "| items 20K -> 200K       | peak RSS 20K / 200K MB | PSS 200K MB | mongod RSS 200K MB")
    print("-" * 180)
    for r in t["rows"]:
        flag = ""
        over = (r.get("growth") and r["growth"] > GROWTH_TARGET and (r["s_200k"] or 0) > 5
                and not r["setup"])  # setup rows (removing the last run, building a model) are not timed work
        if over and r.get("items_20k") == 0 and r.get("items_200k"):
            flag = "  (over 12x: the 20K run had none of this work)"
        elif over and r.get("growth_items") and r["growth"] / r["growth_items"] <= GROWTH_TARGET / 10:
            flag = "  (over 12x, but so is the work: linear per item)"
        elif over:
            flag = "  <-- over 12x"
        name = r["step"] + (" [setup]" if r["setup"] else "")
        if r.get("status") and r["status"] != "ok":
            name += f" [{r['status'][:60]}]"
        print(f"{name[:46]:<46} | {_f(r['s_20k']):>7} | {_f(r['s_200k']):>7} | "
              f"{_f(r.get('growth'), '{:.1f}x'):>6} | {_f(r.get('growth_cpu'), '{:.1f}x'):>10} | "
              f"{_items(r):<23} | "
              f"{_f(r['rss_20k_mb'], '{:.0f}'):>10} / {_f(r['rss_200k_mb'], '{:.0f}'):>9} | "
              f"{_f(r['pss_200k_mb'], '{:.0f}'):>11} | "
              f"{_f(r['mongod_rss_200k_mb'], '{:.0f}'):>8}{flag}")
    for k, v in t["totals"].items():
        if k == "growth":
            print(f"rehearsal growth 20K -> 200K: {v:.1f}x (target <= {GROWTH_TARGET:.0f}x)")
            continue
        print(f"{k}: rehearsal {v['rehearsal_seconds']:.0f} s = {v['rehearsal_seconds'] / 60:.1f} min "
              f"(target at 200K: < {BUDGET_SECONDS // 60} min), CPU {v['rehearsal_cpu_seconds']:.0f} s "
              f"+ mongod CPU {v['rehearsal_mongod_cpu_seconds']:.0f} s; data writing "
              f"{v['data_seconds']:.0f} s{' (reused)' if v['data_reused'] else ''}"
              f"{'' if not v.get('data_written_seconds') else ', written in %.0f s' % v['data_written_seconds']}; peak RSS "
              f"{v['peak_rss_mb']:.0f} MB (PSS {v['peak_pss_mb']:.0f} MB), mongod {v['mongod_peak_rss_mb']:.0f} MB; load average "
              f"{_f(v['load_avg_start'] and v['load_avg_start'][0])} at the start, "
              f"{_f(v['load_avg_end'] and v['load_avg_end'][0])} at the end"
              + (f"; FAILED: {v['failed_steps']}" if v["failed_steps"] else ""))
    for k, a in t["app"].items():
        if not a:
            continue
        if a.get("status") != "ok":
            print(f"App ({k}): {a.get('status')}")
            continue
        st = [j["stored_seconds"] for j in a["judgments"]]
        nx = [j["next_opened_seconds"] for j in a["judgments"]]
        print(f"App ({k}, {a['dataset_samples']} samples, queue {a['queue_size']}): server answers "
              f"HTTP {a['http_seconds']:.1f} s after `rorem-data review` starts; then grid first tile "
              f"{a['grid_first_tile_seconds']:.2f} s; first modal (link to the queue's first item) "
              f"visible {a['first_modal_visible_seconds']:.2f} s, media drawn "
              f"{a['first_modal_drawn_seconds']:.2f} s, keys live {a['first_modal_keys_ready_seconds']:.2f} s "
              f"(target < 10 s); {len(st)} judgments y/n -> stored in the database: median "
              f"{sorted(st)[len(st) // 2]:.3f} s, max {max(st):.3f} s (target < 0.5 s); next candidate "
              f"open: median {sorted(nx)[len(nx) // 2]:.2f} s, max {max(nx):.2f} s; "
              f"App processes left: {a['app_pids_alive_after_stop'] or 'none'}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("small", "large", "both"), default="both")
    ap.add_argument("--root", default="/tmp/rorem-paper")
    ap.add_argument("--json", default="/tmp/paper_scale.json")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="data-writing processes")
    ap.add_argument("--batch-size", type=int, default=32, help="run_round's batch_size (generation)")
    ap.add_argument("--app", default="20k,200k", help="shapes to measure the App on ('' for none)")
    ap.add_argument("--no-app", action="store_true")
    ap.add_argument("--reuse-results", action="store_true",
                    help="take a shape's results from <root>/results-<shape>.json if present")
    ap.add_argument("--profile", default="", help="steps to run under cProfile, e.g. round1,export")
    ap.add_argument("--data-only", action="store_true", help="only write (or check) the data")
    ap.add_argument("--target-precision", type=float, default=0.8,
                    help="run_round's target_precision (confidence 0.9)")
    ap.add_argument("--only", default="", help="run only these steps (comma-separated: data, "
                    "seeds, round1-3, finetune, status, report, export, app) on the project the "
                    "previous run built (needs --keep-db); their rows replace the stored ones")
    ap.add_argument("--keep-db", action="store_true",
                    help="keep the database folder (<root>/db) between runs, for --only")
    ap.add_argument("--pyspy", default="", help="py-spy binary: record every step's child "
                    "(<root>/profiles/*.pyspy.txt; compare with paper_profile.py)")
    ap.add_argument("--child")
    ap.add_argument("--shape")
    args = ap.parse_args(argv)
    args.profile = [s for s in args.profile.split(",") if s and s != "-"]
    args.app = [] if args.no_app else [s for s in args.app.split(",") if s]
    args.root = os.path.abspath(args.root)
    args.only = [s for s in args.only.split(",") if s]
    if (args.pyspy or args.profile) and args.json.endswith(".json"):
        args.json = args.json[:-len(".json")] + "-profiled.json"  # never over the plain timings
    if args.only and not args.keep_db and set(args.only) - {"data"}:
        ap.error("--only needs --keep-db (the projects live in the database of the run that built them)")
    if args.child:
        run_child(args.child, args.shape, args.root, args)
        return

    from _db import start_server

    shapes = {"small": ["20k"], "large": ["200k"], "both": ["20k", "200k"]}[args.scale]
    if args.data_only:
        with open(os.path.join(args.root, "log-data.txt"), "a") as log:
            for shape in shapes:
                res = _run_step("data", shape, args, log)
                for part in res.get("parts", []):
                    print(f"[{shape}] {part['name']}: {part['seconds']:.0f} s"
                          f"{' (reused)' if part.get('reused') else ''}", flush=True)
        return
    os.environ.pop("FIFTYONE_DATABASE_DIR", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.keep_db:
        uri = start_server(os.path.join(args.root, "db"))
        how = f"started for this run on the kept folder {os.path.join(args.root, 'db')}"
    else:
        uri = start_server()  # a fresh mongod for this run; FIFTYONE_DATABASE_URI points at it
        how = "started for this run on a fresh folder"
    os.environ["PAPER_DB_URI"] = uri
    os.environ["PAPER_MONGOD_PID"] = str(_mongod_pid() or "")
    print(f"database: {uri} (mongod pid {os.environ['PAPER_MONGOD_PID']}, {how}); "
          f"{os.cpu_count()} cores; 1-min load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    for shape in shapes:
        path = os.path.join(args.root, f"results-{shape}{'-profiled' if args.pyspy or args.profile else ''}.json")
        if args.reuse_results and os.path.exists(path):
            with open(path) as fh:
                results[shape] = json.load(fh)
            print(f"[{shape}] results reused from {path}", flush=True)
            continue
        results[shape] = run_shape(shape, args)
    if args.scale == "large" and args.reuse_results:
        p = os.path.join(args.root, "results-20k.json")
        if os.path.exists(p):
            with open(p) as fh:
                results["20k"] = json.load(fh)
    table = build_table(results)
    print_table(table)
    if args.pyspy:
        from paper_profile import compare

        for step in REHEARSAL:
            compare(args.root, step, "20k", "200k", PYSPY_RATE, 25)
    with open(args.json, "w") as fh:
        json.dump({"table": table, "results": results}, fh, indent=1, default=str)
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
