"""Fine-tune an inpainting UNet on exported pairs: one readable training loop on accelerate.

The loop follows RORem's released training code (see ``reference/rorem-paper.md`` §2):

* **Inputs.** Each step reads (source, mask, GT) triplets from exports in the RORem layout
  (``meta.json`` = list of ``{"source", "mask", "GT"}`` relative paths; masks are RGB PNGs,
  object = first channel / 255 >= 0.5), resized to ``resolution`` x ``resolution`` (aspect not
  kept) and flipped horizontally at random (the same flip for all three).
* **Model input.** 9 channels: the noisy GT latent (4), the mask at latent size (1, nearest
  interpolation) and the latent of the *masked source*: source pixels inside the mask are set
  to 0 (mid-gray in [-1, 1]) before VAE encoding, RORem's ``x_s * (1 - m)``.
* **Text.** The empty prompt by default, encoded once before training (SD: last hidden state;
  SDXL: penultimate hidden states of both encoders concatenated, pooled embedding of encoder 2,
  micro-conditioning time ids ``(res, res, 0, 0, res, res)``); the text encoders are then freed.
* **Loss.** Epsilon (or v) prediction MSE with timesteps uniform over the base model's DDPM
  schedule.
* **Defaults.** 512 px, lr 5e-5 constant, AdamW (0.9, 0.999), weight decay 1e-2, gradient
  clipping 1.0, mixed precision (fp16) only on a GPU, VAE in float32, seed 4.
* **Full or LoRA.** Full fine-tuning of every UNet parameter (RORem) or a peft LoRA added with
  ``unet.add_adapter``.
* **Checkpoints.** ``<output>/checkpoints/checkpoint-<step>`` every ``checkpointing_steps``
  (written to a temporary folder and renamed, so a killed run never leaves a half checkpoint),
  at most ``checkpoints_total_limit`` kept; ``resume="latest"`` continues from the newest one,
  after checking it was made from the same base model and mode.
* **Output.** Full: ``<output>`` becomes a pipeline folder that loads with stock
  ``diffusers.AutoPipelineForInpainting.from_pretrained(output)``. LoRA:
  ``<output>/pytorch_lora_weights.safetensors`` that loads with
  ``pipe.load_lora_weights(output)``. Both get ``rorem_finetune.json`` (config, base hash,
  steps, final loss).

Run it with ``accelerate launch recipes/finetune_remover.py --pretrained BASE --data EXPORT
--output OUT`` or from Python:

>>> from rorem_data.finetune.train import FinetuneConfig, train
>>> result = train(FinetuneConfig(pretrained="base", data=["export"], output="out"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import math
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass, field

from rorem_data.core.errors import ConfigError, DependencyError, ValidationError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
META_NAME = "rorem_finetune.json"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class FinetuneConfig:
    """Everything one training run needs; saved beside its outputs.

    Parameters
    ----------
    pretrained : str
        Base inpainting pipeline (folder or hub id) with a 9-channel UNet.
    data : list of str
        Export folders (each with ``meta.json``) or ``meta.json`` files.
    output : str
        Output folder: the fine-tuned pipeline (or LoRA), checkpoints, logs, validation images.
    unet : str, optional
        Start from this UNet folder instead of the base pipeline's (e.g. the previous round's).
    resolution : int
        Training side length; a multiple of the VAE scale factor (8).
    train_batch_size : int
        Per process.
    max_train_steps : int
        Optimizer steps.
    gradient_accumulation_steps : int
    learning_rate : float
    lr_scheduler : str
        Any name of ``diffusers.optimization.get_scheduler`` (``constant``, ``cosine``, ...).
    lr_warmup_steps : int
    adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon : float
    max_grad_norm : float
        Gradient clipping (0 = off).
    mixed_precision : {"auto", "no", "fp16", "bf16"}
        ``auto`` = fp16 on a GPU, none on the CPU.
    gradient_checkpointing : bool
    random_flip : bool
        Random horizontal flip (same for source, mask and GT).
    on_size_mismatch : {"resize", "error"}
        ``resize`` every image to ``resolution`` (RORem); ``error`` refuses any image that is
        not already ``resolution`` x ``resolution``, listing them.
    prompt : str
        Text conditioning for every sample ("" as RORem).
    lora_rank : int, optional
        Train a LoRA of this rank instead of the full UNet.
    lora_alpha : int, optional
        LoRA alpha (default: the rank).
    lora_target_modules : list of str
    checkpointing_steps : int
        Save a resumable checkpoint every N steps (0 = only at the end).
    checkpoints_total_limit : int, optional
        Keep at most this many checkpoints.
    resume : str, optional
        ``"latest"`` (default: the newest checkpoint in ``output``, if any), a checkpoint
        folder, or None / ``"none"`` to start fresh.
    validation_steps : int
        Run validation every N steps and at the end (0 = never).
    num_validation_images : int
        The first N pairs of the data are the fixed validation set.
    validation_inference_steps : int
        Denoising steps of the validation pipeline (20 as RORem).
    seed : int
        Seed of everything random (4 as RORem).
    dataloader_num_workers : int
    report_to : {"auto", "none", "tensorboard", "wandb", "all"}
        ``auto`` logs to TensorBoard when it is installed; ``wandb`` must be asked for.
    log_every : int
        Steps between log lines (``<output>/logs/train_log.jsonl`` and trackers).
    """

    pretrained: str
    data: list = field(default_factory=list)
    output: str = "finetune-output"
    unet: str | None = None
    resolution: int = 512
    train_batch_size: int = 1
    max_train_steps: int = 50_000
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    random_flip: bool = True
    on_size_mismatch: str = "resize"
    prompt: str = ""
    lora_rank: int | None = None
    lora_alpha: int | None = None
    lora_target_modules: list = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    checkpointing_steps: int = 2000
    checkpoints_total_limit: int | None = 3
    resume: str | None = "latest"
    validation_steps: int = 2000
    num_validation_images: int = 4
    validation_inference_steps: int = 20
    seed: int = 4
    dataloader_num_workers: int = 0
    report_to: str = "auto"
    log_every: int = 10

    def __post_init__(self):
        if isinstance(self.data, (str, os.PathLike)):
            self.data = [os.fspath(self.data)]
        self.data = [os.fspath(d) for d in self.data]
        if self.resume in ("none", "None", ""):
            self.resume = None

        def bad(name, expected, fix=""):
            raise ConfigError(f"finetune option --{name.replace('_', '-')} must be {expected}; got "
                              f"{getattr(self, name)!r}" + (f". {fix}" if fix else ""))

        if not self.pretrained:
            bad("pretrained", "a base inpainting pipeline folder or hub id")
        if not self.data:
            bad("data", "one or more export folders (with meta.json)",
                "Export a round with `rorem-data export --round N --out DIR`")
        for name in ("resolution", "train_batch_size", "max_train_steps",
                     "gradient_accumulation_steps", "num_validation_images",
                     "validation_inference_steps", "log_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "a positive integer")
        for name in ("checkpointing_steps", "validation_steps", "lr_warmup_steps",
                     "dataloader_num_workers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(name, "an integer >= 0")
        if not self.learning_rate > 0:
            bad("learning_rate", "> 0")
        if self.mixed_precision not in ("auto", "no", "fp16", "bf16"):
            bad("mixed_precision", "one of auto, no, fp16, bf16")
        if self.on_size_mismatch not in ("resize", "error"):
            bad("on_size_mismatch", "'resize' or 'error'")
        if self.report_to not in ("auto", "none", "tensorboard", "wandb", "all"):
            bad("report_to", "one of auto, none, tensorboard, wandb, all")
        if self.lora_rank is not None and (not isinstance(self.lora_rank, int) or self.lora_rank < 1):
            bad("lora_rank", "a positive integer (or unset for a full fine-tune)")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            bad("checkpoints_total_limit", "a positive integer (or unset for no limit)")

    @property
    def mode(self) -> str:
        """``"lora"`` or ``"full"``."""
        return "lora" if self.lora_rank else "full"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "finetune config") -> "FinetuneConfig":
        """Build from a dict; unknown keys raise :class:`ConfigError` listing the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{where} has unknown option(s) {unknown}; valid options are "
                              f"{', '.join(names)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str, **overrides) -> "FinetuneConfig":
        """Read a TOML (``[finetune]`` table or top level) or JSON config; ``overrides`` win."""
        return cls.from_dict({**read_options_file(path), **overrides},
                             where=f"finetune config {path}")


