"""run_round as one sound unit: run twice, change each parameter, redo, empty pools, new pool
items, gaps, Ctrl-C in review, a path for the project, typed results."""

from __future__ import annotations

import dataclasses

import pytest

import rorem_data
from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, PlanChanged, RoundInterrupted
from rorem_data.dataset import store
from rorem_data.testing import synthetic
from rorem_data.testing.simulate import SimulatedReviewer


@pytest.fixture
def filled(project, tmp_path):
    """A project with 10 seed pairs and 40 pool images (two masks each: 80 pool items)."""
    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 10, size=40, seed=0)
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 40, size=40, seed=1)
    rorem_data.import_seeds(project, [meta], progress=False)
    rorem_data.import_pool(project, pool, origin="pool", progress=False)
    return project


BASE = dict(remover="classical:telea", budget=24, target_precision=0.8, confidence=0.8, audit=0.2,
            gold_rate=0.1, progress=False)


def run(project, round=1, **kw):
    args = {**BASE, "reviewer": SimulatedReviewer("sim", noise=0.0), **kw}
    return rorem_data.run_round(project, round, **args)


def state(project) -> dict:
    """Everything a rerun could change: samples (kind, status, decider, queue), round records."""
    ds = project.dataset
    samples = sorted(zip(ds.values("key"), ds.values("status"), ds.values("decided_by"),
                         ds.values("queue_round"), ds.values("queue_purpose"),
                         [len(r or []) for r in ds.values("reviews")],
                         [len(d or []) for d in ds.values("decisions")]), key=lambda t: t[0])
    recs = store.get_round_records(project.dataset_name)
    for r in recs:
        r.pop("updated_at", None)
        (r.get("driver") or {}).pop("result", None)
        for step in ((r.get("driver") or {}).get("steps") or {}).values():
            step.pop("at", None)
            step.pop("seconds", None)
    return {"samples": samples, "selections": [[s.get("id") for s in r.get("selections") or []]
                                               for r in recs]}


def test_a_finished_round_run_again_does_nothing_twice(filled):
    first = run(filled)
    assert first.state == "finished"
    assert first.version and first.success_rate is not None
    before = state(filled)
    again = run(filled)
    assert state(filled) == before
    assert all(v.startswith("done before") for k, v in again.steps.items()
               if k not in ("audit", "estimates"))
    assert again.success_rate == first.success_rate


# (parameter, changed value, the finished step that used it)
CHANGES = [
    ("remover", "classical:ns", "generate"),
    ("candidates", 2, "generate"),
    ("pool_filter", {"origin": "other"}, "generate"),
    ("featurizer", "clip", "featurize"),
    ("budget", 30, "queue"),
    ("strategy", "uncertainty", "queue"),
    ("floor", 0.2, "queue"),
    ("rng", 7, "seed_version"),
    ("double_share", 0.5, "queue"),
    ("gold_rate", 0.2, "gold"),
    ("spec", "stats-forest", "seed_version"),
    ("holdout", 0.5, "seed_version"),
    ("seed_pairs", 100, "seed_version"),
    ("target_precision", 0.9, "auto_label"),
    ("confidence", 0.9, "auto_label"),
    ("audit", 0.5, "auto_label"),
]


@pytest.mark.slow
def test_a_changed_parameter_is_refused_by_name_before_anything_is_written(filled):
    run(filled)
    before = state(filled)
    for name, value, step in CHANGES:
        if name == "spec" and value not in rorem_data.list_discriminators():
            continue
        with pytest.raises(PlanChanged) as err:
            run(filled, **{name: value})
        msg = str(err.value)
        assert err.value.parameter == name and err.value.step == step, (name, msg)
        assert f"{name}=" in msg and "round 2" in msg and f"redo={step!r}" in msg, msg
        assert state(filled) == before, name
    # what does not change a result is never compared
    run(filled, batch_size=16, port=5999, reviewer=SimulatedReviewer("someone-else"))


def test_redo_from_auto_label_withdraws_the_automatic_decisions_first(filled):
    run(filled)
    auto_before = list(filled.dataset.match({"decided_by": schema.BY_DISCRIMINATOR}).values("key"))
    res = run(filled, redo="auto_label", target_precision=0.6, confidence=0.6)
    assert res.plan.target_precision == 0.6
    assert rorem_data.load_round(filled, 1).plan.target_precision == 0.6
    # every automatic decision made before was withdrawn through the ledger (a pending marker),
    # then made again under the new target: the history says so
    for d in filled.dataset.match({"key": {"$in": auto_before}}).values("decisions"):
        kinds = [(x["by"], x["status"]) for x in d]
        assert (schema.BY_DISCRIMINATOR, schema.PENDING) in kinds
    # the same redo call again is an ordinary rerun: nothing changes
    before = state(filled)
    run(filled, target_precision=0.6, confidence=0.6)
    assert state(filled) == before


