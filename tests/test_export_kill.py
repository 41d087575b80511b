"""SIGKILL ``export --overwrite`` at each point where it writes: afterwards the folder holds the
old or the new export (never neither, never a mix), and the next run cleans up and ends with
exactly what an uninterrupted export writes.

The export runs as a real ``rorem-data export`` process; a small driver wraps one function so
the process kills itself (SIGKILL, no cleanup) right before or after it.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from rorem_data.core import outputs

from helpers import KILL_HOOKS, run_cli


pytestmark = pytest.mark.slow  # real processes, killed and rerun: ~1 min in all

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = r"""
import json, os, signal, sys
point, nth, argv = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
out = os.path.abspath(argv[argv.index("--out") + 1])
from rorem_data.core import outputs
from rorem_data.dataset import export as export_mod, export_outputs
# KILL_HOOKS: hit, die, after, before
if point == "files":               # some files copied into the staging folder
    export_mod._copy = after(export_mod._copy)
elif point == "before-publish":    # staging complete (manifest written), not swapped in
    export_outputs.publish = before(export_outputs.publish)
elif point == "after-exchange":    # swapped atomically; the old export not yet removed
    outputs._exchange = after(outputs._exchange)
elif point == "between-renames":   # no renameat2: the old export moved aside, the new not in
    outputs._exchange = lambda a, b: False
    os.rename = after(os.rename, lambda src, dst: os.path.abspath(src) == out)
elif point == "before-marker":     # swapped in; its fixed marker not yet in place
    export_outputs.finish_marker = before(export_outputs.finish_marker)
else:
    raise SystemExit(f"unknown point {point}")
from rorem_data import cli
cli.main(argv)
"""
DRIVER = DRIVER.replace("# KILL_HOOKS: hit, die, after, before\n", KILL_HOOKS)


def _tree(root, *, skip=()):
    out = {}
    for dp, _d, files in os.walk(root):
        for f in files:
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)
            if rel not in skip:
                with open(p, "rb") as fh:
                    out[rel] = fh.read()
    return out


MARKERS = (outputs.MARKER, outputs.MARKER + ".final")


@pytest.mark.parametrize("point,nth,old", [
    ("files", 3, True), ("files", 3, False), ("before-publish", 1, True),
    ("after-exchange", 1, True), ("between-renames", 1, True), ("before-marker", 2, True),
])
def test_killed_export_leaves_old_or_new_and_the_rerun_cleans_up(project, seed_meta, tmp_path, capsys,
                                                                  point, nth, old):
    project.import_seeds(seed_meta)
    parent = tmp_path / "exports"
    out = parent / "round-0"
    ref = tmp_path / "reference"
    assert run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(ref))[0] == 0
    new_tree = _tree(ref)
    if old:  # an existing export of another format, to be replaced
        assert run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out), "-f",
                   "imagefolder")[0] == 0
    old_tree = _tree(out) if old else None
    argv = ["-p", project.root, "export", "--round", "0", "--out", str(out), "--overwrite"]
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, point, str(nth), json.dumps(argv)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])

    # right after the kill: the old export or the new one, whole
    if out.exists():
        now = _tree(out, skip=MARKERS)
        assert now in ({k: v for k, v in t.items() if k not in MARKERS} for t in (old_tree, new_tree) if t)
        assert outputs.read_marker(str(out))["kind"] == "export"
    elif point == "between-renames":
        aside = [p for p in os.listdir(parent) if p.startswith(".round-0.old-")]
        assert len(aside) == 1 and _tree(parent / aside[0]) == old_tree
    else:
        assert not old, "an existing export vanished"

    # the next run repairs and finishes: exactly the uninterrupted export, nothing else around
    code, _out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert _tree(out) == new_tree
    assert os.listdir(parent) == ["round-0"]


def test_restore_after_a_kill_between_renames_without_rerunning_export(project, seed_meta, tmp_path, capsys):
    """The next command touching the folder (here a plain export elsewhere does not) puts the
    old export back before anything else: ``recover`` runs first in every export."""
    project.import_seeds(seed_meta)
    out = tmp_path / "exports" / "round-0"
    assert run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out), "-f",
               "imagefolder")[0] == 0
    old_tree = _tree(out)
    argv = ["-p", project.root, "export", "--round", "0", "--out", str(out), "--overwrite"]
    proc = subprocess.run([sys.executable, "-c", DRIVER, "between-renames", "1", json.dumps(argv)],
                          cwd=REPO, env={**os.environ, "ROREM_PROGRESS": "0"}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    # an export without --overwrite to the same folder: the old one is restored first, then
    # the refusal says it exists - the old export is back, untouched
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out))
    assert code == 1 and "already exists" in err
    assert _tree(out) == old_tree
    assert os.listdir(out.parent) == ["round-0"]
