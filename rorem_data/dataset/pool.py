"""``rorem-data import pool``: (image, object mask) items to generate candidates from.

Two inputs:

* a folder with ``images/`` and ``masks/``; masks match images by file stem, and one image may
  have several masks: ``masks/<stem>.png``, ``masks/<stem>_<anything>.png`` or
  ``masks/<stem>/<anything>.png`` (:mod:`rorem_data.dataset.pool_folder`, linear time);
* a COCO instance-segmentation JSON (polygons, uncompressed or compressed RLE): one pool item
  per instance, category kept, crowd regions left out (:mod:`rorem_data.dataset.coco`). Images
  are looked up under ``--images DIR`` (default: ``images/`` beside the JSON if it exists, else
  the JSON's folder).

Items can be filtered by mask area as a fraction of the image (``min_area``/``max_area``).
Every item carries the import's ``license``.
"""

from __future__ import annotations

import os
import time

from rorem_data.core import schema
from rorem_data.core.checks import fraction
from rorem_data.core.errors import ConfigError
from rorem_data.core.progress import takes_progress
from rorem_data.core.validate import first_duplicates, map_checks
from rorem_data.dataset import documents
from rorem_data.dataset.coco import check_coco_image, decode_segmentation, read_coco
from rorem_data.dataset.ingest import (
    ImportResult, MaskWriter, apply_policy, commit, decoded_fields, problems_from_check,
    store_decoded,
)
from rorem_data.dataset.ingest_license import license_name, license_url as check_license_url
from rorem_data.dataset.ingest_paths import ItemFiles, StoredItems, stored_files
from rorem_data.dataset.pairs import check_image_masks
from rorem_data.dataset.pool_folder import (
    IMAGE_EXTS, PoolEntry, default_origin, match_masks, scan_folder,
)

__all__ = ["IMAGE_EXTS", "PoolEntry", "check_coco_image", "decode_segmentation", "import_pool",
           "match_masks", "read_coco", "scan_folder"]


def _check_coco(source, images_dir, origin, stored, full_decode, workers, result):
    groups, problems, n_crowd, real_root = read_coco(source, images_dir, origin=origin)
    result.filtered += n_crowd
    all_entries = [e for items in groups.values() for e, _s in items]
    result.read = len(all_entries) + len(problems) + n_crowd
    stored.read([e.key for e in all_entries], [_files(e) for e in all_entries])
    tasks, task_entries = [], []
    for (path, w, h), items in groups.items():
        items = [(e, s) for e, s in items if not stored.holds(e.key, _files(e))]
        if items:
            tasks.append((path, w, h, [s for _e, s in items], full_decode, real_root))
            task_entries.append([e for e, _s in items])
    result.already_present = len(all_entries) - sum(len(es) for es in task_entries)
    nested = map_checks(check_coco_image, tasks, desc="checking COCO images", workers=workers,
                        chunk_size=32)
    pairs = [(e, c) for es, cs in zip(task_entries, nested) for e, c in zip(es, cs)]
    return pairs, problems


def _check_folder(source, origin, stored, full_decode, workers, result):
    entries, problems = scan_folder(source, origin=origin, notes=result.notes)
    dups = first_duplicates(e.key for e in entries)
    entries = [e for i, e in enumerate(entries) if i not in dups]
    result.read = len(entries) + len(problems)
    named = [_files(e) for e in entries]
    stored.read([e.key for e in entries], named)
    todo = [e for e, f in zip(entries, named) if not stored.holds(e.key, f)]
    result.already_present = len(entries) - len(todo)
    by_image: dict[str, list[PoolEntry]] = {}
    for e in todo:
        by_image.setdefault(e.image, []).append(e)
    real_root = os.path.realpath(source)
    tasks = [(image, [e.mask for e in es], full_decode, real_root) for image, es in by_image.items()]
    nested = map_checks(check_image_masks, tasks, desc="checking pool files", workers=workers,
                        chunk_size=128)
    pairs = [(e, c) for es, cs in zip(by_image.values(), nested) for e, c in zip(es, cs)]
    return pairs, problems


def _files(entry: PoolEntry) -> ItemFiles:
    """The files an entry names before its check (the mask of a COCO entry is its ref)."""
    return ItemFiles(entry.image, entry.mask, ref=entry.ref)


