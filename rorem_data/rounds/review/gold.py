"""Gold items: judgments with a known answer, mixed into human queues to measure reviewers.

Made from the project's seed triplets (whose object-free target is known):

* ``good`` - the seed's own target shown as the result (a known success);
* ``pasted_back`` - the object pasted back inside the mask (a known failure: object visible);
* ``blurred`` - the fill inside the mask blurred away (blurry fill);
* ``patch`` - a patch from elsewhere in the image pasted into the mask (a visible seam);
* ``foreign_object`` - another seed's object pasted into the mask (a new object).

Gold items are samples of their own kind (``gold``): the queue shows them like any candidate
(same preview, same fields - ``kind`` and the answer are hidden from the review view), and
they never enter training, estimates or exports, which read seeds and candidates only.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageFilter

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.core.images import ImageProblem, read_mask, read_rgb, write_bytes_atomic
from rorem_data.dataset import documents, queries, store

GOLD_KINDS = ("good", "pasted_back", "blurred", "patch", "foreign_object")


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
        raise ConfigError(f"gold kind must be one of {', '.join(GOLD_KINDS)}; got {kind!r}")
    return out


MIN_ERROR = 20.0  # mean absolute grey-level error inside the mask of a known-bad gold item


def _clearly_wrong(result: np.ndarray, target: np.ndarray, mask: np.ndarray) -> bool:
    """A known-bad result must differ clearly from the truth inside the mask."""
    m = mask.astype(bool)
    return bool(m.any()) and float(np.abs(result.astype(np.float32) - target.astype(np.float32))[m].mean()) >= MIN_ERROR


def add_gold(project, round: int, n: int, *, rng: int = 0, kinds=GOLD_KINDS,
             good_share: float = 0.5) -> list[str]:
    """Create ``n`` gold items for ``round`` from random seed pairs; returns their sample ids
    (not yet queued: :func:`rorem_data.dataset.queues.mix_in` puts them among the queue).

    About ``good_share`` of them are known-good, the rest spread over the failure kinds.

    Raises
    ------
    ConfigError
        The project has no seed pairs to make gold items from.
    """
    if n <= 0:
        return []
    ds = project.dataset
    seeds = queries.find(ds, {"kind": schema.KIND_SEED, "status": schema.ACCEPTED},
                         ["key", "filepath", "target_path", "mask.mask_path", "metadata.width",
                          "metadata.height", "mask_area", "origin", "license", "license_url"])
    seeds = [s for s in seeds if s.get("target_path")]
    if not seeds:
        raise ConfigError("gold items are made from seed pairs; import seeds first "
                          "(rorem_data.import_seeds), or set gold_rate to 0")
    gen = np.random.default_rng([int(rng), int(round), 0x601D])
    bad_kinds = [k for k in kinds if k != "good"]
    out_dir = project.media_path("candidates", f"round-{int(round)}")
    docs = []
    for j in range(int(n)):
        seed = seeds[int(gen.integers(len(seeds)))]
        kind = "good" if (gen.random() < good_share or not bad_kinds) else bad_kinds[int(gen.integers(len(bad_kinds)))]
        try:
            src, tgt = read_rgb(seed["filepath"]), read_rgb(seed["target_path"])
            mask = read_mask(seed["mask"]["mask_path"])
            other = None
            if kind == "foreign_object":
                o = seeds[int(gen.integers(len(seeds)))]
                other = (read_rgb(o["filepath"]), read_mask(o["mask"]["mask_path"]))
        except ImageProblem:
            continue  # a seed file went missing: make the gold item from another one
        if not mask.any() or mask.shape != src.shape[:2] or tgt.shape != src.shape:
            continue
        result = make_result(kind, src, tgt, mask, other, gen)
        if kind != "good" and not _clearly_wrong(result, tgt, mask):
            kind = "pasted_back"  # a failure a careful reviewer might pass is no gold answer
            result = make_result(kind, src, tgt, mask, other, gen)
            if not _clearly_wrong(result, tgt, mask):
                continue
        key = schema.make_key(schema.KIND_CANDIDATE, "gold", seed["key"], kind, str(round), str(j), str(rng))
        path = os.path.join(out_dir, f"{key}.png")
        buf = io.BytesIO()
        Image.fromarray(result).save(buf, format="PNG", compress_level=3)
        write_bytes_atomic(path, buf.getvalue())
        doc = documents.sample_doc(
            key=key, kind=schema.KIND_GOLD, filepath=seed["filepath"],
            width=seed["metadata"]["width"], height=seed["metadata"]["height"],
            mask_path=seed["mask"]["mask_path"], mask_area=float(seed.get("mask_area") or 0.0),
            origin=seed.get("origin") or "", target_path=path, round=int(round),
            license=seed.get("license"), license_url=seed.get("license_url"))
        doc.update({"status": schema.PENDING, "gold_truth": schema.ACCEPTED if kind == "good" else schema.REJECTED,
                    "gold_kind": kind, "gold_seed": seed["id"]})
        docs.append(doc)
    store.insert_documents(ds, docs)  # keys are fixed by (seed, kind, round, j, rng): a rerun adds nothing
    have = queries.ids_by_key(ds, [d["key"] for d in docs])
    return [have[d["key"]] for d in docs if d["key"] in have]
