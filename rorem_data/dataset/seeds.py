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
from rorem_data.core.validate import Problem, first_duplicates, map_checks
from rorem_data.dataset import documents
from rorem_data.dataset import store
from rorem_data.dataset.ingest import (
    ImportResult, MaskWriter, apply_policy, commit, problems_from_check, read_listing,
)
from rorem_data.dataset.ingest_license import license_name, license_url as check_license_url
from rorem_data.dataset.ingest_paths import FIX_LINK, RootGuard
from rorem_data.dataset.pairs import check_item

REQUIRED_KEYS = ("source", "mask", "GT")
FIX_SHAPE = 'write a JSON list of {"source", "mask", "GT"} objects'


@dataclass(slots=True)
class SeedEntry:
    """One meta.json entry that passed the listing checks.

    ``source``/``mask``/``target`` are the paths to read (folders resolved, inside the root);
    ``key`` comes from the paths as the meta.json names them, so it is stable.
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
        Origin name for every entry (default: the name of the meta.json folder).
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
        key = schema.make_key(schema.KIND_SEED, joined["source"], joined["mask"], joined["GT"])
        entries.append(SeedEntry(meta_path, i, key, placed["source"], placed["mask"], placed["GT"],
                                 score, origin, guard.real_root))
    return entries, problems


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
    progress: bool | None = None,
) -> ImportResult:
    """Import RORem-layout triplets as round-0 seed pairs.

    Parameters
    ----------
    project : Project
    meta_paths : str or list of str
        One or more meta.json files.
    origin : str, optional
        Origin name (default: each meta.json's folder name).
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

    Raises
    ------
    ValidationError
        Listing every bad entry (file, problem, fix) when anything is wrong and not
        ``skip_invalid``; nothing is written then.
    ConfigError
        A license or license URL that is not one short line.

    Examples
    --------
    >>> project.import_seeds("RORD/meta.json", license="CC-BY-4.0")  # doctest: +SKIP
    """
    from rorem_data.core.progress import scope

    with scope(progress):
        return _import_seeds(project, meta_paths, origin=origin, license=license,
                             license_url=license_url, skip_invalid=skip_invalid,
                             report_path=report_path, full_decode=full_decode, workers=workers)


def _import_seeds(
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
        problems.append(Problem(entries[i].item, entries[i].source,
                                f"duplicate of {entries[j].item} (same source, mask and GT)",
                                "remove the repeated entry"))
    unique = [e for i, e in enumerate(entries) if i not in dups]

    ds = project.dataset
    present = store.existing_keys(ds, [e.key for e in unique])
    todo = [e for e in unique if e.key not in present]
    result.already_present = len(unique) - len(todo)

    checks = map_checks(check_item, [(e.source, e.mask, e.target, full_decode, e.real_root)
                                     for e in todo],
                        desc="checking seed files", workers=workers)
    for e, c in zip(todo, checks):
        problems += problems_from_check(e.item, c)
    good = [(e, c) for e, c in zip(todo, checks) if c.ok]
    del checks

    result.problems = problems
    result.invalid = result.read - len(good) - result.already_present
    result.report_path = apply_policy(problems, skip_invalid=skip_invalid, report_path=report_path,
                                      project=project, what="seeds", n_items=result.read)

    now = schema.utcnow()
    masks = MaskWriter(project)

    def make_doc(pair) -> dict:
        e, c = pair
        status = schema.REJECTED if e.score == 0 else schema.ACCEPTED
        decision = schema.decision_doc(round=0, phase=schema.PHASE_SEED, status=status,
                                       by=schema.BY_IMPORT, at=now)
        return documents.sample_doc(
            key=e.key, kind=schema.KIND_SEED, filepath=c.real(e.source), width=c.width,
            height=c.height, mask_path=masks.path(c, e.mask), mask_area=c.mask_area,
            origin=e.origin, target_path=c.real(e.target), round=0,
            import_ref=f"{e.meta_path}#{e.index}", decision=decision, license=lic,
            license_url=lic_url, now=now,
        )

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
