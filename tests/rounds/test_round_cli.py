"""The CLI over the same calls: one set of defaults, select without a discriminator, Python words
in Python errors and flags in the CLI's, Ctrl-C as one line and exit 130."""

from __future__ import annotations

import inspect

import pytest

import rorem_data
from rorem_data.rounds import defaults as D
from rorem_data.testing import synthetic


@pytest.fixture
def pooled(project, tmp_path):
    pool = synthetic.write_pool_folder(str(tmp_path / "pool"), 12, size=40, seed=1)
    rorem_data.import_pool(project, pool, origin="pool", progress=False)
    rorem_data.generate(project, 1, "classical:telea", progress=False)
    return project


def test_one_set_of_defaults_for_the_library_the_driver_and_the_cli():
    from rorem_data import cli
    from rorem_data.rounds import automation, driver
    from rorem_data.rounds.review import queue

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    def cli_default(fn, name):
        return default(fn, name).default  # typer.Option(...)

    assert default(queue.select, "strategy") == default(driver.run_round, "strategy") == \
        cli_default(cli.select, "strategy") == cli_default(cli.round_run, "strategy") == D.STRATEGY
    for name in ("target_precision", "confidence", "audit"):
        want = getattr(D, name.upper())
        assert default(automation.auto_label, name) == default(driver.run_round, name) == want
        assert cli_default(cli.auto_label_cmd, name) == cli_default(cli.round_run, name) == want
    assert default(queue.select, "floor") == default(driver.run_round, "floor") == \
        cli_default(cli.select, "floor") == D.FLOOR


def test_cli_select_works_in_a_round_without_a_discriminator(pooled, capsys):
    from helpers import run_cli

    code, out, err = run_cli(capsys, "-p", pooled.root, "select", "--round", "1", "--budget", "5")
    assert code == 0, err
    assert "active sample of round 1" in out and "uniform (no discriminator yet)" in out
    code, out, err = run_cli(capsys, "-p", pooled.root, "select", "--round", "1", "--budget", "5",
                             "--strategy", "hybrid-audit")
    assert code == 1
    assert "no trained discriminator yet" in err and "active-inference" in err
    assert "proba=" not in err and "build_queue" not in err


def test_python_errors_speak_python_and_the_cli_adds_its_flags(pooled, capsys):
    from helpers import run_cli

    with pytest.raises(rorem_data.ConfigError) as err:
        rorem_data.run_round(pooled, 1, remover="classical:telea", budget=0)
    assert str(err.value).startswith("budget must be a positive integer") and "--" not in str(err.value)
    code, _out, errtext = run_cli(capsys, "-p", pooled.root, "round", "run", "--round", "1",
                                  "--remover", "classical:telea", "--budget", "0")
    assert code == 1 and "budget (--budget) must be a positive integer" in errtext
    with pytest.raises(rorem_data.ConfigError) as err:
        rorem_data.select(pooled, 1, 5, strategy="hybrid-audit")
    assert "strategy='active-inference'" in str(err.value)


def test_ctrl_c_in_a_cli_round_is_one_line_and_exit_130(pooled, capsys):
    from helpers import run_cli
    from rorem_data.rounds.review.reviewers import _REVIEWERS, register_reviewer

    seen = []

    def person(project, round, *, purposes, reviewer_name, port):
        from rorem_data.rounds.review.reviewers import open_items
        from rorem_data.rounds.review import apply_reviews

        items = open_items(project, round, purposes=purposes)
        apply_reviews(project.dataset, [(i["sample_id"], "accept", "pat", None) for i in items[:3]],
                      round=round)
        seen.append(len(items))
        raise KeyboardInterrupt

    register_reviewer("interrupted-person", person, overwrite=True)
    try:
        code, _out, err = run_cli(capsys, "-p", pooled.root, "round", "run", "--round", "1",
                                  "--remover", "classical:telea", "--budget", "6", "--reviewer",
                                  "interrupted-person", "--gold-rate", "0")
    finally:
        _REVIEWERS._targets.pop("interrupted-person", None) if hasattr(_REVIEWERS, "_targets") else None
    assert code == 130
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("round 1 stopped in review (3 of ") and "judged, stored" in lines[0]
    assert lines[0].endswith("run the same call again to resume")
