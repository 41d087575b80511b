"""``rorem-data demo``: the whole loop, small, on this machine, in minutes, CPU only.

What is real: the FiftyOne dataset and its database, every file, the removers (OpenCV Telea and
Navier-Stokes inpainting), the featurizer, the discriminator, calibration, thresholds, audits,
estimates, the report, the export, and a few fine-tuning steps of a tiny diffusion remover built
from a config. What is SIMULATED: the scenes (synthetic, so the object-free truth is known) and
the reviewers (they judge each result against that truth, with a few mistakes on purpose).
"""

from __future__ import annotations

import os
import shutil
import time


def _fresh_project(root: str, echo):
    """A new demo project in ``root``; a previous demo there is removed first - only if it is
    one (its folder holds the demo's output marker), never another folder or project."""
    from rorem_data.core import outputs
    from rorem_data.rounds.project import find_project_root, init_project, open_project

    if os.path.lexists(root):
        outputs.check_replaceable(root, "demo", flag="demo folder")
        if find_project_root(root) == root:
            import fiftyone as fo

            from rorem_data.dataset import store

            old = open_project(root)
            if fo.dataset_exists(old.dataset_name):
                fo.delete_dataset(old.dataset_name)
            store.delete_round_records(old.dataset_name)
        shutil.rmtree(root)
        echo(f"Removed the previous demo in {root}")
    os.makedirs(root)
    outputs.write_marker(root, "demo")
    return init_project(root, name="demo")


class DemoTeam:
    """Three SIMULATED reviewers working one queue: ana judges everything, bo gives second
    opinions on the double-review share, the chief adjudicates their disagreements."""

    def __init__(self, noise: float = 0.03):
        from rorem_data.testing.simulate import SimulatedReviewer

        self.ana = SimulatedReviewer("sim-ana", noise=noise, rng=1)
        self.bo = SimulatedReviewer("sim-bo", noise=noise, rng=2)
        self.chief = SimulatedReviewer("sim-chief", noise=0.0, rng=3)
        self.log = []

    def review_round(self, project, round: int, *, purposes=None) -> dict:
        from rorem_data.dataset import queries
        from rorem_data.rounds.review import apply_review

        a = self.ana.review_round(project, round, purposes=purposes)
        b = self.bo.review_round(project, round, purposes=purposes, double_only=True)
        docs = queries.queue_members(project.dataset, round, ["filepath", "target_path", "mask.mask_path"],
                                     needs_adjudication=True)
        for d in docs:
            status, reason = self.chief.truth(d["filepath"], d["target_path"], d["mask"]["mask_path"])
            apply_review(project.dataset, d["id"], status, reviewer=self.chief.name, reason=reason,
                         adjudicate=True)
        self.log.append({"round": round, "purposes": purposes, "ana": a, "bo": b, "adjudicated": len(docs)})
        return a

    def check_automatic(self, project, round: int, target: float) -> str:
        """What only a simulation can show: the share of the round's automatic decisions (the
        audited ones included, as the discriminator made them) that are right against the truth."""
        from rorem_data.core import schema
        from rorem_data.dataset import queries

        docs = queries.candidates(project.dataset, round=round, fields=[
            "filepath", "target_path", "mask.mask_path", "decisions"])
        right = {schema.ACCEPTED: [], schema.REJECTED: []}
        for d in docs:
            auto = [x for x in d.get("decisions") or [] if x and x.get("by") == schema.BY_DISCRIMINATOR
                    and x.get("status") in right]
            if auto:
                truth = self.chief.truth(d["filepath"], d["target_path"], d["mask"]["mask_path"])[0]
                right[auto[-1]["status"]].append(truth == auto[-1]["status"])
        parts = [f"{len(v)} automatic {k[:-2]}s are {100 * sum(v) / len(v):.1f}% right"
                 for k, v in right.items() if v]
        if not parts:
            return f"  round {round}: no automatic decision to check against the truth"
        return (f"  round {round}, against the synthetic truth (only a simulation knows it): "
                + ", ".join(parts) + f" (target {100 * target:.0f}%; the audit above measures a "
                "sample of them through the reviewers' eyes)")


