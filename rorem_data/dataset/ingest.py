"""What every importer shares: the result record, the refuse-or-skip policy, and the commit.

An import runs in three stages and writes nothing until the last:
1. read the input listing and check every item (files in parallel), collecting problems;
2. refuse the whole import if anything is wrong, or with ``skip_invalid`` keep the good items
   and write the report to a file;
3. write canonical masks (atomically, content-addressed) and insert the samples in bulk.
Keys make the commit idempotent: items already in the dataset are skipped before stage 1.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from rorem_data.core import images as media
from rorem_data.core.errors import ValidationError
from rorem_data.core.validate import Problem, write_report


@dataclass
class ImportResult:
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
        Entries skipped because the same item was imported before.
    invalid : int
        Entries skipped as invalid (only with ``skip_invalid``).
    filtered : int
        Entries left out by a filter (e.g. mask area).
    problems : list of Problem
    report_path : str or None
        Where the problem report was written.
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
    seconds: float = 0.0

    def summary(self) -> str:
        s = (f"{self.kind}: read {self.read}, imported {self.inserted}, "
             f"already present {self.already_present}")
        if self.filtered:
            s += f", filtered out {self.filtered}"
        if self.invalid:
            s += f", skipped {self.invalid} invalid (report: {self.report_path})"
        return s + f" in {self.seconds:.1f} s"


def apply_policy(problems: list[Problem], *, skip_invalid: bool, report_path: str | None,
                 project, what: str, n_items: int) -> str | None:
    """Refuse (raise) when there are problems unless ``skip_invalid``; then write the report.

    Returns the report path written, if any.
    """
    if not problems:
        return None
    if not skip_invalid:
        raise ValidationError(
            f"Refusing to import {what}: {len(problems)} problem(s) in {n_items} entries; nothing "
            "was written. Fix them, or pass --skip-invalid to import the good entries and write "
            "this report to a file.",
            problems,
        )
    if report_path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        report_path = os.path.join(project.root, "reports", f"import-{what.split()[0]}-{stamp}.json")
    write_report(problems, report_path)
    return report_path


def problems_from_check(item: str, check) -> list[Problem]:
    return [Problem(item=item, file=f, problem=p, fix=fx) for f, p, fx in check.problems]


def store_mask(project, check, original_path: str) -> str:
    """Path of the canonical mask for an item: the original if already canonical, else a
    content-addressed copy written atomically under ``media/masks``."""
    if check.mask_png is None:
        return original_path
    path = project.media_path("masks", media.canonical_mask_name(check.mask_png))
    if not os.path.exists(path):
        media.write_bytes_atomic(path, check.mask_png)
    return path
