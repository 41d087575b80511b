"""``rorem-data demo``: the loop, small, on this machine.

Today it builds a project from synthetic scenes (seed triplets and a pool), imports both,
prints the round table and exports round 0. Later stages of the loop extend it as they land.
"""

from __future__ import annotations

import os
import shutil
import time


def run_demo(path: str = "demo-project", *, small: bool = False, echo=print) -> dict:
    from . import synthetic
    from .project import init_project, open_project, find_project_root
    from .status import round_table

    t0 = time.perf_counter()
    n_seeds, n_pool = (40, 20) if small else (400, 200)
    root = os.path.abspath(path)
    if find_project_root(root) == root:
        echo(f"Reusing the demo project in {root}")
        project = open_project(root)
    else:
        project = init_project(root, name="demo")
        echo(f"Created project {root} (FiftyOne dataset {project.dataset_name!r}, embedded database)")
    data = os.path.join(root, "data")
    meta = os.path.join(data, "seeds", "meta.json")
    if not os.path.exists(meta):
        echo(f"Drawing {n_seeds} synthetic seed triplets and {n_pool} pool images "
             "(SIMULATED data: textured backgrounds with objects and soft shadows)")
        synthetic.write_seed_set(os.path.join(data, "seeds"), n_seeds, seed=0)
        synthetic.write_pool_folder(os.path.join(data, "pool"), n_pool, seed=1)
    echo(project.import_seeds(meta, origin="synthetic-seeds").summary())
    echo(project.import_pool(os.path.join(data, "pool"), origin="synthetic-pool").summary())
    rows = round_table(project)
    for r in rows:
        echo(f"round {r.round} {r.phase:5s} candidates={r.candidates} accepted={r.accepted} "
             f"cumulative={r.cumulative_train}")
    out = os.path.join(root, "exports", "round-0")
    res = project.export(0, out, overwrite=True)
    echo(res.summary())
    echo(f"Open the App on this project:  cd {root} && rorem-data review --round 0   "
         f"(or in Python: fiftyone.launch_app(fiftyone.load_dataset({project.dataset_name!r}), "
         "address='127.0.0.1'))")
    echo(f"Demo finished in {time.perf_counter() - t0:.1f} s")
    return {"project": project, "export": res, "rows": rows}
