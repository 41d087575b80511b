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
:mod:`rorem_data.models`). Every loading failure raises
:class:`~rorem_data.core.errors.ConfigError` naming the folder, what was expected and the fix.

Items whose model inputs have the same size (all of them with ``resize``) run in one pipeline
call; each has its own ``torch.Generator``, so grouping does not change a result.
"""

from __future__ import annotations

import inspect
import os
from typing import ClassVar

import numpy as np

from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError
from rorem_data.models import devices, families, files, hashing, hub, pipelines
from rorem_data.removers import hd
from rorem_data.removers.base import Remover
from rorem_data.removers.spec import SCHEDULERS, RemoverSpec, check_steps

_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {files.first_line(exc)}"


def _grayed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RORem's masked source: the object's pixels mid-gray (0 in the model's [-1, 1] range)."""
    out = image.copy()
    out[mask] = 128
    return out


class DiffusersRemover(Remover):
    """A diffusers inpainting pipeline of any family (see the module docstring).

    Parameters
    ----------
    spec : RemoverSpec
        ``kind="diffusers"``; ``model`` is required.

    Attributes
    ----------
    pipe : diffusers.DiffusionPipeline
        The loaded pipeline (on ``device``, in ``dtype``).
    family : rorem_data.models.families.Family or None
        The family of the pipeline class (``None`` for a class outside the table).
    settings : dict
        ``steps``, ``guidance``, ``strength``, ``true_cfg``, ``max_sequence_length`` and
        ``resolution``: the spec's values, the family's defaults where the spec leaves them unset.
    model_dir, unet_dir : str or None
        The resolved folders.
    lora_files : list of (str, float)
        The resolved LoRA files and their scales.
    checkpoint_sha256 : str
        Hash of the model, UNet and LoRA files (see :func:`~rorem_data.models.hashing.checkpoint_sha256`).
    """

    provenance_keys = ("model", "unet", "lora", "lora_scale", "pipeline", "family", "steps",
                       "strength", "guidance", "true_cfg", "max_sequence_length", "prompt",
                       "negative_prompt", "resolution", "crop_margin", "crop_trigger_size",
                       "lora_mode", "vae_tiling", "vae_slicing", "offload", "attention_backend",
                       "dtype", "device")
    # Fields added after keys were first made, at the values that reproduce SD / SDXL removers
    key_defaults: ClassVar[dict] = {"hd_strategy": "resize", "crop_margin": 128,
                                    "crop_trigger_size": 800, "true_cfg": None,
                                    "max_sequence_length": None, "lora_mode": "fuse",
                                    "vae_tiling": False}
    # Recorded, not in the key: they do not change the pixels (the family follows the class)
    key_excluded = ("family", "vae_slicing", "offload", "attention_backend")

    def __init__(self, spec: RemoverSpec):
        super().__init__(spec)
        for module in ("torch", "diffusers", "transformers"):
            require(module, purpose="the diffusers remover")
        import diffusers
        import torch

        self.model_dir = hub.resolve_pipeline_folder(spec.model, what="model")
        self._index = files.read_model_index(self.model_dir)
        cls = pipelines.pipeline_class(self.model_dir, spec.pipeline)
        self.family = families.family_of(cls.__name__)
        transformer = self.family is not None and self.family.denoiser == "transformer"
        self.device, self.dtype = devices.resolve_device_dtype(
            spec.device, spec.dtype, half="bfloat16" if transformer else "float16")
        self.settings = self._settings()
        if spec.unet and transformer:
            raise ConfigError(f"unet {spec.unet} replaces the UNet of an SD / SDXL pipeline, but "
                              f"{self.model_dir} is a {cls.__name__} (a transformer); pass "
                              "fine-tuned weights of a transformer as `lora`")
        self.unet_dir = files.resolve_unet_folder(spec.unet) if spec.unet else None
        self.lora_files = [(files.resolve_lora_file(path), scale) for path, scale in spec.loras]
        hashed = [self.model_dir] + ([self.unet_dir] if self.unet_dir else []) \
            + [f for f, _ in self.lora_files]
        self.checkpoint_sha256 = hashing.checkpoint_sha256(hashed)

        components = {}
        if self.unet_dir:
            try:
                components["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
                    self.unet_dir, use_safetensors=True, **devices.dtype_kwargs(self.dtype))
            except _LOAD_ERRORS as exc:
                raise ConfigError(f"unet folder {self.unet_dir} could not be loaded "
                                  f"({_first_line(exc)}); check that it was written by "
                                  "UNet2DConditionModel.save_pretrained") from None
        pipe = pipelines.load_pipeline(self.model_dir, pipeline=spec.pipeline, dtype=self.dtype,
                                       **components)
        if getattr(pipe, "unet", None) is not None:
            self._check_unet_fits(pipe)
        if spec.scheduler:
            pipe.scheduler = self._make_scheduler(pipe.scheduler, spec.scheduler)
        if self.lora_files:
            self._load_loras(pipe)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipelines.apply_memory_options(
            pipe, device=self.device, offload=spec.offload, vae_tiling=spec.vae_tiling,
            vae_slicing=spec.vae_slicing, attention_backend=spec.attention_backend)
        self._call_params = set(inspect.signature(type(pipe).__call__).parameters)
        self._generator_device = "cpu"
        self._versions = {"diffusers": diffusers.__version__,
                          "torch": torch.__version__.split("+")[0]}

    # -- loading helpers ---------------------------------------------------------------------

    def _settings(self) -> dict:
        """The spec's run values, the family's defaults where unset; checked for the family."""
        s, fam = self.spec, self.family
        base = fam.defaults(self._index) if fam else {
            "steps": 50, "guidance": 1.0, "strength": 0.99, "true_cfg": None,
            "max_sequence_length": None}
        out = {k: (getattr(s, k) if getattr(s, k) is not None else v) for k, v in base.items()}
        if fam is None or fam.true_cfg is None:
            out["true_cfg"] = None if s.true_cfg is None else s.true_cfg
        if fam is not None and fam.max_sequence_length is None:
            out["max_sequence_length"] = None
        multiple = fam.multiple if fam else hd.MULTIPLE
        default_res = 512 if fam is None or fam.denoiser == "unet" else 1024
        out["resolution"] = s.resolution if s.resolution is not None else default_res
        if out["resolution"] % multiple:
            name = fam.pipeline if fam else "this pipeline"
            raise ConfigError(f"remover spec field 'resolution' must be a multiple of {multiple} "
                              f"for {name}; got {out['resolution']}. Use "
                              f"{max(multiple, out['resolution'] // multiple * multiple)}")
        check_steps(out["steps"], out["strength"])
        return out

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
        if "FlowMatch" in type(current).__name__ and "FlowMatch" not in cls.__name__:
            raise ConfigError(f"scheduler {name!r} is a noise-prediction sampler, but this pipeline "
                              f"is trained for flow matching ({type(current).__name__}); use a "
                              "FlowMatch* scheduler or leave scheduler unset")
        return cls.from_config(current.config)

    def _load_loras(self, pipe) -> None:
        target = pipelines.denoiser(pipe)[0]
        base = self.unet_dir or self.model_dir
        names = []
        for i, (path, scale) in enumerate(self.lora_files):
            name = "remover" if len(self.lora_files) == 1 else f"remover-{i}"
            try:
                pipe.load_lora_weights(os.path.dirname(path), weight_name=os.path.basename(path),
                                       adapter_name=name, use_safetensors=True)
            except (ValueError, RuntimeError, KeyError, OSError, TypeError) as exc:
                raise ConfigError(f"lora {path} does not fit the {target} of {base} "
                                  f"({_first_line(exc)}); use the LoRA trained for this base "
                                  "model") from None
            if name not in pipe.get_list_adapters().get(target, []):
                raise ConfigError(f"lora {path} has no weights that fit the {target} of {base} "
                                  f"(none of its keys matched a {target} layer); use the LoRA "
                                  "trained for this base model")
            names.append(name)
        scales = [scale for _, scale in self.lora_files]
        if self.spec.lora_mode == "attach":
            pipe.set_adapters(names, adapter_weights=scales)
            return
        for name, scale in zip(names, scales):
            pipe.fuse_lora(lora_scale=scale, adapter_names=[name])
        pipe.unload_lora_weights()

    # -- running -----------------------------------------------------------------------------

    def windows(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[hd.Window]:
        """The :class:`~rorem_data.removers.hd.Window` each (checked, dilated) item gets."""
        s = self.spec
        multiple = self.family.multiple if self.family else hd.MULTIPLE
        return [hd.plan_window((a.shape[1], a.shape[0]), m, strategy=s.hd_strategy,
                               resolution=self.settings["resolution"], crop_margin=s.crop_margin,
                               crop_trigger_size=s.crop_trigger_size, multiple=multiple)
                for a, m in zip(images, masks)]

    def _remove_batch(self, images, masks, seeds):
        windows = self.windows(images, masks)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, w in enumerate(windows):
            groups.setdefault(w.padded, []).append(i)
        results: list = [None] * len(images)
        masked = self.family is not None and self.family.masked_source
        for (width, height), idx in groups.items():
            inputs = [hd.to_model(_grayed(images[i], masks[i]) if masked else images[i], masks[i],
                                  windows[i]) for i in idx]
            outputs = self._run_pipeline([p[0] for p in inputs], [p[1] for p in inputs],
                                         [seeds[i] for i in idx], width, height)
            for i, out in zip(idx, outputs):
                results[i] = hd.from_model(out, windows[i], images[i])
        return results

    def _run_pipeline(self, sources, masks, seeds, width: int, height: int) -> list[np.ndarray]:
        """One pipeline call on same-size PIL inputs; uint8 (height, width, 3) outputs."""
        import torch

        gens = [torch.Generator(self._generator_device).manual_seed(int(s)) for s in seeds]
        kwargs = self.call_arguments(len(sources))
        kwargs.update(image=sources, mask_image=masks, height=height, width=width,
                      generator=gens, output_type="np")
        with torch.inference_mode():
            out = self.pipe(**kwargs).images
        out = [(np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8) for a in out]
        if any(a.shape[:2] != (height, width) for a in out):  # a fixed-area pipeline
            from PIL import Image

            out = [a if a.shape[:2] == (height, width) else
                   np.asarray(Image.fromarray(a).resize((width, height), Image.LANCZOS))
                   for a in out]
        return out

    def call_arguments(self, n: int) -> dict:
        """The pipeline arguments other than the images, masks, size and generators, for a
        batch of ``n``: prompt, steps, strength and the family's guidance and text length."""
        s, cfg = self.spec, self.settings
        kind = self.family.guidance_kind if self.family else "cfg"
        kwargs = {"prompt": [s.prompt] * n, "strength": float(cfg["strength"]),
                  "num_inference_steps": cfg["steps"]}
        if kind in ("cfg", "embedded"):
            kwargs["guidance_scale"] = float(cfg["guidance"])
        if cfg["true_cfg"] is not None:
            kwargs["true_cfg_scale"] = float(cfg["true_cfg"])
        negative = self._negative_prompt()
        if negative is not None:
            kwargs["negative_prompt"] = [negative] * n
        if cfg["max_sequence_length"] is not None:
            kwargs["max_sequence_length"] = int(cfg["max_sequence_length"])
        if "_auto_resize" in self._call_params:
            kwargs["_auto_resize"] = False  # the window planner has chosen the size
        return {k: v for k, v in kwargs.items() if k in self._call_params}

    def _negative_prompt(self) -> str | None:
        """The negative prompt the pipeline gets, or None when guidance does not use one."""
        s, cfg, fam = self.spec, self.settings, self.family
        if fam is not None and not fam.negative_prompt:
            return None
        if cfg["true_cfg"] is not None and (fam is None or fam.guidance_kind != "cfg"):
            # true CFG runs only with a negative prompt; the docs pass " " for none
            return (s.negative_prompt or " ") if cfg["true_cfg"] > 1 else None
        return s.negative_prompt if cfg["guidance"] > 1 and s.negative_prompt else None

    def _provenance(self) -> dict:
        s, cfg = self.spec, self.settings
        local = os.path.isdir(os.path.expanduser(os.fspath(s.model)))
        single = isinstance(s.lora, (str, os.PathLike))
        lora_paths = [os.path.abspath(os.path.expanduser(p)) for p, _ in s.loras]
        return {
            "kind": s.kind,
            "model": self.model_dir if local else s.model,
            "unet": self.unet_dir,
            "lora": (lora_paths[0] if single else lora_paths) if s.lora else None,
            "lora_scale": (s.lora_scale if single else [sc for _, sc in s.loras]) if s.lora else None,
            "lora_mode": s.lora_mode if s.lora else "fuse",
            "checkpoint_sha256": self.checkpoint_sha256,
            "pipeline": type(self.pipe).__name__,
            "family": self.family.name if self.family else None,
            "sampler": type(self.pipe.scheduler).__name__,
            "steps": cfg["steps"],
            "strength": cfg["strength"],
            "guidance": cfg["guidance"],
            "true_cfg": cfg["true_cfg"],
            "max_sequence_length": cfg["max_sequence_length"],
            "prompt": s.prompt,
            "negative_prompt": self._negative_prompt() or "",
            "dilation": s.dilation,
            "paste_back": s.paste_back,
            "resolution": cfg["resolution"],
            "hd_strategy": s.hd_strategy,
            "crop_margin": s.crop_margin,
            "crop_trigger_size": s.crop_trigger_size,
            "vae_tiling": s.vae_tiling,
            "vae_slicing": s.vae_slicing,
            "offload": s.offload,
            "attention_backend": s.attention_backend,
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
