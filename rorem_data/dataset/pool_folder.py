"""Pool folders: ``images/`` and ``masks/``, masks matched to images by name in linear time.

A mask belongs to the image whose stem (path below ``images/`` without the extension) is

1. the mask's own stem: ``masks/<stem>.png``;
2. the mask's folder: ``masks/<stem>/<k>.png``;
3. the longest prefix of the mask's stem that ends just before a ``_``:
   ``masks/<stem>_<k>.png``, where the image stem may itself contain ``_`` (OpenImages masks
   are ``<image id>_<class>_<box id>.png``).

Each rule is a dictionary lookup, and rule 3 tries only the ``_`` positions of the mask's own
name, longest first, so matching costs O(masks x underscores per name) instead of
O(masks x images). Files and folders that are symlinks are followed when they stay inside the
pool folder and refused by name when they lead out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from rorem_data.core import schema
from rorem_data.core.validate import Problem
from rorem_data.dataset.ingest_paths import FIX_LINK, inside_real, item_key, text_problem

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
FIX_NAMES = "name masks <image stem>.png, <image stem>_<k>.png or <image stem>/<k>.png"


@dataclass(slots=True)
class PoolEntry:
    """One pool item to check. ``image``/``mask`` are real paths (what the dataset stores);
    ``key`` comes from the origin and the names inside the input (paths relative to the pool
    folder; a COCO file's image name and annotation id), so it does not depend on where the
    data sits."""

    item: str
    image: str
    mask: str | None  # None for COCO (the mask comes from the annotation)
    key: str
    category: str | None = None
    ref: str = ""


def match_stem(rel: str, images: Mapping[str, object]) -> str | None:
    """The image stem a mask stem ``rel`` belongs to (see the module doc), or None.

    >>> match_stem("000a1249af2bc5f0_m01g317_0", {"000a1249af2bc5f0": 1})
    '000a1249af2bc5f0'
    >>> match_stem("cat/1", {"cat": 1})
    'cat'
    """
    if rel in images:
        return rel
    head = os.path.dirname(rel)
    if head and head in images:
        return head
    i = rel.rfind("_")
    while i > 0:
        prefix = rel[:i]
        if prefix in images:
            return prefix
        i = rel.rfind("_", 0, i)
    return None


def match_masks(images: Mapping[str, object], mask_stems: Iterable[str]):
    """Match every mask stem to its image stem: ``(pairs, unmatched)`` where ``pairs`` is a
    list of ``(mask stem, image stem)``. Linear in the number of masks."""
    pairs, unmatched = [], []
    for rel in mask_stems:
        stem = match_stem(rel, images)
        if stem is None:
            unmatched.append(rel)
        else:
            pairs.append((rel, stem))
    return pairs, unmatched


@dataclass(slots=True)
class Listing:
    """Image files below one folder: ``rels`` (sorted, relative), the real path of those
    reached through a symlink (``linked``), and the refused ones (``problems``: rel, text)."""

    top: str
    real_top: str
    rels: list
    linked: dict
    problems: list

    def given(self, rel: str) -> str:
        return os.path.join(self.top, rel)

    def real(self, rel: str) -> str:
        return self.linked.get(rel) or os.path.join(self.real_top, rel)


def list_files(top: str, real_root: str, exts=IMAGE_EXTS) -> Listing:
    """Every file with an image extension below ``top`` (one ``scandir`` per folder).

    Symlinked folders and files are followed when their real location is inside
    ``real_root``, and refused otherwise; a linked folder that lies inside ``top`` itself is
    skipped (its files are listed once, under their own names), which also ends link loops.
    """
    top = os.path.abspath(top)
    real_top = os.path.realpath(top)
    rels: list[str] = []
    linked: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    seen = {real_top}
    stack = [("", real_top, False)]
    while stack:
        rel_dir, real_dir, via_link = stack.pop()
        try:
            it = os.scandir(real_dir)
        except OSError as exc:
            problems.append((rel_dir or ".", f"folder cannot be listed ({exc.strerror})"))
            continue
        with it:
            for e in it:
                rel = f"{rel_dir}{os.sep}{e.name}" if rel_dir else e.name
                why = text_problem(e.name)
                if why:
                    problems.append((rel.encode("utf-8", "replace").decode("utf-8"), why))
                    continue
                try:
                    if e.is_symlink():
                        target = os.path.realpath(e.path)
                        if not inside_real(target, real_root):
                            problems.append((rel, f"is a symlink to {target}, outside {real_root}"))
                        elif os.path.isdir(target):
                            if target not in seen and not inside_real(target, real_top):
                                seen.add(target)
                                stack.append((rel, target, True))
                        elif e.name.lower().endswith(exts):
                            rels.append(rel)
                            linked[rel] = target
                    elif e.is_dir(follow_symlinks=False):
                        seen.add(e.path)
                        stack.append((rel, e.path, via_link))
                    elif e.name.lower().endswith(exts) and e.is_file(follow_symlinks=False):
                        rels.append(rel)
                        if via_link:
                            linked[rel] = e.path
                except OSError as exc:
                    problems.append((rel, f"cannot be read ({exc.strerror})"))
    rels.sort()
    return Listing(top, real_top, rels, linked, problems)


def _posix(rel: str) -> str:
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def default_origin(source: str) -> str:
    """The origin name of a pool import when none is given: the folder or JSON file name.

    >>> default_origin("/data/openimages/")
    'openimages'
    >>> default_origin("/data/coco/instances_val.json")
    'instances_val'
    """
    name = os.path.basename(os.path.abspath(os.fspath(source)).rstrip(os.sep))
    return os.path.splitext(name)[0] or "pool"


def other_matches(rel: str, chosen: str, images: Mapping[str, object]) -> list[str]:
    """The other image stems the mask stem ``rel`` could belong to (by the folder or a
    ``_`` prefix) besides ``chosen``."""
    out = []
    head = os.path.dirname(rel)
    if head and head != chosen and head in images:
        out.append(head)
    i = rel.rfind("_")
    while i > 0:
        prefix = rel[:i]
        if prefix != chosen and prefix in images:
            out.append(prefix)
        i = rel.rfind("_", 0, i)
    return out


def scan_folder(root: str, *, origin: str | None = None,
                notes: list | None = None) -> tuple[list[PoolEntry], list[Problem]]:
    """Match ``root/masks`` files to ``root/images`` files by stem (see the module doc).

    Parameters
    ----------
    root : str
        The pool folder.
    origin : str, optional
        Origin name the keys are made with (default: :func:`default_origin`). A key is
        ``(origin, images/<rel>, masks/<rel>)`` with paths relative to ``root``, so the same
        folder gives the same keys wherever it sits.

    Returns
    -------
    entries : list of PoolEntry
        One per matched mask, in mask-name order.
    problems : list of Problem
        Missing folders, two images with one stem, unmatched masks, links out of ``root``.

    With ``notes`` (a list), the decisions that are not problems are appended to it, named:
    images that no mask matches (not imported), and masks whose name matches more than one
    image (the rule that chose, and the images not chosen).
    """
    root = os.path.abspath(root)
    real_root = os.path.realpath(root)
    origin = origin or default_origin(root)
    problems: list[Problem] = []
    img_dir, mask_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    for d in (img_dir, mask_dir):
        if not os.path.isdir(d):
            return [], [Problem(os.path.basename(root), d, "folder does not exist",
                                "a pool folder needs images/ and masks/ (or pass a COCO JSON)")]
        real = os.path.realpath(d)
        if not inside_real(real, real_root):
            return [], [Problem(f"{os.path.basename(d)}/", d, f"folder is a symlink to {real}, "
                                f"outside {root}", FIX_LINK)]
    listings = {}
    for sub, d in (("images", img_dir), ("masks", mask_dir)):
        listing = list_files(d, real_root)
        for rel, why in listing.problems:
            problems.append(Problem(f"{sub}/{rel}", os.path.join(d, rel), why, FIX_LINK
                                    if "symlink" in why else "rename or remove the file"))
        listings[sub] = listing
    imgs, msks = listings["images"], listings["masks"]
    images: dict[str, str] = {}
    for rel in imgs.rels:
        stem = os.path.splitext(rel)[0]
        if stem in images:
            problems.append(Problem(f"images/{rel}", imgs.given(rel),
                                    f"two images share the stem {stem!r} ({images[stem]} and {rel})",
                                    "rename one of them"))
            continue
        images[stem] = rel
    entries = []
    used: set[str] = set()
    ambiguous: list[str] = []
    for rel in msks.rels:
        mstem = os.path.splitext(rel)[0]
        stem = match_stem(mstem, images)
        item = f"masks/{rel}"
        if stem is None:
            problems.append(Problem(item, msks.given(rel),
                                    "no image in images/ matches this mask's name", FIX_NAMES))
            continue
        used.add(stem)
        others = other_matches(mstem, stem, images) if notes is not None else []
        if others:
            ambiguous.append(f"masks/{rel} -> images/{images[stem]} (chosen: the longest name "
                             f"that matches) rather than " + ", ".join(f"images/{images[o]}" for o in others))
        img_rel = images[stem]
        given_mask = msks.given(rel)
        key = item_key(schema.KIND_POOL, "folder", origin, _posix(f"images/{img_rel}"),
                       _posix(f"masks/{rel}"))
        entries.append(PoolEntry(item=item, image=imgs.real(img_rel), mask=msks.real(rel),
                                 key=key, ref=given_mask))
    if notes is not None:
        unused = sorted(rel for stem, rel in images.items() if stem not in used)
        if unused:
            notes.append(f"{len(unused)} image(s) in images/ have no mask and were not imported: "
                         + ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else ""))
        if ambiguous:
            notes.append(f"{len(ambiguous)} mask(s) match more than one image: "
                         + "; ".join(ambiguous[:5]) + (" ..." if len(ambiguous) > 5 else ""))
    return entries, problems
