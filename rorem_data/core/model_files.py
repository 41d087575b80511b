"""Model folders on disk: find them, check them, hash them, and never unpickle them.

Shared by the removers, the fine-tuning loop and the UNet discriminator, which must not import
each other. Importing this module imports neither torch nor diffusers: the functions that need
them import them when called.

Weights load from **safetensors only**. A pickle-based weight file (``.bin``, ``.pt``, ``.pth``,
``.ckpt``, ``.pkl``) can run arbitrary code when it is loaded, so a folder whose model has only
such files is refused with :class:`UnsafeWeightsError`, naming the file and the fix (convert
it to safetensors where its origin is trusted). Loading code passes ``use_safetensors=True`` to
diffusers / transformers, so a folder that holds both formats is read from its safetensors.

>>> from rorem_data.core.model_files import resolve_device_dtype, checkpoint_sha256
>>> folder = resolve_pipeline_folder("runs/tiny-sd")               # doctest: +SKIP
>>> checkpoint_sha256([folder])                                    # doctest: +SKIP
'5b0c...'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence

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
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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


def resolve_pipeline_folder(model: str | os.PathLike, *, what: str = "model") -> str:
    """The local folder of a pipeline given a folder or a hub id, with clear errors.

    A local folder is checked with :func:`check_pipeline_folder`. A hub id is looked up in the
    Hugging Face cache when offline (``HF_HUB_OFFLINE=1``), otherwise downloaded with
    ``DiffusionPipeline.download`` (only the files a pipeline needs).

    Returns
    -------
    str
        Absolute path of the pipeline folder.

    Raises
    ------
    ConfigError
        A missing folder, a file, a folder that is not a pipeline, or a hub id that cannot be
        fetched (offline: the message says how to get it).
    UnsafeWeightsError
        A component with pickle-based weights only.

    Examples
    --------
    >>> resolve_pipeline_folder("runs/tiny-sd")                    # doctest: +SKIP
    '/home/me/runs/tiny-sd'
    """
    path = os.path.expanduser(os.fspath(model))
    if os.path.isdir(path):
        check_pipeline_folder(path, what=what)
        return os.path.abspath(path)
    if os.path.isfile(path):
        if is_pickle_file(path):
            raise refuse_pickle_file(path, what=what)
        raise ConfigError(
            f"{what} {model} is a file, not a diffusers pipeline folder; single-file checkpoints "
            "are not supported: convert it with diffusers' from_single_file(...).save_pretrained(DIR) "
            "and pass DIR")
    looks_like_path = (path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
                       or not _HUB_ID.match(path))
    if looks_like_path:
        raise ConfigError(f"{what} folder {os.path.abspath(path)} does not exist; check the path "
                          "(or pass a Hugging Face hub id such as org/name)")
    return download_hub_pipeline(path, what=what)


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


# --------------------------------------------------------------------------------------------
# The Hugging Face hub
# --------------------------------------------------------------------------------------------


def is_offline() -> bool:
    """Whether the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` and friends)."""
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def download_hub_pipeline(repo_id: str, *, what: str = "model") -> str:
    """The local folder of a hub pipeline: from the cache when offline, else downloaded.

    Raises
    ------
    ConfigError
        Offline and not cached, or the download failed; the message says how to get the files.
    """
    from huggingface_hub import try_to_load_from_cache

    local_hint = os.path.abspath(repo_id)
    if is_offline():
        cached = try_to_load_from_cache(repo_id, "model_index.json")
        if isinstance(cached, str):
            folder = os.path.dirname(cached)
            check_pipeline_folder(folder, what=what)
            return folder
        raise ConfigError(
            f"{what} {repo_id!r} is a Hugging Face hub id, but the hub is offline "
            f"(HF_HUB_OFFLINE is set) and it is not in the local cache. Download it where there is "
            f"network (`hf download {repo_id}`) and pass the folder, or unset HF_HUB_OFFLINE. "
            f"(If you meant a local folder: {local_hint} does not exist.)")
    from diffusers import DiffusionPipeline

    try:
        folder = DiffusionPipeline.download(repo_id, use_safetensors=True)
    except (OSError, ValueError) as exc:  # connection errors and HF hub errors subclass these
        raise ConfigError(
            f"{what} {repo_id!r} could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}: {first_line(exc)}). Without network, download it elsewhere "
            f"(`hf download {repo_id}`) and pass the folder. (If you meant a local folder: "
            f"{local_hint} does not exist.)") from None
    check_pipeline_folder(os.fspath(folder), what=what)
    return os.fspath(folder)


# --------------------------------------------------------------------------------------------
# Devices and dtypes
# --------------------------------------------------------------------------------------------


def resolve_device_dtype(device: str, dtype: str):
    """(torch.device, torch.dtype) for spec strings ``auto`` / explicit values.

    ``device="auto"`` is CUDA when available, else the CPU; ``dtype="auto"`` is float16 on
    CUDA and float32 elsewhere.

    Raises
    ------
    ConfigError
        float16 asked for on the CPU.

    Examples
    --------
    >>> resolve_device_dtype("cpu", "auto")                        # doctest: +SKIP
    (device(type='cpu'), torch.float32)
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    dt = (torch.float16 if dev.type == "cuda" else torch.float32) if dtype == "auto" \
        else getattr(torch, dtype)
    if dt == torch.float16 and dev.type == "cpu":
        raise ConfigError("dtype 'float16' needs a GPU; on the CPU use dtype 'float32' "
                          "(or 'bfloat16')")
    return dev, dt


def dtype_kwargs(torch_dtype) -> dict:
    """The ``from_pretrained`` keyword for a dtype: ``dtype`` (diffusers >= 0.36) or ``torch_dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return {"torch_dtype": torch_dtype}
    return {"dtype": torch_dtype}


def first_line(exc: BaseException) -> str:
    """The informative start of an exception message (up to two non-empty lines, 400 chars)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return ""
    head = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return head[:400]


# --------------------------------------------------------------------------------------------
# Checkpoint hashing
# --------------------------------------------------------------------------------------------


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


__all__ = [
    "CONFIG_FILES", "LORA_WEIGHT_NAME", "PICKLE_SUFFIXES", "SAFE_WEIGHT_SUFFIXES", "WEIGHT_SUFFIXES",
    "UnsafeWeightsError", "check_pipeline_folder", "checkpoint_sha256", "convert_hint",
    "download_hub_pipeline", "dtype_kwargs", "first_line", "hash_cache_path", "is_offline",
    "is_pickle_file", "pipeline_components", "read_model_index", "refuse_pickle_file",
    "require_safetensors", "resolve_device_dtype", "resolve_lora_file", "resolve_pipeline_folder",
    "resolve_unet_folder", "weight_files",
]