def read_options_file(path: str) -> dict:
    """The options of a TOML (``[finetune]`` table or top level) or JSON config file.

    Raises
    ------
    ConfigError
        A missing or unparsable file, or unknown option names (the valid ones are listed).
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        data = tomllib.loads(raw.decode()) if path.endswith(".toml") else json.loads(raw)
    except FileNotFoundError:
        raise ConfigError(f"finetune config {path} does not exist") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"finetune config {path} cannot be parsed ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"finetune config {path} must hold a table of options")
    if isinstance(data.get("finetune"), dict):
        data = data["finetune"]
    names = [f.name for f in dataclasses.fields(FinetuneConfig)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"finetune config {path} has unknown option(s) {unknown}; valid options "
                          f"are {', '.join(names)}")
    return dict(data)


def add_config_arguments(parser) -> None:
    """Add one ``--option`` per :class:`FinetuneConfig` field to an ``argparse`` parser (plus
    ``--config FILE``); see :func:`config_from_args`."""
    parser.add_argument("--config", default=None, help="TOML/JSON file with options (flags win)")
    for f in dataclasses.fields(FinetuneConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None  # required (pretrained)
        if f.name == "data" or f.name == "lora_target_modules":
            parser.add_argument(flag, nargs="+", default=None, help=f"(default: {default})")
        elif isinstance(default, bool):
            parser.add_argument(flag, default=None, action=argparse.BooleanOptionalAction,
                                help=f"(default: {default})")
        else:
            typ = {int: int, float: float}.get(type(default), str)
            if f.name in ("lora_rank", "lora_alpha", "checkpoints_total_limit"):
                typ = int
            parser.add_argument(flag, type=typ, default=None, help=f"(default: {default})")


def config_from_args(args) -> FinetuneConfig:
    """A :class:`FinetuneConfig` from parsed arguments (unset flags keep the file / defaults)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(FinetuneConfig)
             if getattr(args, f.name, None) is not None}
    if getattr(args, "config", None):
        return FinetuneConfig.from_file(args.config, **given)
    if "pretrained" not in given:
        raise ConfigError("--pretrained is required (a base inpainting pipeline folder or hub id)")
    return FinetuneConfig(**given)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def read_pairs(data: list[str]) -> list[tuple[str, str, str]]:
    """(source, mask, GT) absolute paths from export folders / ``meta.json`` files.

    Raises
    ------
    ConfigError
        A missing or malformed ``meta.json``, or no pairs at all.
    ValidationError
        Entries with unsafe paths or missing files (every one listed).
    """
    from rorem_data.core.paths import UnsafePath, safe_join
    from rorem_data.core.validate import Problem

    pairs, problems = [], []
    for d in data:
        meta = d if d.endswith(".json") else os.path.join(d, "meta.json")
        root = os.path.dirname(os.path.abspath(meta))
        try:
            with open(meta, "rb") as fh:
                entries = json.loads(fh.read())
        except FileNotFoundError:
            raise ConfigError(f"training data {d} has no meta.json ({meta}); pass a folder made by "
                              "`rorem-data export --format rorem`") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{meta} is not valid JSON ({exc}); re-export the round") from None
        if not isinstance(entries, list):
            raise ConfigError(f"{meta} must be a JSON list of {{source, mask, GT}}; got "
                              f"{type(entries).__name__}")
        for i, e in enumerate(entries):
            item = f"{meta} entry {i}"
            if not isinstance(e, dict) or not all(k in e for k in ("source", "mask", "GT")):
                problems.append(Problem(item, meta, "entry lacks source, mask or GT",
                                        "give each entry {source, mask, GT} paths"))
                continue
            try:
                paths = tuple(safe_join(root, e[k]) for k in ("source", "mask", "GT"))
            except UnsafePath as exc:
                problems.append(Problem(item, meta, str(exc), "use paths relative to meta.json"))
                continue
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                problems.append(Problem(item, missing[0], "file does not exist",
                                        "restore it or re-export the round"))
                continue
            pairs.append(paths)
    if problems:
        raise ValidationError(f"{len(problems)} training pair(s) are unusable", problems)
    if not pairs:
        raise ConfigError(f"the training data {', '.join(data)} holds no pairs (empty meta.json); "
                          "accept some candidates first or export a later round")
    return pairs


