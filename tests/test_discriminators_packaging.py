"""The shipped specs live once (the top-level discriminators/ folder) and reach a wheel.

Builds a real wheel (and an sdist, and a wheel from that sdist) offline from a copy of the
source tree with the venv's setuptools, unzips it, and lists the discriminators from the
unzipped tree alone.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "discriminators", "*.toml")))


def _source_copy(dst):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "shipped")
    os.makedirs(dst)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), dst)
    for folder in ("rorem_data", "discriminators"):
        shutil.copytree(os.path.join(REPO, folder), os.path.join(dst, folder), ignore=ignore)
    return dst


def _wheel(src, out):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(src)], check=True,
                   capture_output=True, text=True)
    (whl,) = glob.glob(os.path.join(out, "*.whl"))
    return whl


def _listed_from(unzipped):
    code = ("import rorem_data.discriminators.specs as s; "
            "assert s.__file__.startswith(%r), s.__file__; "
            "print(s.shipped_folder()); print(','.join(s.list_discriminators()))" % str(unzipped))
    env = {**os.environ, "PYTHONPATH": str(unzipped)}
    env.pop("ROREM_DISCRIMINATORS_PATH", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", check=True,
                         capture_output=True, text=True).stdout.split("\n")
    return out[0], out[1].split(",")


@pytest.mark.slow
def test_wheels_carry_the_shipped_specs_as_package_data(tmp_path):
    src = _source_copy(tmp_path / "src")
    whl = _wheel(src, tmp_path / "whl")
    names = zipfile.ZipFile(whl).namelist()
    shipped = sorted(n.rsplit("/", 1)[1] for n in names
                     if n.startswith("rorem_data/discriminators/shipped/"))
    assert shipped == SPECS
    assert not [n for n in names if n.startswith("discriminators/")]  # nothing at top level
    zipfile.ZipFile(whl).extractall(tmp_path / "unzipped")
    folder, listed = _listed_from(tmp_path / "unzipped")
    assert folder == str(tmp_path / "unzipped" / "rorem_data" / "discriminators" / "shipped")
    assert listed == [os.path.splitext(s)[0] for s in SPECS]
    # the files in the wheel are the top-level ones, byte for byte
    for name in SPECS:
        with open(os.path.join(REPO, "discriminators", name), "rb") as fh:
            assert zipfile.ZipFile(whl).read(f"rorem_data/discriminators/shipped/{name}") == \
                fh.read()


@pytest.mark.slow
def test_a_wheel_built_from_the_sdist_has_them_too(tmp_path):
    src = _source_copy(tmp_path / "src")
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                    f"build_meta.build_sdist({str(tmp_path / 'sdist')!r})"],
                   cwd=src, check=True, capture_output=True, text=True)
    (sdist,) = glob.glob(str(tmp_path / "sdist" / "*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (root,) = glob.glob(str(tmp_path / "unpacked" / "*"))
    assert sorted(os.listdir(os.path.join(root, "discriminators"))) == SPECS
    whl = _wheel(root, tmp_path / "whl")
    shipped = sorted(n.rsplit("/", 1)[1] for n in zipfile.ZipFile(whl).namelist()
                     if n.startswith("rorem_data/discriminators/shipped/"))
    assert shipped == SPECS