@takes_progress
def import_pool(
    project,
    source: str,
    *,
    origin: str | None = None,
    images_dir: str | None = None,
    min_area: float = 0.0,
    max_area: float = 1.0,
    license: str | None = None,
    license_url: str | None = None,
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
        Origin name (default: the folder or JSON file name). An item's key is made from it and
        the names inside the source (paths relative to the folder; a COCO file's image name and
        annotation id), so the same data gives the same keys, candidates and numbers wherever
        it sits.
    images_dir : str, optional
        COCO only: where ``file_name`` paths are relative to.
    min_area, max_area : float
        Keep items whose mask covers this fraction of the image (inclusive).
    license, license_url : str, optional
        License of the images (SPDX id or one line of text) and where its text is; stored on
        every item and carried by the candidates generated from it. Default ``"unknown"``.
    skip_invalid, report_path, full_decode, workers
        As in :func:`rorem_data.dataset.seeds.import_seeds`.
    progress : bool, optional
        Progress bars: True shows them (terminal and Jupyter), False hides them, None
        decides by itself.

    Returns
    -------
    ImportResult
        Items whose files are already in the dataset count as ``already_present``, whatever
        key they were imported under (projects made before location-free keys included).

    Raises
    ------
    ValidationError
        When anything is wrong and not ``skip_invalid`` (nothing is written). An item whose
        key is stored with other files (another source with the same origin name and the same
        relative names) is one of those problems, naming the stored item; pass another
        ``origin``.
    ConfigError
        If the area bounds are not 0 <= min_area <= max_area <= 1, or the license is not one
        short line.

    Examples
    --------
    >>> project.import_pool("openimages/", license="CC-BY-2.0")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    fraction(min_area, "--min-area")
    fraction(max_area, "--max-area")
    if min_area > max_area:
        raise ConfigError(f"min_area/max_area must satisfy 0 <= min <= max <= 1, got "
                          f"{min_area} and {max_area}")
    lic = license_name(license)
    lic_url = check_license_url(license_url)
    source = os.path.abspath(os.fspath(source))
    is_coco = source.lower().endswith(".json")
    origin = origin or default_origin(source)
    ds = project.dataset
    result = ImportResult(kind=schema.KIND_POOL, license=lic)
    stored = StoredItems(ds, schema.KIND_POOL)
    if is_coco:
        pairs, problems = _check_coco(source, images_dir, origin, stored, full_decode, workers,
                                      result)
    else:
        pairs, problems = _check_folder(source, origin, stored, full_decode, workers, result)
    masks = MaskWriter(project)

    # the exact files each checked item would store: the same files under an older key are
    # already present; the same key over other files is a collision, named
    files = [stored_files(c, e.image, e.mask, masks.folder, ref=e.ref) if c.ok else None
             for e, c in pairs]
    stored.read_images(f.image for f in files if f is not None)
    good = []
    for (e, c), f in zip(pairs, files):
        if not c.ok:
            problems += problems_from_check(e.item, c)
        elif stored.holds(e.key, f):
            result.already_present += 1
        elif (doc := stored.collision(e.key, f)) is not None:
            problems.append(stored.collision_problem(e.item, f.image, doc, origin))
        elif not (min_area <= c.mask_area <= max_area):
            result.filtered += 1
        else:
            good.append((e, c))
    del pairs, files
    result.problems = problems
    result.invalid = result.read - len(good) - result.already_present - result.filtered
    result.count_conversions(c for _e, c in good)
    result.report_path = apply_policy(problems, skip_invalid=skip_invalid, report_path=report_path,
                                      project=project, what="pool items", n_items=result.read,
                                      notes=result.report_notes())
    now = schema.utcnow()
    copies = store_decoded(project, [(c, {"source": e.image}) for e, c in good], workers=workers)

    def make_doc(pair) -> dict:
        e, c = pair
        doc = documents.sample_doc(
            key=e.key, kind=schema.KIND_POOL, filepath=c.real(e.image), width=c.width,
            height=c.height, mask_path=masks.path(c, e.mask), mask_area=c.mask_area,
            origin=origin, category=e.category, import_ref=e.ref, license=lic,
            license_url=lic_url, now=now,
        )
        doc.update(decoded_fields(c, {"source": e.image}, copies))
        return doc

    result.inserted = commit(ds, good, make_doc, desc="writing pool items")
    result.already_present += len(good) - result.inserted
    result.seconds = time.perf_counter() - t0
    return result

