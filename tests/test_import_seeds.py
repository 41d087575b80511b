"""`import seeds`: round trips, mask forms, idempotence and every kind of bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from rorem_data import ValidationError
from rorem_data.core.images import read_mask


def _write_triplet(root, name, src, mask, gt, mask_mode=None):
    for sub, arr in (("source", src), ("GT", gt)):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        Image.fromarray(arr).save(os.path.join(root, sub, name))
    os.makedirs(os.path.join(root, "mask"), exist_ok=True)
    img = mask if isinstance(mask, Image.Image) else Image.fromarray(mask)
    img.save(os.path.join(root, "mask", name))
    return {"source": f"source/{name}", "mask": f"mask/{name}", "GT": f"GT/{name}"}


def _meta(root, entries):
    path = os.path.join(root, "meta.json")
    with open(path, "w") as fh:
        json.dump(entries, fh)
    return path


def _rgb(h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _square(h=32, w=32):
    m = np.zeros((h, w), bool)
    m[8:20, 10:24] = True
    return m


def test_seed_roundtrip_synthetic(project, seed_meta):
    res = project.import_seeds(seed_meta)
    assert (res.read, res.inserted, res.already_present) == (12, 12, 0)
    ds = project.dataset
    assert ds.count() == 12
    assert ds.count_values("kind") == {"seed": 12}
    assert ds.count_values("status") == {"accepted": 12}
    assert set(ds.values("round")) == {0}
    assert set(ds.values("decided_by")) == {"import"}
    assert set(ds.values("origin")) == {"seeds"}
    root = os.path.dirname(seed_meta)
    entries = json.load(open(seed_meta))
    by_source = dict(zip(ds.values("filepath"), zip(ds.values("mask.mask_path"), ds.values("target_path"))))
    for e in entries:
        mask_path, target = by_source[os.path.join(root, e["source"])]
        assert target == os.path.join(root, e["GT"])
        np.testing.assert_array_equal(read_mask(mask_path), read_mask(os.path.join(root, e["mask"])))
    # provenance: every seed has one decision in its history, made in round 0
    assert all(len(h) == 1 and h[0] == 0 for h in ds.values("decisions.round"))


def test_reimport_adds_nothing(project, seed_meta):
    project.import_seeds(seed_meta)
    res = project.import_seeds(seed_meta)
    assert res.inserted == 0 and res.already_present == 12
    assert project.dataset.count() == 12


@pytest.mark.parametrize("form", ["rgb", "antialiased", "zero_one", "palette", "rgba", "bilevel"])
def test_mask_forms_import_as_canonical_binary(project, tmp_path, form):
    root = str(tmp_path / "forms")
    truth = _square()
    if form == "rgb":
        mask = Image.fromarray(np.repeat(np.where(truth, 255, 0).astype(np.uint8)[..., None], 3, 2))
    elif form == "antialiased":
        a = np.where(truth, 255, 0).astype(np.uint8)
        a[8, 10:24] = 140  # soft edge above the threshold: object
        a[7, 10:24] = 100  # soft edge below the threshold: background
        mask = Image.fromarray(a)
    elif form == "zero_one":
        mask = Image.fromarray(truth.astype(np.uint8))
    elif form == "palette":
        mask = Image.fromarray(np.where(truth, 255, 0).astype(np.uint8)).convert("P")
    elif form == "rgba":
        mask = Image.fromarray(np.dstack([np.where(truth, 255, 0).astype(np.uint8)] * 3
                                         + [np.full(truth.shape, 255, np.uint8)]))
    else:
        mask = Image.fromarray(truth).convert("1")
    e = _write_triplet(root, "a.png", _rgb(), mask, _rgb(seed=1))
    project.import_seeds(_meta(root, [e]))
    stored = project.dataset.values("mask.mask_path")[0]
    im = Image.open(stored)
    assert im.mode == "L" and set(np.unique(np.asarray(im))) <= {0, 255}
    np.testing.assert_array_equal(np.asarray(im) == 255, truth)


def test_canonical_mask_is_referenced_in_place(project, tmp_path):
    root = str(tmp_path / "canon")
    e = _write_triplet(root, "a.png", _rgb(), np.where(_square(), 255, 0).astype(np.uint8), _rgb(seed=1))
    project.import_seeds(_meta(root, [e]))
    assert project.dataset.values("mask.mask_path") == [os.path.join(root, "mask", "a.png")]
    assert not os.listdir(project.media_path()) or not os.path.exists(project.media_path("masks"))


def test_score_field_imports_rejected_pairs(project, tmp_path):
    root = str(tmp_path / "scored")
    e1 = _write_triplet(root, "a.png", _rgb(), np.where(_square(), 255, 0).astype(np.uint8), _rgb(seed=1))
    e2 = _write_triplet(root, "b.png", _rgb(seed=2), np.where(_square(), 255, 0).astype(np.uint8), _rgb(seed=3))
    project.import_seeds(_meta(root, [{**e1, "score": 1}, {**e2, "score": 0}]))
    ds = project.dataset
    st = dict(zip(ds.values("filepath"), ds.values("status")))
    assert st[os.path.join(root, "source/a.png")] == "accepted"
    assert st[os.path.join(root, "source/b.png")] == "rejected"


def _bad_dataset(root):
    """One good entry and one of each kind of bad entry; returns (meta path, expected problems)."""
    good_mask = np.where(_square(), 255, 0).astype(np.uint8)
    entries = [_write_triplet(root, "good.png", _rgb(), good_mask, _rgb(seed=1))]
    # missing GT file
    e = _write_triplet(root, "missing.png", _rgb(), good_mask, _rgb())
    os.remove(os.path.join(root, "GT", "missing.png"))
    entries.append(e)
    # truncated PNG source
    e = _write_triplet(root, "trunc.png", _rgb(64, 64), np.zeros((64, 64), np.uint8) + good_mask.max()
                       * np.pad(_square(), 16), _rgb(64, 64))
    p = os.path.join(root, "source", "trunc.png")
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    entries.append(e)
    # corrupt: not an image at all
    e = _write_triplet(root, "garbage.png", _rgb(), good_mask, _rgb())
    open(os.path.join(root, "GT", "garbage.png"), "wb").write(b"this is not a png" * 10)
    entries.append(e)
    # size mismatch (mask)
    entries.append(_write_triplet(root, "size.png", _rgb(), np.where(_square(40, 40), 255, 0).astype(np.uint8), _rgb()))
    # size mismatch (GT)
    entries.append(_write_triplet(root, "size_gt.png", _rgb(), good_mask, _rgb(40, 32)))
    # empty and full masks
    entries.append(_write_triplet(root, "empty.png", _rgb(), np.zeros((32, 32), np.uint8), _rgb()))
    entries.append(_write_triplet(root, "full.png", _rgb(), np.full((32, 32), 255, np.uint8), _rgb()))
    # malformed entries
    entries.append({"source": "source/good.png", "mask": "mask/good.png"})  # no GT
    entries.append(["source/good.png"])  # not an object
    entries.append({"source": "/etc/passwd", "mask": "mask/good.png", "GT": "GT/good.png"})  # absolute
    entries.append({"source": "../outside.png", "mask": "mask/good.png", "GT": "GT/good.png"})  # escapes
    entries.append({"source": "source/../../x.png", "mask": "mask/good.png", "GT": "GT/good.png"})
    entries.append(dict(entries[0]))  # duplicate of entry 0
    entries.append({**entries[0], "source": "source/good.png", "GT": "GT/size_gt.png", "score": 0.5})
    expected = {
        1: "does not exist", 2: "truncated", 3: "not a readable image", 4: "mask is 40x40",
        5: "target is 32x40", 6: "mask is empty", 7: "mask is full", 8: "lacks key", 9: "not an object",
        10: "absolute", 11: "leaves the folder", 12: "leaves the folder", 13: "duplicate of meta.json entry 0",
        14: '"score" is 0.5',
    }
    return _meta(root, entries), expected


def test_bad_input_refuses_whole_import_and_names_every_item(project, tmp_path):
    meta, expected = _bad_dataset(str(tmp_path / "bad"))
    with pytest.raises(ValidationError) as info:
        project.import_seeds(meta)
    problems = info.value.problems
    for idx, text in expected.items():
        hits = [p for p in problems if p.item == f"meta.json entry {idx}"]
        assert hits, f"entry {idx} not reported"
        assert any(text in p.problem for p in hits), (idx, [p.problem for p in hits])
        assert all(p.fix for p in hits)
    assert not any(p.item == "meta.json entry 0" for p in problems)
    assert "nothing was written" in str(info.value)
    assert project.dataset.count() == 0
    assert not os.path.exists(project.media_path("masks"))


def test_skip_invalid_imports_good_and_writes_report(project, tmp_path):
    meta, expected = _bad_dataset(str(tmp_path / "bad"))
    report = str(tmp_path / "report.json")
    res = project.import_seeds(meta, skip_invalid=True, report_path=report)
    assert res.inserted == 1
    assert project.dataset.count() == 1
    rows = json.load(open(report))
    reported = {r["item"] for r in rows}
    assert reported == {f"meta.json entry {i}" for i in expected}
    assert all(set(r) == {"item", "file", "problem", "fix"} for r in rows)


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "not valid JSON"),
    (b'{"source": "a"}', "not a list"),
    (b"\xff\xfe\x00", "not UTF-8 text"),
    (b"[" * 5000 + b"]" * 5000, "nests deeper than"),
])
def test_malformed_meta_json(project, tmp_path, content, needle):
    p = tmp_path / "m" / "meta.json"
    p.parent.mkdir()
    p.write_bytes(content)
    with pytest.raises(ValidationError) as info:
        project.import_seeds(str(p))
    assert needle in str(info.value)


def test_missing_meta_file(project, tmp_path):
    with pytest.raises(ValidationError, match="meta file does not exist"):
        project.import_seeds(str(tmp_path / "nope" / "meta.json"))


def test_truncated_jpeg_is_caught_without_full_decode(project, tmp_path):
    root = str(tmp_path / "jpg")
    os.makedirs(os.path.join(root, "source"))
    os.makedirs(os.path.join(root, "GT"))
    os.makedirs(os.path.join(root, "mask"))
    Image.fromarray(_rgb(64, 64)).save(os.path.join(root, "source", "a.jpg"), quality=90)
    data = open(os.path.join(root, "source", "a.jpg"), "rb").read()
    open(os.path.join(root, "source", "a.jpg"), "wb").write(data[:-200])
    Image.fromarray(_rgb(64, 64)).save(os.path.join(root, "GT", "a.jpg"))
    Image.fromarray(np.where(np.pad(_square(), 16), 255, 0).astype(np.uint8)).save(os.path.join(root, "mask", "a.png"))
    meta = _meta(root, [{"source": "source/a.jpg", "mask": "mask/a.png", "GT": "GT/a.jpg"}])
    with pytest.raises(ValidationError, match="JPEG is truncated"):
        project.import_seeds(meta)


def test_real_photos_roundtrip(project, tmp_path):
    skdata = pytest.importorskip("skimage.data")
    root = str(tmp_path / "photos")
    entries = []
    for name, img in (("astronaut", skdata.astronaut()), ("coffee", skdata.coffee()), ("chelsea", skdata.chelsea())):
        img = img[:128, :160].copy()
        mask = np.zeros(img.shape[:2], np.uint8)
        yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
        mask[((yy - 60) ** 2 + (xx - 80) ** 2) < 30 ** 2] = 255
        target = img.copy()
        target[mask > 0] = img[mask == 0].mean(axis=0).astype(np.uint8)
        entries.append(_write_triplet(root, f"{name}.png", img, mask, target))
    project.import_seeds(_meta(root, entries), origin="skimage")
    ds = project.dataset
    assert ds.count() == 3
    assert set(ds.values("metadata.width")) == {160} and set(ds.values("metadata.height")) == {128}
    areas = ds.values("mask_area")
    assert all(abs(a - np.pi * 30 ** 2 / (128 * 160)) < 0.01 for a in areas)
