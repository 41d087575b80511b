"""Hostile output folders through the CLI: ``export --overwrite`` never deletes what it did not
write (nor the project, its media or a parent of them), and two exports at once leave each
other's temporary folders alone."""

import json
import os
import subprocess
import sys
import time

import pytest

from rorem_data.core import outputs

from helpers import run_cli


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tree(root):
    out = {}
    for dp, _d, files in os.walk(root):
        for f in files:
            p = os.path.join(dp, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture
def seeded(project, seed_meta, capsys):
    assert run_cli(capsys, "-p", project.root, "import", "seeds", seed_meta)[0] == 0
    return project


def test_overwrite_keeps_a_folder_it_did_not_write(seeded, tmp_path, capsys):
    mine = tmp_path / "thesis"
    (mine / "chapters").mkdir(parents=True)
    (mine / "chapters" / "1.tex").write_text("years of work")
    code, _out, err = run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(mine),
                          "--overwrite")
    assert code == 1 and "not written by rorem-data" in err and "left untouched" in err
    assert (mine / "chapters" / "1.tex").read_text() == "years of work"
    assert sorted(os.listdir(tmp_path)) == sorted(["proj", "seeds", "thesis"])


@pytest.mark.parametrize("which", ["root", "media", "parent"])
def test_overwrite_never_removes_the_project_or_its_media(seeded, tmp_path, capsys, which):
    folder = {"root": seeded.root, "media": seeded.media_dir, "parent": str(tmp_path)}[which]
    outputs.write_marker(folder, "export")            # even a folder that looks like an export
    before = sorted(os.listdir(folder))
    code, _out, err = run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", folder,
                          "--overwrite")
    assert code == 1 and "never removes" in err
    assert sorted(os.listdir(folder)) == before
    assert os.path.exists(os.path.join(seeded.root, "rorem.toml"))
    assert seeded.dataset.count() == 12


def test_overwrite_refuses_a_symlink_and_another_kind_of_output(seeded, tmp_path, capsys):
    real = tmp_path / "real-export"
    assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(real))[0] == 0
    before = _tree(real)
    os.symlink(real, tmp_path / "link")
    code, _out, err = run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out",
                          str(tmp_path / "link"), "--overwrite")
    assert code == 1 and "symlink" in err
    assert _tree(real) == before and os.path.islink(tmp_path / "link")
    report = tmp_path / "report"
    report.mkdir()
    outputs.write_marker(str(report), "report")
    (report / "index.html").write_text("<p>report</p>")
    code, _out, err = run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out",
                          str(report), "--overwrite")
    assert code == 1 and "'report'" in err
    assert (report / "index.html").exists()


def test_overwrite_replaces_its_own_export_and_stays_deterministic(seeded, tmp_path, capsys):
    out = tmp_path / "e"
    assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(out), "-f",
               "imagefolder")[0] == 0
    assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(out),
               "--overwrite")[0] == 0
    assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(tmp_path / "f"))[0] == 0
    assert _tree(out) == _tree(tmp_path / "f")            # marker included, byte for byte
    assert json.loads((out / outputs.MARKER).read_text())["kind"] == "export"
    assert outputs.MARKER not in json.loads((out / "manifest.json").read_text())["files"]
    assert sorted(os.listdir(tmp_path)) == sorted(["e", "f", "proj", "seeds"])


PAUSED_EXPORT = r"""
import os, sys, time
from rorem_data.dataset import export as export_mod
flag, release = sys.argv[1], sys.argv[2]
real = export_mod._copy
calls = {"n": 0}
def paused(src, dst, pair):
    calls["n"] += 1
    if calls["n"] == 2:
        open(flag, "w").close()
        while not os.path.exists(release):
            time.sleep(0.05)
    return real(src, dst, pair)
export_mod._copy = paused
from rorem_data import cli
cli.main(sys.argv[3:])
"""


def test_concurrent_exports_leave_each_others_staging_alone(seeded, tmp_path, capsys):
    out = tmp_path / "exports" / "round-0"
    flag, release = tmp_path / "paused", tmp_path / "release"
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_EXPORT, str(flag), str(release),
                             "-p", seeded.root, "export", "--round", "0", "--out", str(out),
                             "--overwrite"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "the first export never started copying"
            time.sleep(0.05)
        staging = [p for p in os.listdir(out.parent) if p.startswith(".round-0.partial-")]
        assert len(staging) == 1
        # a second export to the same folder, and a third beside it, while the first runs
        assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out", str(out))[0] == 0
        assert run_cli(capsys, "-p", seeded.root, "export", "--round", "0", "--out",
                   str(out.parent / "round-0b"))[0] == 0
        assert os.path.isdir(out.parent / staging[0])
        assert outputs.read_marker(str(out.parent / staging[0]))["pid"] == proc.pid
    finally:
        release.touch()
        _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert sorted(os.listdir(out.parent)) == ["round-0", "round-0b"]
    assert _tree(out) == _tree(out.parent / "round-0b")
