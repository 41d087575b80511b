"""Model folders on disk: check them and never unpickle them.

Weights load from **safetensors only**. A pickle-based weight file (``.bin``, ``.pt``, ``.pth``,
``.ckpt``, ``.pkl``) can run arbitrary code when it is loaded, so a folder whose model has only
such files is refused with :class:`UnsafeWeightsError`, naming the file and the fix (convert
it to safetensors where its origin is trusted). Loading code passes ``use_safetensors=True`` to
diffusers / transformers, so a folder that holds both formats is read from its safetensors.

>>> from rorem_data.models.files import resolve_lora_file
>>> resolve_lora_file("runs/remover-r3-lora")                      # doctest: +SKIP
'/home/me/runs/remover-r3-lora/pytorch_lora_weights.safetensors'
"""

from __future__ import annotations

import json
import os
import re

from rorem_data.core.errors import ConfigError, UnsafeWeightsError  # noqa: F401 - re-exported

#: Suffixes of weight files that load without running code.
SAFE_WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json")
#: Suffixes of weight files that torch reads with pickle.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin.index.json")
#: Every weight file counted in :func:`checkpoint_sha256`.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".msgpack", ".onnx")
CONFIG_FILES = ("config.json", "scheduler_config.json", "tokenizer_config.json",
                "preprocessor_config.json", "vocab.json", "tokenizer.json")
# Component classes without weights (their folder only needs a config file)
_WEIGHTLESS = ("Scheduler", "Tokenizer", "Processor", "FeatureExtractor")



def convert_hint(path: str) -> str:
    """The fix for a pickle-based weight file, as one sentence."""
    target = re.sub(r"\.(bin|pt|pth|ckpt|pkl|pickle)$", ".safetensors", path)
    return (f"convert it to safetensors where you trust its origin, e.g. "
            f"`python -c \"import torch, safetensors.torch as st; "
            f"st.save_file(torch.load('{path}', weights_only=True), '{target}')\"`, or re-save "
            "the model with save_pretrained(..., safe_serialization=True)")


def is_pickle_file(name: str) -> bool:
    """Whether a file name is a pickle-based weight / state file."""
    return name.lower().endswith(PICKLE_SUFFIXES)


def refuse_pickle_file(path: str, *, what: str) -> UnsafeWeightsError:
    """The error for a pickle-based ``path`` given as ``what`` (raise it)."""
    return UnsafeWeightsError(
        f"{what} {path} is a pickle-based file; rorem-data loads weights from safetensors only, "
        f"because unpickling a file can run arbitrary code. Fix: {convert_hint(path)}", path)


