"""The steps of the paper-scale rehearsal, each run in a child process of ``paper_scale.py``.

Every step opens the project, does its work through the public API (``rorem_data.*``), and
returns its measured parts (see :mod:`paper_measure`). A step never decides anything by
itself that a user would not: the parameters are those a team running the paper's loop would
pass, listed in :data:`SHAPES` and :func:`round_params`.
"""

from __future__ import annotations

import os
import shutil
import time

# The paper's shape (RORem: ~60K seed triplets, then rounds over OpenImages pools; 10K human
# reviews in the human round) and the same shape at 1/10.
SHAPES = {
    "20k": {"seeds": 6_000, "pools": (5_000, 7_000, 8_000), "budgets": (1_000, 200, 200)},
    "200k": {"seeds": 60_000, "pools": (50_000, 70_000, 80_000), "budgets": (10_000, 2_000, 2_000)},
}
IMAGE_SIZE = 48
PROJECT_MARKER = ".paper-scale-project"  # folders this benchmark made (and may replace)
REVIEWER = "sim-reviewer"
LICENSE_SEEDS = "CC0-1.0"
LICENSE_POOL = "CC-BY-4.0"


def data_dir(root: str, shape: str) -> str:
    return os.path.join(root, f"data-{shape}")


def project_dir(root: str, shape: str) -> str:
    return os.path.join(root, f"proj-{shape}")


def round_params(shape: str, r: int, batch_size: int, target_precision: float = 0.8) -> dict:
    """What ``run_round`` gets in round ``r`` (1-3) of ``shape``."""
    from rorem_data.testing.simulate import SimulatedReviewer

    budget, pool = SHAPES[shape]["budgets"][r - 1], SHAPES[shape]["pools"][r - 1]
    return dict(remover="classical:telea" if r == 1 else "classical:ns",
                budget=budget,
                # active inference: every candidate has inclusion probability >= floor, so the
                # floor's share of the pool must fit well inside the budget (half of it here)
                floor=min(0.05, 0.5 * budget / pool),
                reviewer=SimulatedReviewer(REVIEWER, noise=0.03, rng=r),
                pool_filter={"origin": f"pool-r{r}"}, audit=0.05, target_precision=target_precision,
                confidence=0.9, spec="stats-logistic", featurizer="stats", batch_size=batch_size,
                rng=r, progress=False)


# --- data (not part of the rehearsal's time) ---------------------------------------------------


def step_data(root: str, shape: str, clock, workers: int, **_):
    from paper_data import write_pool, write_seeds, written_seconds

    s = SHAPES[shape]
    d = data_dir(root, shape)
    folder = os.path.join(d, "seeds")
    _meta, sec = write_seeds(folder, s["seeds"], size=IMAGE_SIZE, seed=0, workers=workers)
    clock.mark("write seed set", items=s["seeds"], files=3 * s["seeds"], reused=sec == 0,
               written_seconds=written_seconds(folder))
    for r, n in enumerate(s["pools"], start=1):
        folder = os.path.join(d, f"pool-r{r}")
        _root, sec = write_pool(folder, n, size=IMAGE_SIZE, seed=r, workers=workers)
        clock.mark(f"write pool r{r}", items=n, files=3 * n, reused=sec == 0,
                   written_seconds=written_seconds(folder))
    return {}


# --- the rehearsal -------------------------------------------------------------------------------


def _drop_dataset(proj: str) -> None:
    """Delete the previous project's dataset and round records when this database holds them
    (a kept database, ``--keep-db``); a project of another run's database is left alone."""
    import rorem_data
    from rorem_data.core.errors import ProjectError

    try:
        old = rorem_data.open_project(proj)
        old.check_database()
    except ProjectError:
        return
    import fiftyone as fo

    from rorem_data.dataset import store

    if fo.dataset_exists(old.dataset_name):
        fo.delete_dataset(old.dataset_name)
    store.delete_round_records(old.dataset_name)


def step_seeds(root: str, shape: str, clock, **_):
    """A fresh project, then ``import_seeds``."""
    import rorem_data

    proj = project_dir(root, shape)
    if os.path.exists(proj):
        if not os.path.exists(os.path.join(proj, PROJECT_MARKER)):
            raise SystemExit(f"{proj} exists but was not made by this benchmark; remove it yourself")
        _drop_dataset(proj)
        shutil.rmtree(proj)
    os.makedirs(proj)
    open(os.path.join(proj, PROJECT_MARKER), "w").close()
    clock.mark("(remove the previous project)", setup=True)
    project = rorem_data.init_project(proj, name=f"paper-{shape}")
    meta = os.path.join(data_dir(root, shape), "seeds", "meta.json")
    res = rorem_data.import_seeds(project, [meta], origin="synthetic-seeds", license=LICENSE_SEEDS)
    if res.inserted != SHAPES[shape]["seeds"]:
        raise SystemExit(f"import seeds inserted {res.inserted}: {res.summary()}")
    clock.mark("import seeds", items=res.inserted)
    return {"dataset": project.dataset_name}


_WORK = {"generate": r"(\d+) new candidates", "featurize": r"(\d+) candidates",
         "score_previous": r"scored (\d+)", "score": r"scored (\d+)", "queue": r"drew (\d+)",
         "gold": r"(\d+) gold", "review": r"(\d+) judged", "audit_review": r"(\d+) judged",
         "train": r"on (\d+) human labels"}