def check_sizes(pairs, resolution: int) -> None:
    """``on_size_mismatch="error"``: every image must already be ``resolution`` square.

    Raises
    ------
    ValidationError
        Listing every image of another size.
    """
    from PIL import Image

    from rorem_data.core.validate import Problem

    problems = []
    for i, triplet in enumerate(pairs):
        for what, p in zip(("source", "mask", "GT"), triplet):
            with Image.open(p) as im:
                size = im.size
            if size != (resolution, resolution):
                problems.append(Problem(f"pair {i} {what}", p,
                                        f"is {size[0]}x{size[1]}, not {resolution}x{resolution}",
                                        "pass --on-size-mismatch resize, or resize the export"))
    if problems:
        raise ValidationError(f"{len(problems)} training image(s) are not "
                              f"{resolution}x{resolution}", problems)


class PairDataset:
    """Training pairs as tensors (a ``torch.utils.data.Dataset``).

    Each item is a dict of float tensors: ``target`` (3, R, R) in [-1, 1], ``masked_source``
    (3, R, R) in [-1, 1] with object pixels set to 0, ``mask`` (1, R, R) in {0, 1}.
    """

    def __init__(self, pairs, resolution: int, *, random_flip: bool = True):
        self.pairs = list(pairs)
        self.resolution = resolution
        self.random_flip = random_flip

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int, flip: bool = False) -> dict:
        import numpy as np
        import torch
        from PIL import Image

        src_p, mask_p, gt_p = self.pairs[i]
        r = self.resolution

        def rgb(p):
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != (r, r):
                    im = im.resize((r, r), Image.BILINEAR)
                return np.asarray(im, dtype=np.float32) / 127.5 - 1.0

        with Image.open(mask_p) as im:
            m = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
        m = (m[..., 0] if m.ndim == 3 else m).astype(np.float32) / 255.0 >= 0.5
        if m.shape != (r, r):
            m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((r, r), Image.NEAREST)) >= 128
        src, gt = rgb(src_p), rgb(gt_p)
        if flip:
            src, gt, m = src[:, ::-1], gt[:, ::-1], m[:, ::-1]
        m = m.astype(np.float32)
        masked = src * (1.0 - m[..., None])

        def chw(a):
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

        return {"target": chw(gt), "masked_source": chw(masked),
                "mask": torch.from_numpy(np.ascontiguousarray(m))[None],
                "source": chw(src)}

    def __getitem__(self, i: int) -> dict:
        import torch

        flip = self.random_flip and bool(torch.rand(()) < 0.5)
        item = self.load(i, flip)
        del item["source"]
        return item


