"""One contract for every export format (parametrised over ``list_export_formats()``): the
pairs a user expects are there and readable, every file is in the manifest with its sha256,
and the same round exports byte for byte the same."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from rorem_data.dataset.export import list_export_formats, register_export_format

from helpers import add_candidates, judge_by_mode

MODES = ["clean", "residue", "clean", "blur", "clean", "hallucination"]


def _tree_bytes(folder):
    out = {}
    for dp, _dn, fns in os.walk(folder):
        for f in fns:
            p = os.path.join(dp, f)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def _pairs(fmt, out):
    """(source, mask, target) bytes of every exported pair, read the way the format's users
    read it."""
    if fmt == "rorem":
        meta = json.load(open(os.path.join(out, "meta.json")))
        return [tuple(open(os.path.join(out, e[k]), "rb").read() for k in ("source", "mask", "GT"))
                for e in meta]
    if fmt == "imagefolder":
        rows = [json.loads(line) for line in open(os.path.join(out, "metadata.jsonl")) if line.strip()]
        return [tuple(open(os.path.join(out, r[k]), "rb").read()
                      for k in ("file_name", "mask_file_name", "target_file_name")) for r in rows]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(os.path.join(out, "pairs.parquet")).to_pylist()
        return [tuple(open(os.path.join(out, r[k]), "rb").read() for k in ("source", "mask", "target"))
                for r in t]
    pytest.skip(f"no reader for the user format {fmt!r} in this suite")


@pytest.fixture
def judged(project, seed_meta):
    project.import_seeds(seed_meta, license="CC0-1.0")
    ids, modes = add_candidates(project, 1, MODES, seed=9)
    judge_by_mode(project, 1, ids, modes)
    return project


@pytest.mark.parametrize("fmt", list_export_formats())
def test_every_export_format_keeps_the_contract(judged, tmp_path, fmt):
    project = judged
    a = project.export(1, str(tmp_path / "a"), format=fmt)
    b = project.export(1, str(tmp_path / "b"), format=fmt)
    manifest = json.load(open(os.path.join(a.out, "manifest.json")))
    n_seeds, n_accepted = 12, MODES.count("clean")
    assert manifest["counts"]["pairs"] == a.accepted == n_seeds + n_accepted
    pairs = _pairs(fmt, a.out)
    assert len(pairs) == n_seeds + n_accepted and all(len(x) > 0 for p in pairs for x in p)
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256(open(os.path.join(a.out, rel), "rb").read()).hexdigest() == digest, rel
    assert _tree_bytes(a.out) == _tree_bytes(b.out)  # byte for byte, marker included
    assert manifest["counts"]["by_license"]["CC0-1.0"] == n_seeds


def test_a_registered_format_is_used_by_name(judged, tmp_path):
    def write_keys(stage, rows, names, hashes, *, with_rejected=False, embed_images=False):
        data = "\n".join(r.key for r in rows).encode()
        open(os.path.join(stage, "keys.txt"), "wb").write(data)
        hashes["keys.txt"] = hashlib.sha256(data).hexdigest()

    register_export_format("keys", write_keys, overwrite=True)
    try:
        res = judged.export(1, str(tmp_path / "k"), format="keys")
        keys = open(os.path.join(res.out, "keys.txt")).read().split()
        assert len(keys) == 12 + MODES.count("clean")
    finally:
        from rorem_data.dataset.export import EXPORT_FORMATS

        EXPORT_FORMATS.unregister("keys")
