"""Label files are faithful and safe: export -> import is an identity, spreadsheets never see a
formula, and user-provided names show literally in the report and the Review panel."""

from __future__ import annotations

import csv
import json
import os

import pytest

from rorem_data import ConfigError, ValidationError
from rorem_data.dataset import ledger, store
from rorem_data.rounds.review import judgments, label_files
from rorem_data.rounds.review.queue import build_queue
from rorem_data.rounds.review.quality import reviewer_quality

from helpers import add_candidates

MODES = ["clean", "residue", "clean", "blur", "hallucination", "clean", "outside", "clean"]


def _queue(project):
    """Six queued candidates of round 1, three of them double-reviewed."""
    add_candidates(project, 1, MODES, seed=7)
    sel = build_queue(project, 1, 6, strategy="random", rng=3, double_share=0.5, previews=False)
    docs = {d["id"]: d for d in project.dataset._sample_collection.aggregate(
        [{"$match": {"queue_round": 1}}, {"$project": {"id": {"$toString": "$_id"}, "key": 1,
                                                       "review_quota": 1}}])}
    double = [s for s in sel.sample_ids if docs[s]["review_quota"] == 2]
    single = [s for s in sel.sample_ids if docs[s]["review_quota"] == 1]
    return double, single


def _judge(ds, double, single):
    """Two reviewers on the double-reviewed items (an agreement, a disagreement settled by an
    adjudicator, a withdrawn judgment), and changes of mind on the single ones."""
    d0, d1, d2 = double
    s0, s1, _s2 = single  # s2: nobody judges it
    judgments.apply_review(ds, d0, "accept", reviewer="ana")
    judgments.apply_review(ds, d0, "accept", reviewer="bo")
    judgments.apply_review(ds, d1, "accept", reviewer="ana")
    judgments.apply_review(ds, d1, "reject", reviewer="bo", reason="object_visible")
    judgments.apply_review(ds, d1, "reject", reviewer="chief", reason="object_visible", adjudicate=True)
    judgments.apply_review(ds, d2, "accept", reviewer="ana")
    judgments.clear_review(ds, d2, reviewer="ana")  # undone: not a judgment any more
    judgments.apply_review(ds, d2, "reject", reviewer="bo", reason="blurry_fill")
    judgments.apply_review(ds, s0, "accept", reviewer="ana")
    judgments.apply_review(ds, s1, "reject", reviewer="bo", reason="blurry_fill")
    judgments.apply_review(ds, s1, "reject", reviewer="ana", reason="object_visible")
    judgments.apply_review(ds, s1, "accept", reviewer="ana")  # ana changed her mind


def _state(project):
    """What a user sees of the round, by key: every review entry, the decision, and each
    reviewer's statistics."""
    items = {}
    for d in project.dataset._sample_collection.find({"queue_round": 1}):
        dec = d.get("decision") or {}
        items[d["key"]] = {
            "reviews": [(r["reviewer"], r["status"], r.get("reason"), bool(r.get("adjudication")))
                        for r in d.get("reviews") or []],
            "standing": sorted((r["reviewer"], r["status"], r.get("reason"), bool(r.get("adjudication")))
                               for r in label_files.standing_judgments(d.get("reviews"))),
            "status": d.get("status"), "decided_by": d.get("decided_by"),
            "decision_reviewer": dec.get("reviewer"), "decision_reason": dec.get("reason"),
            "needs_adjudication": bool(d.get("needs_adjudication")), "quota": d.get("review_quota")}
    return items, reviewer_quality(project)


def _rows(path):
    if path.endswith(".json"):
        return json.load(open(path, encoding="utf-8"))
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path, rows, columns):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def copy_project(tmp_path):
    """A second project with the same candidates (same keys), for 'a copy of the queue'."""
    import fiftyone as fo

    import rorem_data

    p = rorem_data.init_project(str(tmp_path / "copy"), name="copy")
    yield p
    if fo.dataset_exists(p.dataset_name):
        fo.delete_dataset(p.dataset_name)
    store.delete_round_records(p.dataset_name)


