"""Test session set-up: a real MongoDB server for the whole session, offline settings.

Unless FIFTYONE_DATABASE_URI is already set, FiftyOne's own ``mongod`` binary is started once as
a server on a free loopback port with a temporary data folder, and every process of the test
session (pytest itself and the CLI subprocesses) shares it through FIFTYONE_DATABASE_URI - the
same set-up a team uses with a shared database. One test runs on the embedded database instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ROREM_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one BLAS/OpenMP thread per process: on 2 shared cores, oversubscription made tests 5x slower
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_mongod() -> None:
    from rorem_data.doctor import fiftyone_mongod

    mongod = fiftyone_mongod()
    if mongod is None:
        raise RuntimeError("FiftyOne's mongod is missing: run `python -m rorem_data.doctor --fix`")
    dbpath = tempfile.mkdtemp(prefix="rorem-test-db-")
    port = _free_port()
    proc = subprocess.Popen(
        [mongod, "--dbpath", dbpath, "--port", str(port), "--bind_ip", "127.0.0.1",
         "--nounixsocket", "--quiet", "--logpath", os.path.join(dbpath, "mongod.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(dbpath, ignore_errors=True)

    atexit.register(stop)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"mongod exited with {proc.returncode}; see {dbpath}/mongod.log")
            time.sleep(0.1)
    os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{port}"
    os.environ["ROREM_TEST_MONGOD_PID"] = str(proc.pid)


if not os.environ.get("FIFTYONE_DATABASE_URI"):
    _start_mongod()


@pytest.fixture
def project(tmp_path):
    """A fresh project (and dataset) in a temporary folder; the dataset is deleted afterwards."""
    import rorem_data
    from rorem_data.dataset import store

    p = rorem_data.init_project(str(tmp_path / "proj"), name="test")
    yield p
    import fiftyone as fo

    if fo.dataset_exists(p.dataset_name):
        fo.delete_dataset(p.dataset_name)
    store.delete_round_records(p.dataset_name)


@pytest.fixture
def seed_meta(tmp_path):
    """12 synthetic seed triplets in the RORem layout; returns the meta.json path."""
    from rorem_data.testing import synthetic

    return synthetic.write_seed_set(str(tmp_path / "seeds"), 12, size=48, seed=3)


@pytest.fixture
def pool_dir(tmp_path):
    from rorem_data.testing import synthetic

    return synthetic.write_pool_folder(str(tmp_path / "pool"), 6, size=48, seed=4)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Tiny SD and SDXL inpainting pipelines and a LoRA, built from configs and saved once per
    test session; loaded through the same code users run on real checkpoints."""
    import diffusers
    import transformers

    from rorem_data.testing import tiny

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("models")
    os.environ["ROREM_DATA_CACHE"] = str(root / "cache")
    sd = tiny.build_tiny_sd_inpaint(str(root / "sd"))
    return {"root": root, "sd": sd, "sdxl": tiny.build_tiny_sdxl_inpaint(str(root / "sdxl")),
            "lora": tiny.build_tiny_lora(sd, str(root / "sd-lora"))}
