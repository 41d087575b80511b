"""Training examples made from seed pairs: what the discriminator can learn before people judge.

A seed triplet's object-free target is a known success; the same seed with the object pasted
back, the fill blurred away, a patch from elsewhere or another seed's object pasted into the
mask is a known failure (:func:`make_result`, which also makes the gold items of
:mod:`rorem_data.rounds.review.gold`).
RORem trained its discriminator on such pairs too. :func:`seed_pair_examples` makes them as
features, in memory (nothing is written to the dataset): half successes, half failures spread
over the failure kinds, from seeds drawn by a fixed seed.

They join the human labels in training only (never the held-out part, which calibrates and
certifies), and give way as human labels arrive: a version trained on ``n`` human labels gets
``max(0, seed_pairs - n)`` of them (:func:`rorem_data.rounds.discriminator.train`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.core.images import ImageProblem, read_mask, read_rgb
from rorem_data.dataset import queries

FAILURE_KINDS = ("pasted_back", "blurred", "patch", "foreign_object")
KINDS = ("good",) + FAILURE_KINDS


def _box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def make_result(kind: str, source: np.ndarray, target: np.ndarray, mask: np.ndarray,
                other: tuple[np.ndarray, np.ndarray] | None, rng: np.random.Generator) -> np.ndarray:
    """The result image of a gold item of ``kind`` (see the module docstring).

    ``source``/``target`` are (H, W, 3) uint8, ``mask`` (H, W) bool; ``other`` is another seed's
    (source, mask) for ``foreign_object``.
    """
    out = target.copy()
    m = mask.astype(bool)
    if kind == "good":
        return out
    if kind == "pasted_back":
        out[m] = source[m]
    elif kind == "blurred":
        blurred = np.asarray(Image.fromarray(target).filter(ImageFilter.GaussianBlur(radius=max(
            3, int(0.25 * max(mask.shape))))))
        flat = np.full_like(target, target[m].mean(axis=0).astype(np.uint8)) if m.any() else target
        out[m] = ((blurred.astype(np.float32) + flat.astype(np.float32)) / 2).astype(np.uint8)[m]
    elif kind == "patch":
        y0, y1, x0, x1 = _box(m)
        h, w = m.shape
        dy = int(rng.integers(h // 4, max(h // 4 + 1, h // 2 + 1)))
        dx = int(rng.integers(w // 4, max(w // 4 + 1, w // 2 + 1)))
        shifted = np.roll(np.roll(np.rot90(target, 2), dy, 0), dx, 1)
        out[m] = shifted[m]
    elif kind == "foreign_object":
        osrc, omask = other
        oy0, oy1, ox0, ox1 = _box(omask)
        y0, y1, x0, x1 = _box(m)
        patch = Image.fromarray(osrc[oy0:oy1, ox0:ox1]).resize((x1 - x0, y1 - y0), Image.BICUBIC)
        pm = Image.fromarray(omask[oy0:oy1, ox0:ox1].astype(np.uint8) * 255).resize(
            (x1 - x0, y1 - y0), Image.NEAREST)
        region = out[y0:y1, x0:x1]
        pmask = np.asarray(pm) > 127
        region[pmask] = np.asarray(patch)[pmask]
        if not pmask.any():
            out[m] = osrc[m] if osrc.shape == source.shape else source[m]
    else:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return out


MIN_ERROR = 20.0  # mean absolute grey-level error inside the mask of a known-bad gold item


def _clearly_wrong(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> bool:
    """A known-bad result must differ clearly from the truth inside the mask."""
    m = mask.astype(bool)
    return bool(m.any()) and float(np.abs(result.astype(np.float32) - target.astype(np.float32))[m].mean()) >= MIN_ERROR


def seed_pair_examples(project, featurizer, n: int, *, rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of up to ``n`` examples made from the project's seeds (fewer when it
    has few seeds or a seed file cannot be read); empty arrays when it has none."""
    empty = np.zeros((0, featurizer.dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
    if n <= 0:
        return empty
    seeds = queries.find(project.dataset, {"kind": schema.KIND_SEED, "status": schema.ACCEPTED},
                         ["key", "filepath", "target_path", "mask.mask_path"])
    seeds = sorted((s for s in seeds if s.get("target_path")), key=lambda s: s["key"])
    if not seeds:
        return empty
    gen = np.random.default_rng([int(rng), 0x5EED])
    order = gen.permutation(len(seeds))
    src_l, res_l, mask_l, y = [], [], [], []
    for j in range(n):
        seed = seeds[int(order[(j // 2) % len(seeds)])]
        good = j % 2 == 0
        try:
            src, tgt = read_rgb(seed["filepath"]), read_rgb(seed["target_path"])
            mask = read_mask(seed["mask"]["mask_path"]).astype(bool)
            other = None
            kind = "good" if good else FAILURE_KINDS[(j // 2) % len(FAILURE_KINDS)]
            if kind == "foreign_object":
                o = seeds[int(order[(j // 2 + 1) % len(seeds)])]
                other = (read_rgb(o["filepath"]), read_mask(o["mask"]["mask_path"]))
        except ImageProblem:
            continue
        if not mask.any() or mask.shape != src.shape[:2] or tgt.shape != src.shape:
            continue
        result = make_result(kind, src, tgt, mask, other, gen)
        if not good and not _clearly_wrong(result, tgt, mask):
            result = make_result("pasted_back", src, tgt, mask, None, gen)
            if not _clearly_wrong(result, tgt, mask):
                continue
        src_l.append(src)
        res_l.append(result)
        mask_l.append(mask)
        y.append(int(good))
    if not y:
        return empty
    X = featurizer.featurize_arrays(src_l, res_l, mask_l)
    return X, np.asarray(y, dtype=np.int64)
