"""The diffusion remover (``kind="diffusers"``): a diffusers inpainting pipeline with RORem's
defaults, for SD, SDXL and anything ``AutoPipelineForInpainting`` maps to.

What the model receives (RORem's inputs)
----------------------------------------
The pipeline gets the **source** image and the (optionally dilated) **mask** at the size the
spec's ``hd_strategy`` chooses (:mod:`rorem_data.removers.hd`; by default both resized to a
``resolution`` square, aspect not kept, as RORem trains). An inpainting UNet has 9 input
channels: ``[noisy latent (4), mask at latent size (1), latent of the masked source (4)]``. The
pipeline builds the masked source itself: ``source * (mask < 0.5)`` in [-1, 1], i.e. object
pixels become 0 (mid-gray) before VAE encoding, which is RORem's ``x_s * (1 - m)``. With
``strength=0.99`` (RORem's value) the starting latent is the source latent noised to 99% of
the schedule. A 4-channel (text-to-image) UNet also loads; the pipeline then keeps the unmasked
latents at every step (RePaint-style blending). Results come back at the source's size;
``paste_back=True`` also copies the source outside the dilated mask into the result.

Loading
-------
``model`` is a local pipeline folder (``model_index.json`` plus components) or a Hugging Face
hub id; ``unet`` swaps in a fine-tuned UNet folder (the RORem checkpoints), ``lora`` loads and
fuses a LoRA (with ``scheduler="lcm"`` and ``steps=4`` for RORem-LCM). Weights load from
safetensors only (``use_safetensors=True``; pickle-based files are refused, see
:mod:`rorem_data.core.model_files`). Every loading failure raises
:class:`~rorem_data.core.errors.ConfigError` naming the folder, what was expected and the fix.

Items whose model inputs have the same size (all of them with ``resize``) run in one pipeline
call; each has its own ``torch.Generator``, so grouping does not change a result.
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np

from rorem_data.core import model_files
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError
from rorem_data.removers import hd
from rorem_data.removers.base import Remover
from rorem_data.removers.spec import SCHEDULERS, RemoverSpec

_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {model_files.first_line(exc)}"


class DiffusersRemover(Remover):
    """A diffusers inpainting pipeline with RORem's defaults (see the module docstring).

    Parameters
    ----------
    spec : RemoverSpec
        ``kind="diffusers"``; ``model`` is required.

    Attributes
    ----------
    pipe : diffusers.DiffusionPipeline
        The loaded pipeline (on ``device``, in ``dtype``).
    model_dir, unet_dir, lora_file : str or None
        The resolved folders / file.
    checkpoint_sha256 : str
        Hash of the model, UNet and LoRA files (see :func:`~rorem_data.core.model_files.checkpoint_sha256`).
    """

    provenance_keys = ("model", "unet", "lora", "lora_scale", "pipeline", "steps", "strength",
                       "guidance", "prompt", "negative_prompt", "resolution", "crop_margin",
                       "crop_trigger_size", "dtype", "device")
    key_defaults: ClassVar[dict] = {"hd_strategy": "resize", "crop_margin": 128,
                                    "crop_trigger_size": 800}

    def __init__(self, spec: RemoverSpec):
        super().__init__(spec)
        for module in ("torch", "diffusers", "transformers"):
            require(module, purpose="the diffusers remover")
        import diffusers
        import torch

        self.device, self.dtype = model_files.resolve_device_dtype(spec.device, spec.dtype)
        self.model_dir = model_files.resolve_pipeline_folder(spec.model, what="model")
        self.unet_dir = model_files.resolve_unet_folder(spec.unet) if spec.unet else None
        self.lora_file = model_files.resolve_lora_file(spec.lora) if spec.lora else None
        self.lora_path = (os.path.abspath(os.path.expanduser(os.fspath(spec.lora)))
                          if spec.lora else None)
        hashed = [self.model_dir] + [p for p in (self.unet_dir, self.lora_file) if p]
        self.checkpoint_sha256 = model_files.checkpoint_sha256(hashed)

        kwargs = {**model_files.dtype_kwargs(self.dtype), "use_safetensors": True}
        if self.unet_dir:
            try:
                kwargs["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
                    self.unet_dir, use_safetensors=True, **model_files.dtype_kwargs(self.dtype))
            except _LOAD_ERRORS as exc:
                raise ConfigError(f"unet folder {self.unet_dir} could not be loaded "
                                  f"({_first_line(exc)}); check that it was written by "
                                  "UNet2DConditionModel.save_pretrained") from None
        try:
            pipe = diffusers.AutoPipelineForInpainting.from_pretrained(self.model_dir, **kwargs)
        except _LOAD_ERRORS as exc:
            raise ConfigError(f"model folder {self.model_dir} could not be loaded as an inpainting "
                              f"pipeline ({_first_line(exc)}); check that it is a complete "
                              "diffusers pipeline saved with save_pretrained") from None
        self._check_unet_fits(pipe)
        if spec.scheduler:
            pipe.scheduler = self._make_scheduler(pipe.scheduler, spec.scheduler)
        if self.lora_file:
            self._load_lora(pipe)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self._generator_device = "cpu"
        self._versions = {"diffusers": diffusers.__version__,
                          "torch": torch.__version__.split("+")[0]}

    # -- loading helpers ---------------------------------------------------------------------

    def _check_unet_fits(self, pipe) -> None:
        unet = pipe.unet
        cin = unet.config.in_channels
        where = self.unet_dir or os.path.join(self.model_dir, "unet")
        if cin not in (4, 9):
            raise ConfigError(f"UNet at {where} has {cin} input channels; an inpainting pipeline "
                              "needs 9 (inpainting UNet) or 4 (text-to-image UNet)")
        expected = 0
        for name in ("text_encoder", "text_encoder_2"):
            enc = getattr(pipe, name, None)
            if enc is not None:
                expected += enc.config.hidden_size
        got = unet.config.cross_attention_dim
        if expected and isinstance(got, int) and got != expected:
            raise ConfigError(f"UNet at {where} expects text features of size {got} but the text "
                              f"encoder(s) of {self.model_dir} give {expected}; the UNet belongs to "
                              "another base model (SD vs SDXL?): pass the base pipeline it was "
                              "trained from as `model`")

    @staticmethod
    def _make_scheduler(current, name: str):
        import diffusers

        cls_name = SCHEDULERS.get(name.lower(), name)
        cls = getattr(diffusers, cls_name, None)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, diffusers.SchedulerMixin):
            raise ConfigError(f"scheduler {name!r} is not known; use one of "
                              f"{', '.join(SCHEDULERS)} or a diffusers scheduler class name")
        return cls.from_config(current.config)

    def _load_lora(self, pipe) -> None:
        path = self.lora_file
        base = self.unet_dir or self.model_dir
        try:
            pipe.load_lora_weights(os.path.dirname(path), weight_name=os.path.basename(path),
                                   adapter_name="remover", use_safetensors=True)
        except (ValueError, RuntimeError, KeyError, OSError) as exc:
            raise ConfigError(f"lora {path} does not fit the UNet of {base} ({_first_line(exc)}); "
                              "use the LoRA trained for this base model") from None
        if "remover" not in pipe.get_list_adapters().get("unet", []):
            raise ConfigError(f"lora {path} has no weights that fit the UNet of {base} (none of "
                              "its keys matched a UNet layer); use the LoRA trained for this base "
                              "model")
        pipe.fuse_lora(lora_scale=self.spec.lora_scale, adapter_names=["remover"])
        pipe.unload_lora_weights()

    # -- running -----------------------------------------------------------------------------

    def windows(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[hd.Window]:
        """The :class:`~rorem_data.removers.hd.Window` each (checked, dilated) item gets."""
        s = self.spec
        return [hd.plan_window((a.shape[1], a.shape[0]), m, strategy=s.hd_strategy,
                               resolution=s.resolution, crop_margin=s.crop_margin,
                               crop_trigger_size=s.crop_trigger_size)
                for a, m in zip(images, masks)]

    def _remove_batch(self, images, masks, seeds):
        windows = self.windows(images, masks)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, w in enumerate(windows):
            groups.setdefault(w.padded, []).append(i)
        results: list = [None] * len(images)
        for (width, height), idx in groups.items():
            inputs = [hd.to_model(images[i], masks[i], windows[i]) for i in idx]
            outputs = self._run_pipeline([p[0] for p in inputs], [p[1] for p in inputs],
                                         [seeds[i] for i in idx], width, height)
            for i, out in zip(idx, outputs):
                results[i] = hd.from_model(out, windows[i], images[i])
        return results

    def _run_pipeline(self, sources, masks, seeds, width: int, height: int) -> list[np.ndarray]:
        """One pipeline call on same-size PIL inputs; uint8 (height, width, 3) outputs."""
        import torch

        gens = [torch.Generator(self._generator_device).manual_seed(int(s)) for s in seeds]
        kwargs = dict(
            prompt=[self.spec.prompt] * len(sources), image=sources, mask_image=masks,
            height=height, width=width, strength=float(self.spec.strength),
            num_inference_steps=self.spec.steps, guidance_scale=float(self.spec.guidance),
            generator=gens, output_type="np",
        )
        if self.spec.guidance > 1 and self.spec.negative_prompt:
            kwargs["negative_prompt"] = [self.spec.negative_prompt] * len(sources)
        with torch.inference_mode():
            out = self.pipe(**kwargs).images
        return [(np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8) for a in out]

    def _provenance(self) -> dict:
        s = self.spec
        local = os.path.isdir(os.path.expanduser(os.fspath(s.model)))
        return {
            "kind": s.kind,
            "model": self.model_dir if local else s.model,
            "unet": self.unet_dir,
            "lora": self.lora_path,
            "lora_scale": s.lora_scale if s.lora else None,
            "checkpoint_sha256": self.checkpoint_sha256,
            "pipeline": type(self.pipe).__name__,
            "sampler": type(self.pipe.scheduler).__name__,
            "steps": s.steps,
            "strength": s.strength,
            "guidance": s.guidance,
            "prompt": s.prompt,
            "negative_prompt": s.negative_prompt if s.guidance > 1 else "",
            "dilation": s.dilation,
            "paste_back": s.paste_back,
            "resolution": s.resolution,
            "hd_strategy": s.hd_strategy,
            "crop_margin": s.crop_margin,
            "crop_trigger_size": s.crop_trigger_size,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "versions": self._versions,
        }

    def close(self) -> None:
        import gc

        import torch

        self.pipe = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


__all__ = ["DiffusersRemover"]