def work_items(step: str, summary: str) -> int | None:
    """How many items a driver step worked on, read from its summary line (None if unknown):
    candidates generated / featurized / scored, queue draws, judgments, labels trained on, and
    for ``auto_label`` the automatic decisions (accepted + rejected)."""
    import re

    if step == "auto_label":
        found = [int(x) for x in re.findall(r"(?:accepted|rejected) (\d+) \(", summary)]
        return sum(found) if found else 0
    m = re.search(_WORK[step], summary) if step in _WORK else None
    return int(m.group(1)) if m else None


def step_round(root: str, shape: str, clock, round: int, batch_size: int, target_precision: float,
               **_):
    """``import_pool`` of the round's pool, then ``run_round``, each driver step timed."""
    import rorem_data

    project = rorem_data.open_project(project_dir(root, shape))
    pool = os.path.join(data_dir(root, shape), f"pool-r{round}")
    res = rorem_data.import_pool(project, pool, origin=f"pool-r{round}", license=LICENSE_POOL)
    n = SHAPES[shape]["pools"][round - 1]
    if res.inserted != n:
        raise SystemExit(f"import pool r{round} inserted {res.inserted}: {res.summary()}")
    clock.mark(f"r{round} import pool", items=res.inserted)
    lines = []

    def echo(line: str) -> None:
        line = line.strip()
        lines.append(line)
        name, _, text = line.partition(":")
        clock.mark(f"r{round} {name}", items=work_items(name, text))

    params = round_params(shape, round, batch_size, target_precision)
    out = rorem_data.run_round(project, round, echo=echo, **params)
    clock.mark(f"r{round} estimates")
    print(out.summary(), flush=True)
    return {"round": round, "summary": out.summary(), "lines": lines,
            "params": {k: (v if isinstance(v, (int, float, str, dict)) else type(v).__name__)
                       for k, v in params.items()}}


def step_finetune(root: str, shape: str, clock, **_):
    """``rorem_data.finetune`` on the round-3 set with a tiny SD-inpaint built from a config."""
    import rorem_data

    try:
        from rorem_data.rounds.finetune import finetune
        from rorem_data.testing.tiny import build_tiny_sd_inpaint
    except ImportError as exc:
        clock.mark("finetune", status=f"not run: {exc}")
        return {"status": f"not run: {exc}"}
    project = rorem_data.open_project(project_dir(root, shape))
    models = os.path.join(root, f"models-{shape}")
    if os.path.exists(models) and not os.path.exists(os.path.join(models, PROJECT_MARKER)):
        raise SystemExit(f"{models} exists but was not made by this benchmark; remove it yourself")
    os.makedirs(models, exist_ok=True)
    open(os.path.join(models, PROJECT_MARKER), "w").close()
    base = os.path.join(models, "tiny-sd-inpaint")
    if not os.path.exists(os.path.join(base, "model_index.json")):
        build_tiny_sd_inpaint(base)
    out = os.path.join(models, "remover-r3")
    if os.path.exists(out):  # the previous run's output, inside this benchmark's own folder
        shutil.rmtree(out)
    clock.mark("(build the tiny model)", setup=True)
    try:
        res = finetune(project, 3, pretrained=base, output=out, max_train_steps=4, resolution=64,
                       train_batch_size=2, checkpointing_steps=2, validation_steps=100,
                       progress=False)
    except Exception as exc:  # noqa: BLE001 - reported in the table, the rehearsal goes on
        clock.mark("finetune (export round 3 + 4 steps)", status=f"failed: {type(exc).__name__}: {exc}")
        return {"status": f"failed: {type(exc).__name__}: {exc}"}
    clock.mark("finetune (export round 3 + 4 steps)", status="ok")
    print(res.summary(), flush=True)
    return {"status": "ok", "summary": res.summary()}


def step_status(root: str, shape: str, clock, **_):
    import rorem_data
    from rorem_data.rounds.status import status_dict

    project = rorem_data.open_project(project_dir(root, shape))
    rows = rorem_data.status(project)
    clock.mark("status")
    data = status_dict(project)
    clock.mark("status --json (with estimates, reviewers)")
    for r in rows:
        print(f"  round {r.round} {r.phase:<5} cand {r.candidates:>7} human {r.human_reviewed:>6} "
              f"auto {r.auto_decided:>7} accepted {r.accepted:>7} train set {r.cumulative_train:>7}",
              flush=True)
    return {"rounds": data["rounds"]}


def step_report(root: str, shape: str, clock, **_):
    import rorem_data

    project = rorem_data.open_project(project_dir(root, shape))
    index = rorem_data.report(project, os.path.join(project.root, "report"))
    clock.mark("report")
    return {"index": index}


def step_export(root: str, shape: str, clock, **_):
    import rorem_data

    project = rorem_data.open_project(project_dir(root, shape))
    res = rorem_data.export(project, 3, os.path.join(project.root, "exports", "round-3"))
    clock.mark("export round 3", items=res.accepted + res.rejected, files=res.files)
    print(res.summary(), flush=True)
    return {"summary": res.summary()}


def step_app(root: str, shape: str, clock, **_):
    from paper_app import measure_review_app

    out = measure_review_app(project_dir(root, shape), round=1, judgments=10)
    clock.mark("App: review round 1 in a browser (whole measurement)")
    return out


STEPS = {"data": step_data, "seeds": step_seeds, "round1": step_round, "round2": step_round,
         "round3": step_round, "finetune": step_finetune, "status": step_status,
         "report": step_report, "export": step_export, "app": step_app}
