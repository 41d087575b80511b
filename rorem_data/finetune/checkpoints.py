"""Checkpoints and final outputs of a fine-tuning run, written so that a kill never leaves a
half-written result that looks finished, and read back without unpickling anything.

Layout of ``<output>/checkpoints/checkpoint-<step>/``::

    unet/                              full fine-tune: config.json + safetensors (save_pretrained)
    pytorch_lora_weights.safetensors   LoRA: the adapter in diffusers format (UNet or transformer)
    optimizer-00000.safetensors ...    optimizer tensors (sharded at 2 GB)
    rng-<rank>.safetensors             each process's torch / numpy / Python RNG states
    training_state.json                step, optimizer groups, scheduler, gradient scaler
    rorem_finetune.json                identity (base hash, mode, ...) - written last

Guarantees
----------
* **A checkpoint is finished or absent.** It is written to ``checkpoint-<step>.tmp`` and
  renamed into place; only folders with ``rorem_finetune.json`` count. Pruning renames a
  checkpoint to ``*.tmp-delete`` before deleting it, and runs again at the end of every run
  (a run killed between publishing and pruning keeps one too many until then). Leftover
  ``*.tmp*`` folders of a killed run are removed when the next run starts
  (:func:`remove_leftovers`).
* **The final output looks finished only when it is.** Its ``rorem_finetune.json`` (and for a
  full fine-tune ``model_index.json``) is removed first, the new weights are built in
  ``<output>/.final.tmp`` and moved in component by component, ``model_index.json`` next, the
  metadata last. A killed final save is redone by the rerun, which resumes from the last
  checkpoint (the loop always checkpoints its last step when ``checkpointing_steps > 0``).
* **No pickle.** Resume reads safetensors and JSON only (:mod:`rorem_data.finetune.state`). A
  checkpoint that holds only ``accelerate`` pickle state (``random_states_*.pkl``,
  ``optimizer.bin``, ...) is refused with :class:`~rorem_data.models.files.UnsafeWeightsError`.

:data:`WRITE_POINTS` names every step of these writes; :func:`write_point` is called at each
(it does nothing; the kill tests replace it to SIGKILL the process exactly there).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil

from rorem_data.core import jsonfile
from rorem_data.models import files
from rorem_data.core.errors import ConfigError
from rorem_data.finetune import state as training_state
from rorem_data.finetune.models import LORA_WEIGHTS, save_lora

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
META_NAME = "rorem_finetune.json"
STATE_NAME = "training_state.json"
STATE_FORMAT = "rorem-finetune-state/1"
FINAL_STAGING = ".final.tmp"
FINAL_OLD = ".final-old.tmp"
WRITE_POINTS = (
    "checkpoint:weights",     # weights written into checkpoint-<step>.tmp
    "checkpoint:state",       # optimizer / scheduler / RNG written
    "checkpoint:meta",        # rorem_finetune.json written, folder not yet renamed
    "checkpoint:published",   # renamed into place, older ones not yet pruned
    "final:unpublished",      # the output's metadata removed
    "final:weights",          # new weights complete in <output>/.final.tmp
    "final:components",       # components moved into <output>
    "final:index",            # model_index.json moved (full) / weights moved (LoRA)
)
_IDENTITY_WORDS = {"base_sha256": "base model", "mode": "training mode (full/lora)",
                   "lora_rank": "LoRA rank", "sdxl": "model family (SD/SDXL)",
                   "resolution": "resolution", "unet_sha256": "starting UNet",
                   "family": "pipeline family"}


def write_point(name: str) -> None:
    """Marks step ``name`` (one of :data:`WRITE_POINTS`) of a multi-step write; does nothing."""


def write_json(path: str, data) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Finding and checking checkpoints
# --------------------------------------------------------------------------------------------


def list_checkpoints(output: str) -> list[tuple[int, str]]:
    """Finished checkpoints in ``<output>/checkpoints``, oldest first, as (step, path)."""
    d = os.path.join(output, "checkpoints")
    out = []
    if os.path.isdir(d):
        for name in os.listdir(d):
            m = CHECKPOINT_RE.match(name)
            if m and os.path.isfile(os.path.join(d, name, META_NAME)):
                out.append((int(m.group(1)), os.path.join(d, name)))
    return sorted(out)


def remove_leftovers(output: str) -> list[str]:
    """Remove what a killed run left half-written: ``checkpoints/*.tmp*`` and the final
    staging folders. Returns the removed paths."""
    removed = []
    ckpts = os.path.join(output, "checkpoints")
    candidates = [os.path.join(ckpts, n) for n in (os.listdir(ckpts) if os.path.isdir(ckpts) else ())
                  if n.startswith("checkpoint-") and ".tmp" in n]
    candidates += [os.path.join(output, n) for n in (FINAL_STAGING, FINAL_OLD)]
    for path in candidates:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_checkpoint(path: str, identity: dict) -> int:
    """The step of checkpoint ``path`` after checking that this run may resume from it.

    Raises
    ------
    UnsafeWeightsError
        The folder holds only pickle-based training state (``accelerate.save_state``).
    ConfigError
        Not a rorem-data checkpoint, or made with another base model / mode / rank /
        resolution / starting UNet.
    """
    if not os.path.isfile(os.path.join(path, STATE_NAME)):
        pickled = sorted(f for f in os.listdir(path) if files.is_pickle_file(f)) \
            if os.path.isdir(path) else []
        if pickled:
            raise files.UnsafeWeightsError(
                f"checkpoint {path} holds only pickle-based training state ({', '.join(pickled)}), "
                "as accelerate's save_state writes it; rorem-data does not unpickle files, "
                "because that can run arbitrary code. Fix: resume from a checkpoint written by "
                "this version of rorem-data, or start fresh with resume='none' (--resume none) or "
                "another output folder", os.path.join(path, pickled[0]))
        raise ConfigError(f"{path} is not a rorem-data training checkpoint (no {STATE_NAME}); pass "
                          "a folder <output>/checkpoints/checkpoint-<step>")
    meta = jsonfile.load(os.path.join(path, META_NAME), what=f"checkpoint metadata of {path}",
                         fix="resume from another checkpoint or with --resume none")
    for k, v in identity.items():
        if meta.get(k) != v:
            raise ConfigError(
                f"checkpoint {path} was made with a different {_IDENTITY_WORDS.get(k, k)} "
                f"({k}={meta.get(k)!r}, this run has {v!r}); resume with the same pretrained, "
                "unet, lora_rank and resolution, or use a fresh output folder (or resume='none'; CLI: "
                "--resume none)")
    return int(meta["step"])


# --------------------------------------------------------------------------------------------
# Writing and reading checkpoints
# --------------------------------------------------------------------------------------------


def save_checkpoint(accelerator, output: str, step: int, *, unet, optimizer, lr_scheduler,
                    identity: dict, config: dict, sdxl: bool, lora: bool,
                    keep: int | None, lora_saver=None) -> str:
    """Write ``checkpoint-<step>`` (every process calls this; see the module docstring).

    ``unet`` is the model being trained; ``lora_saver(model, folder)`` writes its LoRA when it
    is not a UNet (default: :func:`rorem_data.finetune.models.save_lora`).

    Returns
    -------
    str
        The checkpoint folder.
    """
    main = accelerator.is_main_process
    final = os.path.join(output, "checkpoints", f"checkpoint-{step}")
    tmp = final + ".tmp"
    accelerator.wait_for_everyone()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    accelerator.wait_for_everyone()
    training_state.save_rng(tmp, accelerator.process_index)
    if main:
        model = accelerator.unwrap_model(unet)
        if lora_saver is not None:
            lora_saver(model, tmp)
        elif lora:
            save_lora(model, tmp, sdxl=sdxl)
        else:
            model.save_pretrained(os.path.join(tmp, "unet"), safe_serialization=True,
                                  max_shard_size="2GB")
        write_point("checkpoint:weights")
        state = {"format": STATE_FORMAT, "step": step, "accelerator_step": int(accelerator.step),
                 "num_processes": accelerator.num_processes,
                 "optimizer": training_state.save_optimizer(optimizer, tmp),
                 "scheduler": training_state.scheduler_state(lr_scheduler),
                 "scaler": training_state.scaler_state(accelerator.scaler)}
        write_json(os.path.join(tmp, STATE_NAME), state)
        write_point("checkpoint:state")
        write_json(os.path.join(tmp, META_NAME), {**identity, "step": step, "config": config})
        write_point("checkpoint:meta")
    accelerator.wait_for_everyone()
    if main:
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_point("checkpoint:published")
        prune_checkpoints(output, keep)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(output: str, keep: int | None) -> list[str]:
    """Delete all but the newest ``keep`` finished checkpoints (each renamed to
    ``*.tmp-delete`` first, so a half-deleted one never counts); returns the removed paths."""
    removed = []
    if keep:
        for _s, old in list_checkpoints(output)[:-keep]:
            doomed = old + ".tmp-delete"
            os.replace(old, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(old)
    return removed


def _load_unet_weights(model, folder: str) -> None:
    from safetensors.torch import load_file

    names = files.require_safetensors(folder, what="checkpoint UNet folder")
    expected, loaded = set(model.state_dict()), set()
    for name in names:
        if name.endswith(".index.json"):
            continue
        weights = load_file(os.path.join(folder, name))
        unexpected = set(weights) - expected
        if unexpected:
            raise ConfigError(f"checkpoint UNet {folder} has weights this UNet does not have "
                              f"({sorted(unexpected)[:3]}...); resume with the same base model")
        model.load_state_dict(weights, strict=False)
        loaded |= set(weights)
    if loaded != expected:
        raise ConfigError(f"checkpoint UNet {folder} lacks {len(expected - loaded)} weights "
                          f"({sorted(expected - loaded)[:3]}...); the checkpoint is incomplete: "
                          "resume from another one or with resume='none' (--resume none)")


def load_checkpoint(accelerator, path: str, *, unet, optimizer, lr_scheduler, lora: bool,
                    lora_loader=None) -> int:
    """Restore a checkpoint written by :func:`save_checkpoint` into the prepared objects
    (safetensors and JSON only); returns its step. Call :func:`check_checkpoint` first.
    ``lora_loader(model, path)`` reads a LoRA that is not a UNet's."""
    state = jsonfile.load(os.path.join(path, STATE_NAME), fix="resume from another checkpoint")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{path}/{STATE_NAME} is not a {STATE_FORMAT} file; resume from a "
                          "checkpoint written by this version of rorem-data")
    model = accelerator.unwrap_model(unet)
    if lora_loader is not None:
        lora_loader(model, path)
    elif lora:
        from rorem_data.finetune.models import load_lora_into

        load_lora_into(model, path)
    else:
        _load_unet_weights(model, os.path.join(path, "unet"))
    training_state.load_optimizer(optimizer, path, state["optimizer"])
    lr_scheduler.load_state_dict(state["scheduler"])
    if accelerator.scaler is not None and state.get("scaler"):
        accelerator.scaler.load_state_dict(state["scaler"])
    if not training_state.load_rng(path, accelerator.process_index):
        log.warning(f"checkpoint {path} has no RNG state for process "
                      f"{accelerator.process_index} (it was written by "
                      f"{state.get('num_processes')} processes); random draws will differ from an "
                      "uninterrupted run")
    accelerator.step = int(state.get("accelerator_step", 0))
    return int(state["step"])


# --------------------------------------------------------------------------------------------
# The final output
# --------------------------------------------------------------------------------------------


def _unpublish(output: str, names) -> str:
    for name in names:
        path = os.path.join(output, name)
        if os.path.isfile(path):
            os.remove(path)
    write_point("final:unpublished")
    staging = os.path.join(output, FINAL_STAGING)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def _move_into(staging: str, output: str, entry: str) -> None:
    """Move ``staging/entry`` to ``output/entry``, replacing what is there."""
    dst = os.path.join(output, entry)
    if os.path.isdir(dst) and not os.path.islink(dst):
        old = os.path.join(output, FINAL_OLD)
        os.makedirs(old, exist_ok=True)
        os.replace(dst, os.path.join(old, entry))
    os.replace(os.path.join(staging, entry), dst)


def _finish(output: str, meta: dict) -> None:
    write_json(os.path.join(output, META_NAME), meta)
    for name in (FINAL_STAGING, FINAL_OLD):
        shutil.rmtree(os.path.join(output, name), ignore_errors=True)


def publish_full_pipeline(pipe, output: str, meta: dict) -> str:
    """Write the fine-tuned pipeline into ``output`` (loadable with stock
    ``AutoPipelineForInpainting.from_pretrained(output)``); returns ``output``."""
    staging = _unpublish(output, (META_NAME, "model_index.json"))
    pipe.save_pretrained(staging, safe_serialization=True, max_shard_size="2GB")
    write_point("final:weights")
    for entry in sorted(os.listdir(staging)):
        if entry != "model_index.json":
            _move_into(staging, output, entry)
    write_point("final:components")
    _move_into(staging, output, "model_index.json")
    write_point("final:index")
    _finish(output, meta)
    return output


def publish_lora(unet, output: str, meta: dict, *, sdxl: bool, lora_saver=None) -> str:
    """Write ``<output>/pytorch_lora_weights.safetensors`` (loadable with stock
    ``pipe.load_lora_weights(output)``) with ``lora_saver(model, folder)`` (default: the UNet's
    :func:`~rorem_data.finetune.models.save_lora`); returns its path."""
    staging = _unpublish(output, (META_NAME,))
    if lora_saver is not None:
        lora_saver(unet, staging)
    else:
        save_lora(unet, staging, sdxl=sdxl)
    write_point("final:weights")
    write_point("final:components")
    _move_into(staging, output, LORA_WEIGHTS)
    write_point("final:index")
    _finish(output, meta)
    return os.path.join(output, LORA_WEIGHTS)


__all__ = ["META_NAME", "STATE_NAME", "WRITE_POINTS", "check_checkpoint", "list_checkpoints",
           "load_checkpoint", "prune_checkpoints", "publish_full_pipeline", "publish_lora",
           "remove_leftovers",
           "save_checkpoint", "write_point"]
