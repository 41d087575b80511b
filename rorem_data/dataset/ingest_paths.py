"""Where an importer's input files really are: inside their root, symlinks followed, cheaply.

Every file an import takes must lie inside its root folder (the meta.json folder, the pool
folder, the COCO image folder) once every symlink is followed; a symlink that stays inside keeps
working. The files' *real* paths are what the dataset stores, so an export can tell later whether
a stored file has been replaced by a link (:mod:`rorem_data.dataset.export_sources`).

Resolving every path with ``os.path.realpath`` costs ~25 us per file (an ``lstat`` per path
component); for 600K files that is most of a minute. So folders are resolved once each in the
importing process (:class:`RootGuard`), and a worker only looks at a file's last component
(:func:`resolve_file`, one ``lstat``).

>>> guard = RootGuard("/data/RORD")                      # doctest: +SKIP
>>> guard.place("/data/RORD/source/x.png")               # doctest: +SKIP
('/mnt/disk/RORD/source/x.png', None)
"""

from __future__ import annotations

import os
import stat

FIX_LINK = "copy the file into the folder instead of linking it, or import from where it really is"


def inside_real(real: str, real_root: str) -> bool:
    """True if the real path ``real`` is ``real_root`` or below it (both already resolved)."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def text_problem(name: str) -> str | None:
    """Why a file name cannot be stored (not valid UTF-8, a NUL byte), or None."""
    if "\x00" in name:
        return "file name holds a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which the database cannot store"
    return None


class RootGuard:
    """Resolves the folders of paths under one root, once per folder, and refuses escapes.

    Parameters
    ----------
    root : str
        The folder the input's paths are relative to.
    """

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(root)
        self._dirs: dict[str, str] = {}

    def real_dir(self, folder: str) -> str:
        real = self._dirs.get(folder)
        if real is None:
            real = self._dirs[folder] = os.path.realpath(folder)
        return real

    def place(self, path: str) -> tuple[str, str | None]:
        """``path`` with its folder resolved, and the problem if that folder leads outside.

        Returns
        -------
        placed : str
            ``real folder / file name`` (the file itself may still be a symlink: workers check
            it with :func:`resolve_file`).
        problem : str or None
        """
        folder, name = os.path.split(path)
        real = self.real_dir(folder)
        if not inside_real(real, self.real_root):
            rel = os.path.relpath(folder, self.root)
            return path, (f"folder {rel}/ leads outside {self.root} through a symlink (to {real})")
        return os.path.join(real, name), None


def resolve_file(path: str, real_root: str | None) -> tuple[str, str | None]:
    """Worker side: follow ``path`` if the file itself is a symlink, refusing an escape.

    Returns
    -------
    real : str
        Where to read the file (``path`` unless it is a symlink).
    problem : str or None
        Set when the link leads outside ``real_root``.
    """
    if real_root is None:
        return path, None
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return path, None  # missing or unreadable: the image check names it
    if not stat.S_ISLNK(st.st_mode):
        return path, None
    target = os.path.realpath(path)
    if not inside_real(target, real_root):
        return path, f"file is a symlink to {target}, outside {real_root}"
    return target, None
