"""Failures of the machine, named: a full disk, a read-only folder, a database that does not answer.

:func:`environment_problem` turns such an exception into an
:class:`~rorem_data.core.errors.EnvironmentProblem` whose one line names the resource (the path,
the database address) and the fix; anything else gives None. The front door
(``rorem_data.<name>``) and the CLI both use it, so a Python caller and a shell user read the
same message.
"""

from __future__ import annotations

import errno
import os

from rorem_data.core.errors import EnvironmentProblem

_DB_ERRORS = ("ServerSelectionTimeoutError", "AutoReconnect", "ConnectionFailure", "NetworkTimeout",
              "ConnectionError")


def _path_of(exc: OSError) -> str:
    for p in (exc.filename, exc.filename2):
        if p:
            return os.fspath(p)
    return "?"


def _database_address() -> str:
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    return uri or "FiftyOne's embedded database"


def environment_problem(exc: BaseException) -> EnvironmentProblem | None:
    """The named environment failure behind ``exc``, or None when it is not one."""
    if isinstance(exc, EnvironmentProblem):
        return exc
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found = _one(exc)
        if found is not None:
            return found
        exc = exc.__cause__ or exc.__context__
    return None


def _one(exc: BaseException) -> EnvironmentProblem | None:
    mod = type(exc).__module__ or ""
    if mod.startswith(("pymongo", "mongoengine")) and type(exc).__name__ in _DB_ERRORS:
        return EnvironmentProblem(
            f"the database at {_database_address()} does not answer ({type(exc).__name__}). Start "
            "it (or check FIFTYONE_DATABASE_URI and the network), then run the same command again; "
            "nothing is lost: every step resumes where it stopped")
    if not isinstance(exc, OSError):
        return None
    path = _path_of(exc)
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        where = f" ({path})" if path != "?" else ""
        return EnvironmentProblem(
            f"the disk is full{where}: {exc.strerror}. Free space on that disk (or point the "
            "project's media folder / the output elsewhere), then run the same command again; "
            "files are written atomically, so nothing half-written is left")
    if code == errno.EROFS:
        return EnvironmentProblem(
            f"{path} is on a read-only file system. Write to a folder you can write to, or remount "
            "it read-write, then run the same command again")
    if code in (errno.EACCES, errno.EPERM):
        return EnvironmentProblem(
            f"permission denied for {path}. Give this user write access to it (or choose another "
            "folder), then run the same command again")
    return None
