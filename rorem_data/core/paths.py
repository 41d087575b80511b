"""Paths taken from data files: relative, inside their root, symlinks included.

``safe_join`` refuses what a path *says* (absolute, ``..``); ``resolve_inside`` also refuses what
it *is*: a path whose real location (every symlink followed) lies outside the root. Importers
use both, so a ``source/`` folder that is a symlink to elsewhere is refused by name.
"""

from __future__ import annotations

import os


from rorem_data.core.errors import UnsafePath  # noqa: F401 - raised here, defined there


def safe_join(root: str, rel: object) -> str:
    """Join a path taken from a data file to its root folder, refusing escapes.

    Parameters
    ----------
    root : str
        The folder the data file's paths are relative to.
    rel : object
        The path as found in the data file; must be a non-empty relative string.

    Returns
    -------
    str
        Absolute, normalized path inside ``root`` (symlinks not yet followed: see
        :func:`resolve_inside`).

    Raises
    ------
    UnsafePath
        If ``rel`` is not a string, is empty, is absolute, or normalizes outside ``root``.
    """
    if not isinstance(rel, str) or not rel.strip():
        raise UnsafePath(f"path must be a non-empty string, got {rel!r}")
    if os.path.isabs(rel) or rel.startswith(("\\", "~")) or (len(rel) > 1 and rel[1] == ":"):
        raise UnsafePath(f"path {rel!r} is absolute; paths must be relative to {root}")
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith(".." + os.sep) or "\x00" in norm:
        raise UnsafePath(f"path {rel!r} leaves the folder {root}")
    return os.path.join(os.path.abspath(root), norm)


def is_inside(path: str, root: str) -> bool:
    """True if the real location of ``path`` is ``root`` or below it (symlinks followed)."""
    real = os.path.realpath(path)
    real_root = os.path.realpath(root)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def resolve_inside(root: str, path: str, *, what: str = "path") -> str:
    """The real path of ``path`` if it lies inside ``root``; refuse it otherwise.

    Raises
    ------
    UnsafePath
        ``path`` (or a folder on the way, through a symlink) leads outside ``root``.
    """
    if not is_inside(path, root):
        raise UnsafePath(f"{what} {path} leads outside {os.path.abspath(root)} (through a symlink, "
                         f"to {os.path.realpath(path)}); copy the file into the folder instead "
                         "of linking it")
    return os.path.realpath(path)


def join_inside(root: str, rel: object, *, what: str = "path") -> str:
    """:func:`safe_join` then :func:`resolve_inside`: a data file's relative path, checked by
    what it says and by where it really leads. Returns the joined (unresolved) path."""
    joined = safe_join(root, rel)
    if os.path.lexists(joined):
        resolve_inside(root, joined, what=what)
    return joined
