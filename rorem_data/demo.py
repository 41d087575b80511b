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
    from rorem_data.rounds.project import find_project_root, init_project, open_project

    if find_project_root(root) == root:
        old = open_project(root)
        if old.name != "demo":
            from rorem_data.core.errors import ProjectError

            raise ProjectError(f"{root} holds a project that is not the demo's ({old.name!r}); "
                               "pick another folder for the demo")
        import fiftyone as fo

        from rorem_data.dataset import store

        if fo.dataset_exists(old.dataset_name):
            fo.delete_dataset(old.dataset_name)
        store.delete_round_records(old.dataset_name)
        shutil.rmtree(root)
        echo(f"Removed the previous demo in {root}")
    return init_project(root, name="demo")


def _round(project, r, remover, origin, *, echo, sizes, reviewers, version=None, rng=0):
    """One round: generate, featurize, estimation sample, active queue, reviews, discriminator,
    auto-label with audit. Returns the new discriminator version."""
    from rorem_data.rounds.automation import audit_report, auto_label, round_estimates
    from rorem_data.core.errors import ConfigError
    from rorem_data.rounds.discriminator import featurize, score, train
    from rorem_data.rounds.generate import generate
    from rorem_data.rounds.queue import build_estimate_sample, build_queue

    ana, bo, chief = reviewers
    g = generate(project, r, remover, candidates=1, batch_size=8, pool_filter={"origin": origin},
                 progress=False)
    echo(f"  generate: {g.summary()}")
    f = featurize(project, "stats", round=r, num_workers=0, progress=False)
    echo(f"  featurize: {f.summary()}")
    n = g.inserted + g.already_present
    est = build_estimate_sample(project, r, max(10, n // 5), rng=rng)
    echo(f"  estimation sample (uniform, for unbiased success rates): {len(est.sample_ids)} candidates")
    if version is None:
        sel = build_queue(project, r, sizes["active"], strategy="kcenter", featurizer=f.key,
                          double_share=0.15, rng=rng)
    else:
        s = score(project, r, version, progress=False)
        echo(f"  score with the previous round's discriminator: {s.summary()}")
        sel = build_queue(project, r, sizes["active"], strategy="hybrid", discriminator=version,
                          featurizer=f.key, double_share=0.15, rng=rng)
    echo(f"  select: {sel.summary()}")
    a = ana.review_round(project, r)
    b = bo.review_round(project, r, double_only=True)
    echo(f"  SIMULATED review: {ana.name} judged {a['judged']} ({a['accepted']} accepted, "
         f"{a['flipped']} deliberate mistakes); {bo.name} gave {b['judged']} second opinions")
    from rorem_data.rounds.review import reviewer_agreement

    ag = reviewer_agreement(project, r)
    if ag.get("items"):
        adj = _adjudicate(project, r, chief)
        echo(f"  reviewer agreement on {ag['items']} double-judged items: {100 * ag['percent_agreement']:.0f}% "
             f"(Cohen's kappa {ag['cohen_kappa']:.2f}); {adj} disagreements adjudicated by {chief.name}")
    t = train(project, r, "stats-logistic", holdout=0.4, progress=False)
    echo(f"  discriminator: {t.summary()}")
    s = score(project, r, t.version, progress=False)
    target = sizes["target"]
    try:
        al = auto_label(project, r, version=t.version, target_precision=target, confidence=0.9,
                        audit=0.1, rng=rng)
    except ConfigError as exc:
        echo(f"  auto-label: not possible with these labels, so nothing was decided automatically: {exc}")
    else:
        echo(f"  auto-label: {al.summary()}")
        au = ana.review_round(project, r, purposes=["audit"])
        rep = audit_report(project, r)
        p = rep["accept_precision"]
        if p.get("n"):
            echo(f"  audit ({au['judged']} SIMULATED re-judgments): precision of automatic accepts "
                 f"{100 * p['value']:.1f}% [{100 * p['lo']:.1f}, {100 * p['hi']:.1f}] vs target "
                 f"{100 * target:.0f}%: {rep['flag']}")
    e = round_estimates(project, r, version=t.version)
    h, pp = e.get("human"), e.get("ppi")
    if h:
        echo(f"  remover success rate: human sample {100 * h['value']:.1f}% [{100 * h['lo']:.1f}, "
             f"{100 * h['hi']:.1f}]" + (f"; prediction-powered {100 * pp['value']:.1f}% [{100 * pp['lo']:.1f}, "
                                        f"{100 * pp['hi']:.1f}]" if pp else ""))
    return t.version


def _adjudicate(project, r, chief) -> int:
    from rorem_data.rounds.review import apply_review

    from rorem_data.dataset import queries

    docs = queries.queue_members(project.dataset, r, ["filepath", "target_path", "mask.mask_path"],
                                 needs_adjudication=True)
    for d in docs:
        status, reason = chief.truth(d["filepath"], d["target_path"], d["mask"]["mask_path"])
        apply_review(project.dataset, d["id"], status, reviewer=chief.name, reason=reason, adjudicate=True)
    return len(docs)


def run_demo(path: str = "demo-project", *, small: bool = False, echo=print) -> dict:
    """Run the loop: a project from synthetic scenes, two rounds, fine-tuning, report, export."""
    from rorem_data.testing import synthetic
    from rorem_data.testing.simulate import SimulatedReviewer
    from rorem_data.rounds.status import round_table

    t0 = time.perf_counter()
    os.environ.setdefault("ROREM_PROGRESS", "0")
    sizes = ({"seeds": 30, "pool": 60, "active": 40, "target": 0.8} if small else
             {"seeds": 300, "pool": 260, "active": 160, "target": 0.8})
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
    echo(project.import_seeds(meta, origin="synthetic-seeds").summary())
    for r in (1, 2):
        echo(project.import_pool(os.path.join(data, f"pool-r{r}"), origin=f"pool-r{r}").summary())

    reviewers = (SimulatedReviewer("sim-ana", noise=0.03, rng=1), SimulatedReviewer("sim-bo", noise=0.03, rng=2),
                 SimulatedReviewer("sim-chief", noise=0.0, rng=3))
    echo("Round 1 (remover: OpenCV Telea)")
    v1 = _round(project, 1, "classical:telea", "pool-r1", echo=echo, sizes=sizes, reviewers=reviewers)
    echo("Round 2 (remover: OpenCV Navier-Stokes - a new remover, so its candidates are audited more)")
    _round(project, 2, "classical:ns", "pool-r2", echo=echo, sizes=sizes, reviewers=reviewers, version=v1, rng=1)

    echo("Fine-tuning a tiny diffusion inpainting remover (built from a config, random weights) for a "
         "few steps on the round-2 training set")
    from rorem_data.finetune.train import finetune_cli
    from rorem_data.testing.tiny import build_tiny_sd_inpaint

    base = build_tiny_sd_inpaint(os.path.join(root, "models", "tiny-sd-inpaint"))
    ft = finetune_cli(project, 2, pretrained=base, output=os.path.join(root, "models", "remover-r2"),
                      max_train_steps=4, resolution=64, train_batch_size=2, checkpointing_steps=2,
                      validation_steps=100, progress=False)
    echo(f"  {ft.summary()}")

    rows = round_table(project, estimates=True)
    echo("\nThe project's round table (the paper's Table 1, for this data):")
    echo(f"{'round':>5} {'phase':6} {'cand.':>6} {'sel.':>6} {'human':>6} {'acc.h':>6} {'auto':>6} "
         f"{'acc.a':>6} {'train':>6}  success rate (95% CI)")
    for r in rows:
        sr = r.success_rate
        rate = f"{100 * sr['value']:.1f}% [{100 * sr['lo']:.1f}, {100 * sr['hi']:.1f}] ({sr['source']})" if sr else ""
        echo(f"{r.round:>5} {r.phase:6} {r.candidates:>6} {r.selected:>6} {r.human_reviewed:>6} {r.accepted_by_human:>6} "
             f"{r.auto_decided:>6} {r.accepted_by_discriminator:>6} {r.cumulative_train:>6}  {rate}")
    from rorem_data.rounds.report import write_report

    index = write_report(project, os.path.join(root, "report"))
    echo(f"\nReport: {index}")
    res = project.export(2, os.path.join(root, "exports", "round-2"), overwrite=True)
    echo(f"Export: {res.summary()}")
    echo(f"Open the App on round 2's review queue:  rorem-data -p {root} review --round 2   "
         "(then http://127.0.0.1:5151; keys y / n / 1-5 / u)")
    echo(f"Demo finished in {time.perf_counter() - t0:.0f} s")
    return {"project": project, "rows": rows, "export": res, "report": index}
