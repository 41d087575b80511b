"""Review queues, human judgments, two reviewers, adjudication and label files."""

import json
import threading

import pytest
from PIL import Image

from rorem_data import ConfigError
from rorem_data import ValidationError
from rorem_data.dataset.queues import adjudication_view_name, queue_view_name
from rorem_data.rounds import review
from rorem_data.dataset import store
from rorem_data.rounds.review.queue import build_queue

from helpers import add_candidates

def fresh(ds, sid):
    """The sample as stored now (FiftyOne caches Sample objects in memory)."""
    s = ds[sid]
    s.reload()
    return s


MODES = ["clean", "residue", "clean", "blur", "hallucination", "clean", "outside", "clean"]


@pytest.fixture
def queued(project):
    ids, modes = add_candidates(project, 1, MODES, seed=7)
    sel = build_queue(project, 1, 6, strategy="random", rng=3, double_share=0.5)
    return project, ids, modes, sel


def test_select_writes_saved_view_round_record_and_previews(queued):
    project, ids, modes, sel = queued
    ds = project.dataset
    assert len(sel.sample_ids) == 6 and len(set(sel.sample_ids)) == 6 and sel.double_reviewed == 3
    view = ds.load_saved_view(queue_view_name(1))
    assert view.values("id") == sel.sample_ids  # queue order = selection order
    assert "mask" not in view.get_field_schema()  # the preview outlines the mask instead
    rec = store.get_round_records(project.dataset_name)[0]
    assert rec["selections"][0]["sample_ids"] == sel.sample_ids
    assert rec["selections"][0]["strategy"] == "random" and rec["selections"][0]["seed"] == 3
    for p in view.values("preview_path"):
        im = Image.open(p)
        assert im.size[0] > 3 * im.size[1]  # four panels side by side
    # same seed, same queue (on a fresh project state the selection is deterministic)
    again = build_queue(project, 1, 2, strategy="random", rng=3)
    assert not set(again.sample_ids) & set(sel.sample_ids)
    assert ds.load_saved_view(queue_view_name(1)).count() == 8
    with pytest.raises(ConfigError, match="budget"):
        build_queue(project, 1, 1, strategy="random")


def test_single_review_decides_and_records_reviewer(queued):
    project, ids, modes, sel = queued
    ds = project.dataset
    single = [s for s in sel.sample_ids if fresh(ds, s).review_quota == 1]
    r = review.apply_review(ds, single[0], "accept", reviewer="ana")
    assert r["final"] and r["status"] == "accepted"
    review.apply_review(ds, single[1], "reject", reviewer="ana", reason="blurry_fill")
    s = fresh(ds, single[1])
    assert s.status == "rejected" and s.decision.reason == "blurry_fill"
    assert s.decision.reviewer == "ana" and s.decided_by == "human" and s.decided_round == 1
    assert s.reviews[-1].reviewer == "ana"
    # changing one's mind: the last word counts, the history keeps both
    review.apply_review(ds, single[1], "accept", reviewer="ana")
    s = fresh(ds, single[1])
    assert s.status == "accepted" and [d.status for d in s.decisions] == ["rejected", "accepted"]
    review.clear_review(ds, single[1], reviewer="ana")
    assert fresh(ds, single[1]).status == "pending"


def test_two_reviewers_agree_disagree_and_adjudication(queued):
    project, ids, modes, sel = queued
    ds = project.dataset
    double = [s for s in sel.sample_ids if fresh(ds, s).review_quota == 2]
    a, b = double[0], double[1]
    assert review.apply_review(ds, a, "accept", reviewer="ana")["status"] == "pending"
    assert review.apply_review(ds, a, "accept", reviewer="bo")["status"] == "accepted"
    assert fresh(ds, a).decision.reviewer == "ana+bo"
    review.apply_review(ds, b, "accept", reviewer="ana")
    r = review.apply_review(ds, b, "reject", reviewer="bo", reason="object_visible")
    assert r["needs_adjudication"] and fresh(ds, b).status == "pending"
    adj = ds.load_saved_view(adjudication_view_name(1))
    assert adj.values("id") == [b]
    r = review.apply_review(ds, b, "reject", reviewer="chief", reason="object_visible", adjudicate=True)
    assert r["final"] and fresh(ds, b).status == "rejected" and not fresh(ds, b).needs_adjudication
    assert ds.load_saved_view(adjudication_view_name(1)).count() == 0
    ag = review.reviewer_agreement(project, 1)
    assert ag["items"] == 2 and ag["agree"] == 1 and ag["percent_agreement"] == 0.5
    assert "cohen_kappa" in ag and 0 <= ag["percent_agreement_ci"][0] <= 0.5


