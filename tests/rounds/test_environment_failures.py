"""A full disk, a read-only folder and a database that does not answer: one message naming the
resource and the fix (Python: EnvironmentProblem; CLI: exit 1, no traceback), and nothing
half-written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rorem_data
from rorem_data.core.errors import EnvironmentProblem
from rorem_data.testing import synthetic


def _mount(path: str, *options: str) -> bool:
    os.makedirs(path, exist_ok=True)
    opts = ",".join(options) or "size=4m"
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True)
    return out.returncode == 0


def _umount(path: str) -> None:
    subprocess.run(["umount", "-l", path], capture_output=True)


@pytest.fixture
def small_disk_project(tmp_path):
    """A project whose media folder is a 256 KiB file system (a full disk within a few images)."""
    media = str(tmp_path / "media-disk")
    if not _mount(media, "size=256k"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    p = rorem_data.init_project(str(tmp_path / "proj"), name="disk", media_dir=media)
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 60, size=96, seed=3)
    rorem_data.import_pool(p, pool, origin="pool", progress=False)
    yield p
    import fiftyone as fo

    fo.delete_dataset(p.dataset_name)
    _umount(media)


def test_a_full_disk_is_named_with_the_fix_and_leaves_no_half_written_file(small_disk_project, capsys):
    from helpers import run_cli

    p = small_disk_project
    with pytest.raises(EnvironmentProblem) as err:
        rorem_data.generate(p, 1, "classical:telea", progress=False)
    msg = str(err.value)
    assert msg.startswith("the disk is full") and p.media_dir in msg and "Free space" in msg
    assert isinstance(err.value, OSError) and isinstance(err.value, rorem_data.RoremError)
    leftovers = [f for _d, _s, fs in os.walk(p.media_dir) for f in fs if ".tmp-" in f]
    assert leftovers == []
    # every candidate record points at a complete image file
    for path in p.dataset.match({"kind": "candidate"}).values("target_path"):
        assert os.path.getsize(path) > 0
    code, _out, errtext = run_cli(capsys, "-p", p.root, "generate", "--round", "1", "--remover",
                                  "classical:telea")
    assert code == 1 and "Error: the disk is full" in errtext


def test_a_read_only_folder_is_named(tmp_path, capsys):
    from helpers import run_cli

    media = str(tmp_path / "media-ro")
    if not _mount(media, "size=4m"):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        p = rorem_data.init_project(str(tmp_path / "proj"), name="ro", media_dir=media)
        pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 4, size=48, seed=3)
        rorem_data.import_pool(p, pool, origin="pool", progress=False)
        subprocess.run(["mount", "-o", "remount,ro", media], check=True)
        with pytest.raises(EnvironmentProblem, match="read-only file system"):
            rorem_data.generate(p, 1, "classical:telea", progress=False)
        code, _out, errtext = run_cli(capsys, "-p", p.root, "generate", "--round", "1", "--remover",
                                      "classical:telea")
        assert code == 1 and "read-only file system" in errtext and media in errtext
        assert p.dataset.match({"kind": "candidate"}).count() == 0
        import fiftyone as fo

        fo.delete_dataset(p.dataset_name)
    finally:
        _umount(media)


def test_a_database_that_does_not_answer_is_named(project):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1500"}
    out = subprocess.run([sys.executable, "-m", "rorem_data.cli", "-p", project.root, "status"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "does not answer" in out.stderr and f"127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr and "This is a bug" not in out.stderr
    code = ("import rorem_data, sys\n"
            "try:\n"
            f"    rorem_data.status({project.root!r})\n"
            "except rorem_data.EnvironmentProblem as exc:\n"
            "    print('NAMED', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "NAMED the database at mongodb://127.0.0.1" in out.stdout, out.stderr[-2000:]
