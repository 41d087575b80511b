"""The notebook-style example runs from start to end."""

import os
import subprocess
import sys


def test_python_api_example(tmp_path):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(here, "examples", "python_api.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "exported round 1" in out and "queued 70 candidates" in out
    assert os.path.exists(tmp_path / "export-round-1" / "meta.json")
    import fiftyone as fo
    from rorem_data import open_project

    fo.delete_dataset(open_project(str(tmp_path / "project")).dataset_name)
