"""Featurization throughput: our DataLoader pipeline from PNG files vs same-run baselines.

On the same files, in one process, every case once per round, rounds interleaved (the machine
is shared; the first round warms up and is dropped; ratios are medians of same-round ratios):

- ``decode only, PIL``: a DataLoader with the same workers and batches that only decodes each
  item's three files (source and result with PIL, the mask with ``rorem_data.core.images.read_mask``)
  - the well-known way, as in the perf anchors; ``decode only, our reader``: the same with the
  pipeline's own image reader (``rorem_data.core.images.read_rgb``: OpenCV's PNG decoder);
- ``stats``, ``clip tiny`` (embed 64, 2-layer ViT width 64, patch 16, 64 px: the work is
  decoding; with open_clip's own transform and with ``resize="area"``): ``featurize_paths``
  end to end (decode + 5 views per item in the workers, the model in the main process);
- ``ViT-B-32`` (random weights; the work is the model, 5 encoder images per item): the bare
  forward on preprocessed tensors in RAM vs ``featurize_paths`` from the PNG files;
- the cache: a second ``featurize_paths`` over the same items with a cache computes nothing.

Items are 512x512 PNG triples (source, result, mask) cut from scikit-image's bundled photos.

Run: ``python benchmarks/featurize.py [--items 96] [--b32-items 24] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

# Run as a script, this folder would come first on sys.path, where a benchmark file named like a
# standard-library module (there was a select.py) shadows it: drop it, put the repo root first.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))


def make_items(folder: str, n: int, size: int = 512, seed: int = 0) -> list[tuple[str, str, str]]:
    """n (source, result, mask) PNG triples, size x size, from scikit-image's photos."""
    import skimage.data as skd
    from PIL import Image, ImageDraw

    names = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "immunohistochemistry",
             "hubble_deep_field", "retina", "colorwheel", "cat"]
    photos = []
    for nm in names:
        fn = getattr(skd, nm, None)
        if fn is None:
            continue
        try:
            a = np.asarray(fn())
        except Exception:  # noqa: BLE001 - some datasets need a download; skip those
            continue
        if a.ndim == 3 and a.shape[2] >= 3 and min(a.shape[:2]) >= 256:
            photos.append(a[..., :3].astype(np.uint8))
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    items = []
    for i in range(n):
        ph = photos[i % len(photos)]
        s = int(min(ph.shape[:2]) * rng.uniform(0.6, 1.0))
        y0 = rng.integers(0, ph.shape[0] - s + 1)
        x0 = rng.integers(0, ph.shape[1] - s + 1)
        crop = Image.fromarray(ph[y0:y0 + s, x0:x0 + s]).resize((size, size), Image.BICUBIC)
        src = np.asarray(crop).astype(np.int16)
        if rng.random() < 0.5:
            src = src[:, ::-1]
        src = np.clip(src * rng.uniform(0.8, 1.2) + rng.normal(0, 2, src.shape), 0, 255)
        src = src.astype(np.uint8)
        m = Image.new("L", (size, size), 0)
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        r = rng.uniform(0.08, 0.25) * size
        ImageDraw.Draw(m).ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        mask = np.asarray(m) > 0
        res = src.copy()
        res[mask] = np.clip(src[mask].astype(np.int16) // 2 + 60, 0, 255).astype(np.uint8)
        p = [os.path.join(folder, f"{i:05d}_{k}.png") for k in ("source", "result", "mask")]
        Image.fromarray(src).save(p[0])
        Image.fromarray(res).save(p[1])
        m.save(p[2])
        items.append(tuple(p))
    return items


def _read_rgb_pil(path: str) -> np.ndarray:
    """The well-known way: PIL decode to RGB (the baseline reader)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class _DecodeOnly:
    def __init__(self, items, reader: str):
        self.items = items
        self.reader = reader

    def __len__(self):
        return len(self.items)

    def __getitem__(self, k):
        from rorem_data.core.images import read_mask, read_rgb

        read = _read_rgb_pil if self.reader == "pil" else read_rgb
        s, r, m = self.items[k]
        a, b, c = read(s), read(r), read_mask(m)
        return a.shape[0] + b.shape[0] + c.shape[0]


def _count(rows):
    return len(rows)


def decode_only_rate(items, batch_size: int, num_workers: int, reader: str = "pil") -> float:
    """Items/s of a DataLoader that only decodes the three files of each item.

    ``reader="pil"``: PIL for the images (the well-known way, as in the perf anchors);
    ``"ours"``: the pipeline's own reader (``rorem_data.core.images.read_rgb``: OpenCV's PNG
    decoder after a header check). Masks: ``read_mask``.
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(_DecodeOnly(items, reader), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=_count,
                        prefetch_factor=4 if num_workers else None)
    t = time.perf_counter()
    n = sum(loader)
    return n / (time.perf_counter() - t)


