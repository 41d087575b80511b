"""A stable sha256 of model files (:func:`checkpoint_sha256`), memoised by path, size and mtime.

The same files give the same hash wherever the folder lives; for a pipeline folder only
``model_index.json`` and the components it lists count.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

from rorem_data.core.errors import ConfigError
from rorem_data.models.files import WEIGHT_SUFFIXES, pipeline_components


def hash_cache_path() -> str:
    """``$ROREM_DATA_CACHE/sha256-cache.json`` (default ``~/.cache/rorem_data``)."""
    base = os.environ.get("ROREM_DATA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "rorem_data")
    return os.path.join(base, "sha256-cache.json")


def _file_sha256(path: str, cache: dict) -> str:
    """sha256 of a file's bytes, memoised by (real path, size, mtime) in ``cache``."""
    from rorem_data.core.images import sha256_file

    real = os.path.realpath(path)
    st = os.stat(real)
    tag = f"{st.st_size}:{st.st_mtime_ns}"
    hit = cache.get(real)
    if isinstance(hit, list) and len(hit) == 2 and hit[0] == tag:
        return hit[1]
    digest = sha256_file(real)
    cache[real] = [tag, digest]
    return digest


def _walk_model_folder(root: str):
    """``os.walk`` over a model folder; for a pipeline folder only ``model_index.json`` and the
    component folders it lists (not checkpoints, logs or data kept beside them)."""
    index = os.path.join(root, "model_index.json")
    if not os.path.isfile(index):
        yield from os.walk(root, followlinks=True)
        return
    try:
        with open(index, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        data = {}
    yield root, [], ["model_index.json"]
    for name in sorted(pipeline_components(data) if isinstance(data, dict) else ()):
        if os.path.isdir(os.path.join(root, name)):
            yield from os.walk(os.path.join(root, name), followlinks=True)


def _load_hash_cache(path: str) -> dict:
    from rorem_data.core import jsonfile

    try:
        data = jsonfile.load(path)
    except ConfigError:
        return {}
    return data if isinstance(data, dict) else {}


def checkpoint_sha256(paths: Sequence[str]) -> str:
    """A stable sha256 over model files: the relative path and content hash of every config and
    weight file under each folder (or of each file), in sorted order. For a pipeline folder only
    ``model_index.json`` and the components it lists count.

    The same files give the same hash wherever the folder lives. Content hashes are memoised
    in ``$ROREM_DATA_CACHE`` (default ``~/.cache/rorem_data``) by path, size and mtime, so a
    multi-GB checkpoint is read once.

    Parameters
    ----------
    paths : sequence of str
        Folders or files.

    Returns
    -------
    str
        64 hex digits.

    Examples
    --------
    >>> checkpoint_sha256(["runs/tiny-sd"]) == checkpoint_sha256(["copy-of/tiny-sd"])  # doctest: +SKIP
    True
    """
    cache_path = hash_cache_path()
    cache = _load_hash_cache(cache_path)
    snapshot = dict(cache)
    h = hashlib.sha256()
    for root in paths:
        root = os.path.abspath(root)
        if os.path.isfile(root):
            files = [(os.path.basename(root), root)]
        else:
            files = []
            for dirpath, dirnames, filenames in _walk_model_folder(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in filenames:
                    if f.startswith(".") or ".tmp" in f:
                        continue
                    if f.endswith(WEIGHT_SUFFIXES) or f.endswith((".json", ".txt", ".model")):
                        full = os.path.join(dirpath, f)
                        files.append((os.path.relpath(full, root).replace(os.sep, "/"), full))
            files.sort()
        h.update(b"\x01")
        for rel, full in files:
            h.update(rel.encode())
            h.update(b"\x00")
            h.update(_file_sha256(full, cache).encode())
    if cache != snapshot:
        try:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            tmp = f"{cache_path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(cache, fh)
            os.replace(tmp, cache_path)
        except OSError:
            pass  # the cache is an optimisation only
    return h.hexdigest()

