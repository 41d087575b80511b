"""The App shows the same pixels as the export: a real browser decodes what the App serves for a
phone photo (EXIF-rotated) and a 16-bit PNG, and gets the exported source's pixels exactly."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

import rorem_data
from rorem_data.testing import photos
from rorem_data.testing.app_process import CHROMIUM_ARGS, AppProcess, chromium_path, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = chromium_path()

DECODE = """async (path) => {
  const r = await fetch('/media?filepath=' + encodeURIComponent(path));
  const bmp = await createImageBitmap(await r.blob(), {colorSpaceConversion: 'none',
                                                      premultiplyAlpha: 'none'});
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  return [bmp.width, bmp.height, Array.from(ctx.getImageData(0, 0, bmp.width, bmp.height).data)];
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_app_shows_the_exported_pixels(project, tmp_path):
    from playwright.sync_api import sync_playwright

    p = photos.real_photo(96, 128)
    pool = tmp_path / "pool"
    os.makedirs(pool / "images")
    os.makedirs(pool / "masks")
    photos.write_exif_jpeg(str(pool / "images" / "phone.jpg"), p, 6)
    photos.write_16bit_png(str(pool / "images" / "deep.png"), p)
    m = np.zeros((128, 96), np.uint8)
    m[30:62, 18:50] = 255
    for name in ("phone", "deep"):
        Image.fromarray(m).save(pool / "masks" / f"{name}.png")
    rorem_data.import_pool(project, str(pool), progress=False)
    rorem_data.generate(project, 1, "classical:telea", progress=False)
    rorem_data.select(project, 1, 2, floor=1.0, progress=False)
    rorem_data.review(project, 1, lambda item: "accept")
    out = tmp_path / "export"
    rorem_data.export(project, 1, str(out), progress=False)
    exported = [np.asarray(Image.open(out / e["source"]).convert("RGB"))
                for e in json.load(open(out / "meta.json"))]
    pool_docs = project.dataset.match({"kind": "pool"})
    served = list(pool_docs.values("filepath"))
    assert all(f.endswith(".png") and f.startswith(project.media_dir) for f in served)

    port = free_port()
    app = AppProcess([sys.executable, "-m", "rorem_data.cli", "-p", project.root, "review", "--round",
                      "1", "--port", str(port), "--reviewer", "e2e"], dict(os.environ))
    try:
        app.wait_http(f"http://127.0.0.1:{port}/", timeout=120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/datasets/{project.dataset_name}")
            shown = []
            for path in served:
                w, h, data = page.evaluate(DECODE, path)
                shown.append(np.asarray(data, dtype=np.uint8).reshape(h, w, 4)[..., :3])
            browser.close()
    finally:
        left = app.stop()
    assert left == []
    for img in shown:  # each image the App shows is, pixel for pixel, an exported source
        assert img.shape == (128, 96, 3)
        assert any(np.array_equal(img, e) for e in exported)
