"""Before an export copies a pair's bytes: are its stored files still the imported files?

Importers store real paths (every symlink followed, see :mod:`rorem_data.dataset.ingest_paths`),
so at export a stored path whose real location differs from itself has been replaced by a
symlink - or a folder on its way has - since the import, and may now lead anywhere (``/etc``,
another user's data). Such a pair is refused, as is one whose file is gone. Files the project
wrote itself under its media folder (canonical masks, generated results) may pass through a
symlinked media folder, as long as they stay inside it.

One folder lookup per distinct folder and one ``lstat`` per file: 600K files take ~2 s.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from rorem_data.core.errors import ExportError
from rorem_data.dataset.ingest_paths import inside_real

FIX_LINK = ("restore the file at its imported location (not a link), or import the pair again "
            "from where its files really are; then export again")
FIX_GONE = "restore it, or mark the pair rejected, then export again"


@dataclass(frozen=True, slots=True)
class StoredProblem:
    """One stored file an export refuses."""

    pair: str
    role: str
    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.pair}: {self.role} file {self.path} {self.problem}. Fix: {self.fix}"


class StoredFiles:
    """Locates stored files and refuses the ones that changed since import.

    Parameters
    ----------
    media_dir : str
        The project's media folder (files the project wrote).
    """

    def __init__(self, media_dir: str):
        self.media = os.path.abspath(media_dir)
        self.real_media = os.path.realpath(media_dir)
        self._dirs: dict[str, str] = {}

    def _in_media(self, path: str, real: str) -> bool:
        return (inside_real(path, self.media) or inside_real(path, self.real_media)) \
            and inside_real(real, self.real_media)

    def locate(self, path: str) -> tuple[str | None, str | None, str | None]:
        """``(real path, problem, fix)``: the real path to read, or the reason it is refused."""
        p = os.path.abspath(path)
        folder, name = os.path.split(p)
        real_dir = self._dirs.get(folder)
        if real_dir is None:
            real_dir = self._dirs[folder] = os.path.realpath(folder)
        candidate = os.path.join(real_dir, name)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return None, "has since been moved or deleted (it no longer exists)", FIX_GONE
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})", FIX_GONE
        real = os.path.realpath(candidate) if stat.S_ISLNK(st.st_mode) else candidate
        if real != p and not self._in_media(p, real):
            how = (f"is now a symlink to {real}" if real_dir == folder
                   else f"now leads to {real} (its folder {folder} became a symlink to {real_dir})")
            return None, f"{how}, which it was not when imported", FIX_LINK
        if not os.path.isfile(real):
            return None, ("has since been moved or deleted (it no longer exists)"
                          if not os.path.exists(real) else "is no longer a regular file"), FIX_GONE
        return real, None, None


def locate_pairs(rows, media_dir: str, *, round: int) -> list[tuple[str, str, str]]:
    """Real ``(source, mask, target)`` paths of every export row, or one ExportError naming
    every refused pair.

    Raises
    ------
    ExportError
        A stored file is gone, or has been replaced by (or moved behind) a symlink since import.
    """
    files = StoredFiles(media_dir)
    located, problems = [], []
    for r in rows:
        pair = f"pair {r.key} ({r.kind}, origin {r.origin or '-'}, round {r.round})"
        reals = []
        for role, path in (("source", r.source), ("mask", r.mask), ("target (GT)", r.target)):
            real, problem, fix = files.locate(path)
            if problem:
                problems.append(StoredProblem(pair, role, path, problem, fix))
            reals.append(real)
        located.append(tuple(reals))
    if problems:
        lines = [f"Refusing to export round {round}: {len(problems)} stored file(s) are no longer "
                 "the files that were imported; nothing was written."]
        lines += [f"  - {p}" for p in problems[:20]]
        if len(problems) > 20:
            lines.append(f"  ... and {len(problems) - 20} more")
        raise ExportError("\n".join(lines))
    return located