def weight_files(folder: str) -> tuple[list[str], list[str]]:
    """(safetensors files, pickle-based files) directly inside ``folder``, sorted names."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return [], []
    safe = [n for n in names if n.endswith(SAFE_WEIGHT_SUFFIXES) and not n.startswith(".")]
    pickled = [n for n in names if is_pickle_file(n) and not n.startswith(".")]
    return safe, pickled


def require_safetensors(folder: str, *, what: str) -> list[str]:
    """The safetensors weight files of a model folder (``config.json`` + weights).

    Raises
    ------
    UnsafeWeightsError
        The folder has pickle-based weights only.
    ConfigError
        The folder has no weight file at all.
    """
    safe, pickled = weight_files(folder)
    if safe:
        return safe
    if pickled:
        raise refuse_pickle_file(os.path.join(folder, pickled[0]), what=what)
    raise ConfigError(f"{what} {folder} has no weight file (*.safetensors); copy the weights next "
                      "to config.json")


# --------------------------------------------------------------------------------------------
# Pipeline, UNet and LoRA folders
# --------------------------------------------------------------------------------------------


def read_model_index(folder: str) -> dict:
    """The parsed ``model_index.json`` of a pipeline folder (see :func:`check_pipeline_folder`)."""
    from rorem_data.core import jsonfile

    path = os.path.join(folder, "model_index.json")
    data = jsonfile.load(path, fix="re-save the pipeline with save_pretrained")
    if not isinstance(data, dict) or "_class_name" not in data:
        raise ConfigError(f"{path} has no '_class_name'; re-save the pipeline with save_pretrained")
    return data


def pipeline_components(index: dict) -> dict[str, tuple[str, str]]:
    """``{name: (library, class)}`` of the components a ``model_index.json`` lists."""
    out = {}
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        lib, cls = value
        if lib is not None and cls is not None:
            out[name] = (lib, cls)
    return out


def check_pipeline_folder(folder: str, *, what: str = "model") -> dict:
    """Check that ``folder`` is a diffusers pipeline folder with every component it lists.

    Parameters
    ----------
    folder : str
    what : str
        How the folder was given, for messages (``"model"``, ``"--pretrained"``, ...).

    Returns
    -------
    dict
        The parsed ``model_index.json``.

    Raises
    ------
    UnsafeWeightsError
        A component whose weights are pickle-based files only (the message names them).
    ConfigError
        No ``model_index.json`` (with a hint when it is a UNet or a LoRA folder), invalid
        JSON, or a listed component whose folder, config or weights are missing.
    """
    index = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index):
        hint = "pass the folder that holds model_index.json (the output of pipe.save_pretrained)"
        cfg = os.path.join(folder, "config.json")
        if os.path.isfile(cfg):
            try:
                with open(cfg, encoding="utf-8") as fh:
                    cls = json.load(fh).get("_class_name", "")
            except (OSError, ValueError, AttributeError):
                cls = ""
            if "UNet" in str(cls):
                hint = (f"it holds a {cls}: pass it as `unet` and a base inpainting pipeline as "
                        "`model`")
        elif any(f.endswith(".safetensors") and "lora" in f for f in os.listdir(folder)):
            hint = "it looks like LoRA weights: pass it as `lora` over a base pipeline `model`"
        raise ConfigError(f"{what} folder {folder} is not a diffusers pipeline (no "
                          f"model_index.json); {hint}")
    data = read_model_index(folder)
    missing, unsafe = [], []
    for name, (_lib, cls) in pipeline_components(data).items():
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            missing.append(f"{name} ({cls}): no folder {sub}")
            continue
        files = os.listdir(sub)
        if not any(f in files for f in CONFIG_FILES):
            missing.append(f"{name} ({cls}): no config file in {sub}")
            continue
        if any(w in cls for w in _WEIGHTLESS):
            continue
        safe, pickled = weight_files(sub)
        if safe:
            continue
        if pickled:
            unsafe.append(os.path.join(sub, pickled[0]))
        else:
            missing.append(f"{name} ({cls}): no weight file in {sub}")
    if unsafe:
        raise UnsafeWeightsError(
            f"{what} folder {folder} has components whose weights are pickle-based files only "
            f"({', '.join(unsafe)}); rorem-data loads weights from safetensors only, because "
            f"unpickling a file can run arbitrary code. Fix: {convert_hint(unsafe[0])}", unsafe[0])
    if missing:
        raise ConfigError(f"{what} folder {folder} lists components that are missing or "
                          "incomplete: " + "; ".join(missing) + ". Copy the complete pipeline "
                          "folder (or re-save it with save_pretrained)")
    return data


def resolve_unet_folder(unet: str | os.PathLike, *, what: str = "unet") -> str:
    """The folder of a UNet (``config.json`` + safetensors), given it or a folder holding ``unet/``.

    Raises
    ------
    ConfigError
        Missing folder, no ``config.json``, no weights.
    UnsafeWeightsError
        Pickle-based weights only.
    """
    path = os.path.expanduser(os.fspath(unet))
    if os.path.isfile(path) and is_pickle_file(path):
        raise refuse_pickle_file(path, what=f"{what} file")
    if not os.path.isdir(path):
        raise ConfigError(f"{what} folder {os.path.abspath(path)} does not exist; pass a folder "
                          "with config.json and diffusion_pytorch_model.safetensors (or one "
                          "holding unet/)")
    if os.path.isfile(os.path.join(path, "unet", "config.json")):
        path = os.path.join(path, "unet")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(f"{what} folder {path} has no config.json; pass the folder written by "
                          "unet.save_pretrained (config.json + diffusion_pytorch_model.safetensors)")
    require_safetensors(path, what=f"{what} folder")
    return os.path.abspath(path)


LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def resolve_lora_file(lora: str | os.PathLike, *, what: str = "lora") -> str:
    """The ``.safetensors`` file of a LoRA given as that file or as the folder holding it.

    A folder must hold ``pytorch_lora_weights.safetensors`` (what ``save_lora_weights`` writes)
    or exactly one ``.safetensors`` file.

    Raises
    ------
    UnsafeWeightsError
        A pickle-based LoRA file (``.bin``, ``.pt``, ...), or a folder holding only such files.
    ConfigError
        A missing path, a file of another type, a folder with no or several candidates.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(lora)))
    if os.path.isfile(path):
        if is_pickle_file(path):
            raise refuse_pickle_file(path, what=f"{what} file")
        if not path.endswith(".safetensors"):
            raise ConfigError(f"{what} file {path} must be a .safetensors file (LoRA weights saved "
                              "with save_lora_weights)")
        return path
    if os.path.isdir(path):
        safe, pickled = weight_files(path)
        safe = [f for f in safe if f.endswith(".safetensors")]
        if LORA_WEIGHT_NAME in safe:
            return os.path.join(path, LORA_WEIGHT_NAME)
        if len(safe) == 1:
            return os.path.join(path, safe[0])
        if len(safe) > 1:
            raise ConfigError(f"{what} folder {path} holds several .safetensors files "
                              f"({', '.join(safe)}); pass the file to use")
        if pickled:
            raise refuse_pickle_file(os.path.join(path, pickled[0]), what=f"{what} file")
        raise ConfigError(f"{what} folder {path} holds no .safetensors file; pass the folder "
                          f"written by save_lora_weights ({LORA_WEIGHT_NAME})")
    raise ConfigError(f"{what} {path} does not exist; pass a LoRA folder or .safetensors file")



def first_line(exc: BaseException) -> str:
    """The informative start of an exception message (up to two non-empty lines, 400 chars)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return ""
    head = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return head[:400]