@pytest.mark.parametrize("ext", [".csv", ".json"])
def test_export_import_is_an_identity(project, copy_project, tmp_path, ext):
    double, single = _queue(project)
    _judge(project.dataset, double, single)
    path = str(tmp_path / f"labels{ext}")
    before, quality_before = _state(project)

    n = label_files.export_labels(project, path, round=1)
    rows = _rows(path)
    assert n == len(rows) == 10  # d0: 2, d1: 2 + adjudication, d2: 1, s0: 1, s1: 2, s2: 1 empty
    assert list(rows[0]) == label_files.LABEL_COLUMNS
    assert not any("+" in (r["reviewer"] or "") for r in rows)  # no combined "ana+bo" reviewer
    by_id = {}
    for r in rows:
        by_id.setdefault(r["sample_id"], []).append(r)
    d0, d1, d2 = double
    assert sorted((r["reviewer"], r["decision"]) for r in by_id[d0]) == [("ana", "accept"), ("bo", "accept")]
    adj = [r for r in by_id[d1] if r["adjudication"] in (True, "true")]
    assert [(r["reviewer"], r["decision"], r["reason"]) for r in adj] == [("chief", "reject", "object_visible")]
    assert [r["reviewer"] for r in by_id[d2]] == ["bo"]  # ana's withdrawn judgment is not exported
    assert [(r["reviewer"], r["decision"]) for r in by_id[single[1]]] == [("bo", "reject"), ("ana", "accept")]
    assert [(r["decision"], r["reviewer"]) for r in by_id[single[2]]] == [("", "")]
    assert all(r["at"].endswith("+00:00") for r in rows if r["decision"])

    # into the same project: nothing changes
    assert label_files.import_labels(project, path, round=1) == 9
    after, quality_after = _state(project)
    assert after == before
    assert quality_after == quality_before
    assert set(quality_after) - {"_excluded", "_min_accuracy"} == {"ana", "bo", "chief"}

    # into a copy of the queue with no judgments (matched by key): the same judgments per reviewer
    _queue(copy_project)
    fresh, _ = _state(copy_project)
    assert {k: v["quota"] for k, v in fresh.items()} == {k: v["quota"] for k, v in before.items()}
    for r in rows:
        r["sample_id"] = ""
    if ext == ".json":
        json.dump(rows, open(path, "w", encoding="utf-8"))
    else:
        _write_csv(path, rows, label_files.LABEL_COLUMNS)
    assert label_files.import_labels(copy_project, path, round=1) == 9
    copied, quality_copy = _state(copy_project)
    for key, item in before.items():
        for field in ("standing", "status", "decided_by", "decision_reviewer", "decision_reason",
                      "needs_adjudication"):
            assert copied[key][field] == item[field], (key, field)
    assert {w: q["judgments"] for w, q in quality_copy.items() if not w.startswith("_")} == {
        "ana": 4, "bo": 4, "chief": 1}


def test_csv_cells_never_start_a_formula_and_read_back_as_written(project, tmp_path):
    for value in ["=SUM(A1:A9)", "+1", "-1", "@cmd", "\tx", "\rx", "'x", "''=x", "'=x", "ana", "", "a=b"]:
        cell = label_files.csv_cell(value)
        assert cell[:1] not in judgments.FORMULA_START
        assert label_files.from_csv_cell(cell) == value
    # a file written by hand with a leading quote before ordinary text keeps it
    assert label_files.from_csv_cell("'ana") == "'ana"

    double, single = _queue(project)
    ds = project.dataset
    formulas = ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(1)"]
    store.set_field_values(ds, "key", single + double[:1], formulas)
    for sid in single + double[:1]:
        judgments.apply_review(ds, sid, "reject", reviewer="ana", reason="object_visible")
    path = str(tmp_path / "labels.csv")
    label_files.export_labels(project, path, round=1)
    with open(path, newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c[:1] in judgments.FORMULA_START]
    assert {"'" + f for f in formulas} <= set(cells)
    # reading the file back gives the keys as they are, and finds the items by key
    assert sorted(r.key for r in label_files.read_labels(path)) == sorted(formulas)
    before, _ = _state(project)
    rows = _rows(path)
    for r in rows:
        r["sample_id"] = ""
    _write_csv(path, rows, label_files.LABEL_COLUMNS)
    assert label_files.import_labels(project, path, round=1) == 4
    assert _state(project)[0] == before
    # JSON needs no neutralisation: the key is written as it is
    label_files.export_labels(project, str(tmp_path / "labels.json"), round=1)
    assert set(formulas) <= {r["key"] for r in _rows(str(tmp_path / "labels.json"))}


def test_reviewer_names_that_start_a_formula_are_refused(project, tmp_path):
    double, single = _queue(project)
    ds = project.dataset
    with pytest.raises(ConfigError) as info:
        judgments.apply_review(ds, single[0], "accept", reviewer="=cmd|' /C calc'!A0")
    text = str(info.value)
    assert "=cmd|' /C calc'!A0" in text and "formula" in text and "rename" in text
    with pytest.raises(ValidationError, match=r"row 1.*'\+ana'.*formula.*rename"):
        judgments.apply_reviews(ds, [(single[0], "accept", "+ana", None)], round=1)
    # a dash inside a name is fine
    assert judgments.apply_review(ds, single[1], "accept", reviewer="ana-maria")["final"]

    path = tmp_path / "labels.csv"
    _write_csv(str(path), [{"sample_id": single[0], "decision": "accept", "reviewer": "@ana"},
                           {"sample_id": single[2], "decision": "accept", "reviewer": "'=bo"},
                           {"sample_id": double[0], "decision": "accept", "reviewer": "carla"}],
               ["sample_id", "decision", "reviewer"])
    with pytest.raises(ValidationError) as info:
        label_files.import_labels(project, str(path), round=1)
    problems = {p.item: p for p in info.value.problems}
    assert set(problems) == {"labels.csv row 1", "labels.csv row 2"}
    assert "'@ana'" in problems["labels.csv row 1"].problem
    assert "'=bo'" in problems["labels.csv row 2"].problem  # the quote of a CSV cell is not a way round
    assert "formula" in problems["labels.csv row 2"].problem and "rename" in problems["labels.csv row 2"].fix
    assert not ds._sample_collection.count_documents({"reviews.reviewer": {"$in": ["@ana", "=bo", "carla"]}})


