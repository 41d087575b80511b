"""COCO instance files as pool items: every entry checked by type and size before decoding.

A COCO file is data from elsewhere, so nothing in it reaches a decoder unchecked: ids must be
integers or strings (and unique), ``width``/``height`` positive integers whose product is within
:func:`rorem_data.core.images.max_pixels` and equal to the image file's header, polygons finite
numbers in x/y pairs inside the image, RLE counts non-negative integers that sum to
``width * height``. (pycocotools crashes the process on a polygon with NaN coordinates and
writes past its buffer for RLE counts that overrun the image; neither ever reaches it.) RLE is
decoded here with numpy; polygons are rasterized by pycocotools once they are known to be sane.

Each bad entry is one :class:`~rorem_data.core.validate.Problem` naming it.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from rorem_data.core import images as media
from rorem_data.core import schema
from rorem_data.core.paths import UnsafePath, safe_join
from rorem_data.core.validate import Problem
from rorem_data.dataset.ingest import read_listing
from rorem_data.dataset.ingest_paths import FIX_LINK, RootGuard, item_key, rel_name
from rorem_data.dataset.pairs import ItemCheck, check_image_file, mask_problems
from rorem_data.dataset.pool_folder import PoolEntry, default_origin

FIX_SHAPE = "give a COCO instance file: {images: [...], annotations: [...], categories: [...]}"
FIX_ANN = "fix or drop the annotation"
#: slack allowed around the image for polygon points, in pixels
POLYGON_SLACK = 1.0


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_id(v) -> bool:
    return _is_int(v) or isinstance(v, str)


def _shown(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_problem(field_name: str, expected: str, v) -> str:
    return f"{field_name!r} must be {expected}; got {type(v).__name__} {_shown(v)}"


def _image_size_problem(w, h) -> str | None:
    if not _is_int(w) or not _is_int(h) or w <= 0 or h <= 0:
        return f"width/height must be positive integers; got {_shown(w)} x {_shown(h)}"
    limit = media.max_pixels()
    if w * h > limit:
        return (f"width x height = {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} "
                "(ROREM_MAX_IMAGE_PIXELS)")
    return None


def _duplicates(ids: list) -> dict:
    """id -> positions, for ids used more than once (None ids ignored)."""
    where: dict = {}
    for pos, v in enumerate(ids):
        if v is not None:
            where.setdefault(v, []).append(pos)
    return {k: v for k, v in where.items() if len(v) > 1}


def _read_categories(cats, name: str, json_path: str, problems: list) -> tuple[dict, set]:
    """(id -> name, ambiguous ids)."""
    if cats is None:
        return {}, set()
    if not isinstance(cats, list):
        problems.append(Problem(name, json_path, _type_problem("categories", "a list", cats), FIX_SHAPE))
        return {}, set()
    out, ids = {}, []
    for i, c in enumerate(cats):
        item = f"{name} categories[{i}]"
        cid = c.get("id") if isinstance(c, dict) else None
        if not isinstance(c, dict) or not _is_id(cid):
            problems.append(Problem(item, json_path, "category needs an integer or string 'id'",
                                    "fix or drop the category"))
            ids.append(None)
            continue
        cname = c.get("name", cid)
        if not isinstance(cname, (str, int)) or isinstance(cname, bool):
            problems.append(Problem(item, json_path, _type_problem("name", "a string", cname),
                                    "fix or drop the category"))
            ids.append(None)
            continue
        ids.append(cid)
        out[cid] = str(cname)
    dups = _duplicates(ids)
    for cid, positions in dups.items():
        for pos in positions:
            problems.append(Problem(f"{name} categories[{pos}]", json_path,
                                    f"category id {cid!r} is used {len(positions)} times "
                                    f"(categories{positions})", "give each category its own id"))
        out.pop(cid, None)
    return out, set(dups)


def read_coco(json_path: str, images_dir: str | None = None, *, origin: str | None = None):
    """Parse and check a COCO instance-segmentation file (no pixel is decoded here).

    Parameters
    ----------
    json_path : str
    images_dir : str, optional
        Where ``file_name`` paths are relative to (default: ``images/`` beside the JSON if it
        exists, else the JSON's folder).
    origin : str, optional
        Origin name the keys are made with (default: the JSON file's name without ``.json``).
        A key is ``(origin, file_name, annotation id)``, ``file_name`` normalized and
        ``/``-separated, so the same file gives the same keys wherever it and the images sit.

    Returns
    -------
    groups : dict (image_path, width, height) -> [(entry, segmentation)]
        ``image_path`` has its folders resolved (inside ``images_dir``).
    problems : list of Problem
    n_crowd : int
        Crowd annotations left out.
    real_root : str
        The real path of ``images_dir`` (workers check that image files stay inside it).
    """
    json_path = os.path.abspath(json_path)
    name = os.path.basename(json_path)
    origin = origin or default_origin(json_path)
    if images_dir is None:
        beside = os.path.join(os.path.dirname(json_path), "images")
        images_dir = beside if os.path.isdir(beside) else os.path.dirname(json_path)
    images_dir = os.path.abspath(images_dir)
    guard = RootGuard(images_dir)
    if not os.path.isdir(images_dir):
        return {}, [Problem(name, images_dir, "image folder does not exist",
                            "pass images_dir (--images DIR), the folder the file_name paths are relative to")], 0, guard.real_root
    data, problems = read_listing(json_path, item=name, fix=FIX_SHAPE)
    if problems:
        return {}, problems, 0, guard.real_root
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        return {}, [Problem(name, json_path, "no 'images' and 'annotations' lists", FIX_SHAPE)], 0, guard.real_root
    cats, bad_cats = _read_categories(data.get("categories"), name, json_path, problems)

    imgs, image_ids = {}, []
    for i, im in enumerate(data["images"]):
        item = f"{name} images[{i}]"
        image_ids.append(None)
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            problems.append(Problem(item, json_path, "image entry lacks 'id' or 'file_name'", FIX_SHAPE))
            continue
        if not _is_id(im["id"]):
            problems.append(Problem(item, json_path, _type_problem("id", "an integer or a string", im["id"]),
                                    "give each image an integer id"))
            continue
        image_ids[-1] = im["id"]
        try:
            path = safe_join(images_dir, im["file_name"])
            path.encode("utf-8")
        except UnsafePath as exc:
            problems.append(Problem(item, str(im["file_name"])[:200], str(exc),
                                    f"use file names relative to {images_dir}"))
            continue
        except UnicodeEncodeError:
            problems.append(Problem(item, json_path, "'file_name' is not valid UTF-8 text",
                                    "write the file name as plain UTF-8 text"))
            continue
        why = _image_size_problem(im.get("width"), im.get("height"))
        if why:
            problems.append(Problem(item, path, why, "give each image its integer width and height "
                                    "as in the image file"))
            continue
        placed, why = guard.place(path)
        if why:
            problems.append(Problem(item, path, why, FIX_LINK))
            continue
        imgs[im["id"]] = (placed, im["width"], im["height"], rel_name(path, images_dir))
    dup_images = _duplicates(image_ids)
    listed_ids = {v for v in image_ids if v is not None}
    for iid, positions in dup_images.items():
        for pos in positions:
            problems.append(Problem(f"{name} images[{pos}]", json_path,
                                    f"image id {iid!r} is used {len(positions)} times (images{positions})",
                                    "give each image its own id"))
        imgs.pop(iid, None)

    anns = data["annotations"]
    ann_ids = []
    for i, a in enumerate(anns):
        aid = a.get("id", i) if isinstance(a, dict) else None
        ann_ids.append(aid if _is_id(aid) else None)
    dup_anns = _duplicates(ann_ids)
    groups: dict = {}
    n_crowd = 0
    for i, a in enumerate(anns):
        item = f"{name} annotations[{i}]"
        if not isinstance(a, dict) or "image_id" not in a or "segmentation" not in a:
            problems.append(Problem(item, json_path, "annotation lacks 'image_id' or 'segmentation'",
                                    FIX_SHAPE))
            continue
        ann_id = ann_ids[i]
        if ann_id is None:
            problems.append(Problem(item, json_path, _type_problem("id", "an integer or a string", a.get("id")),
                                    "give each annotation a unique integer id"))
            continue
        if ann_id in dup_anns:
            problems.append(Problem(f"{name} annotation {ann_id} ({item[len(name) + 1:]})", json_path,
                                    f"annotation id {ann_id!r} is used {len(dup_anns[ann_id])} times "
                                    f"(annotations{dup_anns[ann_id]}); neither is imported",
                                    "give each annotation its own id"))
            continue
        item = f"{name} annotation {ann_id}"
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or not isinstance(crowd, (int, bool)):
            problems.append(Problem(item, json_path, _type_problem("iscrowd", "0 or 1", crowd), FIX_ANN))
            continue
        if crowd:
            n_crowd += 1
            continue
        image_id, cat_id = a["image_id"], a.get("category_id")
        if not _is_id(image_id):
            problems.append(Problem(item, json_path, _type_problem("image_id", "an integer or a string", image_id),
                                    FIX_ANN))
            continue
        if cat_id is not None and not _is_id(cat_id):
            problems.append(Problem(item, json_path, _type_problem("category_id", "an integer or a string", cat_id),
                                    FIX_ANN))
            continue
        if cat_id in bad_cats:
            problems.append(Problem(item, json_path, f"category_id {cat_id!r} is ambiguous (see categories)",
                                    "give each category its own id"))
            continue
        if image_id not in imgs:
            why = ("refers to an image entry refused above" if image_id in listed_ids
                   else "is not in 'images'")
            problems.append(Problem(item, json_path, f"image_id {image_id!r} {why}",
                                    "add or fix the image, or drop the annotation"))
            continue
        path, w, h, file_name = imgs[image_id]
        # json.dumps tells the annotation ids 7 and "7" apart
        key = item_key(schema.KIND_POOL, "coco", origin, file_name, f"ann:{json.dumps(ann_id)}")
        entry = PoolEntry(item=item, image=path, mask=None, key=key, category=cats.get(cat_id),
                          ref=f"{json_path}#{ann_id}")
        groups.setdefault((path, w, h), []).append((entry, a["segmentation"]))
    return groups, problems, n_crowd, guard.real_root


# ---------------------------------------------------------------------------------------------
# segmentations: checked, then decoded


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def polygon_problem(seg: list, height: int, width: int) -> str | None:
    """Why a polygon list cannot be rasterized safely, or None."""
    if not seg:
        return "polygon list is empty"
    for k, poly in enumerate(seg):
        if not isinstance(poly, list):
            return f"polygon {k} is a {type(poly).__name__}, not a list of x, y numbers"
        if len(poly) < 6 or len(poly) % 2:
            return (f"polygon {k} has {len(poly)} numbers; it needs x, y pairs of at least "
                    "3 points (an even count >= 6)")
        for j, v in enumerate(poly):
            if not _number(v) or (isinstance(v, float) and not math.isfinite(v)):
                return f"polygon {k} value {j} is {_shown(v)}, not a finite number"
        xs, ys = poly[0::2], poly[1::2]
        lo = -POLYGON_SLACK
        if min(xs) < lo or max(xs) > width + POLYGON_SLACK or min(ys) < lo \
                or max(ys) > height + POLYGON_SLACK:
            return (f"polygon {k} has points outside the {width}x{height} image (x in "
                    f"[{min(xs):g}, {max(xs):g}], y in [{min(ys):g}, {max(ys):g}])")
    return None


def rle_counts_from_string(s: str, limit: int) -> list[int]:
    """Counts of a COCO compressed RLE string (the LEB128-like text form pycocotools writes).

    Each count is 5-bit groups in characters ``'0'`` + value, the 0x20 bit meaning "more
    follows", the 0x10 bit of the last group the sign; from the third count on each is stored
    as the difference to the count two before.

    Raises
    ------
    ValueError
        A character outside the alphabet, a number cut off or too long, more than ``limit``
        counts.
    """
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("RLE string ends in the middle of a count")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE string holds {s[p]!r}, which is not an RLE character")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if k > 13:
                raise ValueError("RLE string holds a count longer than 64 bits")
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
        if len(counts) > limit:
            raise ValueError(f"RLE string holds more than {limit} counts")
    return counts


def rle_problem(seg: dict, height: int, width: int) -> tuple[str | None, list[int] | None]:
    """(why the RLE is unusable, or None; its counts when usable)."""
    size = seg.get("size")
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) for v in size):
        return f"RLE 'size' must be [height, width] integers; got {_shown(size)}", None
    if size != [height, width]:
        return f"RLE size {size} differs from the image's [{height}, {width}]", None
    counts = seg.get("counts")
    total = height * width
    if isinstance(counts, str):
        try:
            counts = rle_counts_from_string(counts, total + 1)
        except ValueError as exc:
            return str(exc), None
    elif isinstance(counts, list):
        if len(counts) > total + 1:
            return f"RLE has {len(counts)} counts for {total} pixels", None
        for j, v in enumerate(counts):
            if not _is_int(v):
                return f"RLE count {j} is {_shown(v)}, not an integer", None
    else:
        return _type_problem("counts", "a list of integers or an RLE string", counts), None
    for j, v in enumerate(counts):
        if v < 0:
            return f"RLE count {j} is negative ({v})", None
    s = sum(counts)
    if s != total:
        return (f"RLE counts sum to {s:,} but the image has {height}x{width} = {total:,} pixels"), None
    return None, counts


def decode_rle_counts(counts: list[int], height: int, width: int) -> np.ndarray:
    """Column-major runs (background first) -> bool mask (height, width)."""
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return flat.reshape(width, height).T


def decode_segmentation(seg, height: int, width: int) -> np.ndarray:
    """COCO polygons or RLE -> bool mask of shape (height, width), after the checks above.

    Raises
    ------
    ValueError
        With the reason, for anything the checks refuse.
    """
    if isinstance(seg, list):
        why = polygon_problem(seg, height, width)
        if why:
            raise ValueError(why)
        from pycocotools import mask as mask_utils

        polys = [[float(v) for v in p] for p in seg]
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        return mask_utils.decode(rle).astype(bool)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        why, counts = rle_problem(seg, height, width)
        if why:
            raise ValueError(why)
        return decode_rle_counts(counts, height, width)
    raise ValueError("segmentation is neither a polygon list nor an RLE {size, counts}")


def check_coco_image(task) -> list[ItemCheck]:
    """Worker: check one image file, then check and decode its instance masks.

    ``task`` is ``(image_path, width, height, segmentations, full_decode[, real_root])``.
    Returns one :class:`ItemCheck` per segmentation; the masks of an image whose file is bad
    are not decoded.
    """
    path, width, height, segs, full_decode = task[:5]
    real_root = task[5] if len(task) > 5 else None
    head = ItemCheck(width=width, height=height)
    info = check_image_file(path, "pool", full_decode, real_root, head)
    dec = info.decoding if info is not None else None
    # annotations drawn on the stored pixels of a photo whose EXIF orientation turns it: the
    # same turn is applied to its masks, so that they lie on the image as viewers show it
    turn = (dec is not None and dec.rotated and (width, height) == (dec.raw_width, dec.raw_height)
            and (width, height) != (info.width, info.height))
    if info is not None and not turn and (info.width, info.height) != (width, height):
        head.problems.append((path, f"image is {info.width}x{info.height} but the JSON says "
                              f"{width}x{height}", "fix width/height in the JSON"))
    out = []
    for seg in segs:
        c = ItemCheck(width=info.width if turn else width, height=info.height if turn else height,
                      problems=list(head.problems),
                      resolved=dict(head.resolved) if head.resolved else None,
                      conversions=dict(head.conversions) if head.conversions else None,
                      copies=head.copies)
        if not c.ok:
            out.append(c)
            continue
        try:
            m = decode_segmentation(seg, height, width)
        except (ValueError, TypeError, KeyError) as exc:
            c.problems.append((path, f"bad segmentation ({exc})", FIX_ANN))
            out.append(c)
            continue
        if turn:
            from rorem_data.core.decode import orient_array

            m = orient_array(m, dec.orientation)
            c.note("mask", (f"annotations turned by the image's EXIF orientation {dec.orientation}",))
        for problem, _fix in mask_problems(m):
            c.problems.append((path, problem, FIX_ANN))
        c.mask_area = float(m.mean())
        if c.ok:
            c.mask_png = media.encode_canonical_mask(m)
        out.append(c)
    return out
