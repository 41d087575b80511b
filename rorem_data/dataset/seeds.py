"""``rorem-data import seeds``: RORem-layout triplets become round-0 seed pairs.

The layout is the one the official RORem training code reads::

    DATA/
      source/  mask/  GT/
      meta.json      # [{"source": "source/x.png", "mask": "mask/x.png", "GT": "GT/x.png"}, ...]

Paths are relative to the meta.json folder. An optional ``"score"`` (1 = success, 0 = failure,
the discriminator-training format) imports the entry as accepted or rejected; without it the
pair is accepted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from rorem_data.core import schema
from rorem_data.dataset import documents
from rorem_data.dataset import store
from rorem_data.dataset.ingest import ImportResult, apply_policy, problems_from_check, store_mask
from rorem_data.dataset.pairs import check_item
from rorem_data.core.paths import UnsafePath, safe_join
from rorem_data.core.validate import Problem, first_duplicates, map_checks

REQUIRED_KEYS = ("source", "mask", "GT")


@dataclass
class SeedEntry:
    meta_path: str
    index: int
    source: str
    mask: str
    target: str
    score: int | None
    origin: str

    @property
    def item(self) -> str:
        return f"{os.path.basename(self.meta_path)} entry {self.index}"

    @property
    def key(self) -> str:
        return schema.make_key(schema.KIND_SEED, self.source, self.mask, self.target)


def read_meta(meta_path: str, *, origin: str | None = None) -> tuple[list[SeedEntry], list[Problem]]:
    """Parse one meta.json into entries and problems (never raises on bad content).

    Parameters
    ----------
    meta_path : str
        A RORem ``meta.json``.
    origin : str, optional
        Origin name for every entry (default: the name of the meta.json folder).
    """
    meta_path = os.path.abspath(meta_path)
    name = os.path.basename(meta_path)
    root = os.path.dirname(meta_path)
    origin = origin or os.path.basename(root) or "seed"
    problems: list[Problem] = []
    try:
        with open(meta_path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return [], [Problem(name, meta_path, "meta file does not exist", "check the path")]
    except OSError as exc:
        return [], [Problem(name, meta_path, f"cannot read meta file ({exc.strerror})", "check permissions")]
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [], [Problem(name, meta_path, f"not valid JSON ({exc})",
                            'write a JSON list of {"source", "mask", "GT"} objects')]
    if not isinstance(data, list):
        return [], [Problem(name, meta_path, f"top level is a {type(data).__name__}, not a list",
                            'write a JSON list of {"source", "mask", "GT"} objects')]
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
        paths = {}
        for k in REQUIRED_KEYS:
            try:
                paths[k] = safe_join(root, e[k])
            except UnsafePath as exc:
                problems.append(Problem(item, str(e[k]), f'"{k}": {exc}',
                                        "use a path relative to the meta.json folder, inside it"))
        if len(paths) != len(REQUIRED_KEYS):
            continue
        score = e.get("score")
        if score is not None:
            if isinstance(score, bool) or score not in (0, 1):
                problems.append(Problem(item, meta_path, f'"score" is {score!r}',
                                        'use "score": 1 (success) or 0 (failure), or leave it out'))
                continue
            score = int(score)
        entries.append(SeedEntry(meta_path, i, paths["source"], paths["mask"], paths["GT"], score, origin))
    return entries, problems


def import_seeds(
    project,
    meta_paths,
    *,
    origin: str | None = None,
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
        Origin name (default: each meta.json's folder name).
    skip_invalid : bool
        Import the valid entries and write a report of the others, instead of refusing.
    report_path : str, optional
        Where to write that report (default ``reports/import-seeds-<time>.json``).
    full_decode : bool
        Decode every pixel of sources and targets (default: header and end-of-file checks).
    workers : int, optional
        Processes for the file checks (default: all cores).

    Returns
    -------
    ImportResult

    Raises
    ------
    ValidationError
        Listing every bad entry (file, problem, fix) when anything is wrong and not
        ``skip_invalid``; nothing is written then.
    """
    t0 = time.perf_counter()
    if isinstance(meta_paths, (str, os.PathLike)):
        meta_paths = [meta_paths]
    entries: list[SeedEntry] = []
    problems: list[Problem] = []
    for mp in meta_paths:
        e, p = read_meta(os.fspath(mp), origin=origin)
        entries += e
        problems += p
    result = ImportResult(kind=schema.KIND_SEED, read=len(entries) + len(problems))

    keys = [e.key for e in entries]
    dups = first_duplicates(keys)
    for i, j in dups.items():
        problems.append(Problem(entries[i].item, entries[i].source,
                                f"duplicate of {entries[j].item} (same source, mask and GT)",
                                "remove the repeated entry"))
    unique = [e for i, e in enumerate(entries) if i not in dups]

    ds = project.dataset
    present = store.existing_keys(ds, [e.key for e in unique])
    todo = [e for e in unique if e.key not in present]
    result.already_present = len(unique) - len(todo)

    checks = map_checks(check_item, [(e.source, e.mask, e.target, full_decode) for e in todo],
                        desc="checking seed files", workers=workers)
    for e, c in zip(todo, checks):
        problems += problems_from_check(e.item, c)
    good = [(e, c) for e, c in zip(todo, checks) if c.ok]

    result.problems = problems
    result.invalid = result.read - len(good) - result.already_present
    result.report_path = apply_policy(problems, skip_invalid=skip_invalid, report_path=report_path,
                                      project=project, what="seeds", n_items=result.read)

    now = schema.utcnow()
    docs = []
    for e, c in good:
        status = schema.REJECTED if e.score == 0 else schema.ACCEPTED
        decision = schema.decision_doc(round=0, phase=schema.PHASE_SEED, status=status,
                                       by=schema.BY_IMPORT, at=now)
        docs.append(documents.sample_doc(
            key=e.key, kind=schema.KIND_SEED, filepath=e.source, width=c.width, height=c.height,
            mask_path=store_mask(project, c, e.mask), mask_area=c.mask_area, origin=e.origin,
            target_path=e.target, round=0, import_ref=f"{e.meta_path}#{e.index}",
            decision=decision, now=now,
        ))
    result.inserted = store.insert_documents(ds, docs, progress_desc="writing seed pairs")
    result.already_present += len(docs) - result.inserted
    result.seconds = time.perf_counter() - t0
    if result.inserted:
        store.update_round_record(project.dataset_name, 0, set={"phases.seed.last_import": now},
                                  inc={"phases.seed.imported": result.inserted},
                                  push={"imports": {"kind": "seed", "at": now, "inserted": result.inserted,
                                                    "sources": [os.path.abspath(os.fspath(m)) for m in meta_paths]}})
    return result
