"""Hostile use of the round commands, black box through the CLI where a user would meet it.

Each test asserts the outcome a user relies on: the folder is still there with its content,
the message names the item and the fix, the exit code is non-zero, no traceback, nothing
half-written; and the round goes on past one bad item.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

from helpers import add_candidates, scored_round, simulated_version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args, env=None, timeout=300):
    out = subprocess.run([sys.executable, "-m", "rorem_data.cli", *args], capture_output=True,
                         text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(dp, f), folder)
                  for dp, _dn, fns in os.walk(folder) for f in fns)


# --- 2. report --out never deletes what it did not write ------------------------------------

@pytest.mark.parametrize("target", ["media", ".", "elsewhere"])
def test_report_refuses_folders_it_did_not_write(project, tmp_path, target):
    add_candidates(project, 1, ["clean", "residue"], seed=1)
    if target == "media":
        out = project.media_dir
    elif target == ".":
        out = project.root
    else:
        out = str(tmp_path / "mine")
        os.makedirs(out)
        (tmp_path / "mine" / "notes.txt").write_text("months of work")
    before = _tree(out)
    res = cli("-p", project.root, "report", "--out", out)
    assert res.returncode != 0
    assert out in res.stderr and ("never removes" in res.stderr or "not written by rorem-data" in res.stderr)
    assert _tree(out) == before  # every file still there


def test_report_replaces_its_own_earlier_report(project, tmp_path):
    add_candidates(project, 1, ["clean", "residue"], seed=1)
    out = str(tmp_path / "report")
    assert cli("-p", project.root, "report", "--out", out).returncode == 0
    assert cli("-p", project.root, "report", "--out", out).returncode == 0
    assert os.path.isfile(os.path.join(out, "index.html"))
    assert not [n for n in os.listdir(tmp_path) if ".partial-" in n or ".old-" in n]


# --- 9. report right after auto-label, audit sample still unjudged --------------------------

def test_report_after_audit_with_an_unjudged_audit_sample(project, tmp_path):
    from rorem_data.rounds.automation import audit_report, auto_label

    v = simulated_version(project)
    scored_round(project, n=40)
    auto_label(project, 1, version=v, target_precision=0.8, confidence=0.8, audit=0.2, previews=False)
    audit_report(project, 1)  # nobody has judged the audit sample yet
    res = cli("-p", project.root, "report", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert os.path.isfile(tmp_path / "r" / "index.html")


# --- 7. bad inputs to round commands ---------------------------------------------------------

def test_featurize_with_bad_json_config_is_refused(project):
    res = cli("-p", project.root, "featurize", "--config", "{size: 256")
    assert res.returncode == 1 and "--config" in res.stderr and "JSON" in res.stderr
    res = cli("-p", project.root, "featurize", "--config", "[1, 2]")
    assert res.returncode == 1 and "JSON object" in res.stderr


def test_select_with_a_missing_result_file_queues_and_reruns(project):
    ids, _ = add_candidates(project, 1, ["clean", "residue", "blur", "clean"], seed=2)
    doc = project.dataset[ids[1]]
    os.remove(doc.target_path)
    for _ in range(2):  # the first run and every rerun
        res = cli("-p", project.root, "select", "--round", "1", "--budget", "4", "--strategy", "random")
        assert res.returncode == 0, res.stderr
    project.dataset.reload()  # the saved view was written by the CLI process
    assert project.dataset.load_saved_view("review-round-1").count() == 4


def test_labels_csv_with_a_byte_order_mark(project, tmp_path):
    from rorem_data.rounds.review.queue import build_queue

    ids, _ = add_candidates(project, 1, ["clean", "residue"], seed=3)
    build_queue(project, 1, 2, strategy="random", previews=False)
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeffsample_id,decision,reviewer\n".encode("utf-8")
                     + f"{ids[0]},accept,ana\n{ids[1]},reject,ana\n".encode())
    res = cli("-p", project.root, "labels", "import", str(path), "--round", "1")
    assert res.returncode == 0 and "applied 2" in res.stdout, res.stderr


def test_deeply_nested_labels_json_is_refused(project, tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    res = cli("-p", project.root, "labels", "import", str(path), "--round", "1")
    assert res.returncode == 1 and "labels.json" in res.stderr and "deeper" in res.stderr


# --- 8. one bad pool item never blocks generation ---------------------------------------------

def test_pool_image_changed_size_after_import(project, pool_dir):
    project.import_pool(pool_dir, origin="p", workers=1)
    items = sorted(project.dataset.match({"kind": "pool"}).values("filepath"))
    bad = items[0]
    Image.open(bad).resize((80, 80)).save(bad)
    for _ in range(2):  # every rerun goes on too
        res = cli("-p", project.root, "generate", "--round", "1", "--remover", "classical:telea")
        assert res.returncode == 0, res.stderr
        assert "failed" in res.stdout and "80x80" in res.stdout and "pool item" in res.stdout
    n_pool = project.dataset.match({"kind": "pool"}).count()
    shared = sum(1 for p in project.dataset.match({"kind": "pool"}).values("filepath") if p == bad)
    assert project.dataset.match({"kind": "candidate"}).count() == n_pool - shared


# --- 13. a second generate never deletes a live run's temporary files ------------------------

def test_generate_keeps_live_temporary_files_and_removes_dead_ones(project, pool_dir):
    from rorem_data.rounds.generate import candidate_key, generate, read_pool_items
    from rorem_data.removers import load_remover

    project.import_pool(pool_dir, origin="p", workers=1)
    rem = load_remover("classical:telea")
    items = read_pool_items(project)
    out_dir = project.media_path("candidates", "round-1")
    os.makedirs(out_dir, exist_ok=True)
    keys = [candidate_key(it["key"], rem.key, 0) for it in items[:2]]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live_tmp = os.path.join(out_dir, f"{keys[0]}.png.tmp-{sleeper.pid}-abc123")
    dead_tmp = os.path.join(out_dir, f"{keys[1]}.png.tmp-{dead.pid}-def456")
    for p in (live_tmp, dead_tmp):
        open(p, "wb").write(b"partial")
    try:
        generate(project, 1, rem, progress=False)
        assert os.path.exists(live_tmp) and not os.path.exists(dead_tmp)
    finally:
        sleeper.kill()


# --- 12. one App server per reviewer ---------------------------------------------------------

def test_a_second_reviewer_cannot_join_another_reviewers_app(project):
    ids, _ = add_candidates(project, 1, ["clean", "residue"], seed=4)
    from rorem_data.rounds.review.queue import build_queue

    build_queue(project, 1, 2, strategy="random", previews=False)
    with socket.socket() as s:  # alice's App holds the port
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = cli("-p", project.root, "review", "--round", "1", "--port", str(port), "--reviewer", "bob")
    assert res.returncode == 1 and str(port) in res.stderr and "--port" in res.stderr


# --- 14. the project knows which database holds it -------------------------------------------

def _mongod():
    from rorem_data.doctor import fiftyone_mongod

    dbpath = tempfile.mkdtemp(prefix="rorem-other-db-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([fiftyone_mongod(), "--dbpath", dbpath, "--port", str(port), "--bind_ip",
                             "127.0.0.1", "--nounixsocket", "--quiet", "--logpath",
                             os.path.join(dbpath, "log")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, dbpath, f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("second mongod did not start")


def test_opening_a_project_in_another_database_names_both(tmp_path):
    proc, dbpath, uri = _mongod()
    try:
        root = str(tmp_path / "p")
        made = cli("init", root, env={"FIFTYONE_DATABASE_URI": uri})
        assert made.returncode == 0, made.stderr
        # the same project, opened by a process connected to the session's database instead
        res = cli("-p", root, "status")
        assert res.returncode == 1
        assert dbpath in res.stderr and "FIFTYONE_DATABASE_URI=" + uri in res.stderr
        assert cli("-p", root, "status", env={"FIFTYONE_DATABASE_URI": uri}).returncode == 0
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(dbpath, ignore_errors=True)


# --- unexpected errors never print a traceback -----------------------------------------------

def test_unexpected_errors_are_one_message(project, monkeypatch, capsys):
    from rorem_data import cli as cli_mod
    from rorem_data.rounds import status

    def boom(*_a, **_k):
        raise KeyError("surprise")

    monkeypatch.setattr(status, "print_status", boom)
    with pytest.raises(SystemExit) as exc:
        cli_mod.main(["-p", project.root, "status"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "KeyError" in err and "Traceback" not in err and "ROREM_DEBUG" in err


def test_data_js_keys_match_the_reasons_the_library_knows():
    """The App's key handler maps 1-5 to failure reasons; it must list the library's reasons in
    the library's order (the Python side of the plugin takes them from the library)."""
    from rorem_data.core import schema

    js = open(os.path.join(REPO, "rorem_data", "plugins", "review", "dist", "index.umd.js")).read()
    listed = js.split("var REASONS = [", 1)[1].split("]", 1)[0]
    names = [n.strip().strip('"') for n in listed.replace("\n", " ").split(",") if n.strip()]
    assert names == list(schema.FAILURE_REASON_LABELS)
    json.dumps(names)
    assert np.all([n in schema.FAILURE_REASONS for n in names])