def test_redo_from_the_queue_draws_one_new_sample_and_keeps_the_judgments(filled):
    run(filled)
    judged = {k for k, by in zip(filled.dataset.values("key"), filled.dataset.values("decided_by"))
              if by == schema.BY_HUMAN}
    run(filled, redo="queue", budget=30)
    rec = store.round_record(filled.dataset_name, 1)
    live = [s for s in rec["selections"] if s.get("design") == "poisson" and s.get("status") != "withdrawn"]
    assert len(live) == 1 and live[0]["budget"] == 30.0
    still = {k for k, by in zip(filled.dataset.values("key"), filled.dataset.values("decided_by"))
             if by == schema.BY_HUMAN}
    assert judged <= still
    assert live[0]["known_at_draw"] >= len([k for k in judged if k.startswith("c")]) - 3  # gold aside


def test_redo_generate_on_a_round_with_candidates_is_refused(filled):
    run(filled)
    with pytest.raises(ConfigError, match="round 2"):
        run(filled, redo="generate", remover="classical:ns")


def test_a_round_that_made_no_candidate_is_not_done_and_pool_items_added_later_count(filled, tmp_path):
    with pytest.raises(ConfigError, match="no candidates"):
        run(filled, pool_filter={"origin": "later"}, budget=8)
    rec = store.round_record(filled.dataset_name, 1)
    assert "generate" not in ((rec.get("driver") or {}).get("steps") or {})
    pool = synthetic.write_pool_folder(str(tmp_path / "later"), 12, size=40, seed=5)
    rorem_data.import_pool(filled, pool, origin="later", progress=False)
    res = run(filled, pool_filter={"origin": "later"}, budget=8)
    assert res.state == "finished"
    assert len(rorem_data.candidates(filled, 1)) == len(filled.dataset.match(
        {"kind": "pool", "origin": "later"}))


def test_pool_items_imported_after_generation_are_named(filled, tmp_path):
    both = {"origin": {"$in": ["pool", "more"]}}
    first = run(filled, pool_filter=both)
    assert not first.notes
    extra = synthetic.write_pool_folder(str(tmp_path / "more"), 3, size=40, seed=9)
    rorem_data.import_pool(filled, extra, origin="more", progress=False)  # matches the filter
    again = run(filled, pool_filter=both)
    assert len(again.notes) == 1 and "imported after its generate step" in again.notes[0]
    assert "next round" in again.notes[0]


def test_a_gap_needs_allow_gap(filled):
    with pytest.raises(ConfigError, match="does not follow the project's last round"):
        run(filled, round=3)


def test_bad_parameters_are_refused_before_any_work(filled):
    for kw, word in [({"budget": 0}, "budget"), ({"strategy": "nope"}, "strategy"),
                     ({"target_precision": 1.5}, "target_precision"), ({"spec": "nope"}, "nope"),
                     ({"featurizer": "nope"}, "featurizer"), ({"reviewer": 3}, "reviewer"),
                     ({"reviewer": "missing.csv"}, "does not exist"), ({"floor": 0}, "floor"),
                     ({"remover": "classical:nope"}, "method")]:
        with pytest.raises(ConfigError, match=word):
            run(filled, **kw)
    assert len(rorem_data.candidates(filled)) == 0
    assert store.round_record(filled.dataset_name, 1) == {}
    with pytest.raises(ConfigError, match="project must be a Project"):
        rorem_data.run_round(42, 1, remover="classical", budget=3)


def test_ctrl_c_in_review_keeps_the_judgments_and_the_same_call_resumes(filled):
    asked = []

    def person(item):
        if len(asked) == 15:
            raise KeyboardInterrupt
        asked.append(item["sample_id"])
        return "accept" if len(asked) % 3 else ("reject", "object_visible")

    with pytest.raises(RoundInterrupted) as err:
        run(filled, reviewer=person)
    msg = str(err.value)
    assert msg.startswith("round 1 stopped in review (15 of ") and "judged, stored" in msg
    assert msg.endswith("run the same call again to resume")
    assert isinstance(err.value, KeyboardInterrupt)
    humans = filled.dataset.match({"decided_by": schema.BY_HUMAN}).count()
    assert humans == 15
    first = list(asked)
    asked.clear()

    def patient(item):
        asked.append(item["sample_id"])
        return "accept"

    res = run(filled, reviewer=patient)
    assert res.state == "finished"
    assert not set(first) & set(asked)  # nobody was asked twice


