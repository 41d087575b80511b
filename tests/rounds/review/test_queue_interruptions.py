"""Interrupting a step of a round and running it again ends in the state of an uninterrupted run."""

import pytest

from rorem_data.rounds.review import queue as review_queue
from rorem_data.rounds.automation import auto_label
from rorem_data.rounds.review.queue import build_estimate_sample, build_queue

from helpers import scored_round, simulated_version


def _state(project):
    coll = project.dataset._sample_collection
    out = {}
    import os

    for d in coll.find({"kind": "candidate"}, {"filepath": 1, "status": 1, "queue_round": 1, "queue_rank": 1,
                                               "queue_purpose": 1, "review_quota": 1, "estimate_sample": 1,
                                               "decisions.status": 1, "decisions.by": 1}):
        out[os.path.basename(d["filepath"])] = (d.get("status"), d.get("queue_round"), d.get("queue_rank"), d.get("queue_purpose"),
                         d.get("review_quota"), d.get("estimate_sample"),
                         tuple((x.get("by"), x.get("status")) for x in d.get("decisions") or []))
    return out


def _run_round(project, fail_at=None, monkeypatch=None):
    calls = {"n": 0}
    real = review_queue.enqueue

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return real(*a, **kw)

    if fail_at is not None:
        monkeypatch.setattr(review_queue, "enqueue", flaky)
    steps = [
        lambda: build_estimate_sample(project, 1, 6, rng=0, previews=False),
        lambda: build_queue(project, 1, 8, strategy="uncertainty", discriminator="sim_r1", rng=0,
                            double_share=0.25, previews=False),
        lambda: auto_label(project, 1, version="sim_r1", target_precision=0.9, confidence=0.9, audit=0.3,
                           previews=False),
    ]
    for step in steps:
        try:
            step()
        except KeyboardInterrupt:
            monkeypatch.setattr(review_queue, "enqueue", real)
            step()  # the same command again
    return _state(project)


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_rerun_after_interruption_matches_uninterrupted(tmp_path, monkeypatch, fail_at):
    import rorem_data
    import fiftyone as fo

    states = []
    for name, fail in (("a", None), ("b", fail_at)):
        p = rorem_data.init_project(str(tmp_path / name), name=f"int-{name}")
        try:
            simulated_version(p)
            scored_round(p, n=40, seed=5, base=str(tmp_path / "files"))  # same files, same keys
            states.append(_run_round(p, fail, monkeypatch))
        finally:
            fo.delete_dataset(p.dataset_name)
    a, b = states
    assert a == b
    assert any(v[3] == "audit" for v in a.values())
