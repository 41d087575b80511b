"""The model pieces of fine-tuning: the base pipeline's checks, its components, the prompt
encoding, SDXL micro-conditioning, and LoRA weights in diffusers format.

Everything loads from safetensors (``use_safetensors=True``); pickle-based weights are refused
by :mod:`rorem_data.models` before anything is read.

>>> from rorem_data.finetune.models import inspect_base
>>> base = inspect_base("runs/tiny-sd", resolution=64)             # doctest: +SKIP
>>> base.sdxl, base.vae_scale                                      # doctest: +SKIP
(False, 8)
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

from rorem_data.core import jsonfile
from rorem_data.models import files, hub, pipelines
from rorem_data.core.errors import ConfigError

LORA_WEIGHTS = files.LORA_WEIGHT_NAME
REQUIRED_COMPONENTS = ("vae", "unet", "scheduler", "text_encoder", "tokenizer")


@dataclass(frozen=True)
class BaseModel:
    """A checked base pipeline for fine-tuning.

    Attributes
    ----------
    folder : str
        The pipeline folder.
    index : dict
        Its ``model_index.json``.
    sdxl : bool
        Two text encoders (SDXL) or one (SD).
    vae_scale : int
        Pixels per latent pixel.
    unet_dir : str
        The UNet to start from (the base's or ``--unet``).
    """

    folder: str
    index: dict
    sdxl: bool
    vae_scale: int
    unet_dir: str


def inspect_base(pretrained: str, *, resolution: int, unet: str | None = None) -> BaseModel:
    """Resolve and check the base pipeline (and ``--unet``) before any heavy work.

    Raises
    ------
    ConfigError
        Not an inpainting pipeline, a missing component, a resolution the VAE cannot take, a
        UNet without 9 input channels, a hub id offline.
    UnsafeWeightsError
        Pickle-based weights only.
    """
    base = hub.resolve_pipeline_folder(pretrained, what="--pretrained")
    index = files.read_model_index(base)
    components = files.pipeline_components(index)
    sdxl = "text_encoder_2" in components
    for name in REQUIRED_COMPONENTS:
        if name not in components:
            raise ConfigError(f"pretrained {base} has no {name!r} component; fine-tuning needs a "
                              "Stable Diffusion (XL) inpainting pipeline")
    vae_cfg = jsonfile.load(os.path.join(base, "vae", "config.json"))
    vae_scale = 2 ** (len(vae_cfg.get("block_out_channels") or [0]) - 1)
    if resolution % vae_scale:
        lo = resolution // vae_scale * vae_scale
        raise ConfigError(f"resolution {resolution} is not divisible by the VAE scale factor "
                          f"{vae_scale} of {base}; use {lo or vae_scale} or {lo + vae_scale}")
    unet_dir = (files.resolve_unet_folder(unet, what="--unet") if unet
                else os.path.join(base, "unet"))
    unet_cfg = jsonfile.load(os.path.join(unet_dir, "config.json"))
    if unet_cfg.get("in_channels") != 9:
        raise ConfigError(f"the UNet at {unet_dir} has {unet_cfg.get('in_channels')} input channels; "
                          "fine-tuning for removal needs an inpainting UNet with 9 (noisy latent, "
                          "mask, masked source). Start from an inpainting pipeline such as "
                          "stable-diffusion-xl-1.0-inpainting-0.1")
    return BaseModel(folder=base, index=index, sdxl=sdxl, vae_scale=vae_scale, unet_dir=unet_dir)


def component_class(index: dict, name: str):
    """The class a ``model_index.json`` names for component ``name`` (diffusers / transformers
    exports only; :func:`rorem_data.models.pipelines.component_class`)."""
    return pipelines.component_class(index, name, what="--pretrained")


def load_component(base: BaseModel, name: str, **kwargs):
    """``from_pretrained`` of one component of the base pipeline (safetensors only for models;
    :func:`rorem_data.models.pipelines.load_component`)."""
    return pipelines.load_component(base.folder, name, index=base.index, what="--pretrained",
                                    **kwargs)


def load_unet(base: BaseModel):
    """The UNet to train, from ``base.unet_dir`` (safetensors)."""
    return component_class(base.index, "unet").from_pretrained(base.unet_dir, use_safetensors=True)


def encode_prompt(prompt: str, tokenizers, text_encoders, *, sdxl: bool):
    """Text features of one prompt, computed once.

    Returns
    -------
    (embeds, pooled)
        ``embeds`` (1, 77, D); ``pooled`` (1, P) for SDXL (penultimate hidden states of both
        encoders concatenated, pooled embedding of encoder 2), else None.
    """
    import torch

    embeds, pooled = [], None
    with torch.no_grad():
        for tok, enc in zip(tokenizers, text_encoders):
            ids = tok([prompt], padding="max_length", max_length=tok.model_max_length,
                      truncation=True, return_tensors="pt").input_ids.to(enc.device)
            if not sdxl:
                return enc(ids)[0], None
            out = enc(ids, output_hidden_states=True)
            embeds.append(out.hidden_states[-2])
            pooled = getattr(out, "text_embeds", None)
            if pooled is None:
                pooled = out[0]
    return torch.cat(embeds, dim=-1), pooled


def sdxl_time_ids(unet, pooled_dim: int, resolution: int):
    """Micro-conditioning ids: ``(R, R, 0, 0, R, R)``, or ``(R, R, 0, 0, 6.0)`` for UNets that
    take an aesthetic score."""
    import torch

    cfg = unet.config
    n = (cfg.projection_class_embeddings_input_dim - pooled_dim) // cfg.addition_time_embed_dim
    if n == 6:
        ids = [resolution, resolution, 0, 0, resolution, resolution]
    elif n == 5:
        ids = [resolution, resolution, 0, 0, 6.0]
    else:
        raise ConfigError(f"the SDXL UNet expects {n} micro-conditioning ids; only 5 or 6 are "
                          "supported")
    return torch.tensor([ids], dtype=torch.float32)


def pipeline_class(sdxl: bool):
    """``StableDiffusionXLInpaintPipeline`` or ``StableDiffusionInpaintPipeline``."""
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionXLInpaintPipeline,
    )

    return StableDiffusionXLInpaintPipeline if sdxl else StableDiffusionInpaintPipeline


def save_lora(unet, out_dir: str, *, sdxl: bool) -> str:
    """Save the UNet's LoRA (adapter ``default``) in diffusers format with its peft config, as
    ``<out_dir>/pytorch_lora_weights.safetensors``; returns that path."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    saver = pipeline_class(sdxl)
    kwargs = {}
    if "unet_lora_adapter_metadata" in inspect.signature(saver.save_lora_weights).parameters:
        kwargs["unet_lora_adapter_metadata"] = unet.peft_config["default"].to_dict()
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    saver.save_lora_weights(out_dir, unet_lora_layers=layers, safe_serialization=True,
                            weight_name=LORA_WEIGHTS, **kwargs)
    return os.path.join(out_dir, LORA_WEIGHTS)


def load_lora_into(unet, path: str) -> None:
    """Load LoRA weights written by :func:`save_lora` (a ``.safetensors`` file or its folder)
    into a UNet that already has the ``default`` adapter; only safetensors is read.

    Raises
    ------
    UnsafeWeightsError
        A pickle-based file.
    ConfigError
        Weights that do not fit the adapter.
    """
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    file = files.resolve_lora_file(path, what="checkpoint LoRA")
    state = load_file(file)
    unet_state = {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")}
    result = set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(unet_state),
                                       adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected or not unet_state:
        raise ConfigError(f"checkpoint {file} holds LoRA weights that do not fit this UNet "
                          f"({(unexpected or ['no unet.* keys'])[:3]}...); resume with the same "
                          "lora_rank (--lora-rank) and targets")


def full_pipeline(unet, vae, base: BaseModel):
    """The base pipeline with the trained UNet (float32) and VAE, ready to ``save_pretrained``."""
    import torch

    if unet.dtype != torch.float32:
        unet = unet.to(torch.float32)
    return pipelines.load_pipeline(base.folder, dtype=torch.float32, what="--pretrained",
                                   unet=unet, vae=vae)


__all__ = [
    "LORA_WEIGHTS",
    "BaseModel",
    "component_class",
    "encode_prompt",
    "full_pipeline",
    "inspect_base",
    "load_component",
    "load_lora_into",
    "load_unet",
    "pipeline_class",
    "save_lora",
    "sdxl_time_ids",
]
