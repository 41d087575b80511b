"""A remover's batch inputs: images and masks in any common form, checked item by item.

Every refusal is a :class:`RemoverInputError` whose ``index`` is the item's position in the
batch, so a caller that knows which pool item sits at each position (generation does) can name
it and skip it:

>>> import numpy as np
>>> from rorem_data.removers.inputs import read_batch, RemoverInputError
>>> try:
...     read_batch([np.zeros((8, 8, 3), np.uint8)], [np.ones((4, 4), bool)], [0])
... except RemoverInputError as exc:
...     print(exc.index)
0
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from rorem_data.core.errors import ConfigError, RemoverInputError  # noqa: F401 - re-exported


def as_rgb(image, index: int) -> np.ndarray:
    """An image as uint8 RGB of shape (H, W, 3).

    Parameters
    ----------
    image : PIL.Image, ndarray or str
        RGB(A)/grey PIL image, uint8 array (H, W, 3|4) or (H, W), or a file path (read with
        :func:`rorem_data.core.images.read_rgb`).
    index : int
        The item's batch position, for messages.

    Raises
    ------
    RemoverInputError
    """
    from rorem_data.core.images import ImageProblem, read_rgb

    if isinstance(image, (str, os.PathLike)):
        try:
            return read_rgb(os.fspath(image))
        except ImageProblem as exc:
            raise RemoverInputError(f"batch item {index}: image {os.fspath(image)}: {exc}; check "
                                    "the file", index) from None
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or 0 in a.shape[:2]:
        raise RemoverInputError(f"batch item {index}: image must be (H, W, 3), (H, W, 4) or (H, W) "
                                f"with H, W > 0; got shape {a.shape}", index)
    if a.dtype != np.uint8:
        raise RemoverInputError(f"batch item {index}: image must be uint8 (0..255); got {a.dtype}. "
                                "Convert with (x * 255).clip(0, 255).astype(np.uint8)", index)
    return np.ascontiguousarray(a[..., :3])


def as_mask(mask, index: int) -> np.ndarray:
    """A mask as a bool array (H, W), read the RORem way (first channel, ``v / 255 >= 0.5``).

    Raises
    ------
    RemoverInputError
        Unreadable, not 2-D / 3-D, or empty.
    """
    from rorem_data.core.images import ImageProblem, mask_to_binary, read_mask

    try:
        if isinstance(mask, (str, os.PathLike)):
            out = read_mask(os.fspath(mask))
        elif isinstance(mask, Image.Image):
            out = mask_to_binary(np.asarray(mask.convert("L") if mask.mode in ("P", "1") else mask))
        else:
            out = mask_to_binary(np.asarray(mask))
    except (ImageProblem, ValueError) as exc:
        where = f"mask {os.fspath(mask)}" if isinstance(mask, (str, os.PathLike)) else "mask"
        raise RemoverInputError(f"batch item {index}: {where}: {exc}; check the mask", index) from None
    if not out.any():
        raise RemoverInputError(f"batch item {index}: the mask is empty (no object pixels); give a "
                                "mask with the object as white (255) pixels", index)
    return out


def read_batch(images: Sequence, masks: Sequence, seeds: Sequence[int] | None
               ) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Check and convert one batch: ``(RGB arrays, bool masks, seeds)``.

    Raises
    ------
    ConfigError
        The three lengths differ, or a seed is not an integer.
    RemoverInputError
        An unusable item (``index`` says which), e.g. a mask whose size differs from its image.
    """
    images, masks = list(images), list(masks)
    seeds = list(range(len(images))) if seeds is None else list(seeds)
    if not (len(images) == len(masks) == len(seeds)):
        raise ConfigError(f"remove() needs one mask and one seed per image; got {len(images)} "
                          f"images, {len(masks)} masks, {len(seeds)} seeds")
    out_seeds = []
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise RemoverInputError(f"batch item {i}: seed must be an integer; got {s!r}", i)
        out_seeds.append(int(s))
    arrays, bool_masks = [], []
    for i, (img, m) in enumerate(zip(images, masks)):
        rgb = as_rgb(img, i)
        bm = as_mask(m, i)
        if bm.shape != rgb.shape[:2]:
            raise RemoverInputError(
                f"batch item {i}: the mask is {bm.shape[1]}x{bm.shape[0]} but the image is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; resize the mask to its image", i)
        arrays.append(rgb)
        bool_masks.append(bm)
    return arrays, bool_masks, out_seeds


def cv2_module():
    """OpenCV, or :class:`DependencyError` naming the extra to install."""
    from rorem_data.core.deps import require

    return require("cv2", purpose="mask dilation and the classical remover")


def dilate_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Dilate a bool mask with a ``size x size`` square kernel (``cv2.dilate``, as RORem).

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    size : int
        Kernel side in pixels; 0 or 1 returns the mask unchanged.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((9, 9), bool); m[4, 4] = True
    >>> int(dilate_mask(m, 3).sum())
    9
    """
    if size <= 1:
        return mask
    cv2 = cv2_module()
    kernel = np.ones((size, size), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=1) > 0


__all__ = ["RemoverInputError", "as_mask", "as_rgb", "dilate_mask", "read_batch"]
