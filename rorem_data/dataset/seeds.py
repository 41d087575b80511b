"""``rorem-data import seeds``: RORem-layout triplets become round-0 seed pairs.

The layout is the one the official RORem training code reads::

    DATA/
      source/  mask/  GT/
      meta.json      # [{"source": "source/x.png", "mask": "mask/x.png", "GT": "GT/x.png"}, ...]

Paths are relative to the meta.json folder and must stay inside it, symlinks followed (a link
that stays inside works; one that leads out is refused by name). An optional ``"score"``
(1 = success, 0 = failure, the discriminator-training format) imports the entry as accepted or
rejected; without it the pair is accepted. Every pair carries the import's ``license``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from rorem_data.core import schema
from rorem_data.core.checks import bad
from rorem_data.core.paths import UnsafePath, safe_join
from rorem_data.core.progress import takes_progress
from rorem_data.core.validate import Problem, first_duplicates, map_checks
from rorem_data.dataset import documents
from rorem_data.dataset import store
from rorem_data.dataset.ingest import (
    ImportResult, MaskWriter, apply_policy, commit, decoded_fields, problems_from_check,
    read_listing, store_decoded,
)
from rorem_data.dataset.ingest_license import license_name, license_url as check_license_url
from rorem_data.dataset.ingest_paths import (
    FIX_LINK, ItemFiles, RootGuard, StoredItems, item_key, rel_name, stored_files,
)
from rorem_data.dataset.pairs import check_item

REQUIRED_KEYS = ("source", "mask", "GT")
FIX_SHAPE = 'write a JSON list of {"source", "mask", "GT"} objects'


@dataclass(slots=True)
class SeedEntry:
    """One meta.json entry that passed the listing checks.

    ``source``/``mask``/``target`` are the paths to read (folders resolved, inside the root);
    ``key`` comes from the origin and the paths relative to the meta.json folder, so it does
    not depend on where the data sits.
    """

    meta_path: str
    index: int
    key: str
    source: str
    mask: str
    target: str
    score: int | None
    origin: str
    real_root: str

    @property
    def item(self) -> str:
        return f"{os.path.basename(self.meta_path)} entry {self.index}"


def _entry_paths(e: dict, root: str, guard: RootGuard, item: str, meta_path: str):
    """(joined paths, placed paths, problems) of one entry's three files."""
    joined, placed, problems = {}, {}, []
    for k in REQUIRED_KEYS:
        try:
            p = safe_join(root, e[k])
        except UnsafePath as exc:
            problems.append(Problem(item, str(e[k])[:200], f'"{k}": {exc}',
                                    "use a path relative to the meta.json folder, inside it"))
            continue
        try:
            p.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(Problem(item, meta_path, f'"{k}": path {e[k]!r} is not valid UTF-8 text',
                                    "write the path as plain UTF-8 text"))
            continue
        where, problem = guard.place(p)
        if problem:
            problems.append(Problem(item, p, f'"{k}": {problem}', FIX_LINK))
            continue
        joined[k], placed[k] = p, where
    return joined, placed, problems


