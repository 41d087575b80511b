"""Hostile inputs through the CLI: files and JSON that used to crash the import with a traceback.

Every case: exit code non-zero, one message that names the item, the problem and the fix, no
traceback, nothing written. A few run as real processes (a crash of the interpreter, e.g. a
segfault in a decoder, shows only there).
"""

import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_process(*argv):
    env = {**os.environ, "ROREM_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "rorem_data.cli", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "This is a bug" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, proc.stdout, proc.stderr


def _png_header_only(path, width, height):
    """A PNG that claims ``width x height`` (a decompression bomb: tiny file, huge image)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                 + chunk(b"IEND", b""))


def _seeds(root, n=2, size=24):
    rng = np.random.default_rng(0)
    m = np.zeros((size, size), np.uint8)
    m[4:12, 5:15] = 255
    entries = []
    for i in range(n):
        name = f"{i}.png"
        for sub in ("source", "GT"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(os.path.join(root, sub, name))
        os.makedirs(os.path.join(root, "mask"), exist_ok=True)
        Image.fromarray(m).save(os.path.join(root, "mask", name))
        entries.append({"source": f"source/{name}", "mask": f"mask/{name}", "GT": f"GT/{name}"})
    return entries


def _write_meta(root, entries, *, raw=None):
    path = os.path.join(root, "meta.json")
    with open(path, "wb") as fh:
        fh.write(raw if raw is not None else json.dumps(entries).encode())
    return path


def test_decompression_bomb_mask_is_refused_by_name(project, tmp_path, capsys):
    root = str(tmp_path / "d")
    entries = _seeds(root)
    _png_header_only(os.path.join(root, "mask", "1.png"), 20000, 20000)
    code, _out, err = run_process("-p", project.root, "import", "seeds", _write_meta(root, entries))
    assert code == 1
    assert "meta.json entry 1" in err and "mask/1.png" in err and "too large" in err
    assert "Fix:" in err and "nothing was written" in err
    assert project.dataset.count() == 0
    # the same file as a pool mask
    pool = tmp_path / "pool"
    os.makedirs(pool / "images")
    os.makedirs(pool / "masks")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(pool / "images" / "x.png")
    _png_header_only(str(pool / "masks" / "x_0.png"), 20000, 20000)
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(pool))
    assert code == 1 and "masks/x_0.png" in err and "too large" in err
    assert project.dataset.count() == 0


def test_decompression_bomb_source_is_refused(project, tmp_path, capsys):
    root = str(tmp_path / "d")
    entries = _seeds(root)
    _png_header_only(os.path.join(root, "source", "0.png"), 30000, 30000)
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "seeds", _write_meta(root, entries))
    assert code == 1 and "meta.json entry 0" in err and "too large" in err
    assert project.dataset.count() == 0


@pytest.mark.parametrize("which", ["source", "mask"])
def test_truncated_images_are_refused(project, tmp_path, capsys, which):
    root = str(tmp_path / "d")
    entries = _seeds(root)
    p = os.path.join(root, which, "1.png")
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "seeds", _write_meta(root, entries))
    assert code == 1 and "meta.json entry 1" in err and f"{which}/1.png" in err
    assert ("truncated" in err) or ("not a readable" in err)
    assert project.dataset.count() == 0


def test_deeply_nested_json_is_one_clear_error(project, tmp_path, capsys):
    root = tmp_path / "d"
    root.mkdir()
    meta = _write_meta(str(root), None, raw=b"[" * 200_000 + b"]" * 200_000)
    code, _out, err = run_process("-p", project.root, "import", "seeds", meta)
    assert code == 1 and "meta.json" in err and "nests deeper than" in err
    coco = root / "ann.json"
    coco.write_bytes(b'{"images": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(coco))
    assert code == 1 and "ann.json" in err and "nests deeper than" in err
    assert project.dataset.count() == 0


@pytest.mark.parametrize("meta,needle", [
    ({"source": "source/0.png", "mask": "mask/0.png", "GT": "GT/0.png"}, "top level is a dict, not a list"),
    ([{"source": 5, "mask": "mask/0.png", "GT": "GT/0.png"}], '"source": path must be a non-empty string'),
    ([{"source": ["a"], "mask": "mask/0.png", "GT": "GT/0.png"}], '"source": path must be a non-empty string'),
    ([{"source": "source/0.png", "mask": None, "GT": "GT/0.png"}], '"mask": path must be a non-empty string'),
    ([{"source": "source/0.png", "mask": "mask/0.png", "GT": "GT/0.png", "score": "yes"}], '"score" is'),
    ([{"source": "source/0.png", "mask": "mask/0.png", "GT": "GT/0.png", "score": 2}], '"score" is 2'),
    ([{"source": "source/0.png", "mask": "mask/0.png", "GT": "GT/0.png", "score": [1]}], '"score" is [1]'),
    ([{"source": "source/0.png", "mask": "mask/0.png", "GT": "GT/0.png", "score": True}], '"score" is True'),
    ([["source/0.png", "mask/0.png", "GT/0.png"]], "entry is a list, not an object"),
    ([{"source": "source/\ud800.png", "mask": "mask/0.png", "GT": "GT/0.png"}], "not valid UTF-8"),
])
def test_wrong_json_types_in_meta_json(project, tmp_path, capsys, meta, needle):
    root = str(tmp_path / "d")
    _seeds(root, n=1)
    path = _write_meta(root, None, raw=json.dumps(meta).encode())
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "seeds", path)
    assert code == 1 and needle in err and "Fix:" in err, err
    assert project.dataset.count() == 0


def test_utf8_bom_in_meta_json_is_accepted(project, tmp_path, capsys):
    root = str(tmp_path / "d")
    entries = _seeds(root)
    path = _write_meta(root, None, raw=b"\xef\xbb\xbf" + json.dumps(entries).encode())
    code, out, err = run_cli(capsys, "-p", project.root, "import", "seeds", path)
    assert code == 0 and "imported 2" in out, err
    assert project.dataset.count() == 2


def test_hostile_coco_never_crashes_the_process(project, tmp_path):
    """pycocotools segfaults on NaN polygon points and overruns on RLE counts; neither may
    reach it. As a real process: a crash would show as a signal exit code."""
    root = tmp_path / "c"
    os.makedirs(root / "images")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "images" / "a.png")
    poly = [[1, 1, 8, 1, 8, 8, 1, 8]]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10},
                       {"id": 2, "file_name": "a.png", "width": 10 ** 9, "height": 10 ** 9}],
            "annotations": [
                {"id": 1, "image_id": 1, "segmentation": [[1, 1, float("nan"), 4, 6, 6]]},
                {"id": 2, "image_id": 1, "segmentation": {"size": [10, 10], "counts": [20, 3000000, 50]}},
                {"id": 3, "image_id": 1, "segmentation": {"size": [10, 10], "counts": [20, -30, 50]}},
                {"id": 4, "image_id": 1, "segmentation": poly},
                {"id": 4, "image_id": 1, "segmentation": poly},
                {"id": [5], "image_id": 1, "segmentation": poly},
                {"id": 6, "image_id": "1", "segmentation": poly},
                {"id": 7, "image_id": 2, "segmentation": poly},
            ]}
    (root / "ann.json").write_text(json.dumps(coco))
    code, _out, err = run_process("-p", project.root, "import", "pool", str(root / "ann.json"))
    assert code == 1, err
    for item in ("annotation 1", "annotation 2", "annotation 3", "annotation 4 (annotations[3])",
                 "annotation 4 (annotations[4])", "annotations[5]", "annotation 6", "annotation 7"):
        assert f"ann.json {item}" in err, item
    assert "not a finite number" in err and "sum to" in err and "negative" in err
    assert "above the limit" in err
    assert project.dataset.count() == 0