def preload_views(featurizer, items):
    """The featurizer's model inputs for ``items``, preprocessed, in RAM: (n * 5, 3, S, S)."""
    import torch

    from rorem_data.features.pairs import read_pair

    featurizer.setup()
    views = []
    for s, r, m in items:
        a = read_pair(s, r, m, item="x")
        views.append(featurizer._to_model_input(featurizer.prepare(*a)[None]))
    return torch.cat(views)


def bare_forward_rate(featurizer, x, batch_size: int) -> float:
    """Encoder images/s on preprocessed tensors held in RAM, ``batch_size`` items per call,
    with the torch threads ``featurize_paths`` would use."""
    import torch

    per = batch_size * 5
    model = featurizer._model
    threads = torch.get_num_threads()
    if featurizer.light:
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            t = time.perf_counter()
            for k in range(0, len(x), per):
                model.encode_image(x[k:k + per], normalize=True)
            dt = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
    return len(x) / dt


def ours_rate(featurizer, items, batch_size: int, num_workers: int) -> float:
    from rorem_data.features.batching import featurize_paths

    t = time.perf_counter()
    featurize_paths(featurizer, items, batch_size=batch_size, num_workers=num_workers,
                    progress=False)
    return len(items) / (time.perf_counter() - t)


def tiny_clip_dir(folder: str) -> str:
    """A random open_clip at a CLIP-like text config (77 tokens, the real vocabulary size)."""
    from rorem_data.testing.tiny import build_tiny_clip

    return build_tiny_clip(folder, embed_dim=64, context_length=77, vocab_size=49408,
                           text_width=64, text_layers=2)


