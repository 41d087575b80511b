"""`rorem-data select --param KEY=VALUE`: a strategy's parameters from the command line."""

from __future__ import annotations

import pytest

from helpers import run_cli, scored_round


@pytest.fixture
def featurized(project, capsys):
    ids, truth, scores = scored_round(project, n=40)
    code, _, err = run_cli(capsys, "-p", project.root, "featurize", "--workers", "1")
    assert code == 0, err
    return ids, scores


def _queued(project):
    project.dataset.reload()
    return project.dataset.load_saved_view("review-round-1").values("id")


def test_parameters_reach_the_strategy_and_the_selection_record(project, capsys, featurized):
    ids, scores = featurized
    code, _, err = run_cli(capsys, "-p", project.root, "select", "--round", "1", "--budget", "6",
                             "--strategy", "hybrid-audit", "--version", "sim_r1",
                             "--param", "audit_share=1", "--param", "accept_threshold=0.7")
    assert code == 0, err
    queued = _queued(project)
    assert len(queued) == 6
    by_id = dict(zip(ids, scores))
    # the whole batch is the audit part, drawn among candidates at or above the threshold
    assert min(by_id[i] for i in queued) >= 0.7
    from rorem_data.dataset import store

    record = store.round_record(project.dataset_name, 1)
    assert record["selections"][-1]["params"] == {"audit_share": 1, "accept_threshold": 0.7}


def test_text_values_stay_text(project, capsys, featurized):
    code, _, err = run_cli(capsys, "-p", project.root, "select", "--round", "1", "--budget", "4",
                           "--strategy", "hybrid", "--version", "sim_r1",
                           "--param", "score=margin", "--param", "standardize=true")
    assert code == 0, err
    assert len(_queued(project)) == 4
    from rorem_data.dataset import store

    params = store.round_record(project.dataset_name, 1)["selections"][-1]["params"]
    assert params == {"score": "margin", "standardize": True}  # text stays text, JSON is JSON


@pytest.mark.parametrize("args, words", [
    (["--param", "audit_share"], ["--param 'audit_share'", "KEY=VALUE"]),
    (["--param", "=1"], ["KEY=VALUE"]),
    (["--param", "audit_share=1", "--param", "audit_share=0.5"], ["audit_share", "twice"]),
    (["--param", "rng=3"], ["rng", "--seed", "audit_share"]),
    (["--param", "proba=0.5"], ["proba", "set by select"]),
    (["--param", "bogus=1"], ["bogus", "audit_share"]),
    (["--param", "audit_share=2"], ["audit_share", "2"]),
    (["--param", "audit_share=NaN"], ["audit_share", "nan"]),
])
def test_bad_parameters_are_one_clear_error_and_queue_nothing(project, capsys, featurized,
                                                              args, words):
    code, _, err = run_cli(capsys, "-p", project.root, "select", "--round", "1", "--budget", "4",
                             "--strategy", "hybrid-audit", "--version", "sim_r1", *args)
    assert code != 0
    for w in words:
        assert w in err, err
    project.dataset.reload()
    assert not project.dataset.has_saved_view("review-round-1")


def test_active_inference_refuses_strategy_parameters(project, capsys, featurized):
    code, _, err = run_cli(capsys, "-p", project.root, "select", "--round", "1", "--budget", "4",
                           "--strategy", "active-inference", "--param", "floor=0.1")
    assert code != 0 and "--param floor" in err and "--floor" in err


def test_no_parameters_is_the_strategy_default(project, capsys, featurized):
    code, _, err = run_cli(capsys, "-p", project.root, "select", "--round", "1", "--budget", "4",
                           "--strategy", "hybrid-audit", "--version", "sim_r1")
    assert code == 0, err
    from rorem_data.dataset import store

    assert store.round_record(project.dataset_name, 1)["selections"][-1]["params"] == {}
    assert len(_queued(project)) == 4
