"""Synthetic data at paper scale for ``benchmarks/paper_scale.py``, written in parallel, reused.

The same scenes and layouts as :mod:`rorem_data.testing.synthetic` (``make_scene``; a RORem
seed set ``source/ mask/ GT/ meta.json``; a pool folder ``images/ masks/ truth/`` that the
simulated reviewer judges against), but written by a process pool in chunks, each chunk from
its own seed, so a folder is the same whatever the number of workers. Every finished chunk
leaves a marker, so an interrupted write resumes, and a complete folder (marker ``.complete``)
is reused as it is.
"""

from __future__ import annotations

import json
import os
import time
from multiprocessing import get_context

import numpy as np

CHUNK = 2000
DONE = ".complete"


def _save(arr: np.ndarray, path: str) -> None:
    from PIL import Image

    tmp = f"{path}.tmp"
    Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _mask_png(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def _seed_chunk(args) -> int:
    """Write seed triplets ``start..stop-1`` (one object each)."""
    from rorem_data.testing.synthetic import make_scene

    root, start, stop, size, seed = args
    rng = np.random.default_rng([seed, start])
    for i in range(start, stop):
        sc = make_scene(rng, size=size)
        name = f"{i:06d}.png"
        _save(sc.source, os.path.join(root, "source", name))
        _save(_mask_png(sc.masks[0]), os.path.join(root, "mask", name))
        _save(sc.truths[0], os.path.join(root, "GT", name))
    open(os.path.join(root, ".chunks", f"{start}"), "w").close()
    return stop - start


def _pool_chunk(args) -> int:
    """Write pool images ``start..stop-1``, one object (mask + truth) each."""
    from rorem_data.testing.synthetic import make_scene

    root, start, stop, size, seed = args
    rng = np.random.default_rng([seed, start])
    for i in range(start, stop):
        sc = make_scene(rng, size=size, n_objects=1, max_frac=0.35)
        stem = f"{i:06d}"
        _save(sc.source, os.path.join(root, "images", f"{stem}.png"))
        _save(_mask_png(sc.masks[0]), os.path.join(root, "masks", f"{stem}_0.png"))
        _save(sc.truths[0], os.path.join(root, "truth", f"{stem}_0.png"))
    open(os.path.join(root, ".chunks", f"{start}"), "w").close()
    return stop - start


def written_seconds(root: str) -> float | None:
    """Seconds the write of a complete folder took, as recorded in its marker (None if unknown)."""
    try:
        with open(os.path.join(root, DONE)) as fh:
            return float(json.load(fh)["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _finish(root: str, n: int, seconds: float, workers: int) -> None:
    if os.path.exists(os.path.join(root, DONE)) and not seconds:
        return
    with open(os.path.join(root, DONE), "w") as fh:
        json.dump({"seconds": seconds, "items": n, "workers": workers}, fh)


def _write(root: str, n: int, subdirs, fn, *, size: int, seed: int, workers: int) -> float:
    """Run ``fn`` over the unfinished chunks of ``root``; returns the seconds spent (0 if the
    folder was complete)."""
    if os.path.exists(os.path.join(root, DONE)):
        return 0.0
    t = time.perf_counter()
    for d in (*subdirs, ".chunks"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    finished = set(os.listdir(os.path.join(root, ".chunks")))
    tasks = [(root, s, min(n, s + CHUNK), size, seed) for s in range(0, n, CHUNK)
             if str(s) not in finished]
    if tasks:
        with get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, tasks):
                pass
    return time.perf_counter() - t


def write_seeds(root: str, n: int, *, size: int = 48, seed: int = 0, workers: int = 2) -> tuple[str, float]:
    """A seed set of ``n`` triplets under ``root``; returns (meta.json path, seconds written)."""
    seconds = _write(root, n, ("source", "mask", "GT"), _seed_chunk, size=size, seed=seed,
                     workers=workers)
    meta_path = os.path.join(root, "meta.json")
    if seconds or not os.path.exists(meta_path):
        names = [f"{i:06d}.png" for i in range(n)]
        with open(meta_path, "w") as fh:
            json.dump([{"source": f"source/{x}", "mask": f"mask/{x}", "GT": f"GT/{x}"}
                       for x in names], fh)
    _finish(root, n, seconds, workers)
    return meta_path, seconds


def write_pool(root: str, n: int, *, size: int = 48, seed: int = 1, workers: int = 2) -> tuple[str, float]:
    """A pool folder of ``n`` images (one mask and truth each); returns (root, seconds written)."""
    seconds = _write(root, n, ("images", "masks", "truth"), _pool_chunk, size=size, seed=seed,
                     workers=workers)
    _finish(root, n, seconds, workers)
    return root, seconds
