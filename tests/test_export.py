"""`export`: layouts, pixel-exact round trips, determinism, past rounds, interruption."""

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from rorem_data import ConfigError
from rorem_data import ExportError
from rorem_data.dataset import export as export_mod
from rorem_data.core.images import read_mask

from helpers import add_candidates, judge_by_mode


def _tree(root):
    out = {}
    for dp, _d, files in os.walk(root):
        for f in files:
            p = os.path.join(dp, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def _read_like_rorem(meta_path):
    """Read an export the way the official RORem training code does (meta paths relative to
    the meta.json folder; mask = first channel / 255 >= 0.5)."""
    root = os.path.dirname(meta_path)
    items = []
    for e in json.load(open(meta_path)):
        src = np.asarray(Image.open(os.path.join(root, e["source"])).convert("RGB"))
        gt = np.asarray(Image.open(os.path.join(root, e["GT"])).convert("RGB"))
        m = np.asarray(Image.open(os.path.join(root, e["mask"])).convert("RGB"))[..., 0] / 255 >= 0.5
        items.append((e, src, m, gt))
    return items


def test_export_rorem_roundtrip_pixel_exact(project, seed_meta, tmp_path):
    project.import_seeds(seed_meta)
    out = str(tmp_path / "out")
    res = project.export(0, out)
    assert res.accepted == 12
    items = _read_like_rorem(os.path.join(out, "meta.json"))
    assert len(items) == 12
    seed_root = os.path.dirname(seed_meta)
    originals = {}
    for e in json.load(open(seed_meta)):
        s = np.asarray(Image.open(os.path.join(seed_root, e["source"])))
        originals[s.tobytes()] = e
    for e, src, m, gt in items:
        orig = originals[src.tobytes()]
        np.testing.assert_array_equal(gt, np.asarray(Image.open(os.path.join(seed_root, orig["GT"]))))
        np.testing.assert_array_equal(m, read_mask(os.path.join(seed_root, orig["mask"])))
        assert set(e) == {"source", "mask", "GT"}
        assert not any(os.path.isabs(e[k]) for k in e)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["counts"]["pairs"] == 12 and manifest["counts"]["by_round"] == {"0": 12}
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256(open(os.path.join(out, rel), "rb").read()).hexdigest() == digest
    assert len(manifest["files"]) == 12 * 3 + 1


def _overturn(project, sample_id, *, round):
    """A later decision appended to a sample's history (what the export reads), written raw:
    the export's as-of semantics are under test here, not the ledger's rules."""
    from bson import ObjectId

    from rorem_data.core import schema

    d = schema.decision_doc(round=round, phase="human", status="rejected", by="human", reviewer="x")
    project.dataset._sample_collection.update_one(
        {"_id": ObjectId(sample_id)},
        {"$push": {"decisions": d}, "$set": {"status": "rejected", "decision": d,
                                             "decided_round": round, "decided_by": "human"}})


def test_export_is_deterministic_and_past_rounds_are_stable(project, seed_meta, tmp_path):
    project.import_seeds(seed_meta)
    project.export(0, str(tmp_path / "a"))
    project.export(0, str(tmp_path / "b"))
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    # round 1: two clean candidates accepted by humans, two failures rejected
    ids, modes = add_candidates(project, 1, ["clean", "residue", "clean", "blur"], seed=1)
    judge_by_mode(project, 1, ids, modes)
    project.export(1, str(tmp_path / "r1"))
    # round 2 adds more, and a round-1 candidate is re-judged in round 2
    ids2, modes2 = add_candidates(project, 2, ["clean", "hallucination"], seed=2)
    judge_by_mode(project, 2, ids2, modes2)
    _overturn(project, ids[0], round=2)
    project.export(0, str(tmp_path / "a2"))
    project.export(1, str(tmp_path / "r1b"))
    assert _tree(tmp_path / "a") == _tree(tmp_path / "a2")
    assert _tree(tmp_path / "r1") == _tree(tmp_path / "r1b")
    m1 = json.load(open(tmp_path / "r1" / "manifest.json"))["counts"]
    assert m1["by_round"] == {"0": 12, "1": 2} and m1["by_decided_by"] == {"human": 2, "import": 12}
    r2 = project.export(2, str(tmp_path / "r2"))
    assert r2.accepted == 12 + 1 + 1  # ids[0] was overturned in round 2


def test_with_rejected_scores(project, seed_meta, tmp_path):
    project.import_seeds(seed_meta)
    ids, modes = add_candidates(project, 1, ["clean", "residue", "blur"], seed=3)
    judge_by_mode(project, 1, ids, modes)
    out = tmp_path / "d"
    project.export(1, str(out), with_rejected=True)
    meta = json.load(open(out / "meta.json"))
    assert sorted(e["score"] for e in meta) == [0, 0] + [1] * 13
    assert json.load(open(out / "manifest.json"))["counts"]["rejected"] == 2


def test_imagefolder_and_parquet(project, seed_meta, tmp_path):
    import pyarrow.parquet as pq

    project.import_seeds(seed_meta)
    project.export(0, str(tmp_path / "if"), format="imagefolder")
    rows = [json.loads(l) for l in open(tmp_path / "if" / "metadata.jsonl")]
    assert len(rows) == 12
    for r in rows:
        for k in ("file_name", "mask_file_name", "target_file_name"):
            assert os.path.exists(tmp_path / "if" / r[k])
    project.export(0, str(tmp_path / "pq"), format="parquet")
    t = pq.read_table(tmp_path / "pq" / "pairs.parquet").to_pylist()
    assert len(t) == 12 and all(os.path.exists(tmp_path / "pq" / r["source"]) for r in t)
    project.export(0, str(tmp_path / "pqe"), format="parquet", embed_images=True)
    t2 = pq.read_table(tmp_path / "pqe" / "pairs.parquet").to_pylist()
    assert not os.path.exists(tmp_path / "pqe" / "source")
    for a, b in zip(t, t2):
        assert open(tmp_path / "pq" / a["target"], "rb").read() == b["target"]["bytes"]
    project.export(0, str(tmp_path / "pq2"), format="parquet")
    assert _tree(tmp_path / "pq") == _tree(tmp_path / "pq2")


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftover_staging(out, pid):
    """A staging folder as a run with process id ``pid`` leaves it when killed."""
    from rorem_data.core import outputs

    path = outputs.staging_folder(str(out), "export")
    marker = json.load(open(os.path.join(path, outputs.MARKER)))
    json.dump({**marker, "pid": pid}, open(os.path.join(path, outputs.MARKER), "w"))
    os.makedirs(os.path.join(path, "source"))
    return path


def test_interrupted_export_leaves_nothing(project, seed_meta, tmp_path, monkeypatch):
    project.import_seeds(seed_meta)
    calls = {"n": 0}
    real = export_mod._write_mask

    def flaky(src, dst, pair):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(src, dst, pair)

    monkeypatch.setattr(export_mod, "_write_mask", flaky)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        project.export(0, str(out), workers=1)
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if "out" in p] == []
    monkeypatch.setattr(export_mod, "_write_mask", real)
    # a killed run's marked staging folder is removed by the next export; a folder that only
    # looks like one (no marker) is not ours and stays
    dead = _leftover_staging(out, _dead_pid())
    (tmp_path / "out.partial-99999").mkdir()
    project.export(0, str(out))
    assert not os.path.exists(dead)
    assert sorted(p for p in os.listdir(tmp_path) if "out" in p) == ["out", "out.partial-99999"]


