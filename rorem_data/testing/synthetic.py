"""Synthetic object-removal scenes where the object-free truth is known exactly.

A scene is a textured background (smooth colour field, stripes or checks, grain) with one or
more objects of varied shape, size and colour, each casting a soft shadow. The mask covers the
object and its shadow (slightly dilated), so source and truth differ only inside the mask.

:func:`degrade` turns the truth into the typical remover failures (residue of the object, a
hallucinated new object, a blurry fill, changes outside the mask), which gives tests,
benchmarks and the demo labelled candidates with known answers.

Writers produce the RORem seed layout, a pool folder (``images/`` + ``masks/``, several masks
per image, the truths in ``truth/``) and a COCO instance file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("ellipse", "rectangle", "triangle", "blob")
FAILURES = ("residue", "hallucination", "blur", "outside")


@dataclass
class Scene:
    """One synthetic scene.

    Attributes
    ----------
    source : ndarray, uint8, (H, W, 3)
        Image with the objects.
    truths : list of ndarray, uint8, (H, W, 3)
        For each object k: the source with object k (and its shadow) removed.
    masks : list of ndarray, bool, (H, W)
        For each object k: its removal mask (object + shadow, dilated).
    categories : list of str
        Shape name of each object.
    """

    source: np.ndarray
    truths: list
    masks: list
    categories: list


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured background, uint8 (size, size, 3)."""
    low = rng.uniform(60, 200, size=(4, 4, 3)).astype(np.float32)
    field = np.asarray(Image.fromarray(low.astype(np.uint8)).resize((size, size), Image.BICUBIC),
                       dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(3)
    if kind == 0:  # stripes
        f = rng.uniform(3, 10)
        ang = rng.uniform(0, np.pi)
        tex = np.sin(2 * np.pi * f * (xx * np.cos(ang) + yy * np.sin(ang)))
    elif kind == 1:  # checks
        f = rng.integers(3, 9)
        tex = np.sign(np.sin(2 * np.pi * f * xx) * np.sin(2 * np.pi * f * yy))
    else:  # smooth blotches
        tex = np.asarray(Image.fromarray(rng.uniform(0, 255, (8, 8)).astype(np.uint8))
                         .resize((size, size), Image.BICUBIC), dtype=np.float32) / 127.5 - 1
    amp = rng.uniform(8, 28)
    img = field + amp * tex[..., None] + rng.normal(0, 3, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(rng, size, shape, box) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    x0, y0, x1, y1 = box
    if shape == "ellipse":
        d.ellipse(box, fill=255)
    elif shape == "rectangle":
        d.rectangle(box, fill=255)
    elif shape == "triangle":
        d.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=255)
    else:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        r = (x1 - x0) / 2
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = r * rng.uniform(0.6, 1.0, 9)
        d.polygon([(cx + rr * np.cos(a), cy + rr * np.sin(a)) for a, rr in zip(angles, radii)], fill=255)
    return m


def make_scene(seed=None, size: int = 64, n_objects: int = 1,
               min_frac: float = 0.15, max_frac: float = 0.45) -> Scene:
    """Draw a scene with ``n_objects`` objects whose side is ``min_frac..max_frac`` of ``size``."""
    rng = _rng(seed)
    bg = background(rng, size).astype(np.float32)
    layers = []
    for _ in range(n_objects):
        shape = SHAPES[rng.integers(len(SHAPES))]
        side = rng.uniform(min_frac, max_frac) * size
        x0 = rng.uniform(0, size - side)
        y0 = rng.uniform(0, size - side)
        box = (x0, y0, x0 + side, y0 + side)
        obj = np.asarray(_shape_mask(rng, size, shape, box), dtype=np.float32) / 255
        off = max(1, int(side * 0.12))
        sh = Image.fromarray((obj * 255).astype(np.uint8)).transform(
            (size, size), Image.AFFINE, (1, 0, -off, 0, 1, -off))
        shadow = np.asarray(sh.filter(ImageFilter.GaussianBlur(max(1.0, side * 0.08))),
                            dtype=np.float32) / 255
        shadow = np.where(shadow > 0.08, shadow, 0.0) * rng.uniform(0.3, 0.6)
        colour = rng.uniform(0, 255, 3)
        shade = rng.uniform(-40, 40, size=(1, 1, 3)) * np.linspace(-1, 1, size)[:, None, None]
        region = (obj > 0.02) | (shadow > 0)
        region_img = Image.fromarray((region * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(3))
        layers.append((shape, obj, shadow, colour, shade, np.asarray(region_img) > 0))

    def compose(skip: int | None) -> np.ndarray:
        img = bg.copy()
        for k, (_s, obj, shadow, colour, shade, _r) in enumerate(layers):
            if k == skip:
                continue
            img = img * (1 - shadow[..., None])
            img = img * (1 - obj[..., None]) + (colour + shade) * obj[..., None]
        return np.clip(img, 0, 255).astype(np.uint8)

    source = compose(None)
    truths = [compose(k) for k in range(n_objects)]
    masks = []
    for k, t in enumerate(truths):
        diff = np.abs(source.astype(np.int16) - t.astype(np.int16)).max(axis=2) > 0
        masks.append(layers[k][5] | diff)
    return Scene(source=source, truths=truths, masks=masks, categories=[l[0] for l in layers])


def degrade(source: np.ndarray, truth: np.ndarray, mask: np.ndarray, mode: str,
            seed=None, strength: float = 1.0) -> np.ndarray:
    """A remover result of a known kind, uint8 (H, W, 3).

    Parameters
    ----------
    mode : {"clean", "residue", "hallucination", "blur", "outside"}
        ``clean`` is the truth with slight generation noise; ``residue`` leaves the object
        semi-visible; ``hallucination`` paints a new object inside the mask; ``blur`` fills the
        mask with a smeared average; ``outside`` damages pixels outside the mask.
    strength : float
        0..1, how strong the failure is.
    """
    rng = _rng(seed)
    t = truth.astype(np.float32)
    s = source.astype(np.float32)
    m = mask[..., None].astype(np.float32)
    h, w = mask.shape
    if mode == "clean":
        out = t + rng.normal(0, 2.0, t.shape) * m
    elif mode == "residue":
        a = rng.uniform(0.35, 0.8) * strength
        out = t * (1 - m) + (a * s + (1 - a) * t) * m
    elif mode == "hallucination":
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean(), xs.mean()
        r = float(max(2.0, 0.35 * np.sqrt(mask.sum() / np.pi)) * (0.5 + 0.5 * strength))
        blob = np.zeros((h, w), np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        blob[((yy - cy) ** 2 / (r * rng.uniform(0.6, 1.4)) ** 2 + (xx - cx) ** 2 / r ** 2) <= 1] = 1
        blob *= mask
        colour = rng.uniform(0, 255, 3)
        out = t * (1 - blob[..., None]) + colour * blob[..., None]
    elif mode == "blur":
        radius = float(max(2.0, 0.25 * np.sqrt(mask.sum())) * (0.5 + strength))
        ring = np.asarray(Image.fromarray((mask * 255).astype(np.uint8))
                          .filter(ImageFilter.MaxFilter(7)), dtype=bool) & ~mask
        fill = t[ring].mean(axis=0) if ring.any() else t.mean(axis=(0, 1))
        base = t * (1 - m) + fill * m
        blurred = np.asarray(Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
                             .filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
        out = t * (1 - m) + blurred * m
    elif mode == "outside":
        out = t + rng.normal(0, 2.0, t.shape) * m
        noise = np.asarray(Image.fromarray(rng.uniform(0, 255, (h // 4 + 1, w // 4 + 1)).astype(np.uint8))
                           .resize((w, h), Image.NEAREST), dtype=np.float32)
        out = out + (1 - m) * (noise[..., None] - 128) * 0.15 * strength
    else:
        raise ValueError(f"mode must be 'clean' or one of {FAILURES}; got {mode!r}")
    return np.clip(out, 0, 255).astype(np.uint8)


def _save(arr: np.ndarray, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", compress_level=1)


def _save_mask(mask: np.ndarray, path: str) -> None:
    _save(np.where(mask, 255, 0).astype(np.uint8), path)


def write_seed_set(root: str, n: int, *, size: int = 64, seed: int = 0) -> str:
    """Write ``n`` seed triplets in the RORem layout under ``root``; returns the meta.json path."""
    rng = np.random.default_rng(seed)
    meta = []
    for i in range(n):
        sc = make_scene(rng, size=size)
        name = f"{i:06d}.png"
        _save(sc.source, os.path.join(root, "source", name))
        _save_mask(sc.masks[0], os.path.join(root, "mask", name))
        _save(sc.truths[0], os.path.join(root, "GT", name))
        meta.append({"source": f"source/{name}", "mask": f"mask/{name}", "GT": f"GT/{name}"})
    path = os.path.join(root, "meta.json")
    with open(path, "w") as fh:
        json.dump(meta, fh, indent=1)
    return path


def write_pool_folder(root: str, n_images: int, *, size: int = 64, seed: int = 1,
                      max_objects: int = 2) -> str:
    """Write a pool folder: ``images/<i>.png``, ``masks/<i>_<k>.png`` and the object-free
    truths ``truth/<i>_<k>.png`` (for simulated reviewers). Returns ``root``."""
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        k_obj = int(rng.integers(1, max_objects + 1))
        sc = make_scene(rng, size=size, n_objects=k_obj, max_frac=0.35)
        stem = f"{i:06d}"
        _save(sc.source, os.path.join(root, "images", f"{stem}.png"))
        for k in range(k_obj):
            _save_mask(sc.masks[k], os.path.join(root, "masks", f"{stem}_{k}.png"))
            _save(sc.truths[k], os.path.join(root, "truth", f"{stem}_{k}.png"))
    return root


def write_coco(root: str, n_images: int, *, size: int = 64, seed: int = 2, rle_every: int = 2) -> str:
    """Write ``images/`` and ``instances.json`` (COCO). Every ``rle_every``-th instance is stored
    as compressed RLE, the rest as polygons (of the mask's bounding box hull). Returns the JSON
    path."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    images, anns = [], []
    cats = {s: i + 1 for i, s in enumerate(SHAPES)}
    ann_id = 1
    for i in range(n_images):
        sc = make_scene(rng, size=size, n_objects=2, max_frac=0.35)
        fname = f"{i:06d}.png"
        _save(sc.source, os.path.join(root, "images", fname))
        images.append({"id": i + 1, "file_name": fname, "width": size, "height": size})
        for k, m in enumerate(sc.masks):
            if ann_id % rle_every == 0:
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                seg = {"size": rle["size"], "counts": rle["counts"].decode()}
            else:
                ys, xs = np.nonzero(m)
                x0, x1, y0, y1 = float(xs.min()), float(xs.max() + 1), float(ys.min()), float(ys.max() + 1)
                seg = [[x0, y0, x1, y0, x1, y1, x0, y1]]
            anns.append({"id": ann_id, "image_id": i + 1, "category_id": cats[sc.categories[k]],
                         "segmentation": seg, "iscrowd": 0, "area": float(m.sum()),
                         "bbox": [0, 0, size, size]})
            ann_id += 1
    path = os.path.join(root, "instances.json")
    with open(path, "w") as fh:
        json.dump({"images": images, "annotations": anns,
                   "categories": [{"id": v, "name": k} for k, v in cats.items()]}, fh)
    return path
