"""One removal candidate as arrays: the (source, result, mask) triple, read from files and checked.

Every consumer of candidates - the featurizers, the DataLoader pipeline, the discriminators
that take raw pairs - reads and checks them here, with one set of messages that name the item
and the file. Images are decoded with :func:`rorem_data.core.images.read_rgb` and masks with
:func:`rorem_data.core.images.read_mask` (the RORem mask convention); nothing else reads image
files. Pure numpy + the core image reader.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from rorem_data.core.errors import ValidationError
from rorem_data.core.images import ImageProblem, mask_to_binary, read_mask, read_rgb

__all__ = ["check_items", "check_pair_arrays", "read_pair"]


def check_pair_arrays(source, result, mask, *, item: str):
    """Validate one (source, result, mask) triple of arrays; return them normalised.

    Parameters
    ----------
    source, result : array-like, uint8, (H, W, 3) or (H, W, 4)
        RGB(A) images (alpha is dropped); same size.
    mask : array-like, (H, W) or (H, W, C)
        Object mask (True / non-zero = object); binarised with the RORem convention.
    item : str
        How messages name the item (e.g. ``"item 3 (a.png)"``).

    Returns
    -------
    source, result : ndarray, uint8, (H, W, 3), C-contiguous
    mask : ndarray, bool, (H, W)

    Raises
    ------
    ValidationError
        Naming ``item``: wrong dtype/shape, sizes that differ, or an empty mask.

    Examples
    --------
    >>> s = np.zeros((4, 4, 3), np.uint8); m = np.eye(4, dtype=bool)
    >>> [a.shape for a in check_pair_arrays(s, s, m, item="item 0")]
    [(4, 4, 3), (4, 4, 3), (4, 4)]
    """
    def rgb(a, what):
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[2] == 4:
            a = a[..., :3]
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValidationError(f"{item}: {what} must be an RGB image of shape (H, W, 3); got "
                                  f"shape {a.shape}. Convert it to RGB first.")
        if a.dtype != np.uint8:
            raise ValidationError(f"{item}: {what} must be uint8 (0..255); got {a.dtype}. "
                                  "Convert with np.clip(x, 0, 255).astype(np.uint8).")
        return np.ascontiguousarray(a)

    s = rgb(source, "source")
    r = rgb(result, "result")
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValidationError(f"{item}: mask must be 2-D (H, W); got shape {m.shape}")
    if m.dtype != bool:
        m = mask_to_binary(m)
    if s.shape != r.shape:
        raise ValidationError(f"{item}: result is {r.shape[1]}x{r.shape[0]} but source is "
                              f"{s.shape[1]}x{s.shape[0]}; resize the result to the source size.")
    if m.shape != s.shape[:2]:
        raise ValidationError(f"{item}: mask is {m.shape[1]}x{m.shape[0]} but source is "
                              f"{s.shape[1]}x{s.shape[0]}; resize the mask (nearest) to the "
                              "source size.")
    if not m.any():
        raise ValidationError(f"{item}: mask is empty (no object pixels); drop the item or fix "
                              "the mask.")
    return s, r, m


def work_shape(h: int, w: int, size: int | None) -> tuple[int, int]:
    """``(height, width)`` of an ``h x w`` image brought to longest side ``size`` (unchanged
    when it is not larger, or ``size`` is 0 / None)."""
    if not size or max(h, w) <= size:
        return h, w
    sc = size / max(h, w)
    return max(1, round(h * sc)), max(1, round(w * sc))


def to_work_size(source, result, mask, size: int | None):
    """Bring a candidate's arrays to longest side ``size`` (area resampling; the mask keeps
    pixels covered at least half, or any covered pixel when that leaves none). ``source`` and
    ``result`` may arrive already reduced (a JPEG decoded scaled down); the mask gives the size."""
    import cv2

    h, w = mask.shape
    nh, nw = work_shape(h, w, size)
    if (nh, nw) == (h, w):
        return source, result, mask

    def fit(a):
        return a if a.shape[:2] == (nh, nw) else cv2.resize(a, (nw, nh), interpolation=cv2.INTER_AREA)

    mf = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
    m = mf >= 0.5
    if not m.any():
        m = mf > 0
    return fit(source), fit(result), m


def read_pair(source_path: str, result_path: str, mask_path: str, *, item: str,
              work_size: int | None = None):
    """Decode and check the three files of one candidate.

    With ``work_size`` the arrays come at that longest side (:func:`to_work_size`), and JPEG
    files are decoded scaled down in the DCT where that stays at least as large (several times
    faster than decoding every pixel and throwing most away).

    Returns
    -------
    source, result : ndarray, uint8, (H, W, 3)
    mask : ndarray, bool, (H, W)

    Raises
    ------
    ValidationError
        A missing, unreadable or truncated file (the message names ``item`` and the file), or
        arrays that fail :func:`check_pair_arrays`.
    """
    arrays = []
    for what, path in (("source", source_path), ("result", result_path), ("mask", mask_path)):
        try:
            arrays.append(read_mask(path) if what == "mask" else read_rgb(path, reduce_to=work_size))
        except ImageProblem as exc:
            raise ValidationError(f"{item}: {what} {path}: {exc}") from None
    if work_size:
        source, result, mask = arrays
        shape = mask.shape
        for what, a in (("source", source), ("result", result)):
            if a.ndim == 3 and a.shape[:2] != shape and not _reduced_of(a.shape[:2], shape):
                break  # a real size mismatch: check_pair_arrays names it
        else:
            arrays = list(to_work_size(source, result, mask, work_size))
    return check_pair_arrays(*arrays, item=item)


def _reduced_of(small: tuple, full: tuple) -> bool:
    """``small`` is ``full`` decoded at 1/2, 1/4 or 1/8 (JPEG DCT scaling rounds up)."""
    return any(small == (-(-full[0] // f), -(-full[1] // f)) for f in (2, 4, 8))


def check_items(items: Sequence) -> list[tuple[str, str, str]]:
    """``items`` as a list of ``(source_path, result_path, mask_path)`` string triples.

    Raises
    ------
    ValidationError
        An item that is not a triple of paths (names its position).
    """
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, (tuple, list)) or len(it) != 3 or not all(
                isinstance(p, (str, os.PathLike)) for p in it):
            raise ValidationError(f"item {i} must be (source_path, result_path, mask_path); got "
                                  f"{it!r:.200}")
        out.append(tuple(os.fspath(p) for p in it))
    return out
