"""The bulk write path leaves a dataset that FiftyOne itself reads like any other."""

import threading

import fiftyone as fo
from fiftyone import ViewField as F

from rorem_data.core import schema
from rorem_data.dataset import documents
from rorem_data.dataset import store

from helpers import add_candidates, judge_by_mode


def test_fiftyone_reads_every_field(project, seed_meta, pool_dir):
    project.import_seeds(seed_meta)
    project.import_pool(pool_dir)
    ids, modes = add_candidates(project, 1, ["clean", "residue"], seed=0)
    judge_by_mode(project, 1, ids, modes)
    # a fresh handle, as another process would see it
    ds = fo.load_dataset(project.dataset_name)
    schema_fields = ds.get_field_schema(flat=True)
    for f in list(schema.SCALAR_FIELDS) + ["mask", "decision", "decisions", "generator", "scores"]:
        assert f in schema_fields, f
    n = ds.count()
    for f in list(schema.SCALAR_FIELDS) + ["mask.mask_path", "metadata.width", "decision.status",
                                           "decisions.round", "generator", "created_at"]:
        assert len(ds.values(f)) == n
    for sample in ds.iter_samples():  # every document deserializes into a Sample
        assert isinstance(sample.mask, fo.Segmentation)
        assert sample.metadata.width > 0
    cand = ds.match(F("kind") == "candidate")
    assert cand.count() == 2
    accepted = ds.match((F("kind") == "candidate") & (F("decision.status") == "accepted")).first()
    assert accepted.decision.by == "human" and accepted.decisions[-1].reviewer == "tester"
    assert ds.match(F("mask_area") > 0).count() == n
    # FiftyOne's own writers still work beside ours
    s = fo.Sample(filepath=seed_meta.replace("meta.json", "source/000000.png"), kind="pool")
    ds.add_sample(s)
    assert ds.count() == n + 1
    assert ds.app_config.media_fields == ["filepath", "target_path", "preview_path"]
    assert ds.mask_targets["mask"] == {255: "object"}


def test_concurrent_inserts_never_duplicate(project):
    now = schema.utcnow()

    def docs():
        return [documents.sample_doc(key=f"k{i}", kind="pool", filepath=f"/x/{i}.png", width=4, height=4,
                                  mask_path="/x/m.png", mask_area=0.5, origin="t", now=now)
                for i in range(500)]

    ds = project.dataset
    threads = [threading.Thread(target=store.insert_documents, args=(ds, docs())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ds.count() == 500
    assert len(set(ds.values("key"))) == 500


def test_round_records_are_atomic_counters(project):
    for _ in range(3):
        store.update_round_record(project.dataset_name, 1, inc={"phases.human.decided": 2})
    recs = store.get_round_records(project.dataset_name)
    assert recs[0]["round"] == 1 and recs[0]["phases"]["human"]["decided"] == 6
