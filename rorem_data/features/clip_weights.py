"""Where the ``clip`` featurizer's architecture and weights come from - and the one rule: only
safetensors weight files are loaded.

An open_clip model is named one of three ways (see :class:`rorem_data.features.clip.ClipFeaturizer`):

- an architecture name (``"ViT-B-32"``) + ``pretrained``: ``None`` (random weights), a
  ``.safetensors`` file, or an open_clip tag whose safetensors file is already in the local
  Hugging Face cache;
- ``"local-dir:<folder>"``: ``open_clip_config.json`` + ``open_clip_model.safetensors``;
- ``"hf-hub:org/repo"``: the same two files, already in the local Hugging Face cache.

Nothing is downloaded. Weight files in pickle-based formats (``.bin``, ``.pt``, ``.pth``,
``.ckpt``) are refused with the conversion recipe instead of being passed to ``torch.load``: a
pickle can run code when it is read, and whether open_clip reads it with
``weights_only=True`` depends on its version. (A folder that holds both formats is fine: the
safetensors file is the one loaded.)

Only stdlib at import time; open_clip is imported by the functions that need it.
"""

from __future__ import annotations

import os

from rorem_data.core import jsonfile
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError

__all__ = ["PICKLE_SUFFIXES", "SAFE_WEIGHT_NAMES", "check_weights_file", "hf_cached_file",
           "import_open_clip", "model_config", "resolve_weights"]

#: Weight-file suffixes of pickle-based formats: refused.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: The safetensors names open_clip prefers in a model folder (before any pickle file).
SAFE_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors")

_CONVERT = ("convert it once, on a machine where you trust the file: `python -c \"import torch, "
            "safetensors.torch as st; st.save_file(torch.load('{path}', weights_only=True), "
            "'open_clip_model.safetensors')\"`, then point rorem-data at the .safetensors file "
            "(or put it in the model folder as open_clip_model.safetensors)")


def import_open_clip():
    """open_clip (and torch), or a DependencyError naming the extra to install."""
    require("torch", purpose="the 'clip' featurizer")
    return require("open_clip", purpose="the 'clip' featurizer")