# --------------------------------------------------------------------------------------------
# Model pieces
# --------------------------------------------------------------------------------------------


def _load_component(folder: str, index: dict, name: str, **kwargs):
    lib, cls_name = index[name]
    cls = getattr(importlib.import_module(lib), cls_name)
    return cls.from_pretrained(folder, subfolder=name, **kwargs)


def encode_prompt(prompt: str, tokenizers, text_encoders, *, sdxl: bool):
    """Text features of one prompt, computed once.

    Returns
    -------
    (embeds, pooled)
        ``embeds`` (1, 77, D); ``pooled`` (1, P) for SDXL, else None.
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

    n = (unet.config.projection_class_embeddings_input_dim - pooled_dim) // unet.config.addition_time_embed_dim
    if n == 6:
        ids = [resolution, resolution, 0, 0, resolution, resolution]
    elif n == 5:
        ids = [resolution, resolution, 0, 0, 6.0]
    else:
        raise ConfigError(f"the SDXL UNet expects {n} micro-conditioning ids; only 5 or 6 are "
                          "supported")
    return torch.tensor([ids], dtype=torch.float32)


def _lora_saver(sdxl: bool):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    return StableDiffusionXLInpaintPipeline if sdxl else StableDiffusionInpaintPipeline


def save_lora(unet, out_dir: str, *, sdxl: bool) -> None:
    """Save the UNet's LoRA (adapter ``default``) in diffusers format with its peft config."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    saver = _lora_saver(sdxl)
    kwargs = {}
    if "unet_lora_adapter_metadata" in inspect.signature(saver.save_lora_weights).parameters:
        kwargs["unet_lora_adapter_metadata"] = unet.peft_config["default"].to_dict()
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    saver.save_lora_weights(out_dir, unet_lora_layers=layers, safe_serialization=True, **kwargs)


