"""Generation of a round's candidates into the project's dataset: records, files, resume after a
failure or a kill, shards, and a 2-process ``accelerate launch`` run."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from rorem_data.core import schema
from rorem_data.dataset import store
from rorem_data.testing import synthetic
from rorem_data.core.errors import ConfigError
from rorem_data.core.sharding import parse_shard
from rorem_data.rounds.generate import candidate_seed, generate

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def _spec(models, which="sd"):
    return {"model": models[which], "steps": 2, "resolution": 64, "dilation": 3}


def _pool(project, tmp_path, n_images=5):
    synthetic.write_pool_folder(str(tmp_path / "pool"), n_images, size=48, seed=4)
    project.import_pool(str(tmp_path / "pool"), origin="synthetic-pool", workers=1)
    return project.dataset._sample_collection.count_documents({"kind": "pool"})


def _candidates(project, round=None):
    q = {"kind": "candidate"}
    if round is not None:
        q["round"] = round
    return list(project.dataset._sample_collection.find(q))


def _assert_consistent(project, round, expected):
    """Every candidate exactly once, one image per record, no orphans or temp files."""
    docs = _candidates(project, round)
    keys = Counter(d["key"] for d in docs)
    assert len(docs) == expected and max(keys.values()) == 1
    pairs = Counter((d["pool_item_id"], d["candidate_index"]) for d in docs)
    assert max(pairs.values()) == 1
    files = set(glob.glob(os.path.join(project.media_path("candidates", f"round-{round}"), "*")))
    assert files == {d["target_path"] for d in docs}, "orphan files or records without an image"
    return docs


def test_generate_writes_candidates_and_resumes(project, tmp_path, models):
    n_pool = _pool(project, tmp_path)
    res = generate(project, 1, _spec(models), candidates=2, batch_size=3, progress=False)
    assert res.expected == 2 * n_pool and res.inserted == res.expected and not res.failed
    docs = _assert_consistent(project, 1, 2 * n_pool)
    pool = {str(d["_id"]): d for d in project.dataset._sample_collection.find({"kind": "pool"})}
    for d in docs:
        p = pool[d["pool_item_id"]]
        assert d["status"] == schema.PENDING and d["round"] == 1
        assert d["filepath"] == p["filepath"] and d["mask"]["mask_path"] == p["mask"]["mask_path"]
        assert d["origin"] == "synthetic-pool" and d["mask_area"] == p["mask_area"]
        g = d["generator"]
        assert g["seed"] == candidate_seed(p["key"], d["candidate_index"])
        assert g["remover_key"] == res.remover_key and g["steps"] == 2 and g["dilation"] == 3
        assert d["key"] == schema.make_key("candidate", p["key"], res.remover_key,
                                           str(d["candidate_index"]))
        with Image.open(d["target_path"]) as im:
            assert im.size == (p["metadata"]["width"], p["metadata"]["height"])
    assert len({d["generator"]["seed"] for d in docs}) == len(docs)
    # FiftyOne reads the records like any others
    ds = project.dataset
    ds.reload()
    assert len(ds.match({"kind": "candidate"})) == len(docs)
    rec = store.get_round_records(project.dataset_name)[0]
    gen = rec["generation"][res.remover_key]
    assert gen["inserted"] == len(docs) and gen["provenance"]["pipeline"] == "StableDiffusionInpaintPipeline"
    assert gen["candidates_per_item"] == 2

    again = generate(project, 1, _spec(models), candidates=2, batch_size=3, progress=False)
    assert again.inserted == 0 and again.already_present == 2 * n_pool
    more = generate(project, 1, _spec(models), candidates=3, batch_size=3, progress=False)
    assert more.inserted == n_pool and more.already_present == 2 * n_pool
    _assert_consistent(project, 1, 3 * n_pool)
    # the same remover on the same pool in a later round adds nothing (same seeds, same results)
    later = generate(project, 2, _spec(models), candidates=1, progress=False)
    assert later.inserted == 0 and later.already_present == n_pool


def test_failure_after_first_batch_then_resume(project, tmp_path, models):
    from rorem_data.removers import load_remover

    n_pool = _pool(project, tmp_path)
    remover = load_remover(_spec(models))
    real_remove = remover.remove
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash in batch 2")
        return real_remove(*args, **kwargs)

    remover.remove = flaky
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(project, 1, remover, candidates=2, batch_size=4, progress=False)
    _assert_consistent(project, 1, 4)  # batch 1 finished completely, nothing of batch 2
    remover.remove = real_remove
    res = generate(project, 1, remover, candidates=2, batch_size=4, progress=False)
    assert res.already_present == 4 and res.inserted == 2 * n_pool - 4
    _assert_consistent(project, 1, 2 * n_pool)


def test_killed_subprocess_then_resume(project, tmp_path, models):
    """SIGKILL a real `python -m rorem_data.cli generate` run after its first batch, rerun."""
    n_pool = _pool(project, tmp_path, n_images=8)
    spec = {"model": models["sd"], "steps": 10, "resolution": 64}
    spec_file = tmp_path / "remover.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "ROREM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rorem_data.cli", "--project", project.root, "generate", "--round", "1",
           "--remover", str(spec_file), "--candidates", "2", "--batch-size", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    coll = project.dataset._sample_collection
    deadline = time.time() + 120
    try:
        while coll.count_documents({"kind": "candidate"}) < 1:
            if proc.poll() is not None:
                pytest.fail(f"generate exited early: {proc.communicate()[1].decode()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("no candidate was written within 120 s")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    total = 2 * n_pool
    partial = coll.count_documents({"kind": "candidate"})
    assert 1 <= partial < total
    # every record has its image (images are written before the batch insert)
    for d in _candidates(project, 1):
        assert os.path.isfile(d["target_path"])
    res = generate(project, 1, str(spec_file), candidates=2, batch_size=4, progress=False)
    assert res.already_present == partial and res.inserted == total - partial
    _assert_consistent(project, 1, total)


def test_shards_union_is_exact(project, tmp_path, models):
    n_pool = _pool(project, tmp_path)
    r0 = generate(project, 1, "classical:telea", candidates=2, shard="0/2", progress=False)
    r1 = generate(project, 1, "classical:telea", candidates=2, shard=(1, 2), progress=False)
    assert r0.pool_items + r1.pool_items == n_pool and r0.pool_items and r1.pool_items
    assert r0.shard == (0, 2) and r1.shard == (1, 2)
    _assert_consistent(project, 1, 2 * n_pool)
    assert generate(project, 1, "classical:telea", candidates=2, progress=False).inserted == 0


def test_items_added_between_shard_runs_fall_in_exactly_one_shard(project, tmp_path):
    """Shards follow a hash of the item key, not list positions: a pool import between the two
    shard runs neither skips nor duplicates anything."""
    from rorem_data.testing import synthetic

    project.import_pool(synthetic.write_pool_folder(str(tmp_path / "a"), 6, seed=11), origin="a",
                        workers=1)
    r0 = generate(project, 1, "classical:telea", shard="0/2", progress=False)
    project.import_pool(synthetic.write_pool_folder(str(tmp_path / "b"), 6, seed=12), origin="b",
                        workers=1)
    r1 = generate(project, 1, "classical:telea", shard="1/2", progress=False)
    r0b = generate(project, 1, "classical:telea", shard="0/2", progress=False)
    n_pool = project.dataset._sample_collection.count_documents({"kind": "pool"})
    assert r0.inserted + r1.inserted + r0b.inserted == n_pool
    assert generate(project, 1, "classical:telea", progress=False).inserted == 0
    _assert_consistent(project, 1, n_pool)


def test_real_photos_as_pool_with_sdxl(project, tmp_path, models):
    data = pytest.importorskip("skimage.data")
    root = tmp_path / "photos"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        img = Image.fromarray(getattr(data, name)())
        img = img.resize((img.width // 6, img.height // 6), Image.BICUBIC)
        img.save(root / "images" / f"{name}.png")
        m = np.zeros((img.height, img.width), np.uint8)
        m[img.height // 3: img.height // 2, img.width // 3: img.width // 2] = 255
        Image.fromarray(m).save(root / "masks" / f"{name}.png")
    project.import_pool(str(root), origin="skimage", workers=1)
    res = generate(project, 1, _spec(models, "sdxl"), candidates=1, batch_size=2,
                   pool_filter={"origin": "skimage"}, progress=False)
    assert res.inserted == 3
    docs = _assert_consistent(project, 1, 3)
    for d in docs:
        with Image.open(d["filepath"]) as src, Image.open(d["target_path"]) as out:
            assert src.size == out.size
        assert d["generator"]["pipeline"] == "StableDiffusionXLInpaintPipeline"
    # a FiftyOne view selects the same pool items
    from fiftyone import ViewField as F

    view = project.dataset.match((F("kind") == "pool") & (F("origin") == "skimage"))
    again = generate(project, 1, _spec(models, "sdxl"), pool_filter=view, progress=False)
    assert again.pool_items == 3 and again.already_present == 3 and again.inserted == 0


def test_missing_pool_file_is_reported_and_retried(project, tmp_path, models):
    n_pool = _pool(project, tmp_path, n_images=3)
    first = project.dataset._sample_collection.find_one({"kind": "pool"}, sort=[("key", 1)])
    hidden = first["filepath"] + ".hidden"
    os.rename(first["filepath"], hidden)
    res = generate(project, 1, "classical", candidates=1, batch_size=2, progress=False)
    assert res.failed and first["key"] in str(res.failed[0]) and "rerun" in res.summary()
    shared = project.dataset._sample_collection.count_documents(
        {"kind": "pool", "filepath": first["filepath"]})
    assert res.inserted == n_pool - shared
    os.rename(hidden, first["filepath"])
    res2 = generate(project, 1, "classical", candidates=1, batch_size=2, progress=False)
    assert res2.inserted == shared and not res2.failed
    _assert_consistent(project, 1, n_pool)


def test_argument_errors(project):
    for kwargs, words in (({"round": 0}, ["round", ">= 1"]), ({"candidates": 0}, ["candidates"]),
                          ({"batch_size": -1}, ["batch_size"]), ({"shard": "2/2"}, ["shard"]),
                          ({"pool_filter": [1]}, ["pool_filter"])):
        args = {"round": 1, **kwargs}
        rnd = args.pop("round")
        with pytest.raises(ConfigError) as exc:
            generate(project, rnd, "classical", progress=False, **args)
        for w in words:
            assert w in str(exc.value)
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) is None
    with pytest.raises(ConfigError):
        parse_shard("a/b")


@pytest.mark.slow
def test_accelerate_two_processes_each_candidate_once(project, tmp_path, models):
    """`accelerate launch --multi_gpu --num_processes 2` (torchrun; on a CPU-only machine the
    processes join a gloo group): each process takes its share, the union is exact.
    (`accelerate launch --cpu --num_processes 2` starts a single process unless mpirun is set up.)"""
    n_pool = _pool(project, tmp_path, n_images=4)
    spec_file = tmp_path / "remover.json"
    spec_file.write_text(json.dumps(_spec(models)))
    env = {**os.environ, "ROREM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rorem_data.cli",
           "--project", project.root, "generate", "--round", "1", "--remover", str(spec_file),
           "--candidates", "2", "--batch-size", "2"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "process 0/2" in out.stdout and "process 1/2" in out.stdout, out.stdout
    _assert_consistent(project, 1, 2 * n_pool)


@pytest.mark.parametrize("cls", ["FluxFillPipeline", "Flux2KleinInpaintPipeline",
                                 "StableDiffusion3InpaintPipeline", "QwenImageInpaintPipeline",
                                 "ZImageInpaintPipeline"])
def test_transformer_family_generates_in_shards_and_resumes(project, tmp_path, cls):
    """Every family goes through generation as SDXL does: shards whose union is the whole
    round, a rerun that adds nothing, the pipeline class and family in the round record."""
    from rorem_data.testing import tiny_families

    folder = tiny_families.FAMILY_BUILDERS[cls](str(tmp_path / "model"))
    spec = {"model": folder, "steps": 2, "resolution": 64, "dilation": 3, "hd_strategy": "crop",
            "license": "Apache-2.0"}
    n_pool = _pool(project, tmp_path, n_images=3)
    r0 = generate(project, 1, spec, candidates=2, shard="0/2", batch_size=2, progress=False)
    r1 = generate(project, 1, spec, candidates=2, shard="1/2", batch_size=2, progress=False)
    assert r0.inserted + r1.inserted == 2 * n_pool and r0.remover_key == r1.remover_key
    docs = _assert_consistent(project, 1, 2 * n_pool)
    again = generate(project, 1, spec, candidates=2, progress=False)
    assert again.inserted == 0 and again.already_present == 2 * n_pool
    assert {d["generator"]["pipeline"] for d in docs} == {cls}
    assert {d["generator"]["license"] for d in docs} == {"Apache-2.0"}
    rec = store.get_round_records(project.dataset_name)[0]
    assert rec["generation"][r0.remover_key]["provenance"]["family"] is not None
