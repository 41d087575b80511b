"""Checks of one (source, mask[, target]) item on disk. Runs in worker processes.

Module-level functions with plain arguments, so they pickle; imports stay light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from rorem_data.core.images import ImageProblem, check_image, encode_canonical_mask, load_mask

FIX_MISSING = "check the path (paths are relative to the folder of the file that lists them)"
FIX_UNREADABLE = "re-copy or re-encode the file, or drop the entry"


@dataclass
class ItemCheck:
    """Outcome of checking one item.

    Attributes
    ----------
    width, height : int
        Image size (0 when unknown).
    mask_area : float
        Object pixels / all pixels.
    mask_png : bytes or None
        Canonical mask PNG bytes when the input mask is not canonical and must be rewritten.
    problems : list of (file, problem, fix)
    """

    width: int = 0
    height: int = 0
    mask_area: float = 0.0
    mask_png: bytes | None = None
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _image(path, role, full_decode, check):
    try:
        return check_image(path, full_decode=full_decode)
    except ImageProblem as exc:
        msg = str(exc)
        fix = FIX_MISSING if "does not exist" in msg else FIX_UNREADABLE
        check.problems.append((path, f"{role} image: {msg}", fix))
        return None


def mask_problems(mask: np.ndarray) -> list[tuple[str, str]]:
    """(problem, fix) pairs for an empty or full binary mask."""
    n = int(mask.sum())
    if n == 0:
        return [("mask is empty: no pixel is object (>= 128, or 1 in a 0/1 mask)",
                 "fix the mask (white = object) or drop the entry")]
    if n == mask.size:
        return [("mask is full: every pixel is object, nothing is left to fill from",
                 "fix the mask (black = background) or drop the entry")]
    return []


def check_item(task: tuple) -> ItemCheck:
    """Check ``(source, mask, target_or_None, full_decode)``.

    Verifies each file exists and is a complete image, that sizes agree, and that the mask is
    neither empty nor full. Returns the canonical mask bytes when the mask needs rewriting.
    """
    source, mask_path, target, full_decode = task
    check = ItemCheck()
    src = _image(source, "source", full_decode, check)
    tgt = _image(target, "target (GT)", full_decode, check) if target is not None else None
    canonical = False
    try:
        mask, canonical = load_mask(mask_path)
    except ImageProblem as exc:
        msg = str(exc)
        fix = FIX_MISSING if "does not exist" in msg else FIX_UNREADABLE
        check.problems.append((mask_path, f"mask image: {msg}", fix))
        mask = None
    if src is not None:
        check.width, check.height = src.width, src.height
        if tgt is not None and (tgt.width, tgt.height) != (src.width, src.height):
            check.problems.append((
                target,
                f"target is {tgt.width}x{tgt.height} but source {os.path.basename(source)} is "
                f"{src.width}x{src.height}",
                "resize the target to the source size or drop the entry",
            ))
        if mask is not None and (mask.shape[1], mask.shape[0]) != (src.width, src.height):
            check.problems.append((
                mask_path,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but source {os.path.basename(source)} "
                f"is {src.width}x{src.height}",
                "resize the mask to the source size (nearest-neighbour) or drop the entry",
            ))
    if mask is not None:
        for problem, fix in mask_problems(mask):
            check.problems.append((mask_path, problem, fix))
        check.mask_area = float(mask.mean())
        if check.ok and not canonical:
            check.mask_png = encode_canonical_mask(mask)
    return check
