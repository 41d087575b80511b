"""`rorem-data evaluate`: a remover on a test set with targets and human labels."""

import json
import os

import numpy as np
import pytest

from rorem_data import ConfigError
from rorem_data.testing import synthetic
from rorem_data.rounds.evaluate import evaluate_remover, read_test_set, summarize
from rorem_data.stats.metrics import masked_psnr, removal_metrics


def test_metrics_inside_and_outside():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    m = np.zeros((32, 32), bool)
    m[8:16, 8:16] = True
    r = t.copy()
    r[m] = 0
    met = removal_metrics(r, t, m)
    assert met["psnr_out"] == float("inf") and met["psnr_in"] < 10
    assert met["ssim_out"] > met["ssim_in"]
    assert masked_psnr(t, t) == float("inf")


def test_evaluate_classical_remover(tmp_path):
    meta = synthetic.write_seed_set(str(tmp_path / "test"), 8, size=48, seed=9)
    data = json.load(open(meta))
    for i, e in enumerate(data):
        e["score"] = i % 2  # human labels of earlier judgments
    json.dump(data, open(meta, "w"))
    rep = evaluate_remover(str(tmp_path / "test"), "classical:telea", str(tmp_path / "out"))
    assert rep["items"] == 8 and rep["seconds_per_image"] > 0
    q = rep["quality"]
    assert np.isfinite(q["psnr_in"]) and q["psnr_out"] > q["psnr_in"]
    assert q["lpips"] is None and "unavailable" in q["lpips_note"]
    assert rep["success_human"]["value"] == 0.5 and rep["success_human"]["n"] == 8
    assert len(os.listdir(tmp_path / "out" / "results")) == 8
    assert json.load(open(tmp_path / "out" / "evaluation.json"))["items"] == 8
    assert "PSNR" in summarize(rep)
    # the remover does better than leaving the object in place, inside the mask
    src_psnr = []
    for it in read_test_set(str(tmp_path / "test")):
        from PIL import Image
        from rorem_data.core.images import read_mask

        src = np.asarray(Image.open(it["source"]).convert("RGB"))
        tgt = np.asarray(Image.open(it["target"]).convert("RGB"))
        src_psnr.append(masked_psnr(src, tgt, read_mask(it["mask"])))
    assert q["psnr_in"] > np.mean(src_psnr)


def test_evaluate_bad_test_set(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "meta.json").write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="JSON list"):
        evaluate_remover(str(tmp_path / "t"), "classical", str(tmp_path / "o"))
    (tmp_path / "t" / "meta.json").write_text('[{"source": "../x.png", "mask": "m.png"}]')
    with pytest.raises(Exception, match="leaves the folder"):
        evaluate_remover(str(tmp_path / "t"), "classical", str(tmp_path / "o"))
