"""Training state without pickle: optimizer, learning-rate scheduler, gradient scaler and random
number generators written as safetensors (tensors) + JSON (everything else), and read back.

``accelerate``'s ``save_state`` writes the optimizer, scheduler and RNG states with
``torch.save`` (``optimizer.bin``, ``scheduler.bin``, ``random_states_<rank>.pkl``), which
``load_state`` unpickles; a checkpoint from an untrusted place could then run code. These
functions write and read the same information with no pickle at all:

* optimizer: every tensor of ``state_dict()["state"]`` in ``optimizer*.safetensors`` (sharded at
  2 GB, so a multi-GB Adam state does not double the memory while it is written), the rest
  (``param_groups``, plain numbers) in JSON;
* scheduler and gradient scaler: their ``state_dict()`` as JSON (plain numbers and lists);
* RNG: ``torch`` CPU (and CUDA) states, numpy's MT19937 keys and Python's ``random`` state in
  ``rng-<rank>.safetensors``, their scalars in its metadata.

>>> from rorem_data.finetune import state
>>> meta = state.save_optimizer(optimizer, "ckpt")                  # doctest: +SKIP
>>> state.load_optimizer(optimizer, "ckpt", meta)                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import random

import numpy as np

from rorem_data.core.errors import ConfigError

SHARD_BYTES = 2 * 1024 ** 3


def _json_safe(value, what: str):
    """``value`` if it survives JSON unchanged in meaning (numbers, strings, lists, dicts)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} holds a value that cannot be saved without pickle ({exc}); "
                          "use an optimizer / scheduler whose state is tensors and numbers") from None
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# Sharded tensors
# --------------------------------------------------------------------------------------------


def save_tensors(tensors: dict, folder: str, stem: str, *, shard_bytes: int = SHARD_BYTES) -> list[str]:
    """Write ``tensors`` as ``<stem>-<i>.safetensors`` files of at most ``shard_bytes`` each
    (a larger tensor gets a file of its own); returns the file names in order."""
    from safetensors.torch import save_file

    shards, current, size = [], {}, 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        n = t.numel() * t.element_size()
        if current and size + n > shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += n
    if current or not shards:
        shards.append(current)
    names = []
    for i, shard in enumerate(shards):
        name = f"{stem}-{i:05d}.safetensors"
        save_file(shard, os.path.join(folder, name))
        names.append(name)
    return names


def load_tensors(folder: str, names: list[str]) -> dict:
    """Read the files :func:`save_tensors` wrote (names must stay inside ``folder``)."""
    from safetensors.torch import load_file

    out = {}
    for name in names:
        if os.path.basename(name) != name or not name.endswith(".safetensors"):
            raise ConfigError(f"checkpoint {folder} lists {name!r} as a state file; only "
                              ".safetensors files inside the checkpoint are read")
        out.update(load_file(os.path.join(folder, name)))
    return out


# --------------------------------------------------------------------------------------------
# Optimizer, scheduler, scaler
# --------------------------------------------------------------------------------------------


def save_optimizer(optimizer, folder: str, *, stem: str = "optimizer") -> dict:
    """Write the optimizer's tensors; return the JSON-able rest (store it in the checkpoint)."""
    import torch

    sd = optimizer.state_dict()
    tensors, plain = {}, {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    files = save_tensors(tensors, folder, stem)
    return {"files": files, "plain_state": _json_safe(plain, "the optimizer state"),
            "param_groups": _json_safe(sd["param_groups"], "the optimizer's param_groups")}


def load_optimizer(optimizer, folder: str, meta: dict) -> None:
    """Restore what :func:`save_optimizer` wrote into ``optimizer`` (same parameters, same order)."""
    tensors = load_tensors(folder, meta["files"])
    state: dict = {}
    for name, t in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    for pid, entries in meta.get("plain_state", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"the optimizer state in {folder} does not fit this run ({exc}); resume "
                          "with the same model and options, or pass resume='none' (--resume none)") from None


def scheduler_state(lr_scheduler) -> dict:
    """The learning-rate scheduler's ``state_dict()`` as JSON-able data."""
    return _json_safe(lr_scheduler.state_dict(), "the learning-rate scheduler state")


def scaler_state(scaler) -> dict | None:
    """A ``GradScaler``'s state (None without one)."""
    return None if scaler is None else _json_safe(scaler.state_dict(), "the gradient scaler state")


# --------------------------------------------------------------------------------------------
# Random number generators
# --------------------------------------------------------------------------------------------


def rng_file(rank: int) -> str:
    return f"rng-{int(rank)}.safetensors"


def save_rng(folder: str, rank: int) -> str:
    """Write this process's RNG states (torch CPU / CUDA, numpy, Python) to ``rng-<rank>``."""
    import torch
    from safetensors.torch import save_file

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = s
    algorithm, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, py_state, gauss_next = random.getstate()
    tensors["python_state"] = torch.tensor(py_state, dtype=torch.int64)
    meta = {"numpy": {"algorithm": algorithm, "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached_gaussian": float(cached)},
            "python": {"version": int(version), "gauss_next": gauss_next}}
    name = rng_file(rank)
    save_file(tensors, os.path.join(folder, name), metadata={"rng": json.dumps(meta)})
    return name


def load_rng(folder: str, rank: int) -> bool:
    """Restore the RNG states :func:`save_rng` wrote for ``rank``; False when there is none."""
    import torch
    from safetensors import safe_open

    path = os.path.join(folder, rng_file(rank))
    if not os.path.isfile(path):
        return False
    with safe_open(path, framework="pt") as fh:
        meta = json.loads((fh.metadata() or {}).get("rng", "{}"))
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("torch_cuda.")),
                                       key=lambda k: int(k.split(".")[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])
    n = meta["numpy"]
    cached = n["cached_gaussian"]
    np.random.set_state((n["algorithm"], tensors["numpy_keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], 0.0 if math.isnan(cached) else cached))
    p = meta["python"]
    random.setstate((p["version"], tuple(int(v) for v in tensors["python_state"].tolist()),
                     p["gauss_next"]))
    return True


__all__ = ["load_optimizer", "load_rng", "load_tensors", "save_optimizer", "save_rng",
           "save_tensors", "scaler_state", "scheduler_state"]
