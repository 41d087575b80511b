"""HD strategies: how a photo of any size and aspect reaches a model that works at one size.

Names and defaults follow lama-cleaner / IOPaint (``hd_strategy``, ``hd_strategy_crop_margin``
= 128, ``hd_strategy_crop_trigger_size`` = 800); the spec fields are ``hd_strategy``,
``crop_margin`` and ``crop_trigger_size``.

``resize`` (RORem, the default)
    The whole source is resized to a ``resolution`` x ``resolution`` square (aspect not kept,
    as RORem trains) and the result is resized back to the source size.
``crop``
    When the image's longer side exceeds ``crop_trigger_size``, a window around the mask's
    bounding box plus ``crop_margin`` pixels on every side (clipped to the image; shifted
    inward at a border to keep its size, as IOPaint does) is cut out at native resolution;
    otherwise the window is the whole image. The window is resized (aspect kept) only when its
    longer side is larger than ``resolution``, padded to a multiple of 8, and the model's
    output is cropped, resized back and pasted into the full image: outside the window every
    pixel is the source's.
``original``
    The whole image at its native size, padded to a multiple of 8 (edge pixels repeated,
    mask padded as background) and cropped back.

A :class:`Window` says what one image becomes; :func:`plan_window` computes it,
:func:`to_model` cuts / resizes / pads the image and mask, :func:`from_model` puts the output
back. All numpy / PIL, no torch.

>>> import numpy as np
>>> mask = np.zeros((1000, 1500), bool); mask[400:500, 700:760] = True
>>> plan_window((1500, 1000), mask, strategy="crop", resolution=512).box
(572, 272, 888, 628)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

HD_STRATEGIES = ("resize", "crop", "original")
MULTIPLE = 8  # the VAE scale factor of Stable Diffusion (XL)


@dataclass(frozen=True)
class Window:
    """What the model sees of one source image.

    Attributes
    ----------
    box : (left, top, right, bottom)
        The part of the source given to the model, in source pixels (right / bottom exclusive).
    size : (width, height)
        The size ``box`` is resized to (equal to the box's size when it is not resized).
    padded : (width, height)
        The size given to the model: ``size`` padded on the right and bottom to a multiple of 8
        (for ``resize``: the ``resolution`` square).
    """

    box: tuple[int, int, int, int]
    size: tuple[int, int]
    padded: tuple[int, int]

    @property
    def box_size(self) -> tuple[int, int]:
        """(width, height) of ``box``."""
        return self.box[2] - self.box[0], self.box[3] - self.box[1]

    @property
    def resized(self) -> bool:
        """Whether the box is resized before the model sees it."""
        return self.size != self.box_size

    def to_dict(self) -> dict:
        return {"box": list(self.box), "size": list(self.size), "padded": list(self.padded)}


def round_up(value: int, multiple: int = MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-int(value) // multiple) * multiple


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(left, top, right, bottom)`` of a bool mask's True pixels (exclusive ends).

    Raises
    ------
    ValueError
        The mask has no True pixel.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        raise ValueError("the mask is empty")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def crop_box(box: tuple[int, int, int, int], margin: int,
             image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` on every side, kept inside the image; at a border the window
    is shifted inward so that it keeps its size when the image allows (more context)."""
    width, height = image_size
    left, top, right, bottom = box
    want_w = min(width, right - left + 2 * margin)
    want_h = min(height, bottom - top + 2 * margin)
    new_left = min(max(0, left - margin), width - want_w)
    new_top = min(max(0, top - margin), height - want_h)
    return new_left, new_top, new_left + want_w, new_top + want_h


def _fit(width: int, height: int, limit: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``limit`` (aspect kept, >= 1 px)."""
    scale = limit / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_window(image_size: tuple[int, int], mask: np.ndarray, *, strategy: str = "resize",
                resolution: int = 512, crop_margin: int = 128,
                crop_trigger_size: int = 800, multiple: int = MULTIPLE) -> Window:
    """Where the model looks at one image and at what size.

    Parameters
    ----------
    image_size : (width, height)
    mask : ndarray of bool, shape (height, width)
        The (dilated) object mask; ``crop`` windows contain all of it.
    strategy : {"resize", "crop", "original"}
    resolution : int
        The model's working size.
    crop_margin, crop_trigger_size : int
        See the module docstring.
    multiple : int
        Sides are padded to a multiple of this (8 for SD / SDXL; 16 for the transformer
        families, whose latents are packed in 2x2 patches).

    Returns
    -------
    Window

    Raises
    ------
    ValueError
        An unknown strategy.
    """
    width, height = image_size
    full = (0, 0, width, height)
    if strategy == "resize":
        return Window(full, (resolution, resolution), (resolution, resolution))
    if strategy == "original":
        return Window(full, (width, height), (round_up(width, multiple), round_up(height, multiple)))
    if strategy != "crop":
        raise ValueError(f"unknown hd_strategy {strategy!r}; choose one of {HD_STRATEGIES}")
    box = full
    if max(width, height) > crop_trigger_size:
        box = crop_box(mask_box(mask), crop_margin, image_size)
    bw, bh = box[2] - box[0], box[3] - box[1]
    size = _fit(bw, bh, resolution) if max(bw, bh) > resolution else (bw, bh)
    return Window(box, size, (round_up(size[0], multiple), round_up(size[1], multiple)))


def to_model(image: np.ndarray, mask: np.ndarray, window: Window) -> tuple[Image.Image, Image.Image]:
    """The model's input for one item: the window cut out, resized and padded.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    mask : ndarray of bool, shape (H, W)
    window : Window

    Returns
    -------
    (PIL.Image RGB, PIL.Image L)
        Both of size ``window.padded``; the mask is 0 / 255 and 0 in the padding.
    """
    left, top, right, bottom = window.box
    img = image[top:bottom, left:right]
    msk = mask[top:bottom, left:right]
    if window.resized:
        img = np.asarray(Image.fromarray(img).resize(window.size, Image.BICUBIC))
        msk = np.asarray(Image.fromarray(msk.astype(np.uint8) * 255).resize(window.size,
                                                                             Image.NEAREST)) >= 128
    pad_w, pad_h = window.padded[0] - window.size[0], window.padded[1] - window.size[1]
    if pad_w or pad_h:
        img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        msk = np.pad(msk, ((0, pad_h), (0, pad_w)), mode="constant", constant_values=False)
    return Image.fromarray(np.ascontiguousarray(img)), Image.fromarray(msk.astype(np.uint8) * 255)


def from_model(output: np.ndarray, window: Window, source: np.ndarray) -> np.ndarray:
    """The full-size result: the model's output cropped, resized back and pasted into the source.

    Parameters
    ----------
    output : ndarray of uint8, shape (padded height, padded width, 3)
    window : Window
    source : ndarray of uint8, shape (H, W, 3)

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The source with ``window.box`` replaced by the model's output.
    """
    out = output[:window.size[1], :window.size[0]]
    bw, bh = window.box_size
    if (out.shape[1], out.shape[0]) != (bw, bh):
        out = np.asarray(Image.fromarray(np.ascontiguousarray(out)).resize((bw, bh), Image.BICUBIC))
    left, top, right, bottom = window.box
    if (left, top, right, bottom) == (0, 0, source.shape[1], source.shape[0]):
        return np.ascontiguousarray(out)
    result = source.copy()
    result[top:bottom, left:right] = out
    return result


__all__ = ["HD_STRATEGIES", "Window", "crop_box", "from_model", "mask_box", "plan_window",
           "round_up", "to_model"]