def median(xs):
    return float(np.median(xs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=96, help="items for the tiny/stats cases")
    ap.add_argument("--b32-items", type=int, default=24, help="items for the ViT-B-32 case")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3,
                    help="measured rounds (one more warm-up round is run first and dropped)")
    ap.add_argument("--skip-b32", action="store_true")
    ap.add_argument("--data", default=None, help="folder for the PNGs (default: a temp dir)")
    args = ap.parse_args(argv)

    import torch

    from rorem_data.features.base import get_featurizer
    from rorem_data.features.batching import featurize_paths
    from rorem_data.features.cache import FeatureCache

    os.environ.setdefault("ROREM_PROGRESS", "0")
    tmp = tempfile.mkdtemp(prefix="rorem-bench-feat-")
    data = args.data or os.path.join(tmp, "items")
    t = time.perf_counter()
    items = make_items(data, max(args.items, args.b32_items))
    print(f"# {len(items)} items of 3 PNGs 512x512 written in {time.perf_counter() - t:.1f} s; "
          f"torch threads {torch.get_num_threads()}, workers {args.workers}, "
          f"cpus {os.cpu_count()}", flush=True)
    rounds = args.runs + 1  # round 1 warms up (page cache, imports, worker start) and is dropped
    sub = items[:args.items]
    bs = args.batch_size
    tiny = "local-dir:" + tiny_clip_dir(os.path.join(tmp, "tiny"))
    f_stats = get_featurizer("stats")
    f_oc = get_featurizer("clip", model=tiny)
    f_area = get_featurizer("clip", model=tiny, resize="area")
    # every case once per round, interleaved, so the shared machine's load hits all alike
    cases = {
        "decode only, PIL": lambda: decode_only_rate(sub, bs, args.workers, "pil"),
        "decode only, our reader": lambda: decode_only_rate(sub, bs, args.workers, "ours"),
        "stats": lambda: ours_rate(f_stats, sub, bs, args.workers),
        "clip tiny 64px, open_clip transform": lambda: ours_rate(f_oc, sub, bs, args.workers),
        "clip tiny 64px, resize='area'": lambda: ours_rate(f_area, sub, bs, args.workers),
    }
    rates = {k: [] for k in cases}
    try:
        for r in range(rounds):
            for name, fn in cases.items():
                rates[name].append(fn())
            print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()),
                  flush=True)
        b32 = None
        if not args.skip_b32:
            f_b32 = get_featurizer("clip", model="ViT-B-32")
            sub32 = items[:args.b32_items]
            x32 = preload_views(f_b32, sub32)
            b32 = {"bare forward": [], "ours": []}
            for r in range(rounds):
                b32["bare forward"].append(bare_forward_rate(f_b32, x32, 8))
                b32["ours"].append(5 * ours_rate(f_b32, sub32, 8, args.workers))
                print(f"  ViT-B-32 round {r + 1}: bare {b32['bare forward'][-1]:.1f} img/s, "
                      f"ours {b32['ours'][-1]:.1f} img/s", flush=True)
        x_tiny = preload_views(f_area, sub)
        tiny_fwd = median([bare_forward_rate(f_area, x_tiny, bs) for _ in range(3)])

        # the cache: first run fills it, the second computes nothing
        ids = [f"item-{i}" for i in range(len(sub))]
        root = os.path.join(tmp, "cache")
        t = time.perf_counter()
        featurize_paths(f_stats, sub, ids=ids, cache=root, batch_size=bs,
                        num_workers=args.workers, progress=False)
        first = time.perf_counter() - t
        if FeatureCache(root, f_stats.key, f_stats.key_config).missing(ids):
            raise RuntimeError("cache incomplete after the first run")
        t = time.perf_counter()
        featurize_paths(f_stats, sub, ids=ids, cache=root, batch_size=bs,
                        num_workers=args.workers, progress=False)
        second = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def ratio(a, b):  # median over rounds of the same-round ratio (robust to load drift)
        return median([x / y for x, y in zip(rates[a][1:], rates[b][1:])])

    print()
    print(f"{len(sub)} items (512x512 PNG source + result + mask), batch {bs}, "
          f"{args.workers} workers; medians of {rounds - 1} interleaved rounds")
    print()
    print("| pipeline | items/s | / decode-only (PIL) | / decode-only (our reader) |")
    print("|---|---:|---:|---:|")
    for name in cases:
        print(f"| {name} | {median(rates[name][1:]):.1f} | "
              f"{ratio(name, 'decode only, PIL'):.2f} | "
              f"{ratio(name, 'decode only, our reader'):.2f} |")
    print()
    print(f"tiny CLIP bare forward on preloaded tensors (1 thread): {tiny_fwd:,.0f} img/s "
          f"= {tiny_fwd / 5:,.0f} items/s: the tiny model is not the limit")
    if b32:
        rs = [o / f for o, f in zip(b32["ours"][1:], b32["bare forward"][1:])]
        print()
        print(f"| ViT-B-32 (random weights, {len(sub32)} items, 5 images/item, batch 8 items) "
              "| encoder img/s |")
        print("|---|---:|")
        print(f"| bare forward, preprocessed tensors in RAM | "
              f"{median(b32['bare forward'][1:]):.1f} |")
        print(f"| ours, featurize_paths from PNG | {median(b32['ours'][1:]):.1f} |")
        print(f"| ratio (median of same-round ratios) | {median(rs):.2f} |")
    print()
    print(f"cache (stats): first run {first:.2f} s ({len(sub) / first:.1f} items/s), second run "
          f"over the same {len(sub)} items {second * 1000:.0f} ms (nothing computed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