def test_export_errors(project, seed_meta, tmp_path):
    project.import_seeds(seed_meta)
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        project.export(0, str(tmp_path / "exists"))
    with pytest.raises(ConfigError, match="unknown export format 'zip'; choose one of: imagefolder, parquet, rorem"):
        project.export(0, str(tmp_path / "x"), format="zip")
    with pytest.raises(ConfigError, match="has not happened yet"):
        project.export(3, str(tmp_path / "x"))
    # --overwrite replaces only a folder an export wrote
    with pytest.raises(ExportError, match="not written by rorem-data"):
        project.export(0, str(tmp_path / "exists"), overwrite=True)
    assert (tmp_path / "exists" / "notes.txt").read_text() == "mine"
    project.export(0, str(tmp_path / "e"))
    project.export(0, str(tmp_path / "e"), overwrite=True)
    assert (tmp_path / "e" / "meta.json").exists()
    # a source that vanished after import is named in the error, and nothing is left behind
    src = project.dataset.values("filepath")[0]
    key = project.dataset.values("key")[0]
    os.remove(src)
    with pytest.raises(ExportError, match="has since been moved or deleted") as info:
        project.export(0, str(tmp_path / "y"))
    assert key in str(info.value) and src in str(info.value)
    assert not (tmp_path / "y").exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["e", "exists", "proj", "seeds"])