def read_meta(meta_path: str, *, origin: str | None = None) -> tuple[list[SeedEntry], list[Problem]]:
    """Parse one meta.json into entries and problems (never raises on bad content).

    Parameters
    ----------
    meta_path : str
        A RORem ``meta.json`` (UTF-8, a byte-order mark is accepted).
    origin : str, optional
        Origin name for every entry (default: the name of the meta.json folder). A key is
        ``(origin, source, mask, GT)`` with the paths relative to the meta.json folder
        (normalized, ``/``-separated), so the same set gives the same keys wherever it sits.
    """
    meta_path = os.path.abspath(meta_path)
    name = os.path.basename(meta_path)
    root = os.path.dirname(meta_path)
    origin = origin or os.path.basename(root) or "seed"
    if not os.path.lexists(meta_path):
        return [], [Problem(name, meta_path, "meta file does not exist", "check the path")]
    data, problems = read_listing(meta_path, item=name, fix=FIX_SHAPE)
    if problems:
        return [], problems
    if not isinstance(data, list):
        return [], [Problem(name, meta_path, f"top level is a {type(data).__name__}, not a list",
                            FIX_SHAPE)]
    guard = RootGuard(root)
    entries = []
    for i, e in enumerate(data):
        item = f"{name} entry {i}"
        if not isinstance(e, dict):
            problems.append(Problem(item, meta_path, f"entry is a {type(e).__name__}, not an object",
                                    'make each entry {"source": ..., "mask": ..., "GT": ...}'))
            continue
        missing = [k for k in REQUIRED_KEYS if k not in e]
        if missing:
            problems.append(Problem(item, meta_path, f"entry lacks key(s) {', '.join(missing)}",
                                    'give each entry "source", "mask" and "GT" paths'))
            continue
        joined, placed, bad_paths = _entry_paths(e, root, guard, item, meta_path)
        problems += bad_paths
        if bad_paths:
            continue
        score = e.get("score")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or score not in (0, 1):
                problems.append(Problem(item, meta_path, f'"score" is {score!r:.60}',
                                        'use "score": 1 (success) or 0 (failure), or leave it out'))
                continue
            score = int(score)
        key = item_key(schema.KIND_SEED, "meta", origin, *(rel_name(joined[k], root)
                                                           for k in REQUIRED_KEYS))
        entries.append(SeedEntry(meta_path, i, key, placed["source"], placed["mask"], placed["GT"],
                                 score, origin, guard.real_root))
    return entries, problems


def _files(entry: SeedEntry) -> ItemFiles:
    """The files an entry names before its check (its ``import_ref``, a position in the
    meta.json, does not name the mask, so the mask is matched by path only)."""
    return ItemFiles(entry.source, entry.mask, entry.target)


def _meta_list(meta_paths) -> list[str]:
    if isinstance(meta_paths, (str, os.PathLike)):
        meta_paths = [meta_paths]
    if not isinstance(meta_paths, (list, tuple)) or not meta_paths:
        raise bad("meta_paths", "one or more meta.json paths", meta_paths)
    out = []
    for m in meta_paths:
        if not isinstance(m, (str, os.PathLike)):
            raise bad("meta_paths", "paths of meta.json files", m)
        out.append(os.fspath(m))
    return out


