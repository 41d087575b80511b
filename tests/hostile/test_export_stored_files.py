"""Hostile changes after import, through the CLI: a stored file replaced by a symlink (or a
folder on its way), or gone. The export refuses, names the pair and the fix, copies nothing
from outside, and leaves no output folder."""

import json
import os
import shutil

import numpy as np
from PIL import Image

from helpers import file_bytes, run_cli


def _seeds(root, n=3, size=24, rgb_masks=False):
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        name = f"{i}.png"
        for sub in ("source", "GT"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(os.path.join(root, sub, name))
        m = np.zeros((size, size), np.uint8)
        m[2 + i : 12, 5:15] = 255
        os.makedirs(os.path.join(root, "mask"), exist_ok=True)
        Image.fromarray(np.dstack([m] * 3) if rgb_masks else m).save(os.path.join(root, "mask", name))
        entries.append({"source": f"source/{name}", "mask": f"mask/{name}", "GT": f"GT/{name}"})
    path = os.path.join(root, "meta.json")
    with open(path, "w") as fh:
        json.dump(entries, fh)
    return path


def _key_of(project, filepath):
    return dict(zip(project.dataset.values("filepath"), project.dataset.values("key")))[filepath]


def test_stored_file_replaced_by_a_symlink_is_refused(project, tmp_path, capsys):
    data = tmp_path / "data"
    meta = _seeds(str(data))
    assert run_cli(capsys, "-p", project.root, "import", "seeds", meta)[0] == 0
    target = str(data / "GT" / "1.png")
    key = _key_of(project, str(data / "source" / "1.png"))
    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((24, 24, 3), 7, np.uint8)).save(secret)
    os.remove(target)
    os.symlink(secret, target)
    out = tmp_path / "export"
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out))
    assert code == 1
    assert f"pair {key}" in err and target in err and "now a symlink to" in err
    assert "Fix:" in err and "nothing was written" in err
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if "export" in p] == []
    # even a link to a file inside the data folder is not what was imported
    os.remove(target)
    os.symlink(data / "GT" / "0.png", target)
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out))
    assert code == 1 and f"pair {key}" in err
    # restoring the file makes the export work, and the secret never travels
    os.remove(target)
    shutil.copy(data / "GT" / "0.png", target)
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out", str(out))
    assert code == 0, err
    assert secret.read_bytes() not in file_bytes(out)


def test_stored_folder_replaced_by_a_symlink_is_refused(project, tmp_path, capsys):
    data = tmp_path / "data"
    meta = _seeds(str(data))
    assert run_cli(capsys, "-p", project.root, "import", "seeds", meta)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(data / "source", elsewhere)
    shutil.rmtree(data / "source")
    os.symlink(elsewhere, data / "source")
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out",
                          str(tmp_path / "export"))
    assert code == 1
    assert err.count("its folder") == 3 and "became a symlink" in err
    assert not (tmp_path / "export").exists()


def test_stored_file_gone_is_refused_by_pair(project, tmp_path, capsys):
    data = tmp_path / "data"
    meta = _seeds(str(data))
    assert run_cli(capsys, "-p", project.root, "import", "seeds", meta)[0] == 0
    key = _key_of(project, str(data / "source" / "2.png"))
    os.remove(data / "mask" / "2.png")
    code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out",
                          str(tmp_path / "export"))
    assert code == 1 and f"pair {key}" in err and "mask file" in err
    assert "has since been moved or deleted" in err and "mark the pair rejected" in err
    assert not (tmp_path / "export").exists()


def test_a_symlinked_media_folder_is_fine(tmp_path, capsys):
    """Files the project wrote under its media folder may pass through a symlinked media
    folder (a project on another disk): that is not a changed file."""
    import fiftyone as fo

    import rorem_data
    from rorem_data.dataset import store

    real_media = tmp_path / "disk" / "media"
    real_media.mkdir(parents=True)
    os.symlink(real_media, tmp_path / "media-link")
    project = rorem_data.init_project(str(tmp_path / "proj"), name="media-link",
                                      media_dir=str(tmp_path / "media-link"))
    try:
        meta = _seeds(str(tmp_path / "data"), rgb_masks=True)   # masks are rewritten into media
        assert run_cli(capsys, "-p", project.root, "import", "seeds", meta)[0] == 0
        assert all(p.startswith(str(tmp_path / "media-link"))
                   for p in project.dataset.values("mask.mask_path"))
        code, _out, err = run_cli(capsys, "-p", project.root, "export", "--round", "0", "--out",
                              str(tmp_path / "export"))
        assert code == 0, err
    finally:
        fo.delete_dataset(project.dataset_name)
        store.delete_round_records(project.dataset_name)