def test_concurrent_reviewers_lose_nothing(queued):
    project, ids, modes, sel = queued
    ds = project.dataset
    double = [s for s in sel.sample_ids if fresh(ds, s).review_quota == 2]
    barrier = threading.Barrier(2)

    def judge(name):
        barrier.wait()
        for sid in double:
            review.apply_review(ds, sid, "reject", reviewer=name, reason="object_visible")

    ts = [threading.Thread(target=judge, args=(n,)) for n in ("ana", "bo")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for sid in double:
        s = fresh(ds, sid)
        assert sorted(r.reviewer for r in s.reviews) == ["ana", "bo"]
        assert s.status == "rejected" and s.decision.reviewer == "ana+bo"


def test_bad_review_input(queued, project):
    _, ids, modes, sel = queued
    ds = project.dataset
    not_queued = [i for i in ids if i not in sel.sample_ids][0]
    with pytest.raises(ConfigError, match="not a candidate in a review queue"):
        review.apply_review(ds, not_queued, "accept", reviewer="ana")
    with pytest.raises(ConfigError, match="failure reason 'ugly' is unknown"):
        review.apply_review(ds, sel.sample_ids[0], "reject", reviewer="ana", reason="ugly")
    with pytest.raises(ConfigError, match="not one of accept, reject"):
        review.apply_review(ds, sel.sample_ids[0], "maybe", reviewer="ana")
    with pytest.raises(ConfigError, match="only goes with a rejection"):
        review.apply_review(ds, sel.sample_ids[0], "accept", reviewer="ana", reason="blurry_fill")
    with pytest.raises(ConfigError, match="queued for round 1, not round 2"):
        review.apply_review(ds, sel.sample_ids[0], "accept", reviewer="ana", round=2)
    assert ds[sel.sample_ids[0]].reviews in (None, [])


def test_labels_export_import_roundtrip(queued, tmp_path):
    project, ids, modes, sel = queued
    ds = project.dataset
    path = str(tmp_path / "labels.csv")
    assert review.export_labels(project, path, round=1) == 6
    import csv

    rows = list(csv.DictReader(open(path)))
    mode_of = dict(zip(ids, modes))
    for r in rows:
        r["decision"] = "accept" if mode_of[r["sample_id"]] == "clean" else "reject"
        r["reason"] = "" if r["decision"] == "accept" else "object_visible"
        r["reviewer"] = "vendor"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert review.import_labels(project, path, round=1) == 6
    for r in rows:
        assert fresh(ds, r["sample_id"]).reviews[-1].reviewer == "vendor"
    single = [r for r in rows if fresh(ds, r["sample_id"]).review_quota == 1]
    assert all(fresh(ds, r["sample_id"]).status == ("accepted" if r["decision"] == "accept" else "rejected")
               for r in single)


def test_labels_file_with_unknown_ids_applies_nothing(queued, tmp_path):
    project, ids, modes, sel = queued
    ds = project.dataset
    bad = [{"sample_id": sel.sample_ids[0], "decision": "accept", "reviewer": "v"},
           {"sample_id": "0123456789abcdef01234567", "decision": "reject", "reviewer": "v"},
           {"key": "nope", "decision": "reject", "reviewer": "v"},
           {"sample_id": sel.sample_ids[1], "decision": "meh", "reviewer": "v"}]
    p = tmp_path / "l.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValidationError) as info:
        review.import_labels(project, str(p), round=1)
    assert "meh" in str(info.value)
    bad[3]["decision"] = "reject"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValidationError) as info:
        review.import_labels(project, str(p), round=1)
    text = str(info.value)
    assert "not in the round-1 queue" in text and "key 'nope'" in text
    assert all(not (fresh(ds, s).reviews or []) for s in sel.sample_ids)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(ValidationError, match="not valid"):
        review.import_labels(project, str(tmp_path / "broken.json"), round=1)


def test_annotation_backend_labels_apply_as_reviews(queued):
    """Labels as an annotation backend (CVAT, Label Studio) returns them, applied in one go."""
    import fiftyone as fo

    from rorem_data.rounds import annotation

    project, ids, modes, sel = queued
    ds = project.dataset
    assert annotation.label_classes()[:2] == ["accept", "reject"]
    # what `load_annotations` leaves behind: one Classification per judged sample
    view = ds.select(sel.sample_ids[:3], ordered=True)
    view.set_values(annotation.LABEL_FIELD, [fo.Classification(label="accept"),
                                             fo.Classification(label="reject: blurry_fill"), None])
    n = annotation.apply_annotations(project, 1, reviewer="cvat-team")
    assert n == 2
    first, second = fresh(ds, sel.sample_ids[0]), fresh(ds, sel.sample_ids[1])
    assert first.reviews[-1].reviewer == "cvat-team" and first.reviews[-1].status == "accepted"
    assert second.reviews[-1].reason == "blurry_fill"
    ds.select(sel.sample_ids[2]).set_values(annotation.LABEL_FIELD, [fo.Classification(label="meh")])
    with pytest.raises(ConfigError, match="is not one of"):
        annotation.apply_annotations(project, 1, reviewer="cvat-team")


def test_stratified_queue_over_mask_area(project):
    """``select --strategy stratified --strata area``: every area quartile is represented."""
    ids, _modes = add_candidates(project, 1, ["clean", "residue"] * 8, seed=21)
    sel = build_queue(project, 1, 8, strategy="stratified", strata=["area"], rng=0, previews=False)
    assert len(sel.sample_ids) == 8 and len(set(sel.sample_ids)) == 8
