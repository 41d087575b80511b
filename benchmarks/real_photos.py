"""Real-size photos: featurize, previews and export at 1024 px against the decode floor.

    python benchmarks/real_photos.py [--candidates 160,2000] [--size 1024x768] [--workers 2]
                                     [--workdir /tmp/rorem-bench-photos]

Every other benchmark runs on 48-64 px scenes; users bring phone photos. This one builds a pool
of ``--candidates`` real photos (scikit-image's bundled photos, scaled to ``--size``, stored as
JPEG; 10% as phone photos whose EXIF orientation turns them, decoded and stored once at import)
with PNG masks, generates candidates with OpenCV's Telea remover, and times, in one run and with
the same number of processes:

* **the decode floor**: decoding each candidate's three images (source, mask, result) as the
  pipeline reads them, in ``--workers`` processes - nothing can be faster than reading the pixels;
* ``featurize`` (the ``stats`` featurizer), the review ``previews`` and ``export`` (rorem
  layout) of the round.

Target (issue 18): every step at least 0.67x the floor's throughput (its time at most 1.5x the
floor's). The table gives seconds, milliseconds per candidate and the ratio. One-time imports
(torch, OpenCV) happen before the timed steps; below 256 candidates the previews are written in
this process (no worker start-up), so small runs understate their throughput.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from multiprocessing import Pool

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _photos(size: tuple[int, int]) -> list[np.ndarray]:
    from PIL import Image
    from skimage import data

    out = []
    for f in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "hubble_deep_field"):
        try:
            a = getattr(data, f)()
        except Exception:  # noqa: BLE001 - a photo this scikit-image lacks
            continue
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        out.append(np.asarray(Image.fromarray(a[..., :3]).resize(size, Image.LANCZOS)))
    return out


def make_pool(root: str, n: int, size: tuple[int, int]) -> str:
    from PIL import Image

    from rorem_data.testing.photos import write_exif_jpeg

    if os.path.exists(os.path.join(root, ".complete")):
        return root
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "masks"), exist_ok=True)
    photos = _photos(size)
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        p = np.roll(photos[i % len(photos)], int(rng.integers(0, w)), axis=1)
        name = f"{i:06d}"
        if i % 10 == 0:
            write_exif_jpeg(os.path.join(root, "images", f"{name}.jpg"), p, 6 if h == w else 3, quality=92)
        else:
            Image.fromarray(p).save(os.path.join(root, "images", f"{name}.jpg"), quality=92)
        m = np.zeros((h, w), np.uint8)
        bw, bh = int(rng.integers(w // 10, w // 5)), int(rng.integers(h // 10, h // 5))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        m[y0 : y0 + bh, x0 : x0 + bw] = 255
        Image.fromarray(m).save(os.path.join(root, "masks", f"{name}.png"))
    open(os.path.join(root, ".complete"), "w").close()
    return root


def _decode_three(task):
    from rorem_data.core.images import read_mask, read_rgb

    src, mask, res = task
    a = read_rgb(src)
    m = read_mask(mask)
    r = read_rgb(res)
    return a.shape[0] + m.shape[0] + r.shape[0]


def run_one(n_items: int, a, w: int, h: int) -> tuple[int, list, float]:
    import fiftyone as fo

    import rorem_data
    from rorem_data.dataset import queries

    pool = make_pool(os.path.join(a.workdir, f"pool-{n_items}-{w}x{h}"), n_items, (w, h))
    proj_dir = os.path.join(a.workdir, f"proj-{n_items}-{os.getpid()}")
    project = rorem_data.init_project(proj_dir, name="bench-photos")
    rows = []
    try:
        t = time.perf_counter()
        imp = rorem_data.import_pool(project, pool, progress=False, workers=a.workers)
        rows.append(("import pool (check, decode + store the converted, write)", time.perf_counter() - t,
                     imp.summary().split(" in ")[0].split(", license")[0]))
        t = time.perf_counter()
        rorem_data.generate(project, 1, "classical:telea", batch_size=8, progress=False)
        rows.append(("generate (OpenCV Telea; context, not compared)", time.perf_counter() - t, ""))
        docs = queries.candidates(project.dataset, round=1,
                                  fields=["filepath", "mask.mask_path", "target_path"])
        tasks = [(d["filepath"], d["mask"]["mask_path"], d["target_path"]) for d in docs]
        n = len(tasks)
        with Pool(a.workers) as p:
            p.map(_decode_three, tasks[: a.workers * 2])  # warm the workers
            t = time.perf_counter()
            p.map(_decode_three, tasks, chunksize=4)
            floor = time.perf_counter() - t
        rows.append(("decode floor: source + mask + result, full size", floor, f"{a.workers} processes"))
        t = time.perf_counter()
        rorem_data.featurize(project, "stats", round=1, num_workers=a.workers, progress=False)
        rows.append(("featurize (stats)", time.perf_counter() - t, ""))
        shutil.rmtree(project.media_path("previews"), ignore_errors=True)
        t = time.perf_counter()
        rorem_data.select(project, 1, n, floor=1.0, progress=False)  # writes every preview
        rows.append(("select + review previews (all candidates)", time.perf_counter() - t, ""))
        rorem_data.review(project, 1, lambda item: "accept")
        out = os.path.join(a.workdir, f"export-{os.getpid()}")
        t = time.perf_counter()
        rorem_data.export(project, 1, out, progress=False)
        rows.append(("export (rorem layout, sha256 of every file)", time.perf_counter() - t, ""))
        shutil.rmtree(out, ignore_errors=True)
    finally:
        fo.delete_dataset(project.dataset_name)
        shutil.rmtree(proj_dir, ignore_errors=True)
    return n, rows, floor


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default="160", help="comma-separated sizes, e.g. 160,2000")
    ap.add_argument("--size", default="1024x768", help="WxH of the photos")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/rorem-bench-photos")
    a = ap.parse_args(argv)
    w, h = (int(x) for x in a.size.split("x"))
    os.environ.setdefault("ROREM_PROGRESS", "0")
    from _db import start_server

    print(f"database: {start_server()}")
    import cv2  # noqa: F401 - one-time imports are not the steps' throughput: load them first
    import torch  # noqa: F401

    results = [run_one(int(k), a, w, h) for k in a.candidates.split(",")]
    print(f"\n{w}x{h} photos (JPEG sources, 10% EXIF-turned; PNG masks and results), "
          f"{a.workers} processes, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'cand.':>6s}  {'step':58s} {'seconds':>8s} {'ms/cand.':>9s} {'floor/step':>10s}  note")
    for n, rows, floor in results:
        for what, sec, note in rows:
            compared = what.startswith(("featurize", "select", "export"))
            ratio = f"{floor / sec:10.2f}" if compared else " " * 10
            print(f"  {n:6d}  {what:58s} {sec:8.2f} {1000 * sec / n:9.1f} {ratio}  {note}")
    if len(results) > 1:
        (n0, r0, _), (n1, r1, _) = results[0], results[-1]
        for (what, s0, _), (_w, s1, _n) in zip(r0, r1):
            print(f"  growth {n0} -> {n1} ({n1 / n0:.1f}x the candidates): {what}: {s1 / s0:.1f}x")
    print("  target: floor/step >= 0.67 for featurize, previews and export")


if __name__ == "__main__":
    main()
