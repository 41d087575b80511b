"""The one pipeline loader: :func:`load_pipeline`, used by the removers, fine-tuning and the
UNet discriminator.

The class comes from the folder's ``model_index.json`` (``_class_name``), or from an override
the spec names; either way it must be a pipeline class that diffusers itself exports - nothing
a data file names is imported from anywhere else. A text-to-image folder (``FluxPipeline``,
``StableDiffusionXLPipeline``, ...) loads as its inpainting counterpart. Every component the
index lists must come from diffusers or transformers and name a class that library exports;
weights load from safetensors only.

:func:`apply_memory_options` sets CPU offload, VAE tiling and slicing and the attention
backend on a loaded pipeline.

>>> from rorem_data.models.pipelines import load_pipeline
>>> pipe = load_pipeline("runs/tiny-flux-fill")                     # doctest: +SKIP
>>> type(pipe).__name__                                            # doctest: +SKIP
'FluxFillPipeline'
"""

from __future__ import annotations

from rorem_data.core.errors import ConfigError
from rorem_data.models.devices import dtype_kwargs
from rorem_data.models.families import FAMILIES, list_families
from rorem_data.models.files import first_line, pipeline_components, read_model_index

#: Libraries a pipeline component may come from.
COMPONENT_LIBRARIES = ("diffusers", "transformers")
OFFLOAD_MODES = ("model", "sequential")
# Text-to-image classes whose inpainting counterpart diffusers' auto-pipeline table lacks
_INPAINT_OF = {
    "FluxKontextPipeline": "FluxKontextInpaintPipeline",
    "Flux2KleinPipeline": "Flux2KleinInpaintPipeline",
    "QwenImageEditPipeline": "QwenImageEditInpaintPipeline",
}
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError,
                ImportError)


def _family_names() -> str:
    return ", ".join(f.pipeline for f in list_families())


