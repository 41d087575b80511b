"""The static report: content, and how it reads in a real browser."""

import os
import shutil
import subprocess

import pytest

from rorem_data.rounds.automation import auto_label
from rorem_data.rounds.report import write_report
from rorem_data.rounds.review import apply_review
from rorem_data.rounds.review.queue import build_estimate_sample

from helpers import scored_round, simulated_version

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def reported(project, seed_meta, tmp_path):
    project.import_seeds(seed_meta)
    v = simulated_version(project)
    ids, truth, scores = scored_round(project, n=30)
    sample = build_estimate_sample(project, 1, 12, rng=0, previews=False)
    truth_of = dict(zip(ids, truth))
    for sid in sample.sample_ids:
        apply_review(project.dataset, sid, "accept" if truth_of[sid] else "reject", reviewer="h",
                     reason=None if truth_of[sid] else "object_visible")
    auto_label(project, 1, version=v, target_precision=0.9, confidence=0.9, audit=0.2, previews=False)
    index = write_report(project, str(tmp_path / "report"))
    return project, index


def test_report_contents(reported):
    project, index = reported
    folder = os.path.dirname(index)
    page = open(index).read()
    for needle in ("Rounds", "success rate (best)", "automation yield", "Reliability diagram", "Accepted",
                   "Rejected", "Uncertain"):
        assert needle in page, needle
    for f in ("success_rate.png", "accepted.png", "scores.png", "reliability.png", "report.md", "report.json"):
        assert os.path.getsize(os.path.join(folder, f)) > 0, f
    import json

    rows = json.load(open(os.path.join(folder, "report.json")))["rows"]
    human, auto = rows[1], rows[2]
    assert human["phase"] == "human" and human["selected"] == 12  # the estimation sample
    assert auto["phase"] == "auto" and auto["selected"] >= 1  # the audit sample
    # the 12 uniform labels give the success rate with an interval around the truth (half succeed)
    sr = human["success_rate"]
    assert sr["source"] in ("human", "ppi") and sr["lo"] <= sr["value"] <= sr["hi"]
    assert sr["lo"] <= 0.5 <= sr["hi"]
    y = auto["automation_yield"]
    assert y["candidates"] == 30 and y["auto_accepted"] == auto["accepted_by_discriminator"]
    md = open(os.path.join(folder, "report.md")).read()
    assert "| 0 | seed |" in md and "| 1 | human |" in md
    assert any(f.startswith("ex-accepted-") for f in os.listdir(folder))


def test_report_notes_the_audit_of_accepts_and_rejects(reported, tmp_path):
    """The report's audit note gives both measured rates against their targets and the flag
    the round earned (the rejects' here: people overturned every audited reject)."""
    from rorem_data.rounds.automation import audit_report

    project, _ = reported
    ds = project.dataset
    audited = ds.match({"queue_purpose": "audit"})
    for sid, st in zip(audited.values("id"), audited.values("status")):
        apply_review(ds, sid, "reject" if st == "accepted" else "accept", reviewer="auditor")
    out = audit_report(project, 1)
    index = write_report(project, str(tmp_path / "again"))
    md = open(os.path.join(os.path.dirname(index), "report.md")).read()
    note = next(line for line in md.splitlines() if "Round 1 audit" in line)
    for rule in ("accept_precision", "reject_npv"):
        if out[rule]["n"]:
            assert ("precision of automatic accepts" if rule == "accept_precision"
                    else "NPV of automatic rejects") in note
    assert out["flag"] in note and out["flag"] in ("below target", "significantly below target")
    assert f"({out['audited']} audited" in note


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_report_renders_in_chromium(reported, tmp_path):
    _project, index = reported
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2200",
                    "--virtual-time-budget=5000", f"--screenshot={shot}", f"file://{index}"],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image
    import numpy as np

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] >= 2000
    # the page is not blank: plots and thumbnails put many distinct grey levels on screen
    assert len(np.unique(img)) > 100
    assert (img < 200).mean() > 0.05
    shutil.copy(shot, "/tmp/rorem-report-screenshot.png")
