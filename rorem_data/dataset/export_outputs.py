"""Export folders on disk, through :mod:`rorem_data.core.outputs`.

* ``prepare`` runs before anything is read: it repairs what a killed export left around
  ``out`` (:func:`rorem_data.core.outputs.recover`), and refuses an existing ``out`` unless
  ``overwrite`` and it holds an export marker and is neither the project, its media folder nor a
  parent of them - nothing it did not write is ever removed.
* ``publish`` swaps the finished staging folder in atomically; a concurrent export that got
  there first is an :class:`~rorem_data.core.errors.ExportError`, not a traceback.
* The marker of a finished export has fixed content (:func:`stable_marker`), so two exports of
  the same round are byte-identical, marker included. Its staging folder carries the usual
  per-run marker (host, pid) until the swap, which is what lets concurrent runs tell live
  staging folders from dead ones; the fixed marker is staged beside it as ``<marker>.final`` and
  renamed over it right after the swap (a kill in between is completed by the next run).
"""

from __future__ import annotations

import errno
import json
import os
import shutil

from rorem_data.core import outputs
from rorem_data.core.errors import ExportError

KIND = "export"
FINAL_MARKER = outputs.MARKER + ".final"


def stable_marker(round: int, format: str) -> bytes:
    """The marker bytes of a finished export (same round and format: same bytes)."""
    data = {"tool": "rorem-data", "kind": KIND, "round": int(round), "format": format}
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def _is_export(folder: str) -> bool:
    marker = outputs.read_marker(folder)
    return bool(marker) and marker.get("kind") == KIND and not os.path.islink(folder)


def finish_marker(out: str) -> None:
    """Put the fixed marker in place if a kill stopped a publish right after its swap."""
    final = os.path.join(out, FINAL_MARKER)
    if os.path.isfile(final) and not os.path.islink(final) and _is_export(out):
        os.replace(final, os.path.join(out, outputs.MARKER))


def prepare(out: str, *, overwrite: bool, protected) -> None:
    """Repair leftovers around ``out`` and check that it may be written.

    Raises
    ------
    ExportError
        ``out`` exists and ``overwrite`` is off, or it may not be replaced (not an export, a
        symlink, the project or its media folder or a parent of them).
    """
    outputs.recover(out, KIND)
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise ExportError(f"{out} already exists; choose another output folder, or pass overwrite=True (--overwrite) to replace an earlier export")
    try:
        outputs.check_replaceable(out, KIND, protected=protected)
    except outputs.OutputError as exc:
        raise ExportError(str(exc)) from None
    finish_marker(out)


def staging(out: str, *, round: int, format: str, project: str) -> str:
    """A new marked per-run folder beside ``out``; its fixed final marker is staged inside."""
    path = outputs.staging_folder(out, KIND, project=project, round=round, format=format)
    with open(os.path.join(path, FINAL_MARKER), "wb") as fh:
        fh.write(stable_marker(round, format))
    return path


def publish(stage: str, out: str, *, overwrite: bool, protected) -> None:
    """Swap ``stage`` in as ``out`` and give it its fixed marker.

    Raises
    ------
    ExportError
        ``out`` appeared meanwhile (another export) and may not be replaced.
    """
    try:
        outputs.publish(stage, out, KIND, overwrite=overwrite, protected=protected)
    except outputs.OutputError as exc:
        raise ExportError(str(exc)) from None
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
            raise ExportError(f"{out} was created by someone else while this export ran; nothing "
                              "was replaced. Export again (with overwrite=True, --overwrite, to replace it)") from None
        raise
    finish_marker(out)


def discard(stage: str) -> None:
    """Remove this run's staging folder (it holds either the unfinished export or, after a
    swap, the old one) - only if it is still a marked export folder."""
    if os.path.lexists(stage) and _is_export(stage):
        shutil.rmtree(stage, ignore_errors=True)