def _exported_pipeline(name, *, what: str):
    import diffusers

    cls = getattr(diffusers, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise ConfigError(f"{what} names pipeline class {name!r}, which is not a pipeline class "
                          f"diffusers exports; use one of {_family_names()} (or another "
                          "diffusers inpainting pipeline class)")
    return cls


def _inpainting_counterpart(name: str, folder: str, *, what: str) -> str:
    if name in FAMILIES or "Inpaint" in name or "Fill" in name:
        return name
    if name in _INPAINT_OF:
        return _INPAINT_OF[name]
    try:
        from diffusers.pipelines.auto_pipeline import AUTO_INPAINT_PIPELINES_MAPPING, _get_task_class

        return _get_task_class(AUTO_INPAINT_PIPELINES_MAPPING, name).__name__
    except (ValueError, ImportError, AttributeError):
        raise ConfigError(f"{what} folder {folder} holds a {name}, which has no inpainting "
                          "counterpart diffusers knows; set the spec's pipeline to the "
                          f"inpainting class to load it as (one of {_family_names()})") from None


def pipeline_class(folder: str, override: str | None = None, *, what: str = "model"):
    """The diffusers pipeline class a folder loads as.

    Parameters
    ----------
    folder : str
        A checked pipeline folder (:func:`rorem_data.models.hub.resolve_pipeline_folder`).
    override : str, optional
        A pipeline class name (the spec's ``pipeline``); must be exported by diffusers.
    what : str
        How the folder was given, for messages.

    Returns
    -------
    type
        A subclass of ``diffusers.DiffusionPipeline``.

    Raises
    ------
    ConfigError
        A name diffusers does not export, a folder class without an inpainting counterpart,
        or a component from another library.
    """
    index = read_model_index(folder)
    check_components(index, folder, what=what)
    if override is not None:
        return _exported_pipeline(override, what=f"{what} spec field 'pipeline'")
    name = index["_class_name"]
    if not isinstance(name, str):
        raise ConfigError(f"{what} folder {folder}: model_index.json names {name!r} as its class; "
                          "only pipeline classes diffusers exports load (custom pipeline code is "
                          "not run). Set the spec's pipeline to a diffusers class")
    _exported_pipeline(name, what=f"{what} folder {folder} (model_index.json)")
    return _exported_pipeline(_inpainting_counterpart(name, folder, what=what),
                              what=f"{what} folder {folder}")


def component_class(index: dict, name: str, *, folder: str = "", what: str = "model"):
    """The class ``model_index.json`` names for component ``name``: only a class that
    diffusers or transformers exports (loading anything else would import or call it).

    Raises
    ------
    ConfigError
        The index lacks the component, or names another library or an unknown class.
    """
    import importlib

    entry = pipeline_components(index).get(name)
    if entry is None:
        raise ConfigError(f"{what} folder {folder} has no {name!r} component in model_index.json; "
                          "pass a complete pipeline folder")
    lib, cls_name = entry
    cls = None
    if lib in COMPONENT_LIBRARIES and isinstance(cls_name, str) and cls_name.isidentifier():
        cls = getattr(importlib.import_module(lib), cls_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{what} folder {folder}: component {name!r} is [{lib!r}, {cls_name!r}] "
                          "in model_index.json; only classes diffusers and transformers export "
                          "load. Re-save the pipeline with diffusers' save_pretrained")
    return cls


def check_components(index: dict, folder: str, *, what: str = "model") -> None:
    """Refuse a ``model_index.json`` with any component :func:`component_class` refuses."""
    for name in pipeline_components(index):
        component_class(index, name, folder=folder, what=what)


def load_component(folder: str, name: str, *, index: dict | None = None, what: str = "model",
                   **kwargs):
    """``from_pretrained`` of one component of a pipeline folder (``vae``, ``unet``,
    ``text_encoder``, ...), as the class its index names; models from safetensors only.

    Raises
    ------
    ConfigError
        See :func:`component_class`.
    """
    index = read_model_index(folder) if index is None else index
    cls = component_class(index, name, folder=folder, what=what)
    if not any(w in cls.__name__ for w in ("Tokenizer", "Scheduler", "Processor")):
        kwargs.setdefault("use_safetensors", True)
    return cls.from_pretrained(folder, subfolder=name, **kwargs)


def load_pipeline(folder: str, *, pipeline: str | None = None, dtype=None, what: str = "model",
                  **components):
    """Load a pipeline folder as the class :func:`pipeline_class` picks, safetensors only.

    Parameters
    ----------
    folder : str
        A checked pipeline folder.
    pipeline : str, optional
        Override of the class (a diffusers export).
    dtype : torch.dtype, optional
    what : str
        How the folder was given, for messages.
    **components
        Components to use instead of the folder's (``unet=...``, ``transformer=...``).

    Returns
    -------
    diffusers.DiffusionPipeline

    Raises
    ------
    ConfigError
        The class cannot be chosen, or loading fails (the message names the folder, the class
        and the fix).
    """
    cls = pipeline_class(folder, pipeline, what=what)
    kwargs = {"use_safetensors": True, **components}
    if dtype is not None:
        kwargs.update(dtype_kwargs(dtype))
    try:
        return cls.from_pretrained(folder, **kwargs)
    except _LOAD_ERRORS as exc:
        raise ConfigError(f"{what} folder {folder} could not be loaded as a {cls.__name__} "
                          f"({type(exc).__name__}: {first_line(exc)}); check that it is a complete "
                          "diffusers pipeline of that family saved with save_pretrained (or set "
                          "the spec's pipeline to the class it was saved as)") from None


def denoiser(pipe):
    """``(name, module)`` of the pipeline's denoiser: ``("unet", ...)`` or ``("transformer", ...)``."""
    for name in ("transformer", "unet"):
        module = getattr(pipe, name, None)
        if module is not None:
            return name, module
    raise ConfigError(f"{type(pipe).__name__} has neither a unet nor a transformer")


def apply_memory_options(pipe, *, device, offload: str | None = None, vae_tiling: bool = False,
                         vae_slicing: bool = False, attention_backend: str | None = None):
    """Place a loaded pipeline on ``device`` with the spec's memory options.

    ``offload="model"`` moves whole models to the accelerator when they run
    (``enable_model_cpu_offload``), ``"sequential"`` moves layer by layer (slowest, least
    memory); both need an accelerator device. VAE tiling decodes large images in tiles (it
    changes pixels slightly); slicing decodes a batch one image at a time (same pixels).

    Returns
    -------
    diffusers.DiffusionPipeline
        The pipeline (moved to ``device`` unless offloaded).

    Raises
    ------
    ConfigError
        Offload on the CPU, an unknown offload mode or attention backend.
    """
    if attention_backend:
        set_attention_backend(pipe, attention_backend)
    vae = getattr(pipe, "vae", None)
    if vae_tiling and vae is not None and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if vae_slicing and vae is not None and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if offload is None:
        return pipe.to(device)
    if offload not in OFFLOAD_MODES:
        raise ConfigError(f"offload {offload!r} is not known; use one of {', '.join(OFFLOAD_MODES)}")
    if device.type == "cpu":
        raise ConfigError(f"offload={offload!r} moves models between the CPU and an accelerator, "
                          "but the device is the CPU; leave offload unset on the CPU")
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return pipe


def attention_backends() -> list[str]:
    """The attention backend names this diffusers knows (``"native"``, ``"flash"``, ...)."""
    try:
        from diffusers.models.attention_dispatch import AttentionBackendName
    except ImportError:
        return []
    return sorted(b.value for b in AttentionBackendName)


def set_attention_backend(pipe, name: str) -> None:
    """Set the attention backend of the pipeline's denoiser (diffusers' attention dispatcher).

    Raises
    ------
    ConfigError
        An unknown name, a denoiser without backend selection, or a backend whose kernels are
        not installed (the message says which package).
    """
    known = attention_backends()
    if name not in known:
        raise ConfigError(f"attention_backend {name!r} is not known to this diffusers; use one "
                          f"of {', '.join(known) or '(none: upgrade diffusers)'}")
    _, module = denoiser(pipe)
    if not hasattr(module, "set_attention_backend"):
        raise ConfigError(f"the {type(module).__name__} of {type(pipe).__name__} cannot choose its "
                          "attention backend; leave attention_backend unset")
    try:
        module.set_attention_backend(name)
    except (RuntimeError, ValueError, ImportError) as exc:
        raise ConfigError(f"attention_backend {name!r} cannot be used here ({first_line(exc)}); "
                          "install its kernels or pick another backend") from None


__all__ = ["COMPONENT_LIBRARIES", "OFFLOAD_MODES", "apply_memory_options", "attention_backends",
           "check_components", "component_class", "denoiser", "load_component", "load_pipeline", "pipeline_class",
           "set_attention_backend"]
