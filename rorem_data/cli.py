"""``rorem-data``: a thin shell over the library. Each command parses, calls one library
function and prints; errors exit non-zero with one clear message and no traceback.

Under ``accelerate launch -m rorem_data.cli generate ...`` (or ``featurize``) each process joins
the process group, takes its share of the items and leaves the group at the end.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer

from rorem_data.core.errors import RoremError, RoundInterrupted
from rorem_data.rounds import defaults as D

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build paired object-removal training data with a human in the loop.")
import_app = typer.Typer(no_args_is_help=True, help="Import seed triplets or pool items.")
app.add_typer(import_app, name="import")
disc_app = typer.Typer(no_args_is_help=True, help="Train, evaluate and list discriminators.")
app.add_typer(disc_app, name="discriminator")
labels_app = typer.Typer(no_args_is_help=True, help="Exchange review labels as CSV/JSON files.")
app.add_typer(labels_app, name="labels")
round_app = typer.Typer(no_args_is_help=True, help="Run a whole round.")
app.add_typer(round_app, name="round")

_state = {"project": None}


@app.callback()
def _main(project: Optional[str] = typer.Option(
        None, "--project", "-p", help="Project folder (default: this folder or a parent).")):
    _state["project"] = project


def _open():
    from rorem_data.rounds.project import open_project

    return open_project(_state["project"] or ".")


def _echo(msg: str) -> None:
    typer.echo(msg)


def _csv(value: Optional[str]) -> Optional[list]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _json_option(value: Optional[str], flag: str):
    if not value:
        return None
    from rorem_data.core import jsonfile

    data = jsonfile.loads(value, what=f"{flag} {value!r}", fix=f"pass a JSON object, e.g. {flag} '{{\"size\": 256}}'")
    if not isinstance(data, dict):
        from rorem_data.core.errors import ConfigError

        raise ConfigError(f"{flag} must be a JSON object such as '{{\"size\": 256}}'; got {value!r}")
    return data


def _params_option(values: Optional[list], flag: str = "--param") -> dict:
    """``KEY=VALUE`` pairs; a value that reads as JSON (number, true/false, null) is that value,
    otherwise the text itself. A key given twice is an error (no silent last-one-wins)."""
    import json

    from rorem_data.core.errors import ConfigError

    out: dict = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE with a parameter name as KEY, "
                              f"e.g. {flag} audit_share=1")
        if key in out:
            raise ConfigError(f"{flag} {key} is given twice; give each parameter once")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, (list, dict)):
            value = raw
        out[key] = value
    return out


def _opt(**kw):
    """Only the options the user set (so the library's defaults apply otherwise)."""
    return {k: v for k, v in kw.items() if v not in (None, False)}


@app.command()
def init(
    path: str = typer.Argument(".", help="Project folder."),
    name: Optional[str] = typer.Option(None, help="Project name (default: folder name)."),
    dataset: Optional[str] = typer.Option(None, help="FiftyOne dataset name."),
    force: bool = typer.Option(False, help="Re-create the config of an existing project (and "
                               "adopt the connected database)."),
):
    """Make a folder a rorem-data project (config, FiftyOne dataset, media folder)."""
    from rorem_data.rounds.project import init_project

    p = init_project(_state["project"] or path, name=name, dataset=dataset, force=force)
    _echo(f"Initialized project {p.name!r} in {p.root} (dataset {p.dataset_name!r}, database "
          f"{p.config.db_path or p.config.db_uri or 'embedded'})")


@import_app.command("seeds")
def import_seeds_cmd(
    meta: List[str] = typer.Argument(..., help="One or more RORem meta.json files."),
    origin: Optional[str] = typer.Option(None, help="Origin name (default: meta.json folder name)."),
    license: Optional[str] = typer.Option(None, "--license", help="License of the data (SPDX id or text)."),
    license_url: Optional[str] = typer.Option(None, "--license-url", help="Where the license terms are."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Import the good entries; write the report to a file."),
    report: Optional[str] = typer.Option(None, help="Where to write the problem report."),
    full_decode: bool = typer.Option(False, "--full-decode", help="Decode every pixel."),
    workers: Optional[int] = typer.Option(None, help="Processes for file checks."),
):
    """Import RORem-layout triplets (source/ mask/ GT/ meta.json) as round-0 seed pairs."""
    from rorem_data.dataset.seeds import import_seeds

    r = import_seeds(_open(), meta, origin=origin, skip_invalid=skip_invalid, report_path=report,
                     full_decode=full_decode, workers=workers,
                     **_opt(license=license, license_url=license_url))
    _echo(r.summary())


@import_app.command("pool")
def import_pool_cmd(
    source: str = typer.Argument(..., help="Folder with images/ and masks/, or a COCO JSON."),
    origin: Optional[str] = typer.Option(None, help="Origin name."),
    images: Optional[str] = typer.Option(None, help="COCO: folder the file_name paths are in."),
    license: Optional[str] = typer.Option(None, "--license", help="License of the data (SPDX id or text)."),
    license_url: Optional[str] = typer.Option(None, "--license-url", help="Where the license terms are."),
    min_area: float = typer.Option(0.0, help="Minimum mask area (fraction of the image)."),
    max_area: float = typer.Option(1.0, help="Maximum mask area (fraction of the image)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Import the good items; write the report to a file."),
    report: Optional[str] = typer.Option(None, help="Where to write the problem report."),
    full_decode: bool = typer.Option(False, "--full-decode", help="Decode every pixel."),
    workers: Optional[int] = typer.Option(None, help="Processes for file checks."),
):
    """Import (image, object mask) pool items to generate candidates from."""
    from rorem_data.dataset.pool import import_pool

    r = import_pool(_open(), source, origin=origin, images_dir=images, min_area=min_area,
                    max_area=max_area, skip_invalid=skip_invalid, report_path=report,
                    full_decode=full_decode, workers=workers,
                    **_opt(license=license, license_url=license_url))
    _echo(r.summary())


@app.command()
def export(
    round: int = typer.Option(..., "--round", "-r", help="Export the set as it stood after this round."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder (must not exist)."),
    format: str = typer.Option("rorem", "--format", "-f", help="rorem | imagefolder | parquet"),
    with_rejected: bool = typer.Option(False, "--with-rejected",
                                       help="Add rejected pairs; score 1/0 (discriminator format)."),
    embed_images: bool = typer.Option(False, "--embed-images", help="Parquet: store image bytes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
    license_allow: Optional[str] = typer.Option(None, "--license-allow",
                                                help="Only pairs under these licenses (comma-separated)."),
    license_deny: Optional[str] = typer.Option(None, "--license-deny",
                                               help="Leave out pairs under these licenses (comma-separated)."),
):
    """Export the cumulative training set after round N."""
    from rorem_data.dataset.export import export_round

    r = export_round(_open(), round, out, format=format, with_rejected=with_rejected,
                     embed_images=embed_images, overwrite=overwrite,
                     **_opt(license_allow=_csv(license_allow), license_deny=_csv(license_deny)))
    _echo(r.summary())


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Print the per-round table."""
    from rorem_data.rounds.status import print_status, status_dict

    p = _open()
    if as_json:
        _echo(json.dumps(status_dict(p), indent=1, default=str))
    else:
        print_status(p)


@app.command()
def generate(
    round: int = typer.Option(..., "--round", "-r", help="Round the candidates belong to (>= 1)."),
    remover: str = typer.Option(..., "--remover", help="Remover spec: a .toml/.json file, a pipeline "
                                "folder or hub id, or classical[:telea|ns]."),
    candidates: int = typer.Option(1, "--candidates", "-k", help="Candidates per pool item."),
    batch_size: int = typer.Option(4, "--batch-size", "-b",
                                   help="Candidates per pipeline call and per database write."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: only this share of the pool "
                                        "(under accelerate launch, split further per process)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Only pool items of this origin."),
    device: Optional[str] = typer.Option(None, "--device", help="Override the spec's device."),
):
    """Generate removal candidates for the pool items (resumable, shardable)."""
    from rorem_data.core import sharding
    from rorem_data.rounds.generate import generate as run

    share = sharding.accelerate_share()  # joins the process group first under accelerate launch
    try:
        r = run(_open(), round, remover, candidates=candidates, batch_size=batch_size,
                shard=shard, device=device, pool_filter={"origin": origin} if origin else None)
        _echo(r.summary())
    finally:
        if share is not None:
            from accelerate import PartialState

            PartialState().destroy_process_group()


@app.command()
def finetune(
    round: int = typer.Option(..., "--round", "-r",
                              help="Train on the set as it stood after this round."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained",
                                             help="Base inpainting pipeline (folder or hub id)."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Output folder (default: <project>/finetune/round-N)."),
    config: Optional[str] = typer.Option(None, "--config",
                                         help="TOML/JSON file with more options ([finetune] table)."),
    max_train_steps: Optional[int] = typer.Option(None, "--max-train-steps",
                                                  help="Optimizer steps (default 50000)."),
    train_batch_size: Optional[int] = typer.Option(None, "--train-batch-size",
                                                   help="Batch per process (default 1)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Training size (default 512)."),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="Default 5e-5."),
    lora_rank: Optional[int] = typer.Option(None, "--lora-rank",
                                            help="Train a LoRA of this rank instead of the full UNet."),
    gradient_checkpointing: Optional[bool] = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Trade compute for memory."),
    checkpointing_steps: Optional[int] = typer.Option(None, "--checkpointing-steps",
                                                      help="Resumable checkpoint every N steps (default 2000)."),
    validation_steps: Optional[int] = typer.Option(None, "--validation-steps",
                                                   help="Validation images every N steps (default 2000)."),
    resume: Optional[str] = typer.Option(None, "--resume",
                                         help="latest (default), none, or a checkpoint folder."),
):
    """Fine-tune the remover on the training set after round N (export + training loop)."""
    from rorem_data.rounds.finetune import finetune as run

    r = run(_open(), round, pretrained=pretrained, output=output, config=config,
            max_train_steps=max_train_steps, train_batch_size=train_batch_size,
            resolution=resolution, learning_rate=learning_rate, lora_rank=lora_rank,
            gradient_checkpointing=gradient_checkpointing,
            checkpointing_steps=checkpointing_steps, validation_steps=validation_steps,
            resume=resume)
    _echo(r.summary())


@app.command()
def select(
    round: int = typer.Option(..., "--round", "-r", help="Round whose candidates to queue."),
    budget: int = typer.Option(..., "--budget", "-b", help="How many candidates to add to the queue."),
    strategy: str = typer.Option(D.STRATEGY, "--strategy", "-s",
                                 help="'active-inference' (default: a Poisson sample with known "
                                 "probabilities, uniform before the first discriminator, that also "
                                 "gives unbiased estimates) or a query strategy (e.g. hybrid-audit)."),
    version: Optional[str] = typer.Option(None, "--version", help="Discriminator version whose scores to use."),
    committee: Optional[str] = typer.Option(None, help="Comma-separated discriminator versions (disagreement)."),
    threshold: float = typer.Option(0.5, help="Accept threshold the uncertainty is measured around."),
    featurizer: Optional[str] = typer.Option(None, help="Feature key for kcenter / hybrid / hybrid-audit "
                                             "(default: the stats featurizer's)."),
    strata: Optional[str] = typer.Option(None, help="Comma-separated: area, category, origin."),
    double_share: float = typer.Option(0.0, help="Share of the queue judged by two reviewers."),
    floor: Optional[float] = typer.Option(D.FLOOR, help="active-inference: smallest inclusion probability (default: the budget spread evenly)."),
    seed: int = typer.Option(D.RNG, help="Random seed (same seed, same queue)."),
    param: Optional[List[str]] = typer.Option(
        None, "--param", help="A strategy parameter KEY=VALUE, repeatable (e.g. --param "
        "audit_share=1 --param accept_threshold=0.8); the strategy's own checks apply."),
):
    """Build the round's human review queue (a saved view named review-round-N)."""
    import inspect

    from rorem_data.core.errors import ConfigError
    from rorem_data.rounds.review import queue

    from rorem_data.rounds.defaults import ACTIVE
    from rorem_data.selection.strategies import get_strategy

    params = _params_option(param)
    if strategy == ACTIVE and params:
        raise ConfigError(f"--param {', '.join(params)}: the active-inference sample takes --floor "
                          "and --version, not strategy parameters")
    taken = (set(inspect.signature(queue.select).parameters)
             | set(inspect.signature(queue.build_queue).parameters) | set(queue.COMPUTED_INPUTS))
    clash = sorted(set(params) & taken)
    if clash:
        own = ", ".join(get_strategy(strategy).params) or "none"
        raise ConfigError(f"--param {', '.join(clash)}: set by select itself (use its own options, "
                          f"e.g. --seed, --threshold, --version); --param is for the strategy's "
                          f"parameters: {own}")
    sel = queue.select(_open(), round, budget, strategy=strategy, version=version, floor=floor,
                       threshold=threshold, featurizer=featurizer, committee=_csv(committee),
                       strata=_csv(strata), double_share=double_share, rng=seed, **params)
    _echo(sel.summary())


@app.command()
def review(
    round: int = typer.Option(..., "--round", "-r", help="Round whose queue to review."),
    port: int = typer.Option(5151, help="App port (one App server per reviewer)."),
    address: str = typer.Option("127.0.0.1", help="Interface to bind (default: this machine only)."),
    reviewer: Optional[str] = typer.Option(None, help="Your name, recorded with each judgment."),
    adjudicate: bool = typer.Option(False, "--adjudicate", help="Review the disagreements; final."),
):
    """Open the FiftyOne App on the round's review queue (keys: y, n, 1-5, u)."""
    from rorem_data.app import launch_review

    if address not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"Warning: binding the App to {address} exposes it to the network.",
                    fg=typer.colors.YELLOW, err=True)
    launch_review(_open(), round, port=port, address=address, reviewer=reviewer, adjudicate=adjudicate)


@app.command()
def featurize(
    featurizer: str = typer.Option("stats", "--featurizer", help="stats | clip | a registered name."),
    config: Optional[str] = typer.Option(None, help='Featurizer settings as JSON, e.g. \'{"model": "ViT-B-32"}\'.'),
    round: Optional[int] = typer.Option(None, "--round", "-r", help="Only this round's candidates."),
    shard: Optional[str] = typer.Option(None, help="i/n: only this share (job arrays)."),
    batch_size: int = typer.Option(32, help="Items per model call."),
    workers: int = typer.Option(2, help="Decoding processes."),
):
    """Compute candidate features once, cached by featurizer config (reruns compute nothing)."""
    from rorem_data.rounds.discriminator import featurize as run

    r = run(_open(), featurizer, config=_json_option(config, "--config"), round=round,
            shard=shard, batch_size=batch_size, num_workers=workers)
    _echo(r.summary())


@disc_app.command("list")
def disc_list():
    """Discriminator specs (from discriminators/ and ROREM_DISCRIMINATORS_PATH) and trained versions."""
    from rorem_data.discriminators.specs import get_spec, list_discriminators

    for name in list_discriminators():
        _echo(f"{name:24s} {get_spec(name).description}")
    try:
        p = _open()
    except RoremError:
        return
    from rorem_data.rounds.versions import list_versions

    versions = list_versions(p)
    if versions:
        _echo("\ntrained versions in this project:")
        for v in versions:
            _echo(f"  {v}")


@disc_app.command("train")
def disc_train(
    round: int = typer.Option(..., "--round", "-r", help="Use human labels of rounds <= N."),
    spec: str = typer.Option("stats-logistic", "--spec", "-s", help="Spec name or spec file."),
    holdout: float = typer.Option(0.3, help="Share of labels held out for calibration and thresholds."),
    calibration: str = typer.Option("platt", help="platt | isotonic | none"),
    seed_pairs: int = typer.Option(0, "--seed-pairs",
                                   help="Training examples made from seed pairs (minus one per human label)."),
    trust_code: bool = typer.Option(False, "--trust-code",
                                    help="Allow a spec whose head is a user class (imports its code)."),
    seed: int = typer.Option(0),
):
    """Train, calibrate and evaluate a discriminator version on the human labels so far."""
    from rorem_data.rounds.discriminator import train

    _echo(train(_open(), round, spec, holdout=holdout, calibration=calibration, rng=seed,
                seed_pairs=seed_pairs, **_opt(trust_code=trust_code)).summary())


@disc_app.command("evaluate")
def disc_evaluate(
    version: Optional[str] = typer.Option(None, "--version", help="Version (default: latest)."),
    round: Optional[int] = typer.Option(None, "--round", "-r", help="Only this round's labels."),
    threshold: float = typer.Option(0.5),
    include_training: bool = typer.Option(False, "--include-training"),
    trust_code: bool = typer.Option(False, "--trust-code",
                                    help="Load a version whose head is a user class."),
):
    """Agreement with human labels: AUC, accuracy, precision/recall, success rates, with
    intervals - overall and per remover of each round."""
    from rorem_data.dataset import store
    from rorem_data.rounds.discriminator import evaluate
    from rorem_data.rounds.estimates import per_remover_agreement
    from rorem_data.rounds.versions import latest_version

    p = _open()
    out = evaluate(p, version, round=round, threshold=threshold,
                   exclude_training=not include_training, **_opt(trust_code=trust_code))
    version = out["version"] or latest_version(p)
    rounds = [round] if round is not None else [r["round"] for r in store.get_round_records(p.dataset_name)
                                                if r.get("round")]
    out["per_remover"] = {r: per_remover_agreement(p, r, version)["removers"] for r in rounds}
    _echo(json.dumps(out, indent=1, default=str))


@app.command()
def score(
    round: int = typer.Option(..., "--round", "-r"),
    version: Optional[str] = typer.Option(None, "--version", help="Version (default: latest)."),
    trust_code: bool = typer.Option(False, "--trust-code",
                                    help="Load a version whose head is a user class."),
):
    """Store a discriminator version's calibrated scores on the round's candidates (bulk)."""
    from rorem_data.rounds.discriminator import score as run

    _echo(run(_open(), round, version, **_opt(trust_code=trust_code)).summary())


@app.command("auto-label")
def auto_label_cmd(
    round: int = typer.Option(..., "--round", "-r"),
    target_precision: float = typer.Option(D.TARGET_PRECISION, help="Required precision of automatic accepts."),
    confidence: float = typer.Option(D.CONFIDENCE, help="Confidence that the precision is met."),
    reject_npv: Optional[float] = typer.Option(None, help="Required precision of automatic rejects."),
    audit: float = typer.Option(D.AUDIT, help="Share of automatic decisions queued for human audit."),
    version: Optional[str] = typer.Option(None, "--version", help="Discriminator version (default: latest)."),
    method: str = typer.Option("auto", "--method", help="auto | crossfit | split | active | holdout: which version and labels certify the thresholds."),
    allow_unseen_remover: bool = typer.Option(False, "--allow-unseen-remover",
                                              help="Decide candidates of removers the calibration labels barely cover."),
    seed: int = typer.Option(0),
):
    """Let the calibrated discriminator decide the round's undecided candidates."""
    from rorem_data.rounds.automation import auto_label

    _echo(auto_label(_open(), round, version=version, target_precision=target_precision,
                     confidence=confidence, reject_npv=reject_npv, audit=audit, rng=seed,
                     **_opt(method=None if method == "auto" else method,
                            allow_unseen_remover=allow_unseen_remover)).summary())


@app.command()
def audit(round: int = typer.Option(..., "--round", "-r"),
          confidence: float = typer.Option(D.CONFIDENCE)):
    """Measured precision of the round's automatic decisions on the audited items."""
    from rorem_data.rounds.automation import audit_report

    _echo(json.dumps(audit_report(_open(), round, confidence=confidence), indent=1, default=str))


@app.command()
def evaluate(
    test: str = typer.Option(..., "--test", help="Test folder: meta.json (source, mask[, GT][, score]) or images/ + masks/."),
    remover: str = typer.Option(..., "--remover", help="Remover spec (file, pipeline folder, classical[:ns])."),
    out: str = typer.Option("evaluation", "--out", "-o", help="Folder for results and evaluation.json."),
    version: Optional[str] = typer.Option(None, "--version",
                                          help="Discriminator version (default: the project's latest)."),
    batch_size: int = typer.Option(4, "--batch-size"),
):
    """Run a remover on a test set: success rate, PSNR/SSIM/LPIPS in and out of the mask, time."""
    from rorem_data.rounds.evaluate import evaluate_remover, summarize

    try:
        project = _open()
    except RoremError:
        project = None
    _echo(summarize(evaluate_remover(test, remover, out, project=project, version=version,
                                     batch_size=batch_size)))


@app.command()
def report(out: str = typer.Option("report", "--out", "-o", help="Output folder (new, or an earlier report).")):
    """Write the HTML + markdown report (round table, plots, example grids)."""
    from rorem_data.rounds.report import write_report

    _echo(f"wrote {write_report(_open(), out)}")


@app.command()
def reviewers(
    round: Optional[int] = typer.Option(None, "--round", "-r", help="Only this round's judgments."),
    exclude_reviewer: Optional[str] = typer.Option(
        None, "--exclude-reviewer", help="Keep these reviewers' labels out of training, estimates "
        "and export (comma-separated; reversible with --include-reviewer)."),
    include_reviewer: Optional[str] = typer.Option(None, "--include-reviewer",
                                                   help="Let excluded reviewers' labels count again."),
    min_accuracy: float = typer.Option(0.8, help="Flag reviewers whose gold accuracy is surely below this."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Reviewer quality: accuracy on gold items (with an interval), agreement, time per decision."""
    from rorem_data.rounds.review.quality import exclude_reviewers, reviewer_quality

    p = _open()
    if exclude_reviewer:
        out = exclude_reviewers(p, _csv(exclude_reviewer))
        _echo(f"excluded {', '.join(out['excluded'])}: {out['resettled']} samples re-decided")
    if include_reviewer:
        out = exclude_reviewers(p, _csv(include_reviewer), include=True)
        _echo(f"excluded now: {', '.join(out['excluded']) or 'nobody'}; {out['resettled']} samples re-decided")
    q = reviewer_quality(p, round=round, min_accuracy=min_accuracy)
    if as_json:
        _echo(json.dumps(q, indent=1, default=str))
        return
    from rorem_data.rounds.status import reviewer_lines

    for line in reviewer_lines(q):
        _echo(line)


@labels_app.command("export")
def labels_export(
    round: int = typer.Option(..., "--round", "-r"),
    out: str = typer.Option(..., "--out", "-o", help="A .csv or .json file."),
):
    """Write the round's queue with its current human labels."""
    from rorem_data.rounds.review import export_labels

    _echo(f"wrote {export_labels(_open(), out, round=round)} rows to {out}")


@labels_app.command("import")
def labels_import(
    path: str = typer.Argument(..., help="A .csv or .json labels file."),
    round: int = typer.Option(..., "--round", "-r"),
    reviewer: Optional[str] = typer.Option(None, help="Reviewer for rows without one."),
):
    """Apply a labels file to the round's queue (all rows checked first; all or nothing)."""
    from rorem_data.rounds.review import import_labels

    _echo(f"applied {import_labels(_open(), path, round=round, default_reviewer=reviewer)} labels")


@labels_app.command("agreement")
def labels_agreement(round: int = typer.Option(..., "--round", "-r")):
    """Agreement between reviewers on double-reviewed items (percent, Cohen's kappa)."""
    from rorem_data.rounds.review import reviewer_agreement

    _echo(json.dumps(reviewer_agreement(_open(), round), indent=1))


@round_app.command("run")
def round_run(
    round: int = typer.Option(..., "--round", "-r", help="The round to run (>= 1)."),
    remover: str = typer.Option(..., "--remover", help="Remover spec (file, pipeline folder, classical[:ns])."),
    budget: int = typer.Option(..., "--budget", "-b", help="Human judgments to spend on the round's queue."),
    reviewer: str = typer.Option("app", "--reviewer",
                                 help="'app' (open the review App and wait), or a labels file."),
    reviewer_name: Optional[str] = typer.Option(None, "--reviewer-name", help="Name recorded with judgments."),
    strategy: str = typer.Option(D.STRATEGY, "--strategy",
                                 help="active-inference (Poisson sample with known probabilities) or a query strategy."),
    spec: str = typer.Option(D.SPEC, "--spec", help="Discriminator spec to train."),
    featurizer: str = typer.Option(D.FEATURIZER, "--featurizer", help="Featurizer of the queue and the spec."),
    candidates: int = typer.Option(D.CANDIDATES, "--candidates", "-k", help="Candidates per pool item."),
    target_precision: float = typer.Option(D.TARGET_PRECISION, help="Required precision of automatic accepts."),
    confidence: float = typer.Option(D.CONFIDENCE, help="Confidence that the precision is met."),
    audit: float = typer.Option(D.AUDIT, help="Share of automatic decisions queued for audit."),
    floor: Optional[float] = typer.Option(D.FLOOR, help="active-inference: smallest inclusion probability (default: the budget spread evenly)."),
    gold_rate: float = typer.Option(D.GOLD_RATE, help="Gold items mixed into the queue (share)."),
    seed_pairs: int = typer.Option(D.SEED_PAIRS, "--seed-pairs",
                                   help="Seed-pair examples: a first discriminator learns from them before round 1's "
                                        "first label and draws its sample; later versions train on them too, minus "
                                        "one per human label (0: none)."),
    calibration: str = typer.Option(D.CALIBRATION, "--calibration",
                                    help="How automatic decisions are certified: auto, crossfit, split, active, holdout."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Only pool items of this origin."),
    port: int = typer.Option(D.PORT, help="App port for --reviewer app."),
    seed: int = typer.Option(D.RNG),
    redo: Optional[str] = typer.Option(None, "--redo", help="Run the round again from this step "
                                       "(e.g. auto_label) with changed parameters."),
    allow_gap: bool = typer.Option(False, "--allow-gap", help="Allow skipping round numbers."),
):
    """One whole round: generate, featurize, queue, review, train, score, auto-label, audit,
    estimates - each step resumable and recorded in the round record."""
    from rorem_data.rounds.driver import run_round

    res = run_round(_open(), round, remover=remover, budget=budget, strategy=strategy,
                    reviewer=reviewer, reviewer_name=reviewer_name, spec=spec, featurizer=featurizer,
                    candidates=candidates, target_precision=target_precision,
                    confidence=confidence, audit=audit, floor=floor, gold_rate=gold_rate,
                    calibration=calibration, seed_pairs=seed_pairs, pool_filter={"origin": origin} if origin else None, port=port, rng=seed,
                    redo=redo, allow_gap=allow_gap, echo=_echo)
    _echo(res.summary())


@app.command()
def demo(
    path: str = typer.Argument("demo-project", help="Folder for the demo project."),
    small: bool = typer.Option(False, "--small", help="A reduced run (used by the tests)."),
):
    """Run the whole loop on synthetic scenes on this machine."""
    from rorem_data.demo import run_demo

    run_demo(path, small=small, echo=_echo)


def main(argv=None) -> None:
    import logging

    from rorem_data.core.environment import environment_problem

    _show_step_lines()
    try:
        # the command runs under this function's handlers (click's own main would turn Ctrl-C
        # into an empty line and exit 130, losing the round's one line)
        command = typer.main.get_command(app)
        args = list(sys.argv[1:] if argv is None else argv)
        with command.make_context("rorem-data", args) as ctx:
            command.invoke(ctx)
    except RoundInterrupted as exc:
        typer.secho(str(exc), fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.secho("Interrupted; what was done is stored: run the same command again to resume.",
                    fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
    except RoremError as exc:
        typer.secho(f"Error: {_cli_words(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        named = environment_problem(exc)
        if named is not None:
            typer.secho(f"Error: {named}", fg=typer.colors.RED, err=True)
            sys.exit(1)
        if os.environ.get("ROREM_DEBUG"):
            raise
        typer.secho(f"Error: unexpected {type(exc).__name__}: {exc}\nThis is a bug in rorem-data "
                    "(or an input it does not check yet): please report it with the command you ran. "
                    "Set ROREM_DEBUG=1 to see the traceback.", fg=typer.colors.RED, err=True)
        sys.exit(2)
    finally:
        logging.getLogger("rorem_data").handlers[:] = [
            h for h in logging.getLogger("rorem_data").handlers if not getattr(h, "_rorem_cli", False)]


def _show_step_lines() -> None:
    """Warnings from the ``rorem_data`` logger go to stderr (the step lines are echoed)."""
    import logging

    log = logging.getLogger("rorem_data")
    if any(getattr(h, "_rorem_cli", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler._rorem_cli = True
    log.addHandler(handler)


# Python parameter names in library messages -> the CLI's flags, added in brackets
_FLAGS = {"target_precision": "--target-precision", "confidence": "--confidence",
          "budget": "--budget", "strategy": "--strategy", "remover": "--remover", "rng": "--seed",
          "redo": "--redo", "allow_gap": "--allow-gap", "floor": "--floor", "calibration": "--calibration", "seed_pairs": "--seed-pairs", "spec": "--spec",
          "reviewer": "--reviewer", "gold_rate": "--gold-rate", "audit": "--audit",
          "featurizer": "--featurizer", "candidates": "--candidates", "round": "--round"}


# front-door functions named in library messages -> the CLI command doing the same
_COMMANDS = {"import_seeds": "import seeds", "import_pool": "import pool", "generate": "generate",
             "featurize": "featurize", "train_discriminator": "discriminator train",
             "score": "score", "select": "select", "review": "review", "auto_label": "auto-label",
             "audit": "audit", "export": "export", "init_project": "init", "finetune": "finetune",
             "run_round": "round run", "status": "status", "report": "report"}


def _cli_words(exc: RoremError) -> str:
    """The library's message for a shell user: a front-door call it names becomes the CLI
    command (unless the message already gives it), and the CLI flag follows the first Python
    parameter it names."""
    import re

    text = str(exc)
    if "(rorem-data " not in text and "CLI:" not in text:
        def command(m):
            name = m.group(1)
            return f"`rorem-data {_COMMANDS[name]}`" if name in _COMMANDS else m.group(0)

        text = re.sub(r"rorem_data\.(\w+)(?:\([^()]*\))?", command, text)
    param = getattr(exc, "parameter", None)
    m = re.match(r"(\w+) must be ", text)
    name = param or (m.group(1) if m else None)
    flag = _FLAGS.get(name or "")
    if flag and f"({flag})" not in text:
        text = re.sub(rf"\b{re.escape(name)}\b", f"{name} ({flag})", text, count=1)
    return text


if __name__ == "__main__":
    main()
