"""On-disk feature cache: one folder per featurizer key, append-only chunk files.

Layout::

    <root>/<featurizer key>/config.json          {"featurizer_key", "config", "format", ...}
    <root>/<featurizer key>/chunk-<time>-<pid>-<random>.safetensors
        ids       uint8 (n, W)   sample ids, UTF-8, zero-padded to a fixed width W
        features  float32 (n, d)

Chunks are written to a temporary name in the same folder and renamed into place, so a reader
never sees half a chunk and an interrupted write leaves nothing behind (a killed process can
leave a ``.tmp-*`` file, which readers ignore and :meth:`FeatureCache.clean` removes). Names
are unique per process, so several processes (shards, machines on a shared disk) can write to
one cache at once. Readers rescan the folder for new chunks on every call. An id present in
several chunks (two shards computed it) reads from the newest chunk.

Pure numpy + safetensors (``safetensors.numpy``); never pickle.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Sequence

import numpy as np

from rorem_data.core import jsonfile
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError, ValidationError

__all__ = ["FeatureCache"]

_FORMAT = "rorem-data-feature-cache"
_FORMAT_VERSION = 1
_CHUNK_PREFIX = "chunk-"
_CHUNK_SUFFIX = ".safetensors"


def _st():
    st_numpy = require("safetensors.numpy", purpose="the feature cache")
    return st_numpy.save_file, st_numpy.load_file, require("safetensors").safe_open


def _hash_rows(keys: np.ndarray) -> np.ndarray:
    """uint64 hash of each fixed-width byte string (zero-padded to a multiple of 8 bytes)."""
    width = keys.dtype.itemsize
    raw = np.frombuffer(keys.tobytes(), np.uint8).reshape(len(keys), width)
    pad = (-width) % 8
    if pad:
        raw = np.concatenate([raw, np.zeros((len(keys), pad), np.uint8)], axis=1)
    words = np.ascontiguousarray(raw).view(np.uint64)
    h = np.zeros(len(keys), np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h * mult) ^ words[:, j]
    return h


class _StringIndex:
    """Exact id -> position lookups over the sorted key array, vectorised.

    Ids are hashed to uint64 (numpy), looked up with ``searchsorted`` and verified byte for
    byte; a dict is the fallback (hash collisions among keys, ids that are not plain ASCII).
    """

    def __init__(self, keys: np.ndarray):
        self.keys = keys  # sorted, unique, dtype S<width>
        self.width = keys.dtype.itemsize
        h = _hash_rows(keys)
        self.order = np.argsort(h, kind="stable")
        self.hashes = h[self.order]
        self._dict = None
        if len(h) > 1 and (self.hashes[1:] == self.hashes[:-1]).any():
            self._dict = {k: i for i, k in enumerate(keys.tolist())}

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Position of each id in ``keys``, -1 where absent; int64 (n,)."""
        n = len(ids)
        strs = ids if isinstance(ids, list) and all(type(i) is str for i in ids) else \
            [str(i) for i in ids]
        if self._dict is None:
            try:
                q = np.array(strs, dtype=f"S{self.width}")  # ASCII only; truncates long ids
            except UnicodeEncodeError:
                q = None
            if q is not None:
                too_long = np.fromiter(map(len, strs), np.int64, n) > self.width
                p = np.minimum(np.searchsorted(self.hashes, _hash_rows(q)), len(self.keys) - 1)
                idx = self.order[p]
                ok = (self.keys[idx] == q) & ~too_long
                return np.where(ok, idx, -1).astype(np.int64)
        if self._dict is None:
            self._dict = {k: i for i, k in enumerate(self.keys.tolist())}
        get = self._dict.get
        return np.fromiter((get(s.encode("utf-8"), -1) for s in strs), np.int64, n)


def _features_view(path: str, safe_open) -> np.ndarray:
    """The ``features`` tensor of a chunk, read with one sequential read when possible.

    A safetensors file is an 8-byte little-endian header length, a JSON header giving each
    tensor's dtype, shape and byte range, then the raw bytes; reading that range directly
    avoids safetensors' extra copy (falls back to ``safe_open`` for anything unexpected).
    """
    try:
        with open(path, "rb") as fh:
            hlen = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(hlen))
        info = header["features"]
        if info["dtype"] == "F32" and len(info["shape"]) == 2:
            begin, end = info["data_offsets"]
            n, d = info["shape"]
            if end - begin == n * d * 4 and n * d > 0:
                return np.fromfile(path, dtype="<f4", count=n * d,
                                   offset=8 + hlen + begin).reshape(n, d)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
    with safe_open(path, framework="numpy") as fh:
        return fh.get_tensor("features")


