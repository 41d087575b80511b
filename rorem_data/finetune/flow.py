"""LoRA fine-tuning of flow-matching inpainting transformers: FLUX.1-Fill and FLUX.2-klein.

The training loop (:mod:`rorem_data.finetune.loop`) picks this path when the base pipeline has a
``transformer`` (UNet pipelines keep the epsilon / v path). Everything family-specific is here:

* **Objective.** Rectified flow as diffusers' FLUX / SD3 training examples: ``u`` drawn by
  ``weighting_scheme`` (``none`` = uniform, ``logit_normal``, ``mode``; diffusers'
  ``compute_density_for_timestep_sampling``), the timestep and sigma at index
  ``u * num_train_timesteps`` of the base's own ``FlowMatchEulerDiscreteScheduler``,
  ``noisy = (1 - sigma) * x0 + sigma * noise``, target ``noise - x0``, MSE weighted by
  ``compute_loss_weighting_for_sd3`` (1 unless ``sigma_sqrt`` / ``cosmap``). The transformer
  gets ``timestep / 1000`` as the pipelines pass it, and the guidance embedding
  (``guidance_scale``, default the family's: 30 for Fill) where it has one.
* **FLUX.1-Fill** (``FluxFillPipeline``). Latents ``(vae(x) - shift) * scale``, 2x2 patches
  packed into tokens; the transformer input is ``[noisy GT (64) | masked source (64) | mask
  (256)]`` per token, the mask being the pixel mask unshuffled 8x8 into 64 channels and packed
  the same way: what the pipeline feeds at inference (it masks the source itself, so the
  remover passes the plain source).
* **FLUX.2-klein inpaint** (``Flux2KleinInpaintPipeline``). Latents are the VAE mode,
  patchified 2x2 and normalised by the VAE's latent batch norm; the noisy GT tokens (position
  ids ``t=0``) are followed by the tokens of the *masked source* (RORem's ``x_s * (1 - m)``,
  ids ``t=10`` as the pipeline's reference images) and the loss uses the GT tokens only. The
  stock pipeline conditions on its ``image``, so serve this LoRA with the masked source as
  ``image`` (the mask still selects what is repainted).
* **Text.** ``prompt`` (empty by default, as RORem) encoded once with the pipeline's own
  ``encode_prompt`` (text encoders loaded by :func:`rorem_data.models.pipelines.load_pipeline`
  without the transformer and VAE, then freed).
* **LoRA only.** A peft LoRA on the transformer (``transformer.add_adapter``); saved with the
  pipeline class's ``save_lora_weights(transformer_lora_layers=...)``, so that stock
  ``Pipeline.from_pretrained(base)`` + ``pipe.load_lora_weights(output)`` loads it, and a
  remover spec ``{"model": base, "lora": output}`` uses it.

>>> from rorem_data.finetune import FinetuneConfig, train
>>> train(FinetuneConfig(pretrained="black-forest-labs/FLUX.1-Fill-dev", data=["export"],
...                      lora_rank=16, resolution=512, output="runs/fill-lora"))  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import inspect
import os
from dataclasses import dataclass

from rorem_data.core.errors import ConfigError
from rorem_data.models import files, hub, pipelines
from rorem_data.models.families import family_of

#: Pipeline class -> how its transformer is fed (``"fill"``: channel-concatenated condition;
#: ``"klein"``: reference tokens appended to the sequence).
SUPPORTED = {"FluxFillPipeline": "fill", "Flux2KleinInpaintPipeline": "klein"}
KLEIN_REFERENCE_T = 10  # the T coordinate the pipeline gives its first reference image


@dataclass(frozen=True)
class FlowBase:
    """A checked flow-matching base pipeline.

    Attributes
    ----------
    folder : str
    index : dict
        Its ``model_index.json``.
    pipeline : str
        The pipeline class name (a key of :data:`SUPPORTED`).
    kind : {"fill", "klein"}
    vae_scale : int
        Pixels per latent pixel (the packed token covers twice that).
    """

    folder: str
    index: dict
    pipeline: str
    kind: str
    vae_scale: int
    sdxl: bool = False  # the loop's identity field; a transformer base is never SDXL


def inspect_flow_base(cfg) -> FlowBase | None:
    """The :class:`FlowBase` of ``cfg.pretrained`` if it is a transformer pipeline, else None.

    Raises
    ------
    ConfigError
        A transformer family other than :data:`SUPPORTED`, ``mode=full``, ``--unet``, or a
        resolution that is not a multiple of 2 x the VAE factor.
    """
    from rorem_data.core import jsonfile

    folder = hub.resolve_pipeline_folder(cfg.pretrained, what="--pretrained")
    index = files.read_model_index(folder)
    if "transformer" not in files.pipeline_components(index):
        return None
    # the class the remover would load it as (a text-to-image folder as its inpainting class)
    name = pipelines.pipeline_class(folder, what="--pretrained").__name__
    if name not in SUPPORTED:
        raise ConfigError(f"pretrained {folder} is a {name}; fine-tuning supports the transformer "
                          f"families {', '.join(SUPPORTED)} (and UNet inpainting pipelines: "
                          "Stable Diffusion (XL) inpainting). Start from one of those")
    if cfg.mode != "lora":
        raise ConfigError(f"pretrained {folder} is a {name}: full fine-tuning of its transformer is "
                          "not supported (it needs the memory of many GPUs); train a LoRA with "
                          "lora_rank=16 (--lora-rank 16)")
    if cfg.unet:
        raise ConfigError(f"--unet swaps the UNet of a UNet pipeline, but {folder} is a {name} "
                          "(a transformer); leave unet unset")
    vae_cfg = jsonfile.load(os.path.join(folder, "vae", "config.json"))
    vae_scale = 2 ** (len(vae_cfg.get("block_out_channels") or [0]) - 1)
    step = 2 * vae_scale
    if cfg.resolution % step:
        lo = cfg.resolution // step * step
        raise ConfigError(f"resolution {cfg.resolution} is not a multiple of {step} (VAE factor "
                          f"{vae_scale} x 2x2 packing) as {name} needs; use {lo or step} or "
                          f"{lo + step}")
    return FlowBase(folder=folder, index=index, pipeline=name, kind=SUPPORTED[name],
                    vae_scale=vae_scale)


# --------------------------------------------------------------------------------------------
# Latent layouts (the pipelines' packing, written out)
# --------------------------------------------------------------------------------------------


def pack_patches(x):
    """FLUX.1 packing: (B, C, H, W) -> (B, H/2 * W/2, 4C), each token a 2x2 patch (C, dy, dx)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def fill_mask_tokens(mask, vae_scale: int):
    """Fill's mask input: the pixel mask (B, 1, H, W) unshuffled ``vae_scale`` x ``vae_scale``
    into channels at latent size, then packed: (B, tokens, 4 * vae_scale**2)."""
    b, _, h, w = mask.shape
    s = vae_scale
    m = mask[:, 0].reshape(b, h // s, s, w // s, s).permute(0, 2, 4, 1, 3)
    return pack_patches(m.reshape(b, s * s, h // s, w // s))


def flux1_ids(h: int, w: int, device):
    """FLUX.1 image position ids (h * w, 3): ``(0, row, col)`` of each token."""
    import torch

    ids = torch.zeros(h, w, 3)
    ids[..., 1] = torch.arange(h)[:, None]
    ids[..., 2] = torch.arange(w)[None, :]
    return ids.reshape(h * w, 3).to(device)


def patchify(x):
    """FLUX.2 patchify: (B, C, H, W) -> (B, 4C, H/2, W/2), channels (C, dy, dx)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def to_tokens(x):
    """FLUX.2 packing: (B, C, H, W) -> (B, H * W, C), row-major."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).permute(0, 2, 1)


def flux2_ids(batch: int, h: int, w: int, t: int, device):
    """FLUX.2 position ids (B, h * w, 4): ``(t, row, col, 0)`` of each token."""
    import torch

    ids = torch.cartesian_prod(torch.tensor([t]), torch.arange(h), torch.arange(w),
                               torch.arange(1))
    return ids.unsqueeze(0).expand(batch, -1, -1).to(device)


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------


class FlowObjective:
    """The flow-matching pieces of one training run: VAE, scheduler, cached text, the loss.

    Parameters
    ----------
    base : FlowBase
    cfg : FinetuneConfig
    device : torch.device
    weight_dtype : torch.dtype
        Of the frozen transformer and text features (float32 without mixed precision).
    """

    def __init__(self, base: FlowBase, cfg, device, weight_dtype):
        from diffusers import FlowMatchEulerDiscreteScheduler

        from rorem_data.finetune import models

        self.base, self.cfg, self.device, self.weight_dtype = base, cfg, device, weight_dtype
        self.family = family_of(base.pipeline)
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(base.folder,
                                                                         subfolder="scheduler")
        self.vae = models.load_component(base, "vae")
        self.vae.requires_grad_(False)
        self.vae.to(device)  # float32, as the UNet path keeps its VAE
        self.guidance = (cfg.guidance_scale if cfg.guidance_scale is not None
                         else self.family.guidance)
        self.text = self._encode_prompt()

    # -- models -----------------------------------------------------------------------------

    def trainable_transformer(self):
        """The base transformer, frozen (in ``weight_dtype``), with a fresh float32 LoRA."""
        import torch
        from peft import LoraConfig

        from rorem_data.finetune import models

        cfg = self.cfg
        transformer = models.load_component(self.base, "transformer")
        transformer.requires_grad_(False)
        transformer.to(self.device)
        if self.weight_dtype != torch.float32:
            transformer.to(dtype=self.weight_dtype)
        transformer.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or cfg.lora_rank,
                                           init_lora_weights="gaussian",
                                           target_modules=list(cfg.lora_target_modules)))
        for p in transformer.parameters():
            if p.requires_grad:
                p.data = p.data.float()
        if not any(p.requires_grad for p in transformer.parameters()):
            raise ConfigError(f"lora_target_modules {cfg.lora_target_modules} match no layer of the "
                              f"{type(transformer).__name__}; use e.g. to_q to_k to_v to_out.0")
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        return transformer

    def _encode_prompt(self) -> dict:
        """The prompt's features, computed once with the pipeline's ``encode_prompt``."""
        import torch

        from rorem_data.models.pipelines import load_pipeline

        dtype = None if self.weight_dtype == torch.float32 else self.weight_dtype
        pipe = load_pipeline(self.base.folder, dtype=dtype, what="--pretrained",
                             transformer=None, vae=None)
        pipe.to(self.device)
        length = self.cfg.max_sequence_length or self.family.max_sequence_length or 512
        with torch.no_grad():
            if self.base.kind == "fill":
                embeds, pooled, text_ids = pipe.encode_prompt(
                    prompt=self.cfg.prompt, prompt_2=None, device=self.device,
                    max_sequence_length=length)
            else:
                embeds, text_ids = pipe.encode_prompt(prompt=self.cfg.prompt, device=self.device,
                                                      max_sequence_length=length)
                pooled = None
        del pipe
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        out = {"embeds": embeds.to(self.device, dtype=self.weight_dtype), "text_ids": text_ids}
        if pooled is not None:
            out["pooled"] = pooled.to(self.device, dtype=self.weight_dtype)
        return out

    # -- one step ---------------------------------------------------------------------------

    def sample_sigmas(self, bsz: int):
        """(timesteps, sigmas) for ``bsz`` items, drawn as diffusers' flow-matching examples."""
        import torch
        from diffusers.training_utils import compute_density_for_timestep_sampling

        cfg = self.cfg
        u = compute_density_for_timestep_sampling(cfg.weighting_scheme, bsz,
                                                  logit_mean=cfg.logit_mean,
                                                  logit_std=cfg.logit_std,
                                                  mode_scale=cfg.mode_scale)
        n = self.scheduler.config.num_train_timesteps
        idx = (u * n).long().clamp(0, len(self.scheduler.timesteps) - 1)
        timesteps = self.scheduler.timesteps[idx].to(self.device, torch.float32)
        sigmas = self.scheduler.sigmas[idx].to(self.device, torch.float32)
        return timesteps, sigmas

    def _encode(self, images):
        """Normalised latents of images in [-1, 1] (Fill: (B, C, h, w); klein: patchified)."""
        import torch

        vae = self.vae
        with torch.no_grad():
            dist = vae.encode(images.to(self.device, torch.float32)).latent_dist
            if self.base.kind == "fill":
                shift = vae.config.shift_factor or 0.0
                return (dist.sample() - shift) * vae.config.scaling_factor
            lat = patchify(dist.mode())
            mean = vae.bn.running_mean.view(1, -1, 1, 1).to(lat)
            std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1).to(lat) + vae.config.batch_norm_eps)
            return (lat - mean) / std

    def loss(self, transformer, batch):
        """The weighted flow-matching MSE of one batch (``target``, ``masked_source``, ``mask``)."""
        import torch
        from diffusers.training_utils import compute_loss_weighting_for_sd3

        both = self._encode(torch.cat([batch["target"], batch["masked_source"]]))
        x0, cond = both.chunk(2)
        noise = torch.randn_like(x0)
        bsz = x0.shape[0]
        timesteps, sigmas = self.sample_sigmas(bsz)
        s = sigmas.view(-1, 1, 1, 1)
        noisy = (1.0 - s) * x0 + s * noise
        dt = self.weight_dtype
        t = self.text
        guidance = None
        if getattr(_unwrap(transformer).config, "guidance_embeds", False):
            guidance = torch.full((bsz,), float(self.guidance), device=self.device)
        h, w = x0.shape[-2:]
        if self.base.kind == "fill":
            hidden = torch.cat([pack_patches(noisy), pack_patches(cond),
                                fill_mask_tokens(batch["mask"].to(self.device), self.base.vae_scale)],
                               dim=-1)
            pred = transformer(hidden_states=hidden.to(dt), timestep=timesteps / 1000,
                               guidance=guidance, pooled_projections=t["pooled"].expand(bsz, -1),
                               encoder_hidden_states=t["embeds"].expand(bsz, -1, -1),
                               txt_ids=t["text_ids"], img_ids=flux1_ids(h // 2, w // 2, self.device),
                               return_dict=False)[0]
            target = pack_patches(noise - x0)
        else:
            n_tokens = h * w
            hidden = torch.cat([to_tokens(noisy), to_tokens(cond)], dim=1)
            img_ids = torch.cat([flux2_ids(bsz, h, w, 0, self.device),
                                 flux2_ids(bsz, h, w, KLEIN_REFERENCE_T, self.device)], dim=1)
            pred = transformer(hidden_states=hidden.to(dt), timestep=timesteps / 1000,
                               guidance=guidance,
                               encoder_hidden_states=t["embeds"].expand(bsz, -1, -1),
                               txt_ids=t["text_ids"].expand(bsz, -1, -1), img_ids=img_ids,
                               return_dict=False)[0][:, :n_tokens]
            target = to_tokens(noise - x0)
        weighting = compute_loss_weighting_for_sd3(self.cfg.weighting_scheme, sigmas).view(-1, 1, 1)
        err = weighting.float() * (pred.float() - target.float()) ** 2
        return err.reshape(bsz, -1).mean(1).mean()

    # -- LoRA files -------------------------------------------------------------------------

    def pipeline_class(self):
        """The diffusers pipeline class of the base (its ``save_lora_weights`` writes the LoRA)."""
        import diffusers

        return getattr(diffusers, self.base.pipeline)

    def save_lora(self, transformer, out_dir: str) -> str:
        """Save the transformer's LoRA (adapter ``default``) with the pipeline class's
        ``save_lora_weights`` as ``<out_dir>/pytorch_lora_weights.safetensors``; returns it."""
        from peft.utils import get_peft_model_state_dict

        saver = self.pipeline_class()
        kwargs = {}
        if "transformer_lora_adapter_metadata" in inspect.signature(saver.save_lora_weights).parameters:
            kwargs["transformer_lora_adapter_metadata"] = transformer.peft_config["default"].to_dict()
        saver.save_lora_weights(out_dir, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                safe_serialization=True, weight_name=files.LORA_WEIGHT_NAME, **kwargs)
        return os.path.join(out_dir, files.LORA_WEIGHT_NAME)

    @staticmethod
    def load_lora(transformer, path: str) -> None:
        """Load a LoRA written by :meth:`save_lora` into a transformer that has the ``default``
        adapter (safetensors only).

        Raises
        ------
        ConfigError
            Weights that do not fit the adapter (another rank or targets).
        """
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        file = files.resolve_lora_file(path, what="checkpoint LoRA")
        prefix = "transformer."
        state = {k[len(prefix):]: v for k, v in load_file(file).items() if k.startswith(prefix)}
        result = set_peft_model_state_dict(transformer, state, adapter_name="default")
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected or not state:
            raise ConfigError(f"checkpoint {file} holds LoRA weights that do not fit this "
                              f"transformer ({(unexpected or ['no transformer.* keys'])[:3]}...); "
                              "resume with the same lora_rank (--lora-rank) and targets")

    # -- validation -------------------------------------------------------------------------

    def validation_pipeline(self, transformer):
        """The stock pipeline around the training transformer and VAE (no text encoders)."""
        cls = self.pipeline_class()
        params = inspect.signature(cls.__init__).parameters
        kwargs = {name: None for name in files.pipeline_components(self.base.index) if name in params}
        kwargs.update(scheduler=self.scheduler.__class__.from_config(self.scheduler.config),
                      vae=self.vae, transformer=transformer)
        for name in params:  # plain config values (klein's is_distilled)
            if name not in kwargs and name in self.base.index and name != "self":
                kwargs[name] = self.base.index[name]
        pipe = cls(**kwargs)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def run_validation(self, transformer, items, *, resolution: int, steps: int, seed: int,
                       accelerator):
        """Remove the objects of ``items`` (dataset items with ``source``); PIL results.

        Fill gets the source and mask with the family's embedded guidance; klein gets the masked
        source (its training condition) and mask, guidance 1 (no negative prompt is cached)."""
        import numpy as np
        import torch
        from PIL import Image

        def to_pil(t):
            a = ((t.permute(1, 2, 0).float().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
            return Image.fromarray(a)

        was_training = transformer.training
        transformer.eval()
        pipe = self.validation_pipeline(transformer)
        n = len(items)
        key = "source" if self.base.kind == "fill" else "masked_source"
        call = dict(image=[to_pil(it[key]) for it in items],
                    mask_image=[Image.fromarray((it["mask"][0].numpy() * 255).astype(np.uint8))
                                for it in items],
                    height=resolution, width=resolution, num_inference_steps=steps, strength=1.0,
                    prompt_embeds=self.text["embeds"].expand(n, -1, -1),
                    generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(n)])
        if self.base.kind == "fill":
            call.update(pooled_prompt_embeds=self.text["pooled"].expand(n, -1),
                        guidance_scale=float(self.guidance))
        else:
            call.update(guidance_scale=1.0)
        with torch.no_grad(), accelerator.autocast():
            results = pipe(**call).images
        if was_training:
            transformer.train()
        return results


def validate(objective: FlowObjective, transformer, dataset, indices, *, resolution: int, steps: int,
             seed: int, out_dir: str, step: int, accelerator) -> list:
    """Validation strips ``source | mask | result | GT`` of pairs ``indices`` in ``out_dir``
    (and the trackers), as :func:`rorem_data.finetune.validation.run_validation` for UNets."""
    import numpy as np
    from PIL import Image

    if not indices:
        return []
    items = [dataset.load(i) for i in indices]
    results = objective.run_validation(transformer, items, resolution=resolution, steps=steps,
                                       seed=seed, accelerator=accelerator)
    os.makedirs(out_dir, exist_ok=True)
    strips = []
    for i, (it, res) in enumerate(zip(items, results)):
        cells = [((t.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
                 for t in (it["source"], it["target"])]
        mask = np.repeat((it["mask"][0].numpy() * 255).astype(np.uint8)[..., None], 3, axis=2)
        strip = np.concatenate([cells[0], mask, np.asarray(res.convert("RGB")), cells[1]], axis=1)
        Image.fromarray(strip).save(os.path.join(out_dir, f"{i:02d}.png"))
        strips.append(strip)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_images("validation", np.stack(strips), step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": [wandb.Image(s) for s in strips]}, step=step)
    return results


def _unwrap(model):
    """The module inside a DDP / compiled wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return getattr(model, "_orig_mod", model)


__all__ = ["SUPPORTED", "FlowBase", "FlowObjective", "fill_mask_tokens",
           "flux1_ids", "flux2_ids", "inspect_flow_base", "pack_patches", "patchify", "to_tokens", "validate"]
