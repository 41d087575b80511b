"""Gold items measure reviewers: mixed into the queue unseen, a careless reviewer is flagged
and excluded, and gold never reaches exports, training or estimates."""

from __future__ import annotations

import json
import os

import pytest

from rorem_data.core import schema
from rorem_data.dataset import ledger, queues
from rorem_data.rounds.review.gold import GOLD_KINDS, add_gold
from rorem_data.rounds.review.queue import build_queue
from rorem_data.rounds.review.quality import exclude_reviewers, reviewer_quality
from rorem_data.testing import synthetic
from rorem_data.testing.simulate import SimulatedReviewer


@pytest.fixture
def queued_with_gold(project, tmp_path):
    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 40, size=48, seed=5)
    project.import_seeds([meta], origin="seedset", workers=1)
    project.import_pool(synthetic.write_pool_folder(str(tmp_path / "pool"), 20, size=48, seed=6),
                        origin="pool", workers=1)
    from rorem_data.rounds.generate import generate

    generate(project, 1, "classical:telea", progress=False)
    build_queue(project, 1, 20, strategy="random", rng=0, previews=False)
    gold = add_gold(project, 1, 40, rng=1)
    queues.mix_in(project.dataset, 1, gold, purpose=schema.QUEUE_GOLD, rng=1)
    return project, gold


def test_gold_items_are_mixed_in_and_look_like_candidates(queued_with_gold):
    project, gold = queued_with_gold
    ds = project.dataset
    ds.reload()
    view = ds.load_saved_view("review-round-1")
    assert view.count() == 20 + len(gold) and len(gold) >= 30
    hidden = set(schema.HIDDEN_IN_REVIEW) & set(view.get_field_schema())
    assert not hidden  # nothing in the review view tells a gold item from a candidate
    ranks = view.values("queue_rank")
    gold_pos = [i for i, sid in enumerate(view.values("id")) if sid in set(gold)]
    assert ranks == sorted(ranks) and min(gold_pos) < len(ranks) // 3  # not all at the end
    kinds = {d["gold_kind"] for d in ds._sample_collection.find({"kind": "gold"}, {"gold_kind": 1})}
    assert kinds <= set(GOLD_KINDS) and "good" in kinds and len(kinds) >= 3
    assert all(k[0] == "c" for k in ds.match({"kind": "gold"}).values("key"))


def test_careless_reviewer_is_flagged_then_excluded(queued_with_gold, tmp_path):
    project, gold = queued_with_gold
    careful = SimulatedReviewer("careful", noise=0.0, rng=1)
    careless = SimulatedReviewer("careless", noise=0.5, rng=2)
    careful.review_round(project, 1)
    careless.review_round(project, 1)  # second opinions everywhere: the last word counts
    q = reviewer_quality(project, round=1, min_accuracy=0.8)
    assert q["careful"]["flag"] == "ok" and q["careful"]["gold"]["accuracy"]["value"] >= 0.9
    assert q["careless"]["flag"] == "flagged", q["careless"]
    assert q["careful"]["agreement"]["n"] > 0
    # before exclusion the careless reviewer's word (the last one) decides
    coll = project.dataset._sample_collection
    by_careless = coll.count_documents({"kind": "candidate", "decision.reviewer": "careless"})
    assert by_careless > 0
    out = exclude_reviewers(project, ["careless"])
    assert out["excluded"] == ["careless"] and out["resettled"] > 0
    assert coll.count_documents({"kind": "candidate", "decision.reviewer": "careless"}) == 0
    assert coll.count_documents({"kind": "candidate", "decision.reviewer": "careful"}) == 20
    for d in coll.find({"queue_round": 1}, ledger.READ_FIELDS):
        assert ledger.check_invariant(d, frozenset({"careless"})) == []
    # export, training labels and estimates read candidates and seeds only: no gold anywhere
    res = project.export(1, str(tmp_path / "exp"))
    manifest = json.load(open(os.path.join(res.out, "manifest.json")))
    gold_keys = set(project.dataset.match({"kind": "gold"}).values("key"))
    assert not any(k.split("/")[-1].split(".")[0] in gold_keys for k in manifest["files"])
    from rorem_data.dataset import queries

    assert all(d["id"] not in set(gold) for d in queries.human_labels(project.dataset, rounds_upto=1))
    exclude_reviewers(project, ["careless"], include=True)
    assert coll.count_documents({"kind": "candidate", "decision.reviewer": "careless"}) == by_careless
