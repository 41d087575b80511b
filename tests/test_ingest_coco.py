"""COCO files from elsewhere: every bad entry refused by name before anything is decoded."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rorem_data import ValidationError
from rorem_data.core.images import read_mask
from rorem_data.dataset.coco import decode_segmentation, rle_counts_from_string, rle_problem


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_rle_string_parser_matches_pycocotools(h, w, seed):
    from pycocotools import mask as mask_utils

    m = np.random.default_rng(seed).random((h, w)) < 0.4
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    counts = rle_counts_from_string(rle["counts"].decode(), h * w + 1)
    assert sum(counts) == h * w and min(counts) >= 0
    seg = {"size": [h, w], "counts": rle["counts"].decode()}
    np.testing.assert_array_equal(decode_segmentation(seg, h, w), m)
    np.testing.assert_array_equal(decode_segmentation({"size": [h, w], "counts": counts}, h, w), m)


def test_large_rle_round_trip():
    from pycocotools import mask as mask_utils

    yy, xx = np.mgrid[:600, :800]
    m = ((yy - 300) ** 2 + (xx - 400) ** 2 < 200 ** 2) ^ ((xx // 37) % 2 == 0)
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    seg = {"size": [600, 800], "counts": rle["counts"].decode()}
    np.testing.assert_array_equal(decode_segmentation(seg, 600, 800), m)


@pytest.mark.parametrize("seg,needle", [
    ({"size": [4, 4], "counts": [3, -2, 15]}, "negative"),
    ({"size": [4, 4], "counts": [3, 2.5, 10.5]}, "not an integer"),
    ({"size": [4, 4], "counts": [3, True, 12]}, "not an integer"),
    ({"size": [4, 4], "counts": [3, 2, 3000000]}, "sum to"),
    ({"size": [4, 4], "counts": [1] * 40}, "counts for 16 pixels"),
    ({"size": [4, 4], "counts": "zz{{"}, "not an RLE character"),
    ({"size": [4, 4], "counts": "0P"}, "ends in the middle"),
    ({"size": [4, 4], "counts": "o" * 20}, "longer than 64 bits"),
    ({"size": [4, 4], "counts": 7}, "'counts' must be"),
    ({"size": [4, "4"], "counts": [16]}, "'size' must be"),
    ({"size": [8, 2], "counts": [16]}, "differs from the image"),
])
def test_bad_rle_is_refused_before_decoding(seg, needle):
    why, _counts = rle_problem(seg, 4, 4)
    assert why and needle in why, why
    with pytest.raises(ValueError, match=needle):
        decode_segmentation(seg, 4, 4)


@pytest.mark.parametrize("seg,needle", [
    ([[0, 0, float("nan"), 5, 8, 8]], "not a finite number"),
    ([[0, 0, float("inf"), 5, 8, 8]], "not a finite number"),
    ([[0, 0, 5, 5, 8]], "even count"),
    ([[0, 0, 5, 5]], "even count"),
    ([[0, 0, 10 ** 12, 5, 8, 8]], "outside"),
    ([[0, 0, 5, -40, 8, 8]], "outside"),
    ([[0, 0, "5", 5, 8, 8]], "not a finite number"),
    ([[0, 0, True, 5, 8, 8]], "not a finite number"),
    ([{"x": 1}], "not a list"),
    ([], "empty"),
    ("polygon", "neither a polygon list nor an RLE"),
])
def test_bad_polygons_never_reach_pycocotools(seg, needle):
    # pycocotools crashes the whole process on NaN coordinates; this must raise instead
    with pytest.raises(ValueError, match=needle):
        decode_segmentation(seg, 10, 10)


def _write(root, coco, images=("a.png",), size=(10, 10)):
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(root / "images" / name)
    path = root / "ann.json"
    path.write_text(json.dumps(coco))
    return str(path)


POLY = [[1, 1, 8, 1, 8, 8, 1, 8]]


def test_duplicate_annotation_ids_refuse_both(project, tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
            "annotations": [{"id": 7, "image_id": 1, "segmentation": POLY},
                            {"id": 7, "image_id": 1, "segmentation": [[2, 2, 6, 2, 6, 6]]},
                            {"id": 8, "image_id": 1, "segmentation": POLY}]}
    path = _write(tmp_path / "c", coco)
    with pytest.raises(ValidationError) as info:
        project.import_pool(path)
    items = [p.item for p in info.value.problems]
    assert items == ["ann.json annotation 7 (annotations[0])", "ann.json annotation 7 (annotations[1])"]
    assert all("used 2 times" in p.problem for p in info.value.problems)
    assert project.dataset.count() == 0
    res = project.import_pool(path, skip_invalid=True, report_path=str(tmp_path / "r.json"))
    assert (res.inserted, res.invalid, res.already_present) == (1, 2, 0)  # never "already present"
    assert project.dataset.values("import_ref") == [f"{path}#8"]


def test_every_bad_coco_entry_is_named_and_nothing_is_written(project, tmp_path):
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 10, "height": 10},
            {"id": [2], "file_name": "a.png", "width": 10, "height": 10},
            {"id": 3, "file_name": "a.png", "width": "10", "height": 10},
            {"id": 4, "file_name": "a.png", "width": 10 ** 9, "height": 10 ** 9},
            {"id": 5, "file_name": 17, "width": 10, "height": 10},
            {"id": 6, "file_name": "a.png", "width": 10, "height": 10},
            {"id": 6, "file_name": "a.png", "width": 10, "height": 10},
            {"id": 9, "file_name": "a.png", "width": 20, "height": 20},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "segmentation": POLY},                       # good
            {"id": [2], "image_id": 1, "segmentation": POLY},                     # list id
            {"id": 3, "image_id": [1], "segmentation": POLY},                     # list image_id
            {"id": 4, "image_id": 1, "segmentation": {"size": [10, 10], "counts": [20, -5, 85]}},
            {"id": 5, "image_id": 1, "segmentation": {"size": [10, 10], "counts": [20, 2.5, 77.5]}},
            {"id": 6, "image_id": 1, "segmentation": {"size": [10, 10], "counts": [20, 30]}},
            {"id": 7, "image_id": 1, "segmentation": [[1, 1, float("nan"), 4, 6, 6]]},
            {"id": 8, "image_id": 1, "segmentation": [[1, 1, 4, 4, 6]]},
            {"id": 9, "image_id": 4, "segmentation": POLY},                       # absurd size image
            {"id": 10, "image_id": 6, "segmentation": POLY},                      # duplicated image id
            {"id": 11, "image_id": 1, "segmentation": POLY, "iscrowd": "no"},
            {"id": 12, "image_id": 1, "segmentation": POLY, "category_id": {"a": 1}},
            {"id": 13, "image_id": 9, "segmentation": POLY},                      # header says 10x10
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = _write(tmp_path / "c", coco)
    with pytest.raises(ValidationError) as info:
        project.import_pool(path)
    by_item = {}
    for p in info.value.problems:
        by_item.setdefault(p.item, []).append(p.problem)
        assert p.fix
    expect = {
        "ann.json images[1]": "'id' must be an integer or a string",
        "ann.json images[2]": "width/height must be positive integers",
        "ann.json images[3]": "above the limit",
        "ann.json images[4]": "non-empty string",
        "ann.json images[5]": "image id 6 is used 2 times",
        "ann.json images[6]": "image id 6 is used 2 times",
        "ann.json annotations[1]": "'id' must be an integer or a string",
        "ann.json annotation 3": "'image_id' must be an integer or a string",
        "ann.json annotation 4": "negative",
        "ann.json annotation 5": "not an integer",
        "ann.json annotation 6": "sum to",
        "ann.json annotation 7": "not a finite number",
        "ann.json annotation 8": "even count",
        "ann.json annotation 9": "refused above",
        "ann.json annotation 10": "refused above",
        "ann.json annotation 11": "'iscrowd' must be 0 or 1",
        "ann.json annotation 12": "'category_id' must be",
        "ann.json annotation 13": "image is 10x10 but the JSON says 20x20",
    }
    for item, needle in expect.items():
        assert item in by_item, (item, sorted(by_item))
        assert any(needle in t for t in by_item[item]), (item, by_item[item])
    assert "ann.json annotation 1" not in by_item
    assert project.dataset.count() == 0
    assert not os.path.exists(project.media_path("masks"))


@pytest.mark.parametrize("content,needle", [
    ('{"images": {"id": 1}, "annotations": []}', "no 'images' and 'annotations' lists"),
    ("[" * 3000 + "]" * 3000, "nests deeper than"),
    ('{"images": [], "annotations": [], "categories": {"1": "a"}}', "'categories' must be a list"),
])
def test_coco_file_shape_errors(project, tmp_path, content, needle):
    (tmp_path / "images").mkdir()
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ValidationError, match=needle):
        project.import_pool(str(path))


def test_coco_with_bom_and_string_ids_imports(project, tmp_path):
    coco = {"images": [{"id": "img-a", "file_name": "a.png", "width": 10, "height": 10}],
            "annotations": [{"id": "ann-1", "image_id": "img-a", "category_id": "c",
                             "segmentation": {"size": [10, 10], "counts": [20, 30, 50]}}],
            "categories": [{"id": "c", "name": "thing"}]}
    root = tmp_path / "c"
    path = _write(root, coco)
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(b"\xef\xbb\xbf" + data)
    project.import_pool(path)
    m = read_mask(project.dataset.values("mask.mask_path")[0])
    expect = np.zeros(100, bool)
    expect[20:50] = True
    np.testing.assert_array_equal(m, expect.reshape(10, 10, order="F"))
    assert project.dataset.values("category") == ["thing"]
