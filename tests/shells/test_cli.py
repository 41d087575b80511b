"""The `rorem-data` command line, in process and as a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

from rorem_data import cli


def run(argv, capsys):
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cli_project(tmp_path):
    yield str(tmp_path / "proj")
    import fiftyone as fo
    from rorem_data import open_project
    from rorem_data.dataset import store

    try:
        p = open_project(str(tmp_path / "proj"))
    except Exception:  # noqa: BLE001 - no project was made
        return
    if fo.dataset_exists(p.dataset_name):
        fo.delete_dataset(p.dataset_name)
    store.delete_round_records(p.dataset_name)


def test_cli_init_import_status_export(cli_project, seed_meta, pool_dir, tmp_path, capsys):
    code, out, _ = run(["init", cli_project], capsys)
    assert code == 0 and "Initialized project" in out
    code, _, err = run(["init", cli_project], capsys)
    assert code == 1 and "already a rorem-data project" in err
    code, out, _ = run(["-p", cli_project, "import", "seeds", seed_meta], capsys)
    assert code == 0 and "imported 12" in out
    code, out, _ = run(["-p", cli_project, "import", "pool", pool_dir], capsys)
    assert code == 0
    code, out, _ = run(["-p", cli_project, "status", "--json"], capsys)
    data = json.loads(out)
    assert data["rounds"][0]["cumulative_train"] == 12 and data["pool_items"] > 0
    code, out, _ = run(["-p", cli_project, "status"], capsys)
    assert code == 0 and "seed" in out
    code, out, _ = run(["-p", cli_project, "export", "--round", "0", "--out", str(tmp_path / "e")], capsys)
    assert code == 0 and os.path.exists(tmp_path / "e" / "meta.json")


def test_cli_errors_are_one_clear_line(cli_project, tmp_path, capsys):
    code, _, err = run(["-p", str(tmp_path / "nowhere"), "status"], capsys)
    assert code == 1 and "No rorem-data project" in err and "Traceback" not in err
    run(["init", cli_project], capsys)
    bad = tmp_path / "bad" / "meta.json"
    bad.parent.mkdir()
    bad.write_text("{oops")
    code, _, err = run(["-p", cli_project, "import", "seeds", str(bad)], capsys)
    assert code == 1 and "not valid JSON" in err and "nothing was written" in err
    code, _, err = run(["-p", cli_project, "export", "--round", "0", "--out", str(tmp_path / "o"),
                        "--format", "tar"], capsys)
    assert code == 1 and "unknown export format 'tar'; choose one of: imagefolder, parquet, rorem" in err


def test_demo_runs_on_the_embedded_database(tmp_path):
    """The README's main job, reduced, as a real process on FiftyOne's embedded database."""
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_DATABASE_URI"}
    env["FIFTYONE_DATABASE_DIR"] = str(tmp_path / "db")
    proc = subprocess.run([sys.executable, "-m", "rorem_data.cli", "demo", str(tmp_path / "demo"), "--small"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Demo finished" in out and "Traceback" not in proc.stderr
    # both rounds ran every step, on real stored discriminator versions
    for step in ("generate:", "featurize:", "queue: active sample of round 1", "gold:", "review:",
                 "train: trained", "auto_label:", "score_previous:", "queue: active sample of round 2"):
        assert step in out, step
    versions = os.listdir(tmp_path / "demo" / "models" / "discriminators")
    # the seed-pair version drew round 1's sample; rounds 1 and 2 trained on people's labels
    assert len(versions) == 3 and sum(v.startswith("stats_logistic_r0_") for v in versions) == 1
    assert "seed_version: trained stats_logistic_r0_" in out
    for v in versions:
        assert os.path.isfile(tmp_path / "demo" / "models" / "discriminators" / v / "model" / "spec.json")
    assert "from discriminator stats_logistic_r1_" in out  # round 2's probabilities came from v1
    assert os.path.isfile(tmp_path / "demo" / "exports" / "round-2" / "manifest.json")
    assert os.path.isfile(tmp_path / "demo" / "report" / "index.html")
    assert os.path.isfile(tmp_path / "demo" / "models" / "remover-r2" / "model_index.json")
    # running the demo again replaces its own folder, and nothing else
    again = subprocess.run([sys.executable, "-m", "rorem_data.cli", "demo", str(tmp_path / "demo"),
                            "--small"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "Removed the previous demo" in again.stdout, again.stderr[-2000:]
    other = tmp_path / "not-a-demo"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    refused = subprocess.run([sys.executable, "-m", "rorem_data.cli", "demo", str(other), "--small"],
                             capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 1 and (other / "thesis.tex").read_text() == "years of work"