@takes_progress
def import_seeds(
    project,
    meta_paths,
    *,
    origin: str | None = None,
    license: str | None = None,
    license_url: str | None = None,
    skip_invalid: bool = False,
    report_path: str | None = None,
    full_decode: bool = False,
    workers: int | None = None,
) -> ImportResult:
    """Import RORem-layout triplets as round-0 seed pairs.

    Parameters
    ----------
    project : Project
    meta_paths : str or list of str
        One or more meta.json files.
    origin : str, optional
        Origin name (default: each meta.json's folder name). A pair's key is made from it and
        the paths relative to the meta.json folder, so the same set gives the same keys
        wherever it sits.
    license : str, optional
        License of the data (an SPDX id such as ``"CC-BY-4.0"``, or one line of free text),
        stored on every imported pair; default ``"unknown"``.
    license_url : str, optional
        Where the license text is.
    skip_invalid : bool
        Import the valid entries and write a report of the others, instead of refusing.
    report_path : str, optional
        Where to write that report (default ``reports/import-seeds-<time>.json``).
    full_decode : bool
        Decode every pixel of sources and targets (default: header and end-of-file checks).
    workers : int, optional
        Processes for the file checks (default: all cores).
    progress : bool, optional
        Progress bars: True shows them (terminal and Jupyter), False hides them, None
        decides by itself.

    Returns
    -------
    ImportResult
        Pairs whose files are already in the dataset count as ``already_present``, whatever
        key they were imported under (projects made before location-free keys included).

    Raises
    ------
    ValidationError
        Listing every bad entry (file, problem, fix) when anything is wrong and not
        ``skip_invalid``; nothing is written then. A pair whose key is stored with other files
        (another set with the same origin name and the same relative paths) is one of those
        problems, naming the stored pair; pass another ``origin``.
    ConfigError
        A license or license URL that is not one short line.

    Examples
    --------
    >>> project.import_seeds("RORD/meta.json", license="CC-BY-4.0")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    lic = license_name(license)
    lic_url = check_license_url(license_url)
    metas = _meta_list(meta_paths)
    entries: list[SeedEntry] = []
    problems: list[Problem] = []
    for mp in metas:
        e, p = read_meta(mp, origin=origin)
        entries += e
        problems += p
    result = ImportResult(kind=schema.KIND_SEED, read=len(entries) + len(problems), license=lic)

    dups = first_duplicates(e.key for e in entries)
    for i, j in dups.items():
        e, first = entries[i], entries[j]
        if (e.source, e.mask, e.target) == (first.source, first.mask, first.target):
            problems.append(Problem(e.item, e.source,
                                    f"duplicate of {first.item} (same source, mask and GT)",
                                    "remove the repeated entry"))
        else:  # two meta.json files whose origin and relative paths are the same
            problems.append(Problem(
                e.item, e.meta_path,
                f"origin {e.origin!r} and its relative paths give the key of {first.item} of "
                f"{first.meta_path}, whose files are other files ({first.source}): two sources "
                "share the origin name",
                f"import {e.meta_path} on its own under another origin, e.g. --origin "
                f"{e.origin}-2 (origin= in Python)"))
    unique = [e for i, e in enumerate(entries) if i not in dups]

    ds = project.dataset
    stored = StoredItems(ds, schema.KIND_SEED)
    named = [_files(e) for e in unique]
    stored.read([e.key for e in unique], named)
    todo = [e for e, f in zip(unique, named) if not stored.holds(e.key, f)]
    del named
    result.already_present = len(unique) - len(todo)

    checks = map_checks(check_item, [(e.source, e.mask, e.target, full_decode, e.real_root)
                                     for e in todo],
                        desc="checking seed files", workers=workers)
    masks = MaskWriter(project)
    # the exact files each checked pair would store: the same files under an older key are
    # already present; the same key over other files is a collision, named
    files = [stored_files(c, e.source, e.mask, masks.folder, e.target) if c.ok else None
             for e, c in zip(todo, checks)]
    stored.read_images(f.image for f in files if f is not None)
    good = []
    for e, c, f in zip(todo, checks, files):
        if not c.ok:
            problems += problems_from_check(e.item, c)
        elif stored.holds(e.key, f):
            result.already_present += 1
        elif (doc := stored.collision(e.key, f)) is not None:
            problems.append(stored.collision_problem(e.item, f.image, doc, e.origin))
        else:
            good.append((e, c))
    del checks, files

    result.problems = problems
    result.invalid = result.read - len(good) - result.already_present
    result.count_conversions(c for _e, c in good)
    result.report_path = apply_policy(problems, skip_invalid=skip_invalid, report_path=report_path,
                                      project=project, what="seeds", n_items=result.read,
                                      notes=result.report_notes())

    now = schema.utcnow()
    copies = store_decoded(project, [(c, {"source": e.source, "target": e.target})
                                     for e, c in good], workers=workers)

    def make_doc(pair) -> dict:
        e, c = pair
        status = schema.REJECTED if e.score == 0 else schema.ACCEPTED
        decision = schema.decision_doc(round=0, phase=schema.PHASE_SEED, status=status,
                                       by=schema.BY_IMPORT, at=now)
        doc = documents.sample_doc(
            key=e.key, kind=schema.KIND_SEED, filepath=c.real(e.source), width=c.width,
            height=c.height, mask_path=masks.path(c, e.mask), mask_area=c.mask_area,
            origin=e.origin, target_path=c.real(e.target), round=0,
            import_ref=f"{e.meta_path}#{e.index}", decision=decision, license=lic,
            license_url=lic_url, now=now,
        )
        doc.update(decoded_fields(c, {"source": e.source, "target": e.target}, copies))
        return doc

    result.inserted = commit(ds, good, make_doc, desc="writing seed pairs")
    result.already_present += len(good) - result.inserted
    result.seconds = time.perf_counter() - t0
    if result.inserted or result.already_present:
        # the count is read back, so a rerun after a kill between the insert and this update
        # still leaves the round record right
        n_seeds = ds._sample_collection.count_documents({"kind": schema.KIND_SEED})
        fields = {"phases.seed.imported": n_seeds}
        push = None
        if result.inserted:
            fields["phases.seed.last_import"] = now
            push = {"imports": {"kind": "seed", "at": now, "inserted": result.inserted,
                                "license": lic, "sources": [os.path.abspath(m) for m in metas]}}
        store.update_round_record(project.dataset_name, 0, set=fields, push=push)
    return result
