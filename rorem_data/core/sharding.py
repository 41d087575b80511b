"""Splitting work across processes and machines: shards by a hash of each item's key.

A shard ``(i, n)`` holds the items whose key hashes to ``i`` modulo ``n``. Membership depends on
the key alone, never on an item's position in a list, so items added between two shard runs
fall into exactly one shard, and the union of all shards is every item exactly once. Under
``accelerate launch`` (or torchrun) each process further takes its own share.

>>> from rorem_data.core.sharding import in_shard, parse_shard
>>> parse_shard("1/4")
(1, 4)
>>> keys = [f"item-{k}" for k in range(1000)]
>>> int(sum(in_shard(keys, (i, 4)).sum() for i in range(4)))
1000
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np

from rorem_data.core.errors import ConfigError


def parse_shard(shard) -> tuple[int, int] | None:
    """``None``, ``(i, n)`` or ``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``.

    Raises
    ------
    ConfigError
        For anything else.
    """
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            shard = tuple(int(p) for p in shard.split("/"))
        except ValueError:
            shard = None
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
            or not 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be i/n with 0 <= i < n (e.g. 0/4); got {shard!r}")
    return int(shard[0]), int(shard[1])


def key_bucket(key: str, n: int) -> int:
    """The shard (0..n-1) that ``key`` belongs to among ``n``."""
    digest = hashlib.blake2b(str(key).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def in_shard(keys: Sequence[str], shard: tuple[int, int] | None) -> np.ndarray:
    """Boolean mask: which ``keys`` belong to ``shard`` (all of them for None)."""
    if shard is None:
        return np.ones(len(keys), dtype=bool)
    i, n = shard
    return np.fromiter((key_bucket(k, n) == i for k in keys), dtype=bool, count=len(keys))


def select_keys(keys: Sequence[str], shard=None, share=None) -> np.ndarray:
    """Positions of the ``keys`` in ``shard`` (parsed) and in this process's ``share``
    ``(index, count, ...)``; the process split uses a second, salted hash so that it is
    independent of the shard split."""
    shard = parse_shard(shard)
    mask = in_shard(keys, shard)
    if share is not None:
        mask &= in_shard([f"{k}\x00proc" for k in keys], (share[0], share[1]))
    return np.flatnonzero(mask)


def accelerate_share():
    """(process_index, num_processes, device) under ``accelerate launch``/torchrun, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    use_cpu = (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
               or not torch.cuda.is_available())
    state = PartialState(cpu=use_cpu)
    if state.num_processes <= 1:
        return None
    return state.process_index, state.num_processes, state.device