def test_user_names_show_literally_in_the_report(project, tmp_path):
    from rorem_data.rounds.report import write_report

    markdown_it = pytest.importorskip("markdown_it")
    ids, _modes = add_candidates(project, 1, ["clean", "residue", "clean"], seed=2,
                                 origin="**bold**|x")
    build_queue(project, 1, 3, strategy="random", rng=0, previews=False)
    name = "<b>x</b>|*y*"
    judgments.apply_review(project.dataset, ids[0], "accept", reviewer=name)
    index = write_report(project, str(tmp_path / "report"))
    md = open(os.path.join(os.path.dirname(index), "report.md"), encoding="utf-8").read()
    line = next(ln for ln in md.splitlines() if ln.startswith("- Reviewer "))
    assert line.startswith(r"- Reviewer &lt;b&gt;x&lt;/b&gt;\|\*y\*: 1 judgments")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<b>x</b>" not in rendered and "<em>y</em>" not in rendered and "<strong>bold" not in rendered
    assert "Reviewer &lt;b&gt;x&lt;/b&gt;|*y*: 1 judgments" in rendered
    assert "Licenses of **bold**|x" in rendered
    page = open(index, encoding="utf-8").read()
    assert "<b>x</b>" not in page and "Reviewer &lt;b&gt;x&lt;/b&gt;|*y*: 1 judgments" in page
    assert "Licenses of **bold**|x" in page


def test_markdown_text_shows_names_literally():
    """The helper the report and the Review panel write user-provided names with."""
    from rorem_data.core.display import markdown_text

    assert markdown_text("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert markdown_text("**bold**|x") == r"\*\*bold\*\*\|x"
    assert markdown_text("a\n# b") == r"a \# b"  # no heading of its own
    assert markdown_text("&lt;") == "&amp;lt;"


def test_older_label_files_still_import(project, tmp_path):
    double, single = _queue(project)
    ds = project.dataset
    d0, d1, _d2 = double
    judgments.apply_review(ds, d0, "accept", reviewer="ana")
    judgments.apply_review(ds, d0, "accept", reviewer="bo")
    quality = reviewer_quality(project)
    old_columns = ["sample_id", "key", "source", "mask", "result", "decision", "reviewer", "reason"]
    path = str(tmp_path / "old.csv")
    # what the older exporter wrote: the combined reviewer of an agreement, empty unjudged rows
    _write_csv(path, [{"sample_id": d0, "decision": "accept", "reviewer": "ana+bo"},
                      {"sample_id": d1, "decision": "reject", "reviewer": "ana+bo", "reason": "blurry_fill"},
                      {"sample_id": single[0], "decision": "reject", "reviewer": "vendor",
                       "reason": "object_visible"},
                      {"sample_id": single[1], "decision": "", "reviewer": ""}], old_columns)
    assert label_files.import_labels(project, path, round=1) == 3
    assert not ds._sample_collection.count_documents({"reviews.reviewer": "ana+bo"})
    after = reviewer_quality(project)
    assert after["ana"]["judgments"] == quality["ana"]["judgments"] + 1  # only d1 is new to ana
    assert after["vendor"]["judgments"] == 1
    d1_doc = ds._sample_collection.find_one({"_id": ledger._oid(d1)})
    assert d1_doc["status"] == "rejected" and d1_doc["decision"]["reviewer"] == "ana+bo"
    assert sorted(r["reviewer"] for r in d1_doc["reviews"]) == ["ana", "bo"]
    assert ds._sample_collection.find_one({"_id": ledger._oid(single[1])})["status"] == "pending"
    # an older JSON file with a reviewer per row, and one without (the default reviewer)
    old_json = tmp_path / "old.json"
    old_json.write_text(json.dumps([{"sample_id": single[1], "decision": "accept"}]))
    assert label_files.import_labels(project, str(old_json), round=1, default_reviewer="dora") == 1
    assert ds._sample_collection.find_one({"_id": ledger._oid(single[1])})["decision"]["reviewer"] == "dora"