def test_the_project_may_be_a_path_and_results_read_well(filled):
    res = rorem_data.run_round(filled.root, 1, **{**BASE, "reviewer": SimulatedReviewer("sim")})
    text = repr(res)
    assert text.startswith("RoundResult(round 1, finished") and len(text) < 300
    html = res._repr_html_()
    assert "<table" in html and "success rate" in html
    d = res.to_dict()
    assert d["plan"]["budget"] == 24 and d["state"] == "finished"
    import json

    json.dumps(d)
    loaded = rorem_data.load_round(filled.root, 1)
    assert loaded.plan == dataclasses.replace(loaded.plan)
    assert loaded.plan.budget == 24 and loaded.plan.remover == "classical:telea"
    assert loaded.state == "finished" and loaded.success_rate == res.success_rate
    table = rorem_data.status(filled.root)
    df = table.to_pandas()
    assert {"success_rate", "success_lo", "success_hi", "auto_accept_share"} <= set(df.columns)
    human = df[(df["round"] == 1) & (df["phase"] == "human")].iloc[0]
    assert human["success_lo"] <= human["success_rate"] <= human["success_hi"]
    est = rorem_data.estimates(filled.root, 1)
    assert est.value == pytest.approx(res.success_rate["value"])
    view = rorem_data.candidates(filled.root, 1, decided_by="human")
    assert view.count() == filled.dataset.match({"kind": "candidate", "round": 1,
                                                 "decided_by": "human"}).count()
    with pytest.raises(ConfigError, match="status must be one of"):
        rorem_data.candidates(filled, 1, status="maybe")


def test_rerunning_auto_label_with_another_seed_adds_no_audit_items(filled):
    """Nor does it redraw the cross-fitting folds: the same scores, the same thresholds (trying
    seeds until more is decided would void the guarantee)."""
    run(filled)
    v = rorem_data.load_round(filled, 1).version
    queued = filled.dataset.match({"queue_purpose": "audit"}).count()
    auto = store.round_record(filled.dataset_name, 1)["phases"]["auto"]
    assert auto["method"] == "crossfit"
    field = f"scores.{auto['score_field']}"
    scores = filled.dataset.values(field)
    for seed in (1, 2, 3):
        res = rorem_data.auto_label(filled, 1, version=v, target_precision=0.8, confidence=0.8,
                                    audit=0.2, rng=seed, previews=False)
        assert res.method == "crossfit"
        assert filled.dataset.match({"queue_purpose": "audit"}).count() == queued
        again = store.round_record(filled.dataset_name, 1)["phases"]["auto"]
        assert filled.dataset.values(field) == scores
        assert (again["accept_threshold"], again["reject_threshold"]) == \
            (auto["accept_threshold"], auto["reject_threshold"])


def test_the_same_call_gives_the_same_numbers_wherever_the_data_sits(tmp_path):
    """The same synthetic data under two folders: the same sample, estimates and yields."""
    import fiftyone as fo

    results = []
    for where in ("a/deep/folder", "b"):
        root = tmp_path / where
        meta = synthetic.write_seed_set(str(root / "seeds"), 10, size=40, seed=0)
        pool = synthetic.write_pool_folder(str(root / "pool"), 40, size=40, seed=1)
        p = rorem_data.init_project(str(root / "proj"), name="same")
        try:
            rorem_data.import_seeds(p, [meta], progress=False)
            rorem_data.import_pool(p, pool, origin="pool", progress=False)
            res = run(p)
            drawn = store.round_record(p.dataset_name, 1)["selections"][0]["sample_ids"]
            keys = dict(zip(p.dataset.values("id"), p.dataset.values("key")))
            results.append((sorted(keys[i] for i in drawn), res.estimates.get("best"),
                            res.automation_yield, res.steps.get("auto_label")))
        finally:
            fo.delete_dataset(p.dataset_name)
            store.delete_round_records(p.dataset_name)
    (keys_a, est_a, y_a, auto_a), (keys_b, est_b, y_b, auto_b) = results
    assert keys_a == keys_b
    assert est_a == est_b and est_a is not None
    assert y_a == y_b


def test_the_same_remover_spelled_another_way_is_no_change(filled):
    run(filled)
    before = state(filled)
    again = run(filled, remover={"kind": "classical", "method": "telea"})
    assert again.state == "finished" and state(filled) == before
