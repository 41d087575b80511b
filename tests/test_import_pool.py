"""`import pool`: folders and COCO files, area filters, idempotence and bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from rorem_data import ConfigError
from rorem_data import ValidationError
from rorem_data.core.images import read_mask
from rorem_data.testing import synthetic


def test_pool_folder_several_masks_per_image(project, pool_dir):
    masks = sorted(os.listdir(os.path.join(pool_dir, "masks")))
    res = project.import_pool(pool_dir)
    assert res.inserted == len(masks) and res.read == len(masks)
    ds = project.dataset
    assert ds.count_values("kind") == {"pool": len(masks)}
    assert set(ds.values("status")) == {None}
    # every mask is paired with the image of its stem, pixel-exact
    for fp, mp, ref in zip(ds.values("filepath"), ds.values("mask.mask_path"), ds.values("import_ref")):
        stem = os.path.basename(ref).split("_")[0]
        assert os.path.basename(fp) == f"{stem}.png"
        np.testing.assert_array_equal(read_mask(mp), read_mask(ref))
    again = project.import_pool(pool_dir)
    assert again.inserted == 0 and again.already_present == len(masks)


def test_pool_folder_mask_in_subfolder_and_unmatched(project, tmp_path):
    root = tmp_path / "p"
    (root / "images").mkdir(parents=True)
    (root / "masks" / "cat").mkdir(parents=True)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(img).save(root / "images" / "cat.png")
    m = np.zeros((32, 32), np.uint8)
    m[4:10, 4:10] = 255
    Image.fromarray(m).save(root / "masks" / "cat" / "0.png")
    Image.fromarray(m).save(root / "masks" / "dog_1.png")  # no image called dog
    with pytest.raises(ValidationError, match="no image in images/ matches"):
        project.import_pool(str(root))
    assert project.dataset.count() == 0
    res = project.import_pool(str(root), skip_invalid=True, report_path=str(tmp_path / "r.json"))
    assert res.inserted == 1 and res.invalid == 1


def test_pool_area_filter(project, pool_dir):
    areas = [read_mask(os.path.join(pool_dir, "masks", f)).mean()
             for f in sorted(os.listdir(os.path.join(pool_dir, "masks")))]
    lo, hi = np.quantile(areas, [0.25, 0.75])
    res = project.import_pool(pool_dir, min_area=float(lo), max_area=float(hi))
    kept = sum(lo <= a <= hi for a in areas)
    assert res.inserted == kept and res.filtered == len(areas) - kept
    assert all(lo <= a <= hi for a in project.dataset.values("mask_area"))
    with pytest.raises(ConfigError):
        project.import_pool(pool_dir, min_area=0.5, max_area=0.1)


def test_coco_polygons_and_rle(project, tmp_path):
    from pycocotools import mask as mask_utils

    path = synthetic.write_coco(str(tmp_path / "coco"), 4, size=48, seed=5)
    data = json.load(open(path))
    data["annotations"].append({**data["annotations"][0], "id": 999, "iscrowd": 1})
    json.dump(data, open(path, "w"))
    res = project.import_pool(path)
    n = len(data["annotations"]) - 1
    assert res.inserted == n and res.filtered == 1  # the crowd region is left out
    ds = project.dataset
    assert set(ds.values("category")) <= set(synthetic.SHAPES)
    # each stored mask equals pycocotools' decoding of its annotation
    anns = {a["id"]: a for a in data["annotations"]}
    for ref, mp in zip(ds.values("import_ref"), ds.values("mask.mask_path")):
        a = anns[int(ref.rsplit("#", 1)[1])]
        seg = a["segmentation"]
        if isinstance(seg, list):
            expect = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, 48, 48)))
        else:
            expect = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        np.testing.assert_array_equal(read_mask(mp), expect.astype(bool))
    assert project.import_pool(path).inserted == 0


def test_coco_uncompressed_rle(project, tmp_path):
    root = tmp_path / "c"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "images" / "a.png")
    # column-major runs: 20 background, 30 object, 50 background
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": {"size": [10, 10], "counts": [20, 30, 50]}}],
            "categories": [{"id": 1, "name": "thing"}]}
    (root / "ann.json").write_text(json.dumps(coco))
    project.import_pool(str(root / "ann.json"))
    m = read_mask(project.dataset.values("mask.mask_path")[0])
    expect = np.zeros(100, bool)
    expect[20:50] = True
    np.testing.assert_array_equal(m, expect.reshape(10, 10, order="F"))
    assert project.dataset.values("category") == ["thing"]


def test_coco_bad_input(project, tmp_path):
    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "images" / "a.png")
    poly = [[1, 1, 8, 1, 8, 8, 1, 8]]
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 10, "height": 10},
            {"id": 2, "file_name": "missing.png", "width": 10, "height": 10},
            {"id": 3, "file_name": "../escape.png", "width": 10, "height": 10},
            {"id": 4, "file_name": "a.png", "width": 12, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "segmentation": poly},
            {"id": 2, "image_id": 2, "segmentation": poly},
            {"id": 3, "image_id": 77, "segmentation": poly},
            {"id": 4, "image_id": 1, "segmentation": [[1, 2]]},
            {"id": 5, "image_id": 4, "segmentation": poly},
            {"id": 6, "image_id": 1, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]},
        ],
    }
    (root / "ann.json").write_text(json.dumps(coco))
    with pytest.raises(ValidationError) as info:
        project.import_pool(str(root / "ann.json"))
    text = str(info.value)
    for needle in ("does not exist", "leaves the folder", "not in 'images'", "bad segmentation",
                   "image is 10x10 but the JSON says 12x10", "mask is full"):
        assert needle in text, needle
    assert project.dataset.count() == 0
    (root / "broken.json").write_text("[1, 2")
    with pytest.raises(ValidationError, match="not valid JSON"):
        project.import_pool(str(root / "broken.json"))
    (root / "shape.json").write_text('{"images": 3}')
    with pytest.raises(ValidationError, match="no 'images' and 'annotations' lists"):
        project.import_pool(str(root / "shape.json"))


# --- linear name matching -------------------------------------------------------------------

from hypothesis import given, settings
from hypothesis import strategies as st

from rorem_data.dataset.pool_folder import match_masks, match_stem


def _quadratic_match(rel, images):
    """The matcher before linear import (every image stem tried): the reference semantics."""
    if rel in images:
        return rel
    head = os.path.dirname(rel)
    if head and head in images:
        return head
    cands = [s for s in images if rel.startswith(s + "_")]
    return max(cands, key=len) if cands else None


_part = st.text(alphabet="ab_", min_size=1, max_size=6)
_stem = st.lists(_part, min_size=1, max_size=2).map("/".join)


@settings(max_examples=300, deadline=None)
@given(st.sets(_stem, max_size=12), st.lists(_stem, max_size=30))
def test_linear_matcher_agrees_with_the_quadratic_one(stems, masks):
    images = {s: s for s in stems}
    for rel in masks + [s + "_1" for s in stems] + [s + "/0" for s in stems]:
        assert match_stem(rel, images) == _quadratic_match(rel, images), rel


def test_openimages_names_take_the_longest_image_stem():
    images = {"0001a": 1, "0001a_m01": 2, "cat": 3}
    pairs, unmatched = match_masks(images, ["0001a_m01_2", "0001a_m02_0", "cat", "cat/7",
                                            "cat_dog_1", "dog_1", "_x"])
    assert dict(pairs) == {"0001a_m01_2": "0001a_m01", "0001a_m02_0": "0001a", "cat": "cat",
                           "cat/7": "cat", "cat_dog_1": "cat"}
    assert unmatched == ["dog_1", "_x"]


def test_matching_is_linear_in_the_number_of_masks():
    """100K OpenImages-style masks against 50K images: the old matcher needed ~5e9 string
    comparisons (hours); dictionary lookups take well under a second."""
    import time

    images = {f"{i:016x}": i for i in range(50_000)}
    masks = [f"{i:016x}_m0{i % 97:02d}k_{b}" for i in range(50_000) for b in range(2)]
    t = time.perf_counter()
    pairs, unmatched = match_masks(images, masks)
    assert time.perf_counter() - t < 5.0
    assert len(pairs) == 100_000 and not unmatched
    assert all(rel.startswith(stem + "_") for rel, stem in pairs[:1000])


def test_pool_folder_with_underscored_stems_and_nested_folders(project, tmp_path):
    root = tmp_path / "oi"
    rng = np.random.default_rng(1)
    m = np.zeros((24, 24), np.uint8)
    m[3:12, 4:15] = 255
    names = {"images/ab_cd.png": None, "images/ab.png": None, "images/sub/x_y.png": None}
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / n)
    masks = {"masks/ab_cd_m01_0.png": "ab_cd.png", "masks/ab_m02_1.png": "ab.png",
             "masks/sub/x_y_0.png": "x_y.png", "masks/ab_cd/3.png": "ab_cd.png"}
    for n in masks:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(m).save(root / n)
    res = project.import_pool(str(root))
    assert res.inserted == 4
    got = {os.path.relpath(r, root): os.path.basename(fp)
           for r, fp in zip(project.dataset.values("import_ref"), project.dataset.values("filepath"))}
    assert got == masks