def _normalise(config) -> dict:
    try:
        return json.loads(json.dumps(config, sort_keys=True))
    except TypeError as exc:
        raise ConfigError(f"FeatureCache: config must be JSON-serialisable; got {config!r} "
                          f"({exc})") from None


def _encode_ids(ids: Sequence[str]) -> np.ndarray:
    raw = [str(i).encode("utf-8") for i in ids]
    width = max((len(b) for b in raw), default=1) or 1
    out = np.zeros((len(raw), width), np.uint8)
    for k, b in enumerate(raw):
        out[k, :len(b)] = np.frombuffer(b, np.uint8)
    return out


def _decode_ids(arr: np.ndarray) -> list[str]:
    if arr.ndim != 2:
        return []
    width = arr.shape[1]
    as_bytes = np.ascontiguousarray(arr).view(f"S{width}").ravel()  # numpy strips trailing NULs
    return [b.decode("utf-8") for b in as_bytes]


class FeatureCache:
    """Features of one featurizer, stored by sample id in append-only chunk files.

    Parameters
    ----------
    root : str
        Cache root; the features live in ``<root>/<featurizer_key>/``.
    featurizer_key : str
        The featurizer's :attr:`~rorem_data.features.base.Featurizer.key`.
    config : dict
        The featurizer's config; written to ``config.json`` on first use and compared on every
        later open.

    Raises
    ------
    ConfigError
        If the folder's ``config.json`` records another key or config (the message shows both
        and the fix), or the key is not a plain folder name.

    Examples
    --------
    >>> import tempfile
    >>> c = FeatureCache(tempfile.mkdtemp(), "stats-0123456789", {"size": 256})
    >>> path = c.write_chunk(["a", "b"], np.ones((2, 3), np.float32))
    >>> c.missing(["a", "c"])
    ['c']
    >>> c.read(["b", "a"]).shape
    (2, 3)
    """

    def __init__(self, root: str, featurizer_key: str, config: dict):
        if not isinstance(featurizer_key, str) or not featurizer_key or \
                os.sep in featurizer_key or featurizer_key.startswith("."):
            raise ConfigError(f"FeatureCache: featurizer_key must be a plain folder name such as "
                              f"'stats-0123456789'; got {featurizer_key!r}")
        self.root = os.fspath(root)
        self.featurizer_key = featurizer_key
        self.config = _normalise(config)
        self.path = os.path.join(self.root, featurizer_key)
        self._reset_index()
        self._dim: int | None = None
        os.makedirs(self.path, exist_ok=True)
        self._check_or_write_config()

    # -- config ----------------------------------------------------------------------------------
    def _check_or_write_config(self) -> None:
        path = os.path.join(self.path, "config.json")
        want = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                "featurizer_key": self.featurizer_key, "config": self.config}
        if not os.path.exists(path):
            tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(want, fh, indent=1, sort_keys=True)
                fh.write("\n")
            try:
                os.link(tmp, path)  # atomic create-if-absent: a concurrent writer may have won
            except FileExistsError:
                pass
            except OSError:  # file systems without hard links
                if not os.path.exists(path):
                    os.replace(tmp, path)
            if os.path.exists(tmp):
                os.unlink(tmp)
        have = jsonfile.load(path, what=f"FeatureCache: {path}",
                             fix=f"delete the folder {self.path} to rebuild the cache")
        if not isinstance(have, dict):
            raise ConfigError(f"FeatureCache: {path} is not a cache config; delete the folder "
                              f"{self.path} to rebuild the cache")
        if have.get("featurizer_key") != self.featurizer_key or \
                _normalise(have.get("config")) != self.config:
            raise ConfigError(
                f"FeatureCache: {self.path} holds features of featurizer "
                f"{have.get('featurizer_key')!r} with config {have.get('config')!r}, but "
                f"{self.featurizer_key!r} with config {self.config!r} was requested. Use the "
                "matching featurizer config, another cache root, or delete the folder.")

    # -- index -------------------------------------------------------------------------------------
    def chunk_files(self) -> list[str]:
        """Paths of the finished chunk files, oldest first (names start with the write time)."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return [os.path.join(self.path, n) for n in sorted(names)
                if n.startswith(_CHUNK_PREFIX) and n.endswith(_CHUNK_SUFFIX)]

    def _reset_index(self) -> None:
        self._chunks: list[str] = []  # chunk paths, oldest first
        self._pending: list[tuple[int, np.ndarray]] = []  # (chunk number, ids as S bytes)
        self._keys = np.zeros(0, dtype="S1")  # sorted unique ids (bytes)
        self._loc_chunk = np.zeros(0, np.int64)  # chunk number of each key
        self._loc_row = np.zeros(0, np.int64)  # row of each key in its chunk
        self._pos_of: _StringIndex | None = None  # key -> index position (built lazily)

    def refresh(self) -> None:
        """Pick up chunks written by other processes (every public call does this)."""
        _, _, safe_open = _st()
        files = self.chunk_files()
        known = set(self._chunks)
        if not known <= set(files):
            self._reset_index()  # chunks were compacted away: rebuild
            known = set()
        new = [p for p in files if p not in known]
        if new and self._chunks and new[0] < self._chunks[-1]:
            self._reset_index()  # an older-named chunk appeared late: rebuild ("newest wins")
            new = files
        for p in new:
            try:
                with safe_open(p, framework="numpy") as fh:
                    raw = fh.get_tensor("ids")
                    dim = int(fh.get_slice("features").get_shape()[1])
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
                raise ConfigError(f"FeatureCache: chunk {p} is unreadable ({exc}); delete it and "
                                  "rerun featurization (only its rows are recomputed)") from None
            if self._dim is None:
                self._dim = dim
            elif dim != self._dim:
                raise ConfigError(f"FeatureCache: chunk {p} has {dim} features per row but "
                                  f"others have {self._dim}; delete the odd chunk")
            width = raw.shape[1] if raw.ndim == 2 else 1
            keys = np.ascontiguousarray(raw, dtype=np.uint8).view(f"S{width}").ravel()
            self._pending.append((len(self._chunks), keys))
            self._chunks.append(p)

    def _merge(self) -> None:
        """Fold pending chunks into the sorted index (newest chunk wins for repeated ids)."""
        if not self._pending:
            return
        width = max([self._keys.dtype.itemsize] + [k.dtype.itemsize for _, k in self._pending])
        parts = [self._keys.astype(f"S{width}")] + [k.astype(f"S{width}")
                                                     for _, k in self._pending]
        chunk = [self._loc_chunk] + [np.full(len(k), c, np.int64) for c, k in self._pending]
        row = [self._loc_row] + [np.arange(len(k), dtype=np.int64) for _, k in self._pending]
        keys, chunk, row = np.concatenate(parts), np.concatenate(chunk), np.concatenate(row)
        # stable sort by key, then keep the last entry per key = the newest chunk
        order = np.lexsort((chunk, keys))
        keys, chunk, row = keys[order], chunk[order], row[order]
        last = np.ones(len(keys), bool)
        last[:-1] = keys[1:] != keys[:-1]
        self._keys, self._loc_chunk, self._loc_row = keys[last], chunk[last], row[last]
        self._pending = []
        self._pos_of = None

    def _lookup(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, positions in the index) for ``ids``; refreshes first."""
        self.refresh()
        self._merge()
        n = len(ids)
        if n == 0 or len(self._keys) == 0:
            return np.zeros(n, bool), np.zeros(n, np.int64)
        if self._pos_of is None:
            self._pos_of = _StringIndex(self._keys)
        pos = self._pos_of.positions(ids)
        found = pos >= 0
        return found, np.maximum(pos, 0)

    @property
    def dim(self) -> int | None:
        """Features per row, or None while the cache is empty."""
        self.refresh()
        return self._dim

    def __len__(self) -> int:
        self.refresh()
        self._merge()
        return len(self._keys)

    def ids(self) -> list[str]:
        """Every cached sample id (sorted)."""
        self.refresh()
        self._merge()
        return [k.decode("utf-8") for k in self._keys.tolist()]

    def has_ids(self, ids: Sequence[str]) -> np.ndarray:
        """Bool mask, shape (n,): True where the id's features are cached.

        Examples
        --------
        >>> import tempfile
        >>> c = FeatureCache(tempfile.mkdtemp(), "k-1", {})
        >>> c.has_ids(["x"]).tolist()
        [False]
        """
        return self._lookup(ids)[0]

    def missing(self, ids: Sequence[str]) -> list[str]:
        """The ids (in the given order) whose features are not cached."""
        found = self._lookup(ids)[0]
        return [str(ids[k]) for k in np.flatnonzero(~found)]

    # -- writing -----------------------------------------------------------------------------------
    def write_chunk(self, ids: Sequence[str], feats: np.ndarray) -> str:
        """Append one chunk atomically (temporary file + rename).

        Parameters
        ----------
        ids : sequence of str, length n
            Sample ids, unique within the chunk.
        feats : ndarray, shape (n, d)
            Features (stored as float32).

        Returns
        -------
        str
            Path of the new chunk file.

        Raises
        ------
        ValidationError
            Length mismatch, duplicate ids, non-finite values or a ``d`` that differs from the
            chunks already in the cache. Nothing is written then.
        """
        save_file, _, _ = _st()
        ids = [str(i) for i in ids]
        feats = np.ascontiguousarray(np.asarray(feats), dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] != len(ids):
            raise ValidationError(f"FeatureCache.write_chunk: features must have shape "
                                  f"({len(ids)}, d) for {len(ids)} ids; got {feats.shape}")
        if len(set(ids)) != len(ids):
            raise ValidationError("FeatureCache.write_chunk: ids within one chunk must be unique")
        if not np.isfinite(feats).all():
            bad = [ids[k] for k in np.flatnonzero(~np.isfinite(feats).all(axis=1))[:5]]
            raise ValidationError(f"FeatureCache.write_chunk: non-finite features for ids {bad}; "
                                  "fix the featurizer or the inputs")
        if not ids:
            return ""
        if self._dim is None:
            self.refresh()
        if self._dim is not None and feats.shape[1] != self._dim:
            raise ValidationError(f"FeatureCache.write_chunk: {feats.shape[1]} features per row "
                                  f"but the cache {self.path} holds {self._dim}")
        name = (f"{_CHUNK_PREFIX}{time.time_ns():020d}-{os.getpid()}-"
                f"{secrets.token_hex(4)}{_CHUNK_SUFFIX}")
        final = os.path.join(self.path, name)
        tmp = os.path.join(self.path, f".tmp-{name}")
        try:
            save_file({"ids": _encode_ids(ids), "features": feats}, tmp,
                      metadata={"featurizer_key": self.featurizer_key, "rows": str(len(ids))})
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        if self._dim is None:
            self._dim = feats.shape[1]
        return final

    # -- reading -----------------------------------------------------------------------------------
    def read(self, ids: Sequence[str]) -> np.ndarray:
        """Features of ``ids`` in the requested order.

        Returns
        -------
        ndarray, float32, shape (n, d)

        Raises
        ------
        ValidationError
            If some ids are not cached (the message names up to 10 and the count).
        """
        _, _, safe_open = _st()
        found, pos = self._lookup(ids)
        if not found.all():
            miss = [str(ids[k]) for k in np.flatnonzero(~found)]
            raise ValidationError(
                f"FeatureCache.read: {len(miss)} of {len(ids)} ids have no cached features in "
                f"{self.path} (e.g. {miss[:10]}); featurize them first (featurize_paths with "
                "cache=...)")
        if len(ids) == 0:
            return np.zeros((0, self._dim or 0), np.float32)
        out = np.empty((len(ids), self._dim), np.float32)
        chunk, row = self._loc_chunk[pos], self._loc_row[pos]
        order = np.argsort(chunk, kind="stable")
        bounds = np.flatnonzero(np.diff(chunk[order])) + 1
        groups = np.split(order, bounds)
        for group in groups:
            path = self._chunks[int(chunk[group[0]])]
            try:
                feats = _features_view(path, safe_open)
            except FileNotFoundError:  # compacted meanwhile by another process: retry
                self._reset_index()
                return self.read(ids)
            if len(groups) == 1:  # one chunk (a compacted cache): a single gather
                return np.ascontiguousarray(feats[row], dtype=np.float32)
            else:
                out[group] = feats[row[group]]
        return out

    # -- maintenance -------------------------------------------------------------------------------
    def compact(self) -> str | None:
        """Merge every chunk into one (newest value per id); returns the new chunk path.

        Safe while other processes write: chunks that appear during compaction are left alone.
        """
        self.refresh()
        files = self.chunk_files()
        if len(files) <= 1:
            return files[0] if files else None
        ids = self.ids()
        feats = self.read(ids)
        new = self.write_chunk(ids, feats)
        # the new chunk is the newest; it holds every id the old ones had
        for p in files:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self._reset_index()
        return new

    def clean(self, older_than: float = 3600.0) -> int:
        """Remove temporary files of killed writers older than ``older_than`` seconds."""
        n = 0
        now = time.time()
        for name in os.listdir(self.path):
            if name.startswith(".tmp-") or ".tmp-" in name:
                p = os.path.join(self.path, name)
                try:
                    if now - os.path.getmtime(p) > older_than:
                        os.unlink(p)
                        n += 1
                except FileNotFoundError:
                    pass
        return n

    def __repr__(self) -> str:
        return f"FeatureCache({self.path!r})"
