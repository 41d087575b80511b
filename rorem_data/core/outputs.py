"""Output folders the tool writes (exports, reports, saved models): marked, swapped in
atomically, and removed only when the mark says the tool wrote them.

Promises (tested in ``tests/hostile/``):

* **Nothing is deleted that the tool did not write.** Every output folder gets a marker file
  (:data:`MARKER`) naming the kind of output. A folder is replaced or removed only if it holds
  the marker of the same kind, and never if it is (or contains) a protected folder such as the
  project root or its media folder.
* **Old or new, never neither.** A new output is built in a per-run sibling
  (``<out>.partial-<host>-<pid>-<token>``) and swapped with the old one in one atomic
  ``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames are used and a kill between
  them is repaired by the next run (:func:`recover`), which puts the old folder back.
* **Runs do not step on each other.** Temporary names are per run; cleanup removes only the
  leftovers of runs on this host whose process is gone.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import secrets
import shutil
import socket
import time

from rorem_data.core.errors import OutputError  # noqa: F401 - raised here (and imported from here)
from rorem_data.core.processes import pid_alive

MARKER = ".rorem-data-output.json"
_STALE_AFTER = 7 * 24 * 3600  # leftovers of other hosts are left alone for a week


def write_marker(folder: str, kind: str, **info) -> None:
    data = {"tool": "rorem-data", "kind": kind, "host": socket.gethostname(), "pid": os.getpid(),
            "created": time.time(), **info}
    with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")


def read_marker(folder: str) -> dict | None:
    """The marker of ``folder`` (None when absent, unreadable, or a symlink)."""
    path = os.path.join(folder, MARKER)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "rorem-data" else None


def _overlaps(path: str, protected: str) -> bool:
    """``path`` is ``protected`` or a parent of it (real paths)."""
    a = os.path.realpath(path).rstrip(os.sep) + os.sep
    b = os.path.realpath(protected).rstrip(os.sep) + os.sep
    return b.startswith(a)


def check_replaceable(folder: str, kind: str, *, protected=(), flag: str = "--out") -> None:
    """Raise :class:`OutputError` unless ``folder`` may be replaced or removed.

    It must be a real folder (not a symlink), hold a ``kind`` marker, and be none of the
    ``protected`` folders nor a parent of one.
    """
    for p in protected:
        if p and _overlaps(folder, p):
            raise OutputError(f"{folder} is (or contains) {p}, which rorem-data never removes; "
                              f"choose another {flag}")
    if os.path.islink(folder):
        raise OutputError(f"{folder} is a symlink; rorem-data does not replace what a link points "
                          f"to. Choose another {flag} or remove the link yourself")
    if not os.path.isdir(folder):
        raise OutputError(f"{folder} exists and is not a folder; choose another {flag}")
    marker = read_marker(folder)
    if marker is None:
        raise OutputError(f"{folder} exists and was not written by rorem-data (no {MARKER}); "
                          f"it is left untouched. Choose another {flag}, or remove it yourself")
    if marker.get("kind") != kind:
        raise OutputError(f"{folder} holds a rorem-data {marker.get('kind')!r} output, not "
                          f"{kind!r}; choose another {flag}")


def remove_output(folder: str, kind: str, *, protected=()) -> None:
    """Remove an output folder after :func:`check_replaceable`."""
    check_replaceable(folder, kind, protected=protected)
    _remove_marked(folder)


def _remove_marked(folder: str) -> None:
    """Delete a marked folder, the marker last: a kill midway leaves a folder that still says
    it is ours, so the next run's cleanup finishes the job."""
    marker = os.path.join(folder, MARKER)
    for entry in os.scandir(folder):
        if entry.path == marker:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.remove(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.remove(marker)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(folder)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _siblings(out: str, tag: str):
    parent, base = os.path.split(os.path.abspath(out))
    prefix = f".{base}.{tag}-"
    try:
        names = os.listdir(parent or ".")
    except FileNotFoundError:
        return []
    return [os.path.join(parent, n) for n in names if n.startswith(prefix)]


def _dead_leftover(path: str, kind: str) -> bool:
    marker = read_marker(path)
    if marker is None or marker.get("kind") != kind or os.path.islink(path):
        return False
    if marker.get("host") != socket.gethostname():
        return time.time() - float(marker.get("created") or 0) > _STALE_AFTER
    return not pid_alive(int(marker.get("pid") or 0))


def recover(out: str, kind: str) -> list[str]:
    """Repair what a killed run left around ``out``; returns what was done.

    If ``out`` is missing but an old copy was moved aside (a kill between two renames), the old
    copy is put back. Leftover temporary folders of runs that are gone are removed.
    """
    done = []
    olds = [p for p in _siblings(out, "old") if read_marker(p) and read_marker(p).get("kind") == kind]
    if not os.path.lexists(out) and olds:
        newest = max(olds, key=os.path.getmtime)
        os.rename(newest, out)
        olds.remove(newest)
        done.append(f"restored {out} from {newest}")
    for p in olds + _siblings(out, "partial"):
        if _dead_leftover(p, kind):
            _remove_marked(p)
            done.append(f"removed leftover {p}")
    return done


def staging_folder(out: str, kind: str, **info) -> str:
    """A new, marked, per-run sibling folder to build ``out`` in."""
    parent, base = os.path.split(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tag = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    path = os.path.join(parent, f".{base}.partial-{tag}")
    os.makedirs(path)
    write_marker(path, kind, **info)
    return path


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False when unsupported here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    res = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP if hasattr(errno, "ENOTSUP") else -1):
        return False
    raise OSError(err, os.strerror(err), a)


def publish(staging: str, out: str, kind: str, *, overwrite: bool = False, protected=(),
            flag: str = "--out") -> None:
    """Move a finished ``staging`` folder to ``out``.

    Without ``overwrite`` an existing ``out`` is an error. With it, ``out`` must be a ``kind``
    output (:func:`check_replaceable`); it is exchanged atomically with the new folder and then
    removed.
    """
    out = os.path.abspath(out)
    if not os.path.lexists(out):
        os.rename(staging, out)
        return
    if not overwrite:
        raise OutputError(f"{out} already exists; choose another {flag} or pass --overwrite")
    check_replaceable(out, kind, protected=protected, flag=flag)
    if _exchange(staging, out):
        _remove_marked(staging)  # now holds the old output
        return
    parent, base = os.path.split(out)
    old = os.path.join(parent, f".{base}.old-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
    os.rename(out, old)
    os.rename(staging, out)
    _remove_marked(old)
