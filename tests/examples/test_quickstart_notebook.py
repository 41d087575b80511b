"""examples/quickstart.ipynb runs on a real Jupyter kernel (nbclient + ipykernel), and its
outputs show what a notebook user relies on: readable results, a DataFrame, progress bars, a
FiftyOne view, the review App that leaves the kernel free, an export."""

from __future__ import annotations

import json
import os

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(HERE, "examples", "quickstart.ipynb")


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data") or {}
    return "\n".join(str(data.get(k, "")) for k in ("text/plain", "text/html"))


@pytest.mark.slow
def test_the_quickstart_notebook_runs_and_shows_readable_results(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("QUICKSTART_DIR")
    os.environ["QUICKSTART_DIR"] = str(tmp_path)
    os.environ.pop("ROREM_PROGRESS", None)  # the notebook asks for bars itself
    try:
        client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        os.environ["ROREM_PROGRESS"] = "0"
        if env_before is None:
            os.environ.pop("QUICKSTART_DIR", None)
        else:
            os.environ["QUICKSTART_DIR"] = env_before
    code = [c for c in nb.cells if c.cell_type == "code"]
    outs = [c.get("outputs", []) for c in code]
    texts = ["\n".join(_text(o) for o in cell) for cell in outs]
    for cell in outs:  # no cell failed, and no library warning reached the user unasked
        assert not any(o.get("output_type") == "error" for o in cell)
        assert not any("Warning" in o.get("text", "") for o in cell if o.get("name") == "stderr"), cell
    # round 1: a short repr and an HTML table, not a 2,000-character line
    r1 = next(o for o in outs[1] if o.get("output_type") == "execute_result")
    assert r1["data"]["text/plain"].startswith("RoundResult(round 1, finished")
    assert len(r1["data"]["text/plain"]) < 300
    assert "<table" in r1["data"]["text/html"] and "success rate" in r1["data"]["text/html"]
    # progress bars showed in Jupyter: widgets (ipywidgets is installed) for the long steps
    widgets = [o for o in outs[1] if "application/vnd.jupyter.widget-view+json" in (o.get("data") or {})]
    assert widgets, "no progress widget in the run_round cell"
    assert "round 2 (finished)" in texts[2]
    # the round table is a DataFrame with the success rate and its interval as columns
    df = next(o for o in outs[3] if o.get("output_type") == "execute_result")
    assert "dataframe" in df["data"]["text/html"] and "success_lo" in df["data"]["text/html"]
    # a FiftyOne view
    assert "accepted candidates in round 2" in texts[4] and ".png" in texts[4]
    # the App from a notebook: the call returned at once, awaiting review, with the URL
    assert "awaiting review http://127.0.0.1:" in texts[5]
    assert "RoundResult(round 3, finished" in texts[6]
    assert "exported round 3" in texts[7] and "meta.json" in texts[7]
    meta = json.load(open(tmp_path / "exports" / "round-3" / "meta.json"))
    assert len(meta) > 0
    import fiftyone as fo

    from rorem_data import open_project

    project = open_project(str(tmp_path / "project"))
    fo.delete_dataset(project.dataset_name)
