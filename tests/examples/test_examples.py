"""The notebook-style example runs from start to end, through the front door."""

import json
import os
import subprocess
import sys


def test_python_api_example(tmp_path):
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, os.path.join(here, "examples", "python_api.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "round 1 (finished):" in out and "train:" in out and "active sample of round 2" in out
    assert "exported round 2" in out and "round 2 success rate" in out
    assert os.path.exists(tmp_path / "export-round-2" / "meta.json")
    import fiftyone as fo
    from rorem_data import open_project
    from rorem_data.dataset import store

    project = open_project(str(tmp_path / "project"))
    rec = store.round_record(project.dataset_name, 1)
    steps = rec["driver"]["steps"]
    # every step of the round is recorded, trained and scored on real stored versions
    for step in ("generate", "featurize", "queue", "gold", "review", "train", "score", "auto_label"):
        assert steps[step]["status"] == "done", step
    assert steps["train"]["version"] and os.path.isfile(os.path.join(
        project.root, "models", "discriminators", steps["train"]["version"], "model", "spec.json"))
    manifest = json.load(open(tmp_path / "export-round-2" / "manifest.json"))
    assert manifest["counts"]["pairs"] >= 40
    fo.delete_dataset(project.dataset_name)
