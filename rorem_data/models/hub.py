"""Pipelines given as a local folder or a Hugging Face hub id: :func:`resolve_pipeline_folder`.

A hub id is read from the local cache when the hub is offline (``HF_HUB_OFFLINE=1``) and
downloaded otherwise (safetensors only); every failure says how to get the files.
"""

from __future__ import annotations

import os
import re

from rorem_data.core.errors import ConfigError
from rorem_data.models.files import check_pipeline_folder, first_line, is_pickle_file, refuse_pickle_file

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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
