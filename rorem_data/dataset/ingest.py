"""What every importer shares: the result record, the refuse-or-skip policy, and the commit.

An import runs in three stages and writes nothing until the last:
1. read the input listing and check every item (files in parallel), collecting problems;
2. refuse the whole import if anything is wrong, or with ``skip_invalid`` keep the good items
   and write the report to a file;
3. write canonical masks (atomically, content-addressed) and insert the samples in bulk,
   :data:`COMMIT_CHUNK` documents at a time.
Keys make the commit idempotent: items already in the dataset are skipped before stage 1, and
a run killed in stage 3 is completed by running it again (a mask file written twice has the same
bytes; a key inserted twice is refused by the unique index).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from rorem_data.core.display import Displayable
from rorem_data.core import images as media
from rorem_data.core import jsonfile
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.schema import UNKNOWN_LICENSE
from rorem_data.core.validate import Problem, write_report
from rorem_data.core.processes import pid_alive

#: documents built and inserted per step of the commit (bounds the importer's memory)
COMMIT_CHUNK = 20_000


@dataclass(repr=False)
class ImportResult(Displayable):
    """Summary of one import.

    Attributes
    ----------
    kind : str
        ``"seed"`` or ``"pool"``.
    read : int
        Entries found in the input.
    inserted : int
        Samples added to the dataset.
    already_present : int
        Entries skipped because the same item was imported before (they keep the license
        they were imported with).
    invalid : int
        Entries skipped as invalid (only with ``skip_invalid``).
    filtered : int
        Entries left out by a filter (e.g. mask area, crowd regions).
    problems : list of Problem
    report_path : str or None
        Where the problem report was written.
    license : str
        License stored on the inserted samples (``"unknown"`` when none was given).
    seconds : float
    """

    kind: str
    read: int = 0
    inserted: int = 0
    already_present: int = 0
    invalid: int = 0
    filtered: int = 0
    problems: list = field(default_factory=list)
    report_path: str | None = None
    license: str = UNKNOWN_LICENSE
    seconds: float = 0.0
    conversions: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        s = (f"{self.kind}: read {self.read}, imported {self.inserted}, "
             f"already present {self.already_present}")
        if self.conversions:
            s += ", converted " + ", ".join(f"{n} {rule}" for rule, n in sorted(self.conversions.items()))
        if self.filtered:
            s += f", filtered out {self.filtered}"
        if self.invalid:
            s += f", skipped {self.invalid} invalid (report: {self.report_path})"
        if self.inserted:
            s += (f", license {self.license}" if self.license != UNKNOWN_LICENSE
                  else ", license unknown (pass --license to record it)")
        s += f" in {self.seconds:.1f} s"
        return s + "".join(f"\n  note: {n}" for n in self.notes)

    def report_notes(self) -> list[str]:
        """The notes and the conversion counts, for the problem report."""
        conv = [("converted (decoded by stated rules): " + ", ".join(
            f"{n} {rule}" for rule, n in sorted(self.conversions.items())))] if self.conversions else []
        return [*self.notes, *conv]

    def count_conversions(self, checks) -> None:
        """Count each decoding rule once per item (``EXIF orientation``, ``16-bit to 8-bit``,
        ...) over the items about to be imported."""
        for c in checks:
            seen = set()
            for rules in (c.conversions or {}).values():
                for rule in rules:
                    seen.add(rule_name(rule))
            for name in seen:
                self.conversions[name] = self.conversions.get(name, 0) + 1


def rule_name(rule: str) -> str:
    """``"EXIF orientation 6 (rotated 90° clockwise)"`` -> ``"EXIF orientation"``."""
    head = rule.split(" (")[0]
    return head.rstrip("0123456789 ") or head


def store_decoded(project, items, *, workers: int | None = None) -> dict:
    """Store the decoded copy of every file a check marked (``ItemCheck.copies``); ``items`` are
    ``(check, {role: path})``. Returns ``{real path: copy path}``."""
    from rorem_data.dataset.decoded import decoded_copies

    files = [(c.real(p), role) for c, paths in items for role, p in paths.items()
             if p is not None and role in c.copies]
    return decoded_copies(project, files, workers=workers)


def decoded_fields(check, paths: dict, copies: dict) -> dict:
    """The document fields of an item whose files were decoded: the copies as ``filepath`` /
    ``target_path``, the originals, and every rule applied (``"source: 16-bit to 8-bit"``)."""
    out: dict = {}
    for role, field_name, original in (("source", "filepath", "original_path"),
                                       ("target", "target_path", "original_target_path")):
        p = paths.get(role)
        real = check.real(p) if p is not None else None
        if real is not None and real in copies:
            out[field_name], out[original] = copies[real], real
    if check.conversions:
        out["conversions"] = [f"{role}: {rule}" for role, rules in sorted(check.conversions.items())
                              for rule in rules]
    return out


def apply_policy(problems: list[Problem], *, skip_invalid: bool, report_path: str | None,
                 project, what: str, n_items: int, notes=()) -> str | None:
    """Refuse (raise) when there are problems unless ``skip_invalid``; then write the report
    (the problems, then the import's ``notes`` - decisions that are not problems - as entries
    with item ``"(note)"``).

    Returns the report path written, if any.
    """
    if not problems:
        return None
    if not skip_invalid:
        raise ValidationError(
            f"Refusing to import {what}: {len(problems)} problem(s) in {n_items} entries; nothing "
            "was written. Fix them, or pass skip_invalid=True (--skip-invalid) to import the good entries and write "
            "this report to a file.",
            problems,
        )
    if report_path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        report_path = os.path.join(project.root, "reports", f"import-{what.split()[0]}-{stamp}.json")
    write_report([*problems, *(Problem("(note)", "", n, "nothing to fix: said so that the "
                                       "import hides nothing") for n in notes)], report_path)
    return report_path


def problems_from_check(item: str, check) -> list[Problem]:
    return [Problem(item=item, file=f, problem=p, fix=fx) for f, p, fx in check.problems]


def read_listing(path: str, *, item: str, fix: str) -> tuple[object, list[Problem]]:
    """Parse a JSON listing (meta.json, COCO file) through :mod:`rorem_data.core.jsonfile`.

    Returns ``(data, [])``, or ``(None, [problem])`` when the file is missing, not UTF-8, not
    JSON, or nested too deeply; never raises for bad content.
    """
    if not os.path.lexists(path):
        return None, [Problem(item, path, "file does not exist", "check the path")]
    try:
        return jsonfile.load(path, what=item, fix=fix), []
    except ConfigError as exc:
        msg = str(exc)
        if msg.endswith(fix):
            msg = msg[: -len(fix)].rstrip(" ;.")
        if msg.startswith(item + " "):
            msg = msg[len(item) + 1:]
        if msg.startswith("is "):
            msg = msg[3:]
        return None, [Problem(item, path, msg, fix)]


# <name>.tmp-<pid>-<host>-<token> (core.images.write_bytes_atomic; older files lack the host)
_TMP = re.compile(r"^(?P<name>.+)\.tmp-(?P<pid>\d+)-(?:(?P<host>[A-Za-z0-9_]+)-)?[0-9a-f]{6}$")


class MaskWriter:
    """Writes canonical masks under ``media/masks`` (content-addressed, atomic), and removes
    the half-written temporary file a killed run left for a mask it is about to write."""

    def __init__(self, project):
        self.folder = project.media_path("masks")
        self._stale: dict[str, list[str]] | None = None

    def _stale_tmp(self) -> dict[str, list[str]]:
        if self._stale is None:
            self._stale = {}
            try:
                names = os.listdir(self.folder)
            except FileNotFoundError:
                names = []
            for n in names:
                m = _TMP.match(n)
                if m and m["host"] in (None, media.HOST) and not pid_alive(int(m["pid"])):
                    self._stale.setdefault(m["name"], []).append(n)
        return self._stale

    def path(self, check, original_path: str) -> str:
        """Path of the canonical mask for an item: the original (real path) if already
        canonical, else a content-addressed copy written atomically under ``media/masks``."""
        if check.mask_png is None:
            return check.real(original_path)
        name = media.canonical_mask_name(check.mask_png)
        path = os.path.join(self.folder, name)
        if not os.path.exists(path):
            for tmp in self._stale_tmp().pop(name, ()):
                try:
                    os.remove(os.path.join(self.folder, tmp))
                except FileNotFoundError:
                    pass
            media.write_bytes_atomic(path, check.mask_png)
        return path


def commit(ds, items: Sequence, make_doc: Callable[[object], dict], *, desc: str) -> int:
    """Build and insert documents :data:`COMMIT_CHUNK` items at a time; returns the number
    inserted (keys already present are skipped by the unique index).

    The next chunk is built while the previous one is being written, so building the
    documents (and writing their masks) overlaps the database's work.
    """
    from concurrent.futures import ThreadPoolExecutor

    from rorem_data.core.progress import progress
    from rorem_data.dataset import store

    inserted = 0
    with ThreadPoolExecutor(max_workers=1) as writer, \
            progress(total=len(items), desc=desc, unit="doc") as bar:
        pending = None
        for i in range(0, len(items), COMMIT_CHUNK):
            docs = [make_doc(it) for it in items[i : i + COMMIT_CHUNK]]
            if pending is not None:
                inserted += pending.result()
            pending = writer.submit(store.insert_documents, ds, docs)
            bar.update(len(docs))
        if pending is not None:
            inserted += pending.result()
    return inserted
