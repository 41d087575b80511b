"""Featurizing image files in bulk: :func:`featurize_paths` and its torch ``DataLoader``.

Worker processes decode the candidates' files (:func:`rorem_data.features.pairs.read_pair`:
the core image reader, the RORem mask convention), check them and run the featurizer's per-item
:meth:`~rorem_data.features.base.Featurizer.prepare`; the main process batches and runs
:meth:`~rorem_data.features.base.Featurizer.embed`. With a cache, only the missing items are
computed and every finished chunk is written at once, so an interrupted run resumes where it
stopped.

numpy at import time; torch is imported by :func:`featurize_paths`.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from rorem_data.core.checks import non_negative_int, positive_int
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.features.base import Featurizer, get_featurizer
from rorem_data.features.pairs import check_items, read_pair

__all__ = ["featurize_paths"]


class _PairFiles:
    """Map-style dataset: item i -> ("ok", i, prepared) or ("error", i, message)."""

    def __init__(self, featurizer: Featurizer, items: Sequence[tuple[str, str, str]],
                 positions: Sequence[int]):
        self.featurizer = featurizer
        self.items = items
        self.positions = positions

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, k):
        i = self.positions[k]
        src, res, mask = self.items[i]
        try:
            s, r, m = read_pair(src, res, mask, item=f"item {i} ({src})",
                                work_size=self.featurizer.work_size)
            return ("ok", i, self.featurizer.prepare(s, r, m))
        except ValidationError as exc:
            return ("error", i, str(exc))


class _Collate:
    def __init__(self, featurizer: Featurizer):
        self.featurizer = featurizer

    def __call__(self, rows):
        errors = [(i, msg) for kind, i, msg in rows if kind == "error"]
        if errors:
            return ("error", errors)
        idx = [i for _, i, _ in rows]
        return ("ok", idx, self.featurizer.collate([p for _, _, p in rows]))


def _worker_init(_worker_id: int) -> None:
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        try:
            import cv2
        except ImportError:
            return
    cv2.setNumThreads(0)


def _iter_batches(featurizer, items, positions, *, batch_size, num_workers, progress_bar):
    """Yield (positions, features) per batch in order; raises ValidationError on bad items."""
    DataLoader = require("torch.utils.data", purpose="featurize_paths (its DataLoader)").DataLoader
    loader = DataLoader(
        _PairFiles(featurizer, items, positions), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=_Collate(featurizer),
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False, prefetch_factor=4 if num_workers else None)
    # OpenCV's thread pool does not survive fork(): a worker forked from a process whose pool is
    # running hangs on its first cv2 call. Stop the pool in this process while workers run.
    cv2 = sys.modules.get("cv2") if num_workers else None
    cv2_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(0)
    try:
        for batch in loader:
            if batch[0] == "error":
                raise ValidationError(
                    f"{len(batch[1])} item(s) could not be featurized; fix or drop them and "
                    "rerun (finished chunks are kept in the cache)",
                    problems=[msg for _, msg in batch[1]])
            _, idx, payload = batch
            feats = featurizer.embed(payload)
            progress_bar.update(len(idx))
            yield idx, feats
    finally:
        if cv2 is not None:
            cv2.setNumThreads(cv2_threads)


def _check_ids(ids, n: int) -> list[str]:
    if ids is None:
        raise ConfigError("featurize_paths: ids are required with cache= (one sample id per "
                          "item)")
    ids = [str(x) for x in ids]
    if len(ids) != n:
        raise ConfigError(f"featurize_paths: got {len(ids)} ids for {n} items; pass one id "
                          "per item")
    if len(set(ids)) != n:
        seen, dups = set(), []
        for i in ids:
            if i in seen:
                dups.append(i)
            seen.add(i)
        raise ConfigError(f"featurize_paths: ids must be unique; repeated: {dups[:10]}")
    return ids


def featurize_paths(featurizer: Featurizer | str, items: Sequence[tuple[str, str, str]], *,
                    ids: Sequence[str] | None = None, cache=None, batch_size: int = 32,
                    num_workers: int = 2, progress: bool | None = None,
                    chunk_size: int | None = None,
                    num_threads: int | None = None) -> np.ndarray:
    """Features of (source, result, mask) image files, batched through a torch DataLoader.

    Worker processes decode the files, check them and run the featurizer's per-item
    preprocessing; the main process runs the model on each batch. With ``cache``, only items
    whose id is not cached yet are computed, and every ``chunk_size`` rows are written to the
    cache as soon as they are done, so an interrupted run keeps its finished chunks and a rerun
    computes only what is missing.

    Parameters
    ----------
    featurizer : Featurizer or str
        A featurizer, or a registry name (default config).
    items : sequence of (source_path, result_path, mask_path)
        One triple of file paths per candidate.
    ids : sequence of str, optional
        One sample id per item; required with ``cache``.
    cache : FeatureCache or str, optional
        A :class:`rorem_data.features.cache.FeatureCache` for this featurizer, or a cache root
        folder (the featurizer's sub-folder is created there).
    batch_size : int
        Items per model call.
    num_workers : int
        Decoding processes (0 = decode in this process).
    progress : bool
        Show a progress bar (``ROREM_PROGRESS=0`` silences it).
    chunk_size : int, optional
        Rows per cache chunk; default ``8 * batch_size``.
    num_threads : int, optional
        torch threads of this process while the workers run. Default: 1 when the featurizer's
        model is light (``stats``; tiny CLIP models) and there are workers - the work is
        decoding, and torch's threads would only fight the workers for the cores - otherwise
        torch's current setting. Restored afterwards.

    Returns
    -------
    ndarray, float32, shape (n_items, d)
        Rows in item order; ``featurizer.key`` names the features.

    Raises
    ------
    ValidationError
        Missing/unreadable files, size mismatches or empty masks (``problems`` lists every bad
        item of the failing batch, each naming the file); chunks finished before are kept.
    ConfigError
        Bad parameters, ids that do not match items, or a cache made by another featurizer.

    Examples
    --------
    >>> items = [("s.png", "r.png", "m.png")]
    >>> X = featurize_paths("stats", items, progress=False)  # doctest: +SKIP
    >>> X.shape                                               # doctest: +SKIP
    (1, 51)
    """
    from rorem_data.core.progress import progress as progress_factory

    if isinstance(featurizer, str):
        featurizer = get_featurizer(featurizer)
    if not isinstance(featurizer, Featurizer):
        raise ConfigError(f"featurizer must be a Featurizer or a registry name; got "
                          f"{type(featurizer).__name__}")
    items = check_items(items)
    bs = positive_int(batch_size, "batch_size")
    num_workers = non_negative_int(num_workers, "num_workers")
    chunk = bs * 8 if chunk_size is None else positive_int(chunk_size, "chunk_size")
    n = len(items)

    if cache is not None:
        from rorem_data.features.cache import FeatureCache

        ids = _check_ids(ids, n)
        if isinstance(cache, (str, os.PathLike)):
            cache = FeatureCache(os.fspath(cache), featurizer.key, featurizer.key_config)
        if cache.featurizer_key != featurizer.key:
            raise ConfigError(f"featurize_paths: the cache holds features of "
                              f"{cache.featurizer_key!r} but the featurizer is {featurizer.key!r};"
                              " open the cache with this featurizer's key and config")
        todo = list(np.flatnonzero(~cache.has_ids(ids)))
    else:
        todo = list(range(n))

    if todo:
        featurizer.setup()  # load weights only when something is to be computed
    out = None if cache is not None else np.zeros((n, featurizer.dim), np.float32)
    if num_threads is None and num_workers and todo and featurizer.light:
        num_threads = 1
    torch_threads = None
    if num_threads is not None and todo:
        torch = require("torch", purpose="featurize_paths")
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(positive_int(num_threads, "num_threads"))
    bar = progress_factory(total=len(todo), desc=f"featurize {featurizer.key}", unit="pair",
                           enabled=progress)
    pend_idx: list[int] = []
    pend_feat: list[np.ndarray] = []

    def flush():
        if cache is not None and pend_idx:
            cache.write_chunk([ids[i] for i in pend_idx], np.concatenate(pend_feat))
            pend_idx.clear()
            pend_feat.clear()

    try:
        if todo:
            for idx, feats in _iter_batches(featurizer, items, todo, batch_size=bs,
                                            num_workers=num_workers, progress_bar=bar):
                if cache is None:
                    out[idx] = feats
                    continue
                pend_idx.extend(idx)
                pend_feat.append(feats)
                if len(pend_idx) >= chunk:
                    flush()
        flush()
    except BaseException:
        flush()  # keep every finished row, then let the error (or Ctrl-C) through
        raise
    finally:
        bar.close()
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
    if cache is not None:
        out = cache.read(ids)
    return np.ascontiguousarray(out, dtype=np.float32)
