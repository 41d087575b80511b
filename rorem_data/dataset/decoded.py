"""Decoded copies: the one image every reader sees, for files whose pixels a plain reader gets
wrong (EXIF orientation, 16 bits, CMYK, an ICC profile, TIFF; :mod:`rorem_data.core.decode`).

At an import's commit, each such source or target is decoded once (in parallel worker
processes) and stored as a PNG under ``<media>/images/``, named by the hash of its bytes (a
rerun after a kill writes the same file; a half-written one is never left: the write is
atomic). The sample's ``filepath`` (or ``target_path``) is that copy; ``original_path`` (or
``original_target_path``) and ``conversions`` record where it came from and what was done.
"""

from __future__ import annotations

import hashlib
import os


def write_decoded(task) -> tuple[str | None, str | None]:
    """Worker: ``(path, role, folder)`` -> ``(copy path, None)`` or ``(None, problem)``."""
    from rorem_data.core.decode import encode_png
    from rorem_data.core.images import ImageProblem, decode_rgb, write_bytes_atomic

    path, role, folder = task
    try:
        arr, _dec = decode_rgb(path, role=role)
    except ImageProblem as exc:
        return None, str(exc)
    png = encode_png(arr)
    out = os.path.join(folder, hashlib.sha1(png).hexdigest()[:24] + ".png")
    if not os.path.exists(out):
        write_bytes_atomic(out, png)
    return out, None


def decoded_copies(project, files: list[tuple[str, str]], *, workers: int | None = None) -> dict:
    """Store the decoded copy of each ``(path, role)``; returns ``{path: copy path}``.

    Raises
    ------
    ImageProblem
        A file that decoded at the check no longer does (changed meanwhile): named.
    """
    from rorem_data.core.errors import ImageProblem
    from rorem_data.core.validate import map_checks

    todo = sorted(set(files))
    if not todo:
        return {}
    folder = project.media_path("images")
    os.makedirs(folder, exist_ok=True)
    done = map_checks(write_decoded, [(p, role, folder) for p, role in todo],
                      desc="storing decoded images", workers=workers, chunk_size=16)
    out = {}
    for (path, _role), (copy, problem) in zip(todo, done):
        if problem is not None:
            raise ImageProblem(f"{path} could not be decoded any more ({problem}); it changed "
                               "after its check: restore it, then import again")
        out[path] = copy
    return out
