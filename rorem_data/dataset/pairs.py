"""Checks of input files on disk, run in worker processes: one (source, mask[, target]) item,
or one image with all of its masks (pool folders).

Module-level functions with plain, picklable arguments; imports stay light. Each check also
follows a file that is itself a symlink and refuses it when it leads outside the import's root
(folders on the way were resolved by the importing process, see
:mod:`rorem_data.dataset.ingest_paths`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from rorem_data.core.images import (
    ImageInfo, ImageProblem, check_image, encode_canonical_mask, load_mask_decoded,
)
from rorem_data.dataset.ingest_paths import FIX_LINK, resolve_file

FIX_MISSING = "check the path (paths are relative to the folder of the file that lists them)"
FIX_UNREADABLE = "re-copy or re-encode the file, or drop the entry"


@dataclass(slots=True)
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
    resolved : dict or None
        ``{path: real path}`` for files that are symlinks (leading inside the root).
    conversions : dict or None
        ``{role: (rule, ...)}`` for the files decoding changes (``source``, ``target``,
        ``mask``; see :mod:`rorem_data.core.decode`).
    copies : tuple
        Roles whose decoded pixels differ from the file: the importer stores a decoded copy.
    """

    width: int = 0
    height: int = 0
    mask_area: float = 0.0
    mask_png: bytes | None = None
    problems: list = field(default_factory=list)
    resolved: dict | None = None
    conversions: dict | None = None
    copies: tuple = ()

    def note(self, role: str, decoding) -> None:
        """Record what decoding does to the file of ``role``."""
        conv = tuple(getattr(decoding, "conversions", decoding) or ())
        if not conv:
            return
        if self.conversions is None:
            self.conversions = {}
        self.conversions[role] = conv
        if getattr(decoding, "needs_copy", False) and role not in self.copies:
            self.copies = (*self.copies, role)

    @property
    def ok(self) -> bool:
        return not self.problems

    def real(self, path: str) -> str:
        """Where ``path`` really is (what the dataset stores)."""
        return self.resolved.get(path, path) if self.resolved else path


def _follow(path: str, role: str, real_root: str | None, check: ItemCheck) -> str | None:
    real, problem = resolve_file(path, real_root)
    if problem:
        check.problems.append((path, f"{role} {problem}", FIX_LINK))
        return None
    if real != path:
        if check.resolved is None:
            check.resolved = {}
        check.resolved[path] = real
    return real


def _fix_for(msg: str) -> str:
    return FIX_MISSING if "does not exist" in msg else FIX_UNREADABLE


def check_image_file(path: str, role: str, full_decode: bool, real_root: str | None,
                     check: ItemCheck) -> ImageInfo | None:
    """Header + end-of-file check of one image; problems go to ``check``."""
    real = _follow(path, role, real_root, check)
    if real is None:
        return None
    try:
        info = check_image(real, full_decode=full_decode,
                           role="target" if role.startswith("target") else "source")
    except ImageProblem as exc:
        check.problems.append((path, f"{role} image: {exc}", _fix_for(str(exc))))
        return None
    dec = info.decoding
    if dec is not None and dec.refusal:
        check.problems.append((path, f"{role} image {dec.refusal.split(';')[0]}",
                               dec.refusal.split("; ", 1)[-1]))
        return None
    check.note("target" if role.startswith("target") else "source", dec)
    return info


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


def check_mask_file(mask_path: str, src: ImageInfo | None, source: str, real_root: str | None,
                    check: ItemCheck) -> None:
    """Read a mask, compare its size with the source's, and set area / canonical bytes."""
    real = _follow(mask_path, "mask", real_root, check)
    if real is None:
        return
    try:
        mask, canonical, conversions = load_mask_decoded(real)
    except ImageProblem as exc:
        check.problems.append((mask_path, f"mask image: {exc}", _fix_for(str(exc))))
        return
    check.note("mask", conversions)
    if src is not None and (mask.shape[1], mask.shape[0]) != (src.width, src.height):
        check.problems.append(size_problem(mask_path, mask.shape, src, source))
    for problem, fix in mask_problems(mask):
        check.problems.append((mask_path, problem, fix))
    check.mask_area = float(mask.mean())
    if check.ok and not canonical:
        check.mask_png = encode_canonical_mask(mask)


def size_problem(mask_path: str, shape, src: ImageInfo, source: str) -> tuple[str, str, str]:
    """The problem of a mask whose size is not the source's; names EXIF when it explains it."""
    mh, mw = shape[:2]
    name = os.path.basename(source)
    dec = src.decoding
    if dec is not None and dec.orientation != 1 and (mw, mh) == (dec.raw_width, dec.raw_height):
        return (mask_path,
                f"mask is {mw}x{mh}, the size of {name} as stored, but {name}'s EXIF orientation "
                f"{dec.orientation} has it shown {dec.orientation_words()} ({src.width}x{src.height}), "
                "which is how masks are expected: the mask was drawn on the unrotated pixels",
                f"draw the mask on the photo as viewers show it (or apply the EXIF orientation "
                f"{dec.orientation} to the mask too), or drop the entry")
    return (mask_path, f"mask is {mw}x{mh} but source {name} is {src.width}x{src.height}",
            "resize the mask to the source size (nearest-neighbour) or drop the entry")


def check_item(task: tuple) -> ItemCheck:
    """Check ``(source, mask, target_or_None, full_decode[, real_root])``.

    Verifies each file exists, is a complete image and (with ``real_root``) does not link out
    of the root; that sizes agree; and that the mask is neither empty nor full. Returns the
    canonical mask bytes when the mask needs rewriting.
    """
    source, mask_path, target, full_decode = task[:4]
    real_root = task[4] if len(task) > 4 else None
    check = ItemCheck()
    src = check_image_file(source, "source", full_decode, real_root, check)
    tgt = (check_image_file(target, "target (GT)", full_decode, real_root, check)
           if target is not None else None)
    if src is not None:
        check.width, check.height = src.width, src.height
        if tgt is not None and (tgt.width, tgt.height) != (src.width, src.height):
            check.problems.append((
                target,
                f"target is {tgt.width}x{tgt.height} but source {os.path.basename(source)} is "
                f"{src.width}x{src.height}",
                "resize the target to the source size or drop the entry",
            ))
    check_mask_file(mask_path, src, source, real_root, check)
    return check


def check_image_masks(task: tuple) -> list[ItemCheck]:
    """Check ``(image, [mask, ...], full_decode, real_root)``: the image once, then each mask.

    Returns one :class:`ItemCheck` per mask (the image's problems are repeated on each).
    """
    image, masks, full_decode, real_root = task
    head = ItemCheck()
    info = check_image_file(image, "source", full_decode, real_root, head)
    out = []
    for m in masks:
        c = ItemCheck(problems=list(head.problems),
                      resolved=dict(head.resolved) if head.resolved else None,
                      conversions=dict(head.conversions) if head.conversions else None,
                      copies=head.copies)
        if info is not None:
            c.width, c.height = info.width, info.height
        check_mask_file(m, info, image, real_root, c)
        out.append(c)
    return out
