"""Import keys do not depend on where the data sits: the same data in two folders gives the same
keys, candidates and bytes; projects keyed by absolute paths re-import nothing twice; and two
sources that share an origin name and relative names are refused by name."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from rorem_data import ValidationError
from rorem_data.core import schema
from rorem_data.rounds.generate import generate
from rorem_data.testing import synthetic


@pytest.fixture
def projects(tmp_path):
    """A factory of fresh projects; every dataset made is deleted afterwards."""
    import fiftyone as fo

    import rorem_data
    from rorem_data.dataset import store

    made = []

    def make(name):
        p = rorem_data.init_project(str(tmp_path / f"proj-{name}"), name=f"keys-{name}")
        made.append(p)
        return p

    yield make
    for p in made:
        if fo.dataset_exists(p.dataset_name):
            fo.delete_dataset(p.dataset_name)
        store.delete_round_records(p.dataset_name)


def _docs(project, kind):
    """key -> stored document of every sample of ``kind``."""
    return {d["key"]: d for d in project.dataset._sample_collection.find({"kind": kind})}


def _write_data(root):
    """The same synthetic pool and seed set below ``root`` (folders ``pool`` and ``seeds``)."""
    synthetic.write_pool_folder(os.path.join(root, "pool"), 4, size=40, seed=11)
    return synthetic.write_seed_set(os.path.join(root, "seeds"), 5, size=40, seed=12)


def _old_pool_key(doc):
    """The key an import before the location-free scheme gave a pool-folder item: the image and
    mask paths as given (absolute; here no symlinks, so the stored real paths are those)."""
    return schema.make_key(schema.KIND_POOL, doc["filepath"], doc["import_ref"])


def _rekey(project, new_key):
    """Give every pool and seed sample the key ``new_key(doc)`` (a project made before)."""
    from pymongo import UpdateOne

    coll = project.dataset._sample_collection
    docs = list(coll.find({"kind": {"$in": [schema.KIND_POOL, schema.KIND_SEED]}}))
    coll.bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": {"key": new_key(d)}}) for d in docs])
    return {d["_id"] for d in docs}


def test_same_data_in_two_folders_gives_same_keys_candidates_and_bytes(projects, tmp_path):
    runs = []
    for where in ("first/place", "second/elsewhere/deeper"):
        root = str(tmp_path / where)
        meta = _write_data(root)
        project = projects(where.split("/")[0])
        n_pool = len(os.listdir(os.path.join(root, "pool", "masks")))
        assert project.import_pool(os.path.join(root, "pool"), workers=1).inserted == n_pool
        assert project.import_seeds(meta, workers=1).inserted == 5
        res = generate(project, 1, "classical:telea", candidates=2, progress=False)
        assert res.inserted == 2 * n_pool and not res.failed
        runs.append(project)
    a, b = runs
    for kind in (schema.KIND_POOL, schema.KIND_SEED):
        assert sorted(_docs(a, kind)) == sorted(_docs(b, kind))
    cand_a, cand_b = _docs(a, schema.KIND_CANDIDATE), _docs(b, schema.KIND_CANDIDATE)
    assert sorted(cand_a) == sorted(cand_b) and len(cand_a) == 2 * n_pool
    for key, doc in cand_a.items():
        assert doc["generator"]["seed"] == cand_b[key]["generator"]["seed"]
        with open(doc["target_path"], "rb") as fa, open(cand_b[key]["target_path"], "rb") as fb:
            assert fa.read() == fb.read(), key
    # the keys name the origin and the relative paths, and nothing of the temporary folders
    origins = {d["origin"] for d in _docs(a, schema.KIND_POOL).values()}
    assert origins == {"pool"}


def test_origin_is_part_of_the_key(projects, tmp_path):
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 2, size=40, seed=11)
    a, b = projects("a"), projects("b")
    a.import_pool(pool, workers=1)
    b.import_pool(pool, origin="openimages", workers=1)
    assert not set(_docs(a, schema.KIND_POOL)) & set(_docs(b, schema.KIND_POOL))
    # the same files under another origin are the same items: nothing is added twice
    again = a.import_pool(pool, origin="openimages", workers=1)
    assert again.inserted == 0 and again.already_present == len(_docs(a, schema.KIND_POOL))


def test_project_with_old_keys_reimports_nothing(projects, tmp_path):
    meta = _write_data(str(tmp_path / "data"))
    pool = str(tmp_path / "data" / "pool")
    coco = synthetic.write_coco(str(tmp_path / "coco"), 2, size=40, seed=13)
    project = projects("old")
    project.import_pool(pool, workers=1)
    project.import_pool(coco, workers=1)
    project.import_seeds(meta, workers=1)

    def old_key(d):
        if d["kind"] == schema.KIND_SEED:
            return schema.make_key(schema.KIND_SEED, d["filepath"], d["mask"]["mask_path"],
                                   d["target_path"])
        if d["import_ref"].startswith(coco):  # "<json>#<annotation id>"
            json_path, ann_id = d["import_ref"].rsplit("#", 1)
            return schema.make_key(schema.KIND_POOL, d["filepath"], json_path, f"ann:{ann_id}")
        return _old_pool_key(d)

    new_keys = set(_docs(project, schema.KIND_POOL)) | set(_docs(project, schema.KIND_SEED))
    ids = _rekey(project, old_key)
    old_keys = set(_docs(project, schema.KIND_POOL)) | set(_docs(project, schema.KIND_SEED))
    assert len(old_keys) == len(new_keys) and not old_keys & new_keys
    n = project.dataset._sample_collection.count_documents({})
    for res in (project.import_pool(pool, workers=1), project.import_pool(coco, workers=1),
                project.import_seeds(meta, workers=1)):
        assert res.inserted == 0 and res.invalid == 0 and res.already_present == res.read
    assert project.dataset._sample_collection.count_documents({}) == n
    assert {d["_id"] for d in project.dataset._sample_collection.find(
        {"kind": {"$ne": schema.KIND_CANDIDATE}})} == ids


def test_old_keys_and_copied_masks_are_recognised_after_the_check(projects, tmp_path):
    """Masks that are not canonical are stored as content-addressed copies, so the stored mask
    path is not the input's; through another path to the same folder even the ``import_ref``
    differs, and the item is recognised by the canonical mask its check produces."""
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 3, size=40, seed=11)
    for name in os.listdir(os.path.join(pool, "masks")):
        path = os.path.join(pool, "masks", name)
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        rgb.save(path)  # an RGB mask: imported as a canonical copy
    project = projects("copies")
    first = project.import_pool(pool, workers=1)
    stored = _docs(project, schema.KIND_POOL)
    assert all(project.media_dir in d["mask"]["mask_path"] for d in stored.values())
    _rekey(project, _old_pool_key)
    same = project.import_pool(pool, workers=1)
    assert same.inserted == 0 and same.already_present == first.inserted
    link = tmp_path / "link-to-pool"
    os.symlink(pool, link)
    through_link = project.import_pool(str(link), workers=1)
    assert through_link.inserted == 0 and through_link.already_present == first.inserted
    assert project.dataset._sample_collection.count_documents({}) == first.inserted


def test_filepath_lookup_uses_an_index(project, pool_dir):
    project.import_pool(pool_dir, workers=1)
    coll = project.dataset._sample_collection
    assert any(spec["key"] == [("filepath", 1)] for spec in coll.index_information().values())
    paths = project.dataset.values("filepath")
    plan = coll.find({"filepath": {"$in": paths}, "kind": schema.KIND_POOL}).explain()
    assert "filepath" in str(plan["queryPlanner"]["winningPlan"])


def test_two_folders_with_one_origin_are_refused_by_name(projects, tmp_path):
    a = synthetic.write_pool_folder(str(tmp_path / "a" / "pool"), 3, size=40, seed=11)
    b = synthetic.write_pool_folder(str(tmp_path / "b" / "pool"), 3, size=40, seed=99)
    project = projects("collide")
    n = project.import_pool(a, workers=1).inserted
    with pytest.raises(ValidationError) as info:
        project.import_pool(b, workers=1)
    problems = info.value.problems
    names_b = sorted(os.listdir(os.path.join(b, "masks")))
    shared = sorted(set(os.listdir(os.path.join(a, "masks"))) & set(names_b))
    assert shared and sorted(p.item for p in problems) == [f"masks/{m}" for m in shared]
    first = min(problems, key=lambda p: p.item)
    assert first.file == os.path.join(b, "images", shared[0].split("_")[0] + ".png")
    assert os.path.join(a, "masks", shared[0]) in first.problem  # the stored item it meets
    assert "share the origin name" in first.problem and "--origin pool-2" in first.fix
    assert project.dataset._sample_collection.count_documents({}) == n
    skipped = project.import_pool(b, workers=1, skip_invalid=True,
                                  report_path=str(tmp_path / "report.json"))
    assert skipped.inserted == len(names_b) - len(shared) and skipped.invalid == len(shared)
    assert "skipped" in skipped.summary()
    # under another origin the colliding items are new; the others are the same files
    other = project.import_pool(b, origin="pool-2", workers=1)
    assert other.inserted == len(shared) and other.already_present == len(names_b) - len(shared)
    # the folder itself again: already present, quietly
    again = project.import_pool(a, workers=1)
    assert again.inserted == 0 and again.already_present == n and not again.problems


def test_two_seed_sets_with_one_origin_are_refused_by_name(projects, tmp_path):
    a = synthetic.write_seed_set(str(tmp_path / "a" / "RORD"), 3, size=40, seed=1)
    b = synthetic.write_seed_set(str(tmp_path / "b" / "RORD"), 3, size=40, seed=2)
    project = projects("seeds")
    with pytest.raises(ValidationError, match="share the origin name") as info:
        project.import_seeds([a, b], workers=1)
    assert {p.file for p in info.value.problems} == {b}
    assert project.dataset._sample_collection.count_documents({}) == 0
    project.import_seeds(a, workers=1)
    with pytest.raises(ValidationError) as info:
        project.import_seeds(b, workers=1)
    p = info.value.problems[0]
    assert p.item == "meta.json entry 0" and f"{a}#0" in p.problem and "--origin RORD-2" in p.fix
    assert project.import_seeds(b, origin="RORD-b", workers=1).inserted == 3


def test_moved_copy_is_a_collision_not_a_silent_skip(projects, tmp_path):
    """The same relative names and origin under another folder: other files, so named."""
    src = synthetic.write_pool_folder(str(tmp_path / "x" / "pool"), 2, size=40, seed=11)
    project = projects("moved")
    project.import_pool(src, workers=1)
    copy = shutil.copytree(src, tmp_path / "y" / "pool")
    with pytest.raises(ValidationError, match="share the origin name"):
        project.import_pool(str(copy), workers=1)
    assert np.all([d["filepath"].startswith(src) for d in _docs(project, schema.KIND_POOL).values()])
