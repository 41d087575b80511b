"""The options of one fine-tuning run: :class:`FinetuneConfig`, from keyword arguments, a TOML /
JSON file, or command-line flags (one ``--option`` per field).

>>> from rorem_data.finetune.config import FinetuneConfig
>>> cfg = FinetuneConfig(pretrained="base", data=["export"], lora_rank=8)
>>> cfg.mode, cfg.learning_rate
('lora', 5e-05)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from dataclasses import dataclass, field

from rorem_data.core import checks, jsonfile
from rorem_data.core.errors import ConfigError

DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
REPORT_TO = ("auto", "none", "tensorboard", "wandb", "all")
WEIGHTING_SCHEMES = ("none", "logit_normal", "mode", "sigma_sqrt", "cosmap")


@dataclass
class FinetuneConfig:
    """Everything one training run needs; saved beside its outputs.

    Parameters
    ----------
    pretrained : str
        Base inpainting pipeline (folder or hub id): Stable Diffusion (XL) inpainting with a
        9-channel UNet (epsilon / v objective, full or LoRA), or a flow-matching transformer
        pipeline, ``FluxFillPipeline`` or ``Flux2KleinInpaintPipeline`` (LoRA only; see
        :mod:`rorem_data.finetune.flow`).
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
        ``auto`` = fp16 on a GPU for UNets, bf16 for transformers, none on the CPU.
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
    guidance_scale : float, optional
        Transformers with a guidance embedding (FLUX): the value fed during training (default:
        the family's, 30 for FLUX.1-Fill). Ignored otherwise.
    weighting_scheme : {"none", "logit_normal", "mode", "sigma_sqrt", "cosmap"}
        Transformers: timestep density (``none`` = uniform, ``logit_normal``, ``mode``) or
        loss weighting (``sigma_sqrt``, ``cosmap``), as diffusers' flow-matching examples.
    logit_mean, logit_std : float
        The ``logit_normal`` density's parameters.
    mode_scale : float
        The ``mode`` density's scale.
    max_sequence_length : int, optional
        Transformers: text tokens of the cached prompt (default: the family's, 512).
    checkpointing_steps : int
        Save a resumable checkpoint every N steps and at the last step (0 = never: a killed
        run then starts over).
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
        0 (default) keeps resume bit-exact (flips use the training process's RNG).
    report_to : {"auto", "none", "tensorboard", "wandb", "all"}
        ``auto`` logs to TensorBoard when it is installed; ``wandb`` must be asked for.
    log_every : int
        Steps between log lines (``<output>/logs/train_log.jsonl`` and trackers).

    Raises
    ------
    ConfigError
        Any invalid value; the message names the ``--option``, what it must be and what came.
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
    guidance_scale: float | None = None
    weighting_scheme: str = "none"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    max_sequence_length: int | None = None
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
            return checks.bad(f"finetune option --{name.replace('_', '-')}", expected,
                              getattr(self, name), fix)

        if not self.pretrained:
            raise bad("pretrained", "a base inpainting pipeline folder or hub id")
        if not self.data:
            raise bad("data", "one or more export folders (with meta.json)",
                      "Export a round with rorem_data.export(project, N, DIR) (CLI: rorem-data export --round N --out DIR)")
        for name in ("resolution", "train_batch_size", "max_train_steps",
                     "gradient_accumulation_steps", "num_validation_images",
                     "validation_inference_steps", "log_every"):
            v = getattr(self, name)
            if not checks.is_int(v) or v < 1:
                raise bad(name, "a positive integer")
        for name in ("checkpointing_steps", "validation_steps", "lr_warmup_steps",
                     "dataloader_num_workers", "seed"):
            v = getattr(self, name)
            if not checks.is_int(v) or v < 0:
                raise bad(name, "an integer >= 0")
        for name in ("learning_rate", "adam_beta1", "adam_beta2", "adam_weight_decay",
                     "adam_epsilon", "max_grad_norm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise bad(name, "a number >= 0")
        if not self.learning_rate > 0:
            raise bad("learning_rate", "> 0")
        if self.mixed_precision not in MIXED_PRECISION:
            raise bad("mixed_precision", f"one of {', '.join(MIXED_PRECISION)}")
        if self.on_size_mismatch not in ("resize", "error"):
            raise bad("on_size_mismatch", "'resize' or 'error'")
        if self.report_to not in REPORT_TO:
            raise bad("report_to", f"one of {', '.join(REPORT_TO)}")
        if self.lora_rank is not None and (not checks.is_int(self.lora_rank) or self.lora_rank < 1):
            raise bad("lora_rank", "a positive integer (or unset for a full fine-tune)")
        if self.lora_alpha is not None and (isinstance(self.lora_alpha, bool)
                                            or not isinstance(self.lora_alpha, (int, float))
                                            or self.lora_alpha <= 0):
            raise bad("lora_alpha", "a number > 0 (or unset for alpha = rank)")
        if self.weighting_scheme not in WEIGHTING_SCHEMES:
            raise bad("weighting_scheme", f"one of {', '.join(WEIGHTING_SCHEMES)}")
        for name in ("logit_mean", "logit_std", "mode_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise bad(name, "a number")
        if self.guidance_scale is not None and (isinstance(self.guidance_scale, bool) or not
                                                isinstance(self.guidance_scale, (int, float))
                                                or self.guidance_scale < 0):
            raise bad("guidance_scale", "a number >= 0 (or unset for the family's default)")
        if self.max_sequence_length is not None and (not checks.is_int(self.max_sequence_length)
                                                     or self.max_sequence_length < 1):
            raise bad("max_sequence_length", "a positive integer (or unset for the family's default)")
        if self.checkpoints_total_limit is not None and (
                not checks.is_int(self.checkpoints_total_limit) or self.checkpoints_total_limit < 1):
            raise bad("checkpoints_total_limit", "a positive integer (or unset for no limit)")

    @property
    def mode(self) -> str:
        """``"lora"`` or ``"full"``."""
        return "lora" if self.lora_rank else "full"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "finetune config") -> FinetuneConfig:
        """Build from a dict; unknown keys raise :class:`ConfigError` listing the valid ones."""
        unknown = sorted(set(data) - set(cls.option_names()), key=str)
        if unknown:
            raise ConfigError(f"{where} has unknown option(s) {unknown}; valid options are "
                              f"{', '.join(cls.option_names())}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str, **overrides) -> FinetuneConfig:
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
    what = f"finetune config {path}"
    if path.endswith(".toml"):
        try:
            with open(path, "rb") as fh:
                data = tomllib.loads(fh.read().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{what} does not exist") from None
        except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{what} cannot be parsed ({exc})") from None
    else:
        data = jsonfile.load(path, what=what, fix="fix the file")
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a table of options")
    if isinstance(data.get("finetune"), dict):
        data = data["finetune"]
    names = FinetuneConfig.option_names()
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        raise ConfigError(f"{what} has unknown option(s) {unknown}; valid options are "
                          f"{', '.join(names)}")
    return dict(data)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
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
        if f.name in ("data", "lora_target_modules"):
            parser.add_argument(flag, nargs="+", default=None, help=f"(default: {default})")
        elif isinstance(default, bool):
            parser.add_argument(flag, default=None, action=argparse.BooleanOptionalAction,
                                help=f"(default: {default})")
        else:
            typ = {int: int, float: float}.get(type(default), str)
            if f.name in ("lora_rank", "checkpoints_total_limit", "max_sequence_length"):
                typ = int
            elif f.name in ("lora_alpha", "guidance_scale"):
                typ = float
            parser.add_argument(flag, type=typ, default=None, help=f"(default: {default})")


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """A :class:`FinetuneConfig` from parsed arguments (unset flags keep the file / defaults).

    Raises
    ------
    ConfigError
        No ``--pretrained`` (and no config file), or an invalid option.
    """
    given = {name: getattr(args, name) for name in FinetuneConfig.option_names()
             if getattr(args, name, None) is not None}
    if getattr(args, "config", None):
        return FinetuneConfig.from_file(args.config, **given)
    if "pretrained" not in given:
        raise ConfigError("pretrained is required (--pretrained: a base inpainting pipeline folder or hub id)")
    return FinetuneConfig(**given)


__all__ = ["DEFAULT_LORA_TARGETS", "FinetuneConfig", "add_config_arguments", "config_from_args",
           "read_options_file"]