def hf_cached_file(repo_id: str, filename: str) -> str | None:
    """Path of ``repo_id/filename`` in the local Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return hf_hub_download(repo_id, filename, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def check_weights_file(path: str, *, what: str) -> str:
    """``path`` if it names a safetensors file; a pickle-based or unknown format is refused.

    Checks the name only (no file access), so a config is refused before anything runs.

    Raises
    ------
    ConfigError
        A pickle-based suffix (the message gives the conversion recipe) or another suffix.

    Examples
    --------
    >>> check_weights_file("/w/model.safetensors", what="pretrained")
    '/w/model.safetensors'
    """
    lower = path.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        raise ConfigError(f"clip featurizer: {what} {path} is a pickle-based weight file, and "
                          "rorem-data loads only safetensors (a pickle can run code when it is "
                          "read); " + _CONVERT.format(path=path))
    if not lower.endswith(".safetensors"):
        raise ConfigError(f"clip featurizer: {what} {path} must be a .safetensors weight file "
                          "(rorem-data loads no other weight format)")
    return path


def _folder_config(folder: str) -> dict:
    path = os.path.join(folder, "open_clip_config.json")
    if not os.path.isfile(path):
        raise ConfigError(
            f"clip featurizer: {folder!r} is not an open_clip model folder (no "
            "open_clip_config.json). Save one with open_clip_config.json (containing "
            "'model_cfg') and open_clip_model.safetensors.")
    cfg = jsonfile.load(path, what=f"clip featurizer: {path}",
                        fix="save the model folder again (open_clip_config.json with 'model_cfg')")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model_cfg"), dict):
        raise ConfigError(f"clip featurizer: {path} has no 'model_cfg' entry")
    return cfg


def _folder_weights(folder: str, *, what: str) -> str:
    """The safetensors file open_clip will load from ``folder``; refuses pickle-only folders."""
    for name in SAFE_WEIGHT_NAMES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    pickles = sorted(n for n in os.listdir(folder) if n.lower().endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ConfigError(f"clip featurizer: {what} holds only pickle-based weights "
                          f"({', '.join(pickles)}); rorem-data loads only safetensors. "
                          + _CONVERT.format(path=os.path.join(folder, pickles[0])))
    raise ConfigError(f"clip featurizer: {what} has no weights ({SAFE_WEIGHT_NAMES[0]}); save "
                      "the model's state dict there with safetensors")


def _hub_folder(model: str) -> str:
    path = hf_cached_file(model[7:], "open_clip_config.json")
    if path is None:
        raise ConfigError(
            f"clip featurizer: {model!r} is not in the local Hugging Face cache and "
            "rorem-data never downloads weights. On a machine with network run "
            f"`hf download {model[7:]}` (or copy the folder here and use 'local-dir:<folder>').")
    return os.path.dirname(path)


def model_config(model: str) -> dict:
    """The architecture config (``embed_dim``, towers) of ``model``; loads no weights.

    Raises
    ------
    ConfigError
        A folder that is not an open_clip model folder, a hub id not in the local cache, or an
        unknown architecture name (the message lists the choices).
    """
    if model.startswith("local-dir:"):
        return _folder_config(model[10:])["model_cfg"]
    if model.startswith("hf-hub:"):
        return _folder_config(_hub_folder(model))["model_cfg"]
    open_clip = import_open_clip()
    cfg = open_clip.get_model_config(model)
    if cfg is None:
        raise ConfigError(f"clip featurizer: unknown open_clip model {model!r}. Available: "
                          f"{open_clip.list_models()} (add your own with "
                          "open_clip.add_model_config or use 'local-dir:<folder>')")
    return cfg


def resolve_weights(model: str, pretrained: str | None) -> tuple[str, str | None, dict]:
    """What to hand to ``open_clip.create_model_and_transforms``.

    Returns
    -------
    model_name : str
        An architecture name or ``"local-dir:<folder>"`` (hub ids resolve to their cached
        snapshot folder).
    pretrained : str or None
        A safetensors file for an architecture name; None for folders (open_clip loads the
        folder's safetensors file, checked here) and for random weights.
    force_preprocess_cfg : dict
        The tag's preprocessing (mean, std, ...), or {}.

    Raises
    ------
    ConfigError
        Weights that are not on this machine, or only in a pickle-based format.
    """
    if model.startswith(("local-dir:", "hf-hub:")):
        folder = model[10:] if model.startswith("local-dir:") else _hub_folder(model)
        _folder_config(folder)
        _folder_weights(folder, what=f"the model folder {folder}")
        return "local-dir:" + folder, None, {}
    open_clip = import_open_clip()
    model_config(model)
    if pretrained is None:
        return model, None, {}
    if os.path.isfile(pretrained) or os.sep in pretrained:
        if not os.path.isfile(pretrained):
            raise ConfigError(f"clip featurizer: pretrained file {pretrained} does not exist")
        return model, check_weights_file(pretrained, what="pretrained"), {}
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise ConfigError(f"clip featurizer: pretrained={pretrained!r} is neither a file nor a "
                          f"known tag of {model!r}. Known tags: {tags}; or pass a weights file "
                          "path.")
    hub = tag_cfg.get("hf_hub", "")
    found = pickled = None
    if hub:
        repo, fname = os.path.split(hub)  # "org/repo/" or "org/repo/file.bin"
        stem = (fname or "open_clip_pytorch_model.bin").rsplit(".", 1)[0]
        for cand in dict.fromkeys(SAFE_WEIGHT_NAMES + (stem + ".safetensors",)):
            found = hf_cached_file(repo, cand)
            if found:
                break
        if not found:
            pickled = hf_cached_file(repo, fname or "open_clip_pytorch_model.bin")
    if pickled and not found:
        raise ConfigError(f"clip featurizer: the weights of {model!r} / {pretrained!r} are cached "
                          f"only as the pickle-based file {pickled}; rorem-data loads only "
                          "safetensors. " + _CONVERT.format(path=pickled))
    if not found:
        where = f"hf-hub:{hub}" if hub else tag_cfg.get("url", "?")
        raise ConfigError(
            f"clip featurizer: the weights of {model!r} / {pretrained!r} ({where}) are not on "
            "this machine and rorem-data never downloads weights. Download the safetensors file "
            "on a machine with network (e.g. `hf download`) and pass its path as "
            "pretrained=<file>.")
    keys = ("mean", "std", "interpolation", "resize_mode")
    return model, found, {k: tag_cfg[k] for k in keys if tag_cfg.get(k) is not None}
