"""Hostile inputs through the CLI: symlinks that lead out of an import's folder.

What a user relies on: a file outside the folder they imported is never imported and never
copied into an export; a link that stays inside the folder keeps working; the refusal names the
entry, exits non-zero, and prints no traceback.
"""

import json
import os

import numpy as np
from PIL import Image

from helpers import file_bytes, run_cli


def _img(path, seed, size=24):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def _mask(path, size=24):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    m = np.zeros((size, size), np.uint8)
    m[4:12, 5:15] = 255
    Image.fromarray(m).save(path)


def _meta(root, names):
    entries = [{"source": f"source/{n}", "mask": f"mask/{n}", "GT": f"GT/{n}"} for n in names]
    path = os.path.join(root, "meta.json")
    with open(path, "w") as fh:
        json.dump(entries, fh)
    return path


def test_seed_source_folder_linking_outside_is_refused_and_never_exported(project, tmp_path, capsys):
    outside = tmp_path / "outside"
    _img(str(outside / "a.png"), seed=99)
    secret = (outside / "a.png").read_bytes()
    data = tmp_path / "data"
    for n, s in (("a.png", 1), ("b.png", 2)):
        _mask(str(data / "mask" / n))
        _img(str(data / "GT" / n), seed=s + 10)
    os.symlink(outside, data / "source")          # source/ -> a folder outside data/
    meta = _meta(str(data), ["a.png"])
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "seeds", meta)
    assert code == 1
    assert "meta.json entry 0" in err and "leads outside" in err and "nothing was written" in err
    assert project.dataset.count() == 0
    # with --skip-invalid the good entries go in, the linked one does not, and the export
    # never holds the outside file's bytes
    os.makedirs(data / "real")
    _img(str(data / "real" / "b.png"), seed=2)
    entries = [{"source": "source/a.png", "mask": "mask/a.png", "GT": "GT/a.png"},
               {"source": "real/b.png", "mask": "mask/b.png", "GT": "GT/b.png"}]
    (data / "meta.json").write_text(json.dumps(entries))
    code, out, err = run_cli(capsys, "-p", project.root, "import", "seeds", meta, "--skip-invalid",
                         "--report", str(tmp_path / "report.json"))
    assert code == 0 and "imported 1" in out
    assert project.dataset.count() == 1
    assert json.load(open(tmp_path / "report.json"))[0]["item"] == "meta.json entry 0"
    code, _out, _err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out",
                           str(tmp_path / "export"))
    assert code == 0
    assert secret not in file_bytes(tmp_path / "export")
    assert len(json.load(open(tmp_path / "export" / "meta.json"))) == 1


def test_seed_file_linking_outside_is_refused(project, tmp_path, capsys):
    data = tmp_path / "data"
    _img(str(data / "source" / "a.png"), seed=1)
    _mask(str(data / "mask" / "a.png"))
    _img(str(tmp_path / "private.png"), seed=7)
    os.makedirs(data / "GT")
    os.symlink(tmp_path / "private.png", data / "GT" / "a.png")
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "seeds", _meta(str(data), ["a.png"]))
    assert code == 1
    assert "meta.json entry 0" in err and "symlink to" in err and "private.png" in err
    assert project.dataset.count() == 0


def test_links_that_stay_inside_keep_working_and_store_real_paths(project, tmp_path, capsys):
    data = tmp_path / "data"
    _img(str(data / "store" / "src" / "a.png"), seed=1)
    _img(str(data / "store" / "gt" / "a.png"), seed=2)
    _mask(str(data / "mask" / "a.png"))
    os.symlink("store/src", data / "source")                      # folder link, inside
    os.makedirs(data / "GT")
    os.symlink("../store/gt/a.png", data / "GT" / "a.png")        # file link, inside
    code, out, err = run_cli(capsys, "-p", project.root, "import", "seeds", _meta(str(data), ["a.png"]))
    assert code == 0, err
    ds = project.dataset
    assert ds.values("filepath") == [str(data / "store" / "src" / "a.png")]
    assert ds.values("target_path") == [str(data / "store" / "gt" / "a.png")]
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out",
                          str(tmp_path / "e"))
    assert code == 0, err
    assert (data / "store" / "gt" / "a.png").read_bytes() in file_bytes(tmp_path / "e")


def _pool(root, stems=("a", "b")):
    for i, s in enumerate(stems):
        _img(os.path.join(root, "images", f"{s}.png"), seed=i)
        _mask(os.path.join(root, "masks", f"{s}_0.png"))


def test_pool_images_folder_linking_outside_is_refused(project, tmp_path, capsys):
    _pool(str(tmp_path / "elsewhere"))
    root = tmp_path / "pool"
    os.makedirs(root)
    os.symlink(tmp_path / "elsewhere" / "images", root / "images")
    os.symlink(tmp_path / "elsewhere" / "masks", root / "masks")
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(root))
    assert code == 1 and "images/" in err and "outside" in err
    assert project.dataset.count() == 0


def test_pool_mask_file_linking_outside_is_refused_by_name(project, tmp_path, capsys):
    root = tmp_path / "pool"
    _pool(str(root))
    _mask(str(tmp_path / "private" / "m.png"))
    os.symlink(tmp_path / "private" / "m.png", root / "masks" / "a_1.png")
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(root))
    assert code == 1 and "masks/a_1.png" in err and "symlink to" in err
    assert project.dataset.count() == 0
    code, out, _err = run_cli(capsys, "-p", project.root, "import", "pool", str(root), "--skip-invalid",
                          "--report", str(tmp_path / "r.json"))
    assert code == 0 and project.dataset.count() == 2
    assert str(tmp_path / "private") not in " ".join(project.dataset.values("mask.mask_path"))


def test_pool_linked_folder_inside_and_a_link_loop(project, tmp_path, capsys):
    root = tmp_path / "pool"
    _pool(str(root))
    _img(str(root / "more" / "c.png"), seed=5)
    os.symlink("../more", root / "images" / "extra")          # inside the pool folder: followed
    os.symlink(".", root / "images" / "loop")                 # a loop: listed once, no hang
    _mask(str(root / "masks" / "extra" / "c_0.png"))
    code, out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(root))
    assert code == 0, err
    assert "imported 3" in out
    assert str(root / "more" / "c.png") in project.dataset.values("filepath")


def test_coco_image_folder_link_outside_is_refused(project, tmp_path, capsys):
    root = tmp_path / "coco"
    _img(str(root / "images" / "a.png"), seed=1, size=10)
    _img(str(tmp_path / "outside" / "b.png"), seed=2, size=10)
    os.symlink(tmp_path / "outside", root / "images" / "sub")
    os.symlink(tmp_path / "outside" / "b.png", root / "images" / "c.png")
    poly = [[1, 1, 8, 1, 8, 8, 1, 8]]
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10},
                       {"id": 2, "file_name": "sub/b.png", "width": 10, "height": 10},
                       {"id": 3, "file_name": "c.png", "width": 10, "height": 10}],
            "annotations": [{"id": i, "image_id": i, "segmentation": poly} for i in (1, 2, 3)]}
    (root / "ann.json").write_text(json.dumps(coco))
    code, _out, err = run_cli(capsys, "-p", project.root, "import", "pool", str(root / "ann.json"))
    assert code == 1
    assert "ann.json images[1]" in err and "leads outside" in err
    assert "ann.json annotation 3" in err and "symlink to" in err
    assert "ann.json annotation 1 " not in err
    assert project.dataset.count() == 0