def run_demo(path: str = "demo-project", *, small: bool = False, echo=print, sizes: dict | None = None,
             target_precision: float = 0.8, confidence: float = 0.9) -> dict:
    """Run the loop: a project from synthetic scenes, two rounds (``run_round``), fine-tuning,
    the round table, report and export."""
    from rorem_data.rounds.driver import run_round
    from rorem_data.rounds.review import reviewer_agreement
    from rorem_data.rounds.status import print_status, round_table
    from rorem_data.testing import synthetic

    t0 = time.perf_counter()
    os.environ.setdefault("ROREM_PROGRESS", "0")
    sizes = sizes or ({"seeds": 30, "pool": 60, "budget": 40} if small else
                      {"seeds": 200, "pool": 400, "budget": 250})
    root = os.path.abspath(path)
    echo("rorem-data demo. SIMULATED: the scenes (synthetic, truth known) and the reviewers. REAL: "
         "everything else.")
    project = _fresh_project(root, echo)
    echo(f"Project {root}, FiftyOne dataset {project.dataset_name!r} "
         f"({os.environ.get('FIFTYONE_DATABASE_URI') or 'embedded database'})")
    data = os.path.join(root, "data")
    meta = synthetic.write_seed_set(os.path.join(data, "seeds"), sizes["seeds"], seed=0)
    synthetic.write_pool_folder(os.path.join(data, "pool-r1"), sizes["pool"], seed=1)
    synthetic.write_pool_folder(os.path.join(data, "pool-r2"), sizes["pool"], seed=2)
    echo(f"Synthetic data: {sizes['seeds']} seed triplets, 2 x {sizes['pool']} pool images")
    echo(project.import_seeds(meta, origin="synthetic-seeds", license="CC0-1.0").summary())
    for r in (1, 2):
        echo(project.import_pool(os.path.join(data, f"pool-r{r}"), origin=f"pool-r{r}",
                                 license="CC-BY-4.0").summary())

    team = DemoTeam()
    common = dict(budget=sizes["budget"], reviewer=team, spec="stats-logistic",
                  target_precision=target_precision, confidence=confidence, audit=0.2, double_share=0.15, gold_rate=0.1,
                  progress=False, echo=echo)
    echo("Round 1 (remover: OpenCV Telea). No human label yet: a first discriminator learns from "
         "the seed pairs (each seed's target a success, the object pasted back or a blurred fill a "
         "failure) and draws the sample; round 1's own discriminator, refitted without each fifth "
         "of the sample to decide that fifth (cross-fitting), decides, certified on all of its labels")
    r1 = run_round(project, 1, remover="classical:telea", pool_filter={"origin": "pool-r1"}, rng=0,
                   **common)
    echo("Round 2 (remover: OpenCV Navier-Stokes, new to the discriminator). Round 1's "
         "discriminator draws round 2's sample; round 2's own, cross-fitted and averaged with it, "
         "decides, certified on all of round 2's labels")
    r2 = run_round(project, 2, remover="classical:ns", pool_filter={"origin": "pool-r2"}, rng=1,
                   **common)
    for res in (r1, r2):
        ag = reviewer_agreement(project, res.round)
        if ag.get("items"):
            echo(f"  round {res.round}: reviewer agreement on {ag['items']} double-judged items "
                 f"{100 * ag['percent_agreement']:.0f}% (Cohen's kappa {ag['cohen_kappa']:.2f}); "
                 f"{sum(x['adjudicated'] for x in team.log if x['round'] == res.round)} adjudicated")
        echo(team.check_automatic(project, res.round, target_precision))

    echo("Fine-tuning a tiny diffusion inpainting remover (built from a config, random weights) for a "
         "few steps on the round-2 training set")
    from rorem_data.rounds.finetune import finetune
    from rorem_data.testing.tiny import build_tiny_sd_inpaint

    base = build_tiny_sd_inpaint(os.path.join(root, "models", "tiny-sd-inpaint"))
    ft = finetune(project, 2, pretrained=base, output=os.path.join(root, "models", "remover-r2"),
                  max_train_steps=4, resolution=64, train_batch_size=2, checkpointing_steps=2,
                  validation_steps=100, progress=False)
    echo(f"  {ft.summary()}")

    echo("\nThe project's round table (the paper's Table 1, for this data):")
    print_status(project)
    rows = round_table(project, estimates=True)
    from rorem_data.rounds.report import write_report

    index = write_report(project, os.path.join(root, "report"))
    echo(f"\nReport: {index}")
    res = project.export(2, os.path.join(root, "exports", "round-2"), overwrite=True)
    echo(f"Export: {res.summary()}")
    echo(f"Open the App on round 2's review queue:  rorem-data -p {root} review --round 2   "
         "(then http://127.0.0.1:5151; keys y / n / 1-5 / u)")
    echo(f"Demo finished in {time.perf_counter() - t0:.0f} s")
    return {"project": project, "rows": rows, "export": res, "report": index, "rounds": [r1, r2]}
