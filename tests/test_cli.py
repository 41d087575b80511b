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
    assert code == 1 and "--format must be one of" in err


def test_demo_runs_on_the_embedded_database(tmp_path):
    """The README's main job, reduced, as a real process on FiftyOne's embedded database."""
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_DATABASE_URI"}
    env["FIFTYONE_DATABASE_DIR"] = str(tmp_path / "db")
    proc = subprocess.run([sys.executable, "-m", "rorem_data.cli", "demo", str(tmp_path / "demo"), "--small"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Demo finished" in proc.stdout
    assert os.path.exists(tmp_path / "demo" / "exports")
