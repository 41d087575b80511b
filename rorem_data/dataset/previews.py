"""Review previews: one image per candidate showing what a reviewer must judge.

Left to right: the source with the mask outlined, the result, then zoomed crops of the source
and the result around the mask. The App shows the preview as the candidate's media, so a
reviewer sees everything at once without toggling fields.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image, ImageDraw

from rorem_data.core.images import ImageProblem, read_mask, read_rgb, write_bytes_atomic

log = logging.getLogger(__name__)

PANEL = 256
OUTLINE = (255, 40, 40)


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def _fit(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` scaled so its longest side is ``size`` (area resampling down, bicubic up)."""
    import cv2

    h, w = img.shape[:2]
    s = size / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    if (nw, nh) == (w, h):
        return img
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def _fit_mask(mask: np.ndarray, size: int) -> np.ndarray:
    small = _fit(mask.astype(np.float32), size)
    return small >= 0.5 if (small >= 0.5).any() else small > 0


def crop_box(mask: np.ndarray, margin: float = 0.5) -> tuple[int, int, int, int]:
    """Square box around the mask's bounding box, grown by ``margin`` of its side, clipped."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(ys) == 0:
        return 0, 0, w, h
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(y1 - y0, x1 - x0) * (1 + 2 * margin)) + 1
    side = min(side, max(h, w))
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top = int(np.clip(cy - side // 2, 0, max(0, h - side)))
    left = int(np.clip(cx - side // 2, 0, max(0, w - side)))
    return left, top, min(w, left + side), min(h, top + side)


def compose(source: np.ndarray, mask: np.ndarray, result: np.ndarray, *, panel: int = PANEL) -> Image.Image:
    """The side-by-side preview (RGB) of one candidate: the source with the mask outlined, the
    result, and both zoomed on the mask. Each tile is scaled to ``panel`` first and the outline
    drawn at that scale, so a 12-megapixel photo costs little more than decoding it."""
    src = _fit(source, panel).copy()
    small = _fit_mask(mask, panel)
    edge = _outline(small)
    # thicken the outline so it stays visible at the tile's scale
    thick = edge.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            thick |= np.roll(np.roll(edge, dy, 0), dx, 1)
    src[thick] = OUTLINE
    left, top, right, bottom = crop_box(mask)
    tiles = [src, _fit(result, panel), _fit(source[top:bottom, left:right], panel),
             _fit(result[top:bottom, left:right], panel)]
    tiles = [Image.fromarray(np.ascontiguousarray(t)) for t in tiles]
    height = max(t.size[1] for t in tiles)
    canvas = Image.new("RGB", (sum(t.size[0] for t in tiles) + 6 * (len(tiles) - 1), height + 18), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for t, label in zip(tiles, ("source + mask", "result", "source (zoom)", "result (zoom)")):
        canvas.paste(t, (x, 18))
        draw.text((x + 4, 3), label, fill=(230, 230, 230))
        x += t.size[0] + 6
    return canvas


def write_preview(task) -> tuple[str | None, str | None]:
    """Worker: ``(source_path, mask_path, result_path, out_path)`` -> ``(out_path, None)``, or
    ``(None, problem)`` when a file is missing or unreadable (the candidate is still queued;
    the App then shows its source, and the problem is reported)."""
    import io

    source_path, mask_path, result_path, out_path = task
    try:
        src = read_rgb(source_path)
        res = read_rgb(result_path) if result_path else None
        m = read_mask(mask_path)
    except ImageProblem as exc:
        return None, str(exc)
    if res is None:
        return None, "the candidate has no result image"
    if res.shape != src.shape:  # any size and aspect: previews always line up with the source
        res = np.asarray(Image.fromarray(res).resize((src.shape[1], src.shape[0]), Image.BICUBIC))
    if m.shape != src.shape[:2]:
        m = np.asarray(Image.fromarray(m).resize((src.shape[1], src.shape[0]), Image.NEAREST))
    buf = io.BytesIO()
    compose(src, m, res).save(buf, format="JPEG", quality=88)
    write_bytes_atomic(out_path, buf.getvalue())
    return out_path, None


def preview_path(project, sample_id: str) -> str:
    return project.media_path("previews", f"{sample_id}.jpg")


def ensure_previews(project, rows, *, workers: int | None = None) -> list[str | None]:
    """Write missing previews for ``rows`` of (sample_id, source, mask, result); returns their
    paths (None where a file was missing or unreadable - a warning names each such candidate)."""
    
    from rorem_data.core.validate import map_checks

    paths = [preview_path(project, sid) for sid, *_ in rows]
    todo = [(i, (s, m, r, p)) for i, ((sid, s, m, r), p) in enumerate(zip(rows, paths))
            if not os.path.exists(p)]
    if todo:
        done = map_checks(write_preview, [t for _i, t in todo], desc="writing review previews",
                          workers=workers, chunk_size=64)
        for (i, _t), (path, problem) in zip(todo, done):
            if problem is not None:
                paths[i] = None
                log.warning(f"candidate {rows[i][0]}: no preview ({problem}); it is queued and the "
                              "App shows its source - restore the file or reject it")
    return paths