def load_lora_into(unet, in_dir: str, *, sdxl: bool) -> None:
    """Load LoRA weights saved by :func:`save_lora` into a UNet that already has the adapter."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state = _lora_saver(sdxl).lora_state_dict(in_dir)[0]
    unet_state = {k[len("unet."):]: v for k, v in state.items() if k.startswith("unet.")}
    result = set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(unet_state),
                                       adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ConfigError(f"checkpoint {in_dir} holds LoRA weights that do not fit this UNet "
                          f"({unexpected[:3]}...); resume with the same --lora-rank and targets")


# --------------------------------------------------------------------------------------------
# Checkpoints
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


def _check_checkpoint(path: str, identity: dict) -> int:
    meta_path = os.path.join(path, META_NAME)
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path} is not a rorem-data training checkpoint (no {META_NAME}); pass a "
                          "folder <output>/checkpoints/checkpoint-<step>") from None
    for k, v in identity.items():
        if meta.get(k) != v:
            what = {"base_sha256": "base model", "mode": "training mode (full/lora)",
                    "lora_rank": "LoRA rank", "sdxl": "model family (SD/SDXL)",
                    "resolution": "resolution", "unet_sha256": "starting UNet"}.get(k, k)
            raise ConfigError(
                f"checkpoint {path} was made with a different {what} ({k}={meta.get(k)!r}, this run "
                f"has {v!r}); resume with the same --pretrained/--unet/--lora-rank/--resolution, "
                "or use a fresh --output (or --resume none)")
    return int(meta["step"])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    """What :func:`train` produced."""

    output: str
    mode: str
    steps: int
    resumed_from: str | None
    final_loss: float | None
    seconds: float
    checkpoints: list
    weights: str

    def summary(self) -> str:
        loss = "n/a" if self.final_loss is None else f"{self.final_loss:.4f}"
        res = f" (resumed from {self.resumed_from})" if self.resumed_from else ""
        return (f"fine-tuned ({self.mode}) for {self.steps} steps{res} in {self.seconds:.1f} s, "
                f"loss {loss}; weights: {self.weights}")


def _require_stack():
    try:
        import accelerate  # noqa: F401
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"fine-tuning needs torch, diffusers, transformers and accelerate "
                              f"({exc}); install them with pip install 'rorem-data[torch]'") from None


def _trackers(report_to: str) -> list[str]:
    import importlib.util

    has_tb = importlib.util.find_spec("tensorboard") is not None or \
        importlib.util.find_spec("tensorboardX") is not None
    has_wandb = importlib.util.find_spec("wandb") is not None
    if report_to == "none":
        return []
    if report_to == "auto":
        return ["tensorboard"] if has_tb else []
    wanted = ["tensorboard", "wandb"] if report_to == "all" else [report_to]
    for w, ok in (("tensorboard", has_tb), ("wandb", has_wandb)):
        if w in wanted and not ok:
            raise DependencyError(f"--report-to {report_to} needs {w}; pip install {w}, or use "
                                  "--report-to auto")
    return wanted


def _use_cpu() -> bool:
    import torch

    return (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
            or not torch.cuda.is_available())


def train(config: FinetuneConfig, *, progress: bool = True) -> FinetuneResult:
    """Run the fine-tuning loop described in the module docstring.

    Parameters
    ----------
    config : FinetuneConfig
    progress : bool
        Show a progress bar on the main process.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ConfigError
        A base that is not an inpainting pipeline (or has a 4-channel UNet), a resolution the VAE
        cannot take, an empty export, a checkpoint from another base model / mode.
    ValidationError
        Unusable pairs (missing files, unsafe paths, or wrong sizes with
        ``on_size_mismatch="error"``).
    DependencyError
        torch / diffusers / accelerate / peft (LoRA) / a requested tracker is missing.
    """
    _require_stack()
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    from rorem_data.core.progress import progress as progress_bar
    from rorem_data.removers.remover import _resolve_unet_folder, checkpoint_sha256, resolve_pipeline_folder

    t0 = time.perf_counter()
    cfg = config
    output = os.path.abspath(cfg.output)

    # -- data and base model checks (before any heavy work) ---------------------------------
    pairs = read_pairs(cfg.data)
    if cfg.on_size_mismatch == "error":
        check_sizes(pairs, cfg.resolution)
    base = resolve_pipeline_folder(cfg.pretrained, what="--pretrained")
    with open(os.path.join(base, "model_index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    sdxl = isinstance(index.get("text_encoder_2"), list) and index["text_encoder_2"][0] is not None
    for name in ("vae", "unet", "scheduler", "text_encoder", "tokenizer"):
        if not (isinstance(index.get(name), list) and index[name][0]):
            raise ConfigError(f"--pretrained {base} has no {name!r} component; fine-tuning needs a "
                              "Stable Diffusion (XL) inpainting pipeline")
    with open(os.path.join(base, "vae", "config.json"), encoding="utf-8") as fh:
        vae_scale = 2 ** (len(json.load(fh)["block_out_channels"]) - 1)
    if cfg.resolution % vae_scale:
        lo = cfg.resolution // vae_scale * vae_scale
        raise ConfigError(f"--resolution {cfg.resolution} is not divisible by the VAE scale factor "
                          f"{vae_scale} of {base}; use {lo or vae_scale} or {lo + vae_scale}")
    unet_dir = _resolve_unet_folder(cfg.unet) if cfg.unet else os.path.join(base, "unet")
    with open(os.path.join(unet_dir, "config.json"), encoding="utf-8") as fh:
        unet_cfg = json.load(fh)
    if unet_cfg.get("in_channels") != 9:
        raise ConfigError(f"the UNet at {unet_dir} has {unet_cfg.get('in_channels')} input channels; "
                          "fine-tuning for removal needs an inpainting UNet with 9 (noisy latent, "
                          "mask, masked source). Start from an inpainting pipeline such as "
                          "stable-diffusion-xl-1.0-inpainting-0.1")
    if cfg.lora_rank:
        try:
            import peft  # noqa: F401
        except ImportError:
            raise DependencyError("LoRA training needs peft; pip install 'rorem-data[torch]'") from None
    identity = {"base_sha256": checkpoint_sha256([base]), "mode": cfg.mode,
                "lora_rank": cfg.lora_rank, "sdxl": sdxl, "resolution": cfg.resolution,
                "unet_sha256": checkpoint_sha256([unet_dir]) if cfg.unet else None}

    # -- accelerate ---------------------------------------------------------------------------
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "fp16" if torch.cuda.is_available() else "no"
    if mp == "fp16" and _use_cpu():
        raise ConfigError("--mixed-precision fp16 needs a GPU; on the CPU use --mixed-precision no "
                          "(or bf16)")
    trackers = _trackers(cfg.report_to)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=mp,
        log_with=trackers or None, cpu=_use_cpu(),
        project_config=ProjectConfiguration(project_dir=output,
                                             logging_dir=os.path.join(output, "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    set_seed(cfg.seed)
    main = accelerator.is_main_process
    if main:
        os.makedirs(os.path.join(output, "checkpoints"), exist_ok=True)
        for name in os.listdir(os.path.join(output, "checkpoints")):
            if ".tmp" in name:  # a checkpoint a killed run did not finish
                shutil.rmtree(os.path.join(output, "checkpoints", name), ignore_errors=True)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mp, torch.float32)

    # -- models -------------------------------------------------------------------------------
    noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    vae = _load_component(base, index, "vae")
    unet_cls = getattr(importlib.import_module(index["unet"][0]), index["unet"][1])
    unet = unet_cls.from_pretrained(unet_dir)
    tok_names = ["tokenizer", "tokenizer_2"] if sdxl else ["tokenizer"]
    enc_names = ["text_encoder", "text_encoder_2"] if sdxl else ["text_encoder"]
    tokenizers = [_load_component(base, index, n) for n in tok_names]
    encoders = [_load_component(base, index, n).to(accelerator.device) for n in enc_names]
    prompt_embeds, pooled = encode_prompt(cfg.prompt, tokenizers, encoders, sdxl=sdxl)
    add_time_ids = sdxl_time_ids(unet, pooled.shape[-1], cfg.resolution) if sdxl else None
    del encoders, tokenizers
    vae.requires_grad_(False)
    vae.to(accelerator.device)  # float32 as loaded (RORem keeps the VAE in float32)
    vae_sf = vae.config.scaling_factor
    prompt_embeds = prompt_embeds.to(accelerator.device, dtype=weight_dtype)
    if sdxl:
        pooled = pooled.to(accelerator.device, dtype=weight_dtype)
        add_time_ids = add_time_ids.to(accelerator.device, dtype=weight_dtype)

    if cfg.lora_rank:
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.to(accelerator.device)
        if weight_dtype != torch.float32:  # frozen base weights in half precision on a GPU
            unet.to(dtype=weight_dtype)
        unet.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or cfg.lora_rank,
                                    init_lora_weights="gaussian",
                                    target_modules=list(cfg.lora_target_modules)))
        for p in unet.parameters():  # trainable LoRA weights stay float32 under mixed precision
            if p.requires_grad:
                p.data = p.data.float()
    else:
        unet.requires_grad_(True)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    params = [p for p in unet.parameters() if p.requires_grad]

    if cfg.lora_rank:
        def save_hook(models, weights, out_dir):
            if accelerator.is_main_process:
                for m in models:
                    save_lora(accelerator.unwrap_model(m), out_dir, sdxl=sdxl)
                    weights.pop()

        def load_hook(models, in_dir):
            while models:
                load_lora_into(accelerator.unwrap_model(models.pop()), in_dir, sdxl=sdxl)

        accelerator.register_save_state_pre_hook(save_hook)
        accelerator.register_load_state_pre_hook(load_hook)

    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                  weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
    dataset = PairDataset(pairs, cfg.resolution, random_flip=cfg.random_flip)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train_batch_size, shuffle=True,
                                         num_workers=cfg.dataloader_num_workers, drop_last=False)
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=cfg.max_train_steps * accelerator.num_processes)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)

    # -- resume -------------------------------------------------------------------------------
    global_step, resumed_from = 0, None
    if cfg.resume:
        if cfg.resume == "latest":
            found = list_checkpoints(output)
            path = found[-1][1] if found else None
        else:
            path = os.path.abspath(cfg.resume)
            if not os.path.isdir(path):
                raise ConfigError(f"--resume {cfg.resume}: no such checkpoint folder; pass 'latest', "
                                  "'none' or <output>/checkpoints/checkpoint-<step>")
        if path:
            global_step = _check_checkpoint(path, identity)
            accelerator.load_state(path)
            resumed_from = path
    if main:
        with open(os.path.join(output, "config.json"), "w", encoding="utf-8") as fh:
            json.dump({**cfg.to_dict(), **identity}, fh, indent=1, sort_keys=True)
        if trackers:
            accelerator.init_trackers("rorem-finetune", config={
                k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                for k, v in cfg.to_dict().items()})

    def save_checkpoint(step: int) -> None:
        ckpt_root = os.path.join(output, "checkpoints")
        final = os.path.join(ckpt_root, f"checkpoint-{step}")
        tmp = final + ".tmp"
        accelerator.wait_for_everyone()
        if main and cfg.checkpoints_total_limit:
            old = list_checkpoints(output)
            for _s, p in old[: max(0, len(old) - cfg.checkpoints_total_limit + 1)]:
                shutil.rmtree(p, ignore_errors=True)
        accelerator.save_state(tmp)
        accelerator.wait_for_everyone()
        if main:
            with open(os.path.join(tmp, META_NAME), "w", encoding="utf-8") as fh:
                json.dump({**identity, "step": step, "config": cfg.to_dict()}, fh, indent=1)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        accelerator.wait_for_everyone()

    # -- validation ---------------------------------------------------------------------------
    val_idx = list(range(min(cfg.num_validation_images, len(dataset))))

    def validate(step: int) -> None:
        if not main or not cfg.validation_steps:
            return
        run_validation(accelerator.unwrap_model(unet), vae, base, index, sdxl, dataset, val_idx,
                       prompt_embeds, pooled, cfg, os.path.join(output, "validation", f"step-{step:06d}"),
                       step, accelerator)
        unet.train()

    # -- the loop -----------------------------------------------------------------------------
    steps_per_epoch = max(1, math.ceil(len(loader) / cfg.gradient_accumulation_steps))
    first_epoch = global_step // steps_per_epoch
    skip_batches = (global_step % steps_per_epoch) * cfg.gradient_accumulation_steps
    log_path = os.path.join(output, "logs", "train_log.jsonl")
    if main:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log_fh = open(log_path, "a", encoding="utf-8") if main else None
    loss_sum = torch.zeros((), device=accelerator.device)
    loss_n, last_loss = 0, None
    T = noise_scheduler.config.num_train_timesteps
    prediction_type = noise_scheduler.config.prediction_type
    unet.train()
    bar = progress_bar(total=cfg.max_train_steps, desc="fine-tuning", unit="step",
                       disable=None if (progress and main) else True)
    bar.update(global_step)
    try:
        epoch = first_epoch
        while global_step < cfg.max_train_steps:
            loader.set_epoch(epoch)
            active = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
            skip_batches = 0
            for batch in active:
                with accelerator.accumulate(unet):
                    with torch.no_grad():
                        both = torch.cat([batch["target"], batch["masked_source"]]).to(torch.float32)
                        latents = vae.encode(both).latent_dist.sample() * vae_sf
                        latents, masked_latents = latents.chunk(2)
                        mask = F.interpolate(batch["mask"], size=latents.shape[-2:])
                    noise = torch.randn_like(latents)
                    bsz = latents.shape[0]
                    timesteps = torch.randint(0, T, (bsz,), device=latents.device).long()
                    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
                    model_in = torch.cat([noisy, mask, masked_latents], dim=1).to(weight_dtype)
                    added = None
                    if sdxl:
                        added = {"text_embeds": pooled.expand(bsz, -1),
                                 "time_ids": add_time_ids.expand(bsz, -1)}
                    pred = unet(model_in, timesteps,
                                encoder_hidden_states=prompt_embeds.expand(bsz, -1, -1),
                                added_cond_kwargs=added, return_dict=False)[0]
                    if prediction_type == "epsilon":
                        target = noise
                    elif prediction_type == "v_prediction":
                        target = noise_scheduler.get_velocity(latents, noise, timesteps)
                    else:
                        raise ConfigError(f"the base scheduler's prediction_type "
                                          f"{prediction_type!r} is not supported (epsilon or "
                                          "v_prediction)")
                    loss = F.mse_loss(pred.float(), target.float())
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach()
                loss_n += 1
                if not accelerator.sync_gradients:
                    continue
                global_step += 1
                bar.update(1)
                if global_step % cfg.log_every == 0 or global_step == cfg.max_train_steps:
                    last_loss = float(accelerator.reduce(loss_sum, reduction="mean").item()) / max(loss_n, 1)
                    loss_sum.zero_()
                    loss_n = 0
                    logs = {"loss": last_loss, "lr": lr_scheduler.get_last_lr()[0]}
                    accelerator.log(logs, step=global_step)
                    if log_fh:
                        log_fh.write(json.dumps({"step": global_step, **logs}) + "\n")
                        log_fh.flush()
                    bar.set_postfix(loss=f"{last_loss:.4f}", refresh=False)
                if cfg.checkpointing_steps and global_step % cfg.checkpointing_steps == 0:
                    save_checkpoint(global_step)
                if cfg.validation_steps and global_step % cfg.validation_steps == 0:
                    validate(global_step)
                if global_step >= cfg.max_train_steps:
                    break
            epoch += 1
    finally:
        bar.close()
        if log_fh:
            log_fh.close()

    # -- final weights ------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    if cfg.checkpointing_steps and global_step % cfg.checkpointing_steps and \
            (not list_checkpoints(output) or list_checkpoints(output)[-1][0] != global_step):
        save_checkpoint(global_step)  # so that a longer run can continue from the very end
    if cfg.validation_steps and global_step % cfg.validation_steps:
        validate(global_step)
    weights = output
    if main:
        final_unet = accelerator.unwrap_model(unet)
        if cfg.lora_rank:
            save_lora(final_unet, output, sdxl=sdxl)
            weights = os.path.join(output, LORA_WEIGHTS)
        else:
            save_full_pipeline(final_unet, vae, base, output)
        meta = {**identity, "step": global_step, "final_loss": last_loss, "base": base,
                "config": cfg.to_dict(), "weights": os.path.relpath(weights, output)}
        with open(os.path.join(output, META_NAME), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return FinetuneResult(output=output, mode=cfg.mode, steps=global_step, resumed_from=resumed_from,
                          final_loss=last_loss, seconds=time.perf_counter() - t0,
                          checkpoints=[p for _s, p in list_checkpoints(output)], weights=weights)


def save_full_pipeline(unet, vae, base: str, output: str) -> None:
    """Write a complete pipeline folder: the base pipeline's components with the trained UNet
    (float32, safetensors), loadable with ``AutoPipelineForInpainting.from_pretrained``."""
    import torch
    from diffusers import AutoPipelineForInpainting

    from rorem_data.removers.remover import _dtype_kwargs

    if unet.dtype != torch.float32:
        unet = unet.to(torch.float32)
    pipe = AutoPipelineForInpainting.from_pretrained(base, unet=unet, vae=vae,
                                                     **_dtype_kwargs(torch.float32))
    pipe.save_pretrained(output, safe_serialization=True)


def run_validation(unet, vae, base, index, sdxl, dataset, indices, prompt_embeds, pooled, cfg,
                   out_dir, step, accelerator) -> list:
    """Remove the objects of the fixed validation pairs with the current UNet; save one
    ``source | mask | result | GT`` strip per pair and log them. Returns the result images."""
    import numpy as np
    import torch
    from PIL import Image

    if not indices:
        return []
    cls = _lora_saver(sdxl)
    scheduler = _load_component(base, index, "scheduler")
    was_training = unet.training
    unet.eval()
    kwargs = dict(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler)
    if sdxl:
        kwargs.update(text_encoder_2=None, tokenizer_2=None,
                      requires_aesthetics_score=bool(index.get("requires_aesthetics_score", False)))
    else:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    items = [dataset.load(i) for i in indices]

    def to_pil(t):
        a = ((t.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a)

    sources = [to_pil(it["source"]) for it in items]
    masks = [Image.fromarray((it["mask"][0].numpy() * 255).astype(np.uint8)) for it in items]
    n = len(items)
    call = dict(image=sources, mask_image=masks, height=cfg.resolution, width=cfg.resolution,
                num_inference_steps=cfg.validation_inference_steps, strength=0.99,
                guidance_scale=1.0, prompt_embeds=prompt_embeds.expand(n, -1, -1).to(unet.dtype),
                generator=[torch.Generator("cpu").manual_seed(cfg.seed + i) for i in range(n)])
    if sdxl:
        call["pooled_prompt_embeds"] = pooled.expand(n, -1).to(unet.dtype)
    with torch.no_grad(), accelerator.autocast():
        results = pipe(**call).images
    os.makedirs(out_dir, exist_ok=True)
    strips = []
    for i, (s, m, r, it) in enumerate(zip(sources, masks, results, items)):
        gt = to_pil(it["target"])
        strip = Image.new("RGB", (4 * cfg.resolution, cfg.resolution))
        for j, im in enumerate((s, m.convert("RGB"), r, gt)):
            strip.paste(im, (j * cfg.resolution, 0))
        strip.save(os.path.join(out_dir, f"{i:02d}.png"))
        strips.append(np.asarray(strip))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_images("validation", np.stack(strips), step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": [wandb.Image(s) for s in strips]}, step=step)
    if was_training:
        unet.train()
    return results


# --------------------------------------------------------------------------------------------
# The project-level entry point
# --------------------------------------------------------------------------------------------


def finetune_cli(project, round: int, *, pretrained: str | None = None, output: str | None = None,
                 config: str | None = None, progress: bool = True, **options) -> FinetuneResult:
    """Body of ``rorem-data finetune --round N --pretrained BASE [--output DIR] [--config F]
    [options]``: export the training set as it stood after round N (RORem layout,
    deterministic) and fine-tune on it; records the run in the round record (``finetune``).

    Under ``accelerate launch -m rorem_data.cli finetune ...`` the main process exports while
    the others wait, then all train.

    Parameters
    ----------
    project : Project
    round : int
        Train on seeds + everything accepted in rounds <= N.
    pretrained : str, optional
        Base inpainting pipeline (folder or hub id); may come from ``config`` instead.
    output : str, optional
        Default ``<project>/finetune/round-<N>``.
    config : str, optional
        TOML (``[finetune]`` table) or JSON file with more options; keyword options win.
    **options
        Any :class:`FinetuneConfig` field (``max_train_steps``, ``lora_rank``, ...); ``None``
        values are ignored.

    Returns
    -------
    FinetuneResult

    Examples
    --------
    >>> finetune_cli(project, 3, pretrained="sdxl-inpaint", max_train_steps=2000)  # doctest: +SKIP
    """
    from rorem_data.dataset import store
    from rorem_data.dataset.export import export_round

    if not isinstance(round, int) or round < 0:
        raise ConfigError(f"--round must be an integer >= 0; got {round!r}")
    opts = {**(read_options_file(config) if config else {}),
            **{k: v for k, v in options.items() if v is not None}}
    file_pretrained, file_output = opts.pop("pretrained", None), opts.pop("output", None)
    opts.pop("data", None)  # the data is the round's export
    pretrained = pretrained or file_pretrained
    output = os.path.abspath(output or file_output
                             or os.path.join(project.root, "finetune", f"round-{round}"))
    data_dir = os.path.join(output, f"data-round-{round}")
    cfg = FinetuneConfig.from_dict({**opts, "pretrained": pretrained, "data": [data_dir],
                                    "output": output})
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        state = PartialState(cpu=_use_cpu())
        with state.main_process_first():
            if state.is_main_process:
                export_round(project, round, data_dir, format="rorem", overwrite=True)
    else:
        export_round(project, round, data_dir, format="rorem", overwrite=True)
    result = train(cfg, progress=progress)
    if int(os.environ.get("RANK", "0")) == 0:
        store.update_round_record(project.dataset_name, round, set={"finetune": {
            "output": result.output, "mode": result.mode, "steps": result.steps,
            "final_loss": result.final_loss, "weights": result.weights, "pretrained": pretrained,
            "seconds": float(f"{result.seconds:.3f}")}})
    return result
