"""``rorem-data import pool``: (image, object mask) items to generate candidates from.

Two inputs:

* a folder with ``images/`` and ``masks/``; masks match images by file stem, and one image may
  have several masks: ``masks/<stem>.png``, ``masks/<stem>_<anything>.png`` or
  ``masks/<stem>/<anything>.png``;
* a COCO instance-segmentation JSON (polygons, uncompressed or compressed RLE): one pool item
  per instance, category kept, crowd regions left out. Images are looked up under
  ``--images DIR`` (default: ``images/`` beside the JSON if it exists, else the JSON's folder).

Items can be filtered by mask area as a fraction of the image (``min_area``/``max_area``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from rorem_data.core import images as media
from rorem_data.core import schema
from rorem_data.dataset import documents
from rorem_data.dataset import store
from rorem_data.dataset.ingest import ImportResult, apply_policy, problems_from_check, store_mask
from rorem_data.dataset.pairs import ItemCheck, check_item, mask_problems
from rorem_data.core.paths import UnsafePath, safe_join
from rorem_data.core.validate import Problem, first_duplicates, map_checks

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass
class PoolEntry:
    item: str
    image: str
    mask: str | None  # None for COCO (mask comes from the annotation)
    key: str
    category: str | None = None
    ref: str = ""


def _list_images(folder: str) -> list[str]:
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            if f.lower().endswith(IMAGE_EXTS):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def scan_folder(root: str) -> tuple[list[PoolEntry], list[Problem]]:
    """Match ``root/masks`` files to ``root/images`` files by stem."""
    root = os.path.abspath(root)
    img_dir, mask_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    problems = []
    for d in (img_dir, mask_dir):
        if not os.path.isdir(d):
            return [], [Problem(os.path.basename(root), d, "folder does not exist",
                                "a pool folder needs images/ and masks/ (or pass a COCO JSON)")]
    images = {}
    for p in _list_images(img_dir):
        stem = os.path.splitext(os.path.relpath(p, img_dir))[0]
        if stem in images:
            problems.append(Problem(stem, p, f"two images share the stem {stem!r}",
                                    "rename one of them"))
            continue
        images[stem] = p
    entries = []
    for m in _list_images(mask_dir):
        rel = os.path.splitext(os.path.relpath(m, mask_dir))[0]
        stem = None
        if rel in images:
            stem = rel
        else:
            head = os.path.dirname(rel)
            if head and head in images:
                stem = head
            else:
                cands = [s for s in images if rel.startswith(s + "_")]
                if cands:
                    stem = max(cands, key=len)
        item = f"masks/{os.path.relpath(m, mask_dir)}"
        if stem is None:
            problems.append(Problem(item, m, "no image in images/ matches this mask's name",
                                    "name masks <image stem>.png, <image stem>_<k>.png or "
                                    "<image stem>/<k>.png"))
            continue
        entries.append(PoolEntry(item=item, image=images[stem], mask=m,
                                 key=schema.make_key(schema.KIND_POOL, images[stem], m),
                                 ref=m))
    return entries, problems


def read_coco(json_path: str, images_dir: str | None = None):
    """Parse a COCO instance-segmentation file.

    Returns
    -------
    groups : dict (image_path, width, height) -> [(entry, segmentation)]
    problems : list of Problem
    n_crowd : int
        Crowd annotations left out.
    """
    json_path = os.path.abspath(json_path)
    name = os.path.basename(json_path)
    if images_dir is None:
        beside = os.path.join(os.path.dirname(json_path), "images")
        images_dir = beside if os.path.isdir(beside) else os.path.dirname(json_path)
    images_dir = os.path.abspath(images_dir)
    fix_shape = "give a COCO instance file: {images: [...], annotations: [...], categories: [...]}"
    try:
        with open(json_path, "rb") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        return {}, [Problem(name, json_path, "file does not exist", "check the path")], 0
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {}, [Problem(name, json_path, f"not valid JSON ({exc})", fix_shape)], 0
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        return {}, [Problem(name, json_path, "no 'images' and 'annotations' lists", fix_shape)], 0
    problems: list[Problem] = []
    cats = {}
    for c in data.get("categories") or []:
        if isinstance(c, dict) and "id" in c:
            cats[c["id"]] = str(c.get("name", c["id"]))
    imgs = {}
    for i, im in enumerate(data["images"]):
        item = f"{name} images[{i}]"
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            problems.append(Problem(item, json_path, "image entry lacks 'id' or 'file_name'", fix_shape))
            continue
        try:
            path = safe_join(images_dir, im["file_name"])
        except UnsafePath as exc:
            problems.append(Problem(item, str(im["file_name"]), str(exc),
                                    f"use file names relative to {images_dir}"))
            continue
        w, h = im.get("width"), im.get("height")
        if not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
            problems.append(Problem(item, path, f"width/height missing or invalid ({w!r}x{h!r})",
                                    "give each image its integer width and height"))
            continue
        imgs[im["id"]] = (path, w, h)
    groups: dict = {}
    n_crowd = 0
    for i, a in enumerate(data["annotations"]):
        item = f"{name} annotations[{i}]"
        if not isinstance(a, dict) or "image_id" not in a or "segmentation" not in a:
            problems.append(Problem(item, json_path, "annotation lacks 'image_id' or 'segmentation'",
                                    fix_shape))
            continue
        if a.get("iscrowd"):
            n_crowd += 1
            continue
        if a["image_id"] not in imgs:
            problems.append(Problem(item, json_path, f"image_id {a['image_id']!r} is not in 'images'",
                                    "add the image or drop the annotation"))
            continue
        path, w, h = imgs[a["image_id"]]
        ann_id = a.get("id", i)
        entry = PoolEntry(item=f"{name} annotation {ann_id}", image=path, mask=None,
                          key=schema.make_key(schema.KIND_POOL, path, json_path, f"ann:{ann_id}"),
                          category=cats.get(a.get("category_id")), ref=f"{json_path}#{ann_id}")
        groups.setdefault((path, w, h), [])
        groups[(path, w, h)].append((entry, a["segmentation"]))
    return groups, problems, n_crowd


def decode_segmentation(seg, height: int, width: int) -> np.ndarray:
    """COCO polygons or RLE -> bool mask of shape (height, width) (pycocotools)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        if not seg or not all(isinstance(p, list) and len(p) >= 6 for p in seg):
            raise ValueError("polygon list must hold lists of at least 3 (x, y) points")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [height, width]:
            raise ValueError(f"RLE size {seg['size']} differs from the image's [{height}, {width}]")
        if isinstance(seg["counts"], list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = {"size": seg["size"], "counts": seg["counts"].encode() if isinstance(seg["counts"], str) else seg["counts"]}
    else:
        raise ValueError("segmentation is neither a polygon list nor an RLE {size, counts}")
    return mask_utils.decode(rle).astype(bool)


def check_coco_image(task) -> list[ItemCheck]:
    """Worker: check one image and decode its instance masks. One ItemCheck per annotation."""
    path, width, height, segs, full_decode = task
    head = ItemCheck()
    try:
        info = media.check_image(path, full_decode=full_decode)
        if (info.width, info.height) != (width, height):
            head.problems.append((path, f"image is {info.width}x{info.height} but the JSON says "
                                  f"{width}x{height}", "fix width/height in the JSON"))
    except media.ImageProblem as exc:
        fix = "check images_dir and file_name" if "does not exist" in str(exc) else "re-copy the file"
        head.problems.append((path, f"image: {exc}", fix))
    out = []
    for seg in segs:
        c = ItemCheck(width=width, height=height, problems=list(head.problems))
        try:
            m = decode_segmentation(seg, height, width)
        except (ValueError, TypeError, KeyError) as exc:
            c.problems.append((path, f"bad segmentation ({exc})", "fix or drop the annotation"))
            out.append(c)
            continue
        for problem, fix in mask_problems(m):
            c.problems.append((path, problem, "fix or drop the annotation"))
        c.mask_area = float(m.mean())
        if c.ok:
            c.mask_png = media.encode_canonical_mask(m)
        out.append(c)
    return out


def import_pool(
    project,
    source: str,
    *,
    origin: str | None = None,
    images_dir: str | None = None,
    min_area: float = 0.0,
    max_area: float = 1.0,
    skip_invalid: bool = False,
    report_path: str | None = None,
    full_decode: bool = False,
    workers: int | None = None,
) -> ImportResult:
    """Import pool items from a folder (``images/`` + ``masks/``) or a COCO JSON.

    Parameters
    ----------
    project : Project
    source : str
        Folder or COCO ``.json`` file.
    origin : str, optional
        Origin name (default: the folder or JSON file name).
    images_dir : str, optional
        COCO only: where ``file_name`` paths are relative to.
    min_area, max_area : float
        Keep items whose mask covers this fraction of the image (inclusive).
    skip_invalid, report_path, full_decode, workers
        As in :func:`rorem_data.dataset.seeds.import_seeds`.

    Returns
    -------
    ImportResult

    Raises
    ------
    ValidationError
        When anything is wrong and not ``skip_invalid`` (nothing is written).
    ConfigError
        If the area bounds are not 0 <= min_area <= max_area <= 1.
    """
    from rorem_data.core.errors import ConfigError

    t0 = time.perf_counter()
    if not (0.0 <= min_area <= max_area <= 1.0):
        raise ConfigError(f"--min-area/--max-area must satisfy 0 <= min <= max <= 1, got "
                          f"{min_area} and {max_area}")
    source = os.path.abspath(os.fspath(source))
    is_coco = source.lower().endswith(".json")
    origin = origin or os.path.splitext(os.path.basename(source.rstrip(os.sep)))[0] or "pool"
    ds = project.dataset
    problems: list[Problem] = []
    result = ImportResult(kind=schema.KIND_POOL)

    if is_coco:
        groups, problems, n_crowd = read_coco(source, images_dir)
        result.filtered += n_crowd
        all_entries = [e for items in groups.values() for e, _s in items]
        result.read = len(all_entries) + len(problems) + n_crowd
        present = store.existing_keys(ds, [e.key for e in all_entries])
        tasks, task_entries = [], []
        for (path, w, h), items in groups.items():
            items = [(e, s) for e, s in items if e.key not in present]
            if items:
                tasks.append((path, w, h, [s for _e, s in items], full_decode))
                task_entries.append([e for e, _s in items])
        result.already_present = len(present)
        nested = map_checks(check_coco_image, tasks, desc="checking COCO images", workers=workers,
                            chunk_size=32)
        pairs = [(e, c) for es, cs in zip(task_entries, nested) for e, c in zip(es, cs)]
    else:
        entries, problems = scan_folder(source)
        dups = first_duplicates(e.key for e in entries)
        entries = [e for i, e in enumerate(entries) if i not in dups]
        result.read = len(entries) + len(problems)
        present = store.existing_keys(ds, [e.key for e in entries])
        todo = [e for e in entries if e.key not in present]
        result.already_present = len(entries) - len(todo)
        checks = map_checks(check_item, [(e.image, e.mask, None, full_decode) for e in todo],
                            desc="checking pool files", workers=workers)
        pairs = list(zip(todo, checks))

    good = []
    for e, c in pairs:
        if not c.ok:
            problems += problems_from_check(e.item, c)
        elif not (min_area <= c.mask_area <= max_area):
            result.filtered += 1
        else:
            good.append((e, c))
    result.problems = problems
    result.invalid = result.read - len(good) - result.already_present - result.filtered
    result.report_path = apply_policy(problems, skip_invalid=skip_invalid, report_path=report_path,
                                      project=project, what="pool items", n_items=result.read)
    now = schema.utcnow()
    docs = [
        documents.sample_doc(
            key=e.key, kind=schema.KIND_POOL, filepath=e.image, width=c.width, height=c.height,
            mask_path=store_mask(project, c, e.mask), mask_area=c.mask_area, origin=origin,
            category=e.category, import_ref=e.ref, now=now,
        )
        for e, c in good
    ]
    result.inserted = store.insert_documents(ds, docs, progress_desc="writing pool items")
    result.already_present += len(docs) - result.inserted
    result.seconds = time.perf_counter() - t0
    return result
