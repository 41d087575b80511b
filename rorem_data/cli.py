"""``rorem-data``: a thin shell over the library. Each command parses, calls one library
function and prints; errors exit non-zero with one clear message and no traceback."""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer

from .errors import RoremError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build paired object-removal training data with a human in the loop.")
import_app = typer.Typer(no_args_is_help=True, help="Import seed triplets or pool items.")
app.add_typer(import_app, name="import")

_state = {"project": None}


@app.callback()
def _main(project: Optional[str] = typer.Option(
        None, "--project", "-p", help="Project folder (default: this folder or a parent).")):
    _state["project"] = project


def _open():
    from .project import open_project

    return open_project(_state["project"] or ".")


def _echo(msg: str) -> None:
    typer.echo(msg)


@app.command()
def init(
    path: str = typer.Argument(".", help="Project folder."),
    name: Optional[str] = typer.Option(None, help="Project name (default: folder name)."),
    dataset: Optional[str] = typer.Option(None, help="FiftyOne dataset name."),
    force: bool = typer.Option(False, help="Re-create the config of an existing project."),
):
    """Make a folder a rorem-data project (config, FiftyOne dataset, media folder)."""
    from .project import init_project

    p = init_project(_state["project"] or path, name=name, dataset=dataset, force=force)
    _echo(f"Initialized project {p.name!r} in {p.root} (dataset {p.dataset_name!r})")


@import_app.command("seeds")
def import_seeds_cmd(
    meta: List[str] = typer.Argument(..., help="One or more RORem meta.json files."),
    origin: Optional[str] = typer.Option(None, help="Origin name (default: meta.json folder name)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Import the good entries; write the report to a file."),
    report: Optional[str] = typer.Option(None, help="Where to write the problem report."),
    full_decode: bool = typer.Option(False, "--full-decode", help="Decode every pixel."),
    workers: Optional[int] = typer.Option(None, help="Processes for file checks."),
):
    """Import RORem-layout triplets (source/ mask/ GT/ meta.json) as round-0 seed pairs."""
    r = _open().import_seeds(meta, origin=origin, skip_invalid=skip_invalid, report_path=report,
                             full_decode=full_decode, workers=workers)
    _echo(r.summary())


@import_app.command("pool")
def import_pool_cmd(
    source: str = typer.Argument(..., help="Folder with images/ and masks/, or a COCO JSON."),
    origin: Optional[str] = typer.Option(None, help="Origin name."),
    images: Optional[str] = typer.Option(None, help="COCO: folder the file_name paths are in."),
    min_area: float = typer.Option(0.0, help="Minimum mask area (fraction of the image)."),
    max_area: float = typer.Option(1.0, help="Maximum mask area (fraction of the image)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Import the good items; write the report to a file."),
    report: Optional[str] = typer.Option(None, help="Where to write the problem report."),
    full_decode: bool = typer.Option(False, "--full-decode", help="Decode every pixel."),
    workers: Optional[int] = typer.Option(None, help="Processes for file checks."),
):
    """Import (image, object mask) pool items to generate candidates from."""
    r = _open().import_pool(source, origin=origin, images_dir=images, min_area=min_area,
                            max_area=max_area, skip_invalid=skip_invalid, report_path=report,
                            full_decode=full_decode, workers=workers)
    _echo(r.summary())


@app.command()
def export(
    round: int = typer.Option(..., "--round", "-r", help="Export the set as it stood after this round."),
    out: str = typer.Option(..., "--out", "-o", help="Output folder (must not exist)."),
    format: str = typer.Option("rorem", "--format", "-f", help="rorem | imagefolder | parquet"),
    with_rejected: bool = typer.Option(False, "--with-rejected",
                                       help="Add rejected pairs; score 1/0 (discriminator format)."),
    embed_images: bool = typer.Option(False, "--embed-images", help="Parquet: store image bytes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
):
    """Export the cumulative training set after round N."""
    r = _open().export(round, out, format=format, with_rejected=with_rejected,
                       embed_images=embed_images, overwrite=overwrite)
    _echo(r.summary())


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")):
    """Print the per-round table."""
    from .status import pool_size

    p = _open()
    rows = p.status()
    if as_json:
        _echo(json.dumps({"project": p.name, "dataset": p.dataset_name, "pool_items": pool_size(p),
                          "rounds": [r.as_dict() for r in rows]}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{p.name}: {pool_size(p)} pool items")
    cols = ["round", "phase", "pool items", "candidates", "human reviewed", "accepted (human)",
            "auto decided", "accepted (discr.)", "pending", "cumulative train"]
    for c in cols:
        t.add_column(c, justify="right" if c not in ("phase",) else "left")
    for r in rows:
        t.add_row(str(r.round), r.phase, str(r.pool_items), str(r.candidates), str(r.human_reviewed),
                  str(r.accepted_by_human), str(r.auto_decided), str(r.accepted_by_discriminator),
                  str(r.pending), str(r.cumulative_train))
    Console().print(t)


@app.command()
def demo(
    path: str = typer.Argument("demo-project", help="Folder for the demo project."),
    small: bool = typer.Option(False, "--small", help="A reduced run (used by the tests)."),
):
    """Run the whole loop on synthetic scenes on this machine."""
    from .demo import run_demo

    run_demo(path, small=small, echo=_echo)


def main(argv=None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except RoremError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("Interrupted; rerun the same command to resume.", fg=typer.colors.YELLOW, err=True)
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
