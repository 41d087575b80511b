"""What remover to load and how to run it: :class:`RemoverSpec`, read from keyword arguments, a
dict, a JSON / TOML file or a short string.

>>> from rorem_data.removers.spec import RemoverSpec
>>> RemoverSpec.parse("classical:ns").method
'ns'
>>> RemoverSpec(model="runs/rorem", hd_strategy="crop").crop_margin
128
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass

from rorem_data.core import checks, jsonfile
from rorem_data.core.errors import ConfigError
from rorem_data.removers.hd import HD_STRATEGIES
from rorem_data.removers.kinds import REMOVERS, list_removers

CLASSICAL_METHODS = ("telea", "ns")
LORA_MODES = ("fuse", "attach")
OFFLOAD_MODES = ("model", "sequential")
DTYPES = ("auto", "float32", "float16", "bfloat16")
SCHEDULERS = {
    "lcm": "LCMScheduler",
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}
_PATH_FIELDS = ("model", "unet", "lora")


def _bad(field: str, expected: str, value, fix: str = "") -> ConfigError:
    """The one message template: the field, what was expected, what came, the fix."""
    return checks.bad(f"remover spec field {field!r}", expected, value, fix)


def check_steps(steps: int, strength: float) -> None:
    """Refuse ``steps x strength < 1`` (the pipeline would run no step)."""
    if int(steps * strength) < 1:
        raise _bad("steps", f"large enough that steps x strength >= 1 (strength {strength})",
                   steps, f"Use steps >= {int(1 / strength) + 1}")


def _beside(base: str, value):
    """A relative path that exists next to a spec file, made absolute; else ``value``."""
    if isinstance(value, str) and not os.path.isabs(value):
        candidate = os.path.join(base, value)
        if os.path.exists(candidate):
            return candidate
    return value


def _check_loras(value):
    """``lora`` as given, checked: None, a path, or a tuple of paths / ``{path, scale}`` dicts."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    expected = "a path, or a list of paths / {path = ..., scale = ...} tables"
    if not isinstance(value, (list, tuple)) or not value:
        raise _bad("lora", expected, value)
    out = []
    for item in value:
        if isinstance(item, (str, os.PathLike)):
            out.append(os.fspath(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("path"), (str, os.PathLike)) \
                or set(item) - {"path", "scale"}:
            raise _bad("lora", expected, item, "Each entry needs path (and optionally scale)")
        scale = item.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise _bad("lora", "a number as the scale of each entry", scale)
        out.append({"path": os.fspath(item["path"]), "scale": float(scale)})
    return tuple(out)


@dataclass(frozen=True)
class RemoverSpec:
    """What remover to load and how to run it.

    Parameters
    ----------
    kind : str
        A registered remover kind (:func:`~rorem_data.removers.kinds.list_removers`):
        ``"diffusers"`` (a diffusers inpainting pipeline) or ``"classical"`` (``cv2.inpaint``).
    model : str, optional
        ``diffusers``: a local pipeline folder or a hub id (required). It loads as the class
        its ``model_index.json`` names (a text-to-image class as its inpainting counterpart).
    pipeline : str, optional
        Load as this diffusers pipeline class instead (``"FluxFillPipeline"``); only classes
        diffusers exports (see :mod:`rorem_data.models.families`).
    name : str, optional
        Human name recorded in provenance (default: derived from the model or method).
    unet : str, optional
        A fine-tuned UNet folder (``config.json`` + safetensors weights, or a folder with
        ``unet/``) that replaces the base pipeline's UNet, like the RORem checkpoints.
    lora : str or list, optional
        LoRA weights (a folder with ``pytorch_lora_weights.safetensors`` or a ``.safetensors``
        file) for the UNet or transformer, or a list of them, each a path or a table
        ``{path = "...", scale = 0.8}`` (a removal LoRA over a base: OmniEraser, OneReward).
    lora_scale : float
        Weight of a LoRA given as a plain path.
    lora_mode : {"fuse", "attach"}
        ``fuse`` merges the LoRAs into the weights (fastest to run), ``attach`` keeps them as
        adapters (``set_adapters``).
    scheduler : str, optional
        Replace the pipeline's sampler: one of ``"lcm"``, ``"ddim"``, ``"ddpm"``, ``"pndm"``,
        ``"euler"``, ``"euler-a"``, ``"dpm++"``, ``"unipc"`` or a diffusers scheduler class
        name. ``"lcm"`` with ``steps=4`` is RORem-LCM.
    resolution : int, optional
        The model's working size; a multiple of 8 (16 for transformer families). Default: the
        family's (512 for SD / SDXL as RORem, 1024 for the transformer families). See
        ``hd_strategy``.
    hd_strategy : {"resize", "crop", "original"}
        How a photo of any size reaches the model (names as lama-cleaner / IOPaint's
        ``hd_strategy``): ``resize`` (RORem, the default) resizes the source to a
        ``resolution`` square and the result back; ``crop`` takes a window around the mask's
        bounding box plus ``crop_margin`` pixels at native resolution when the image's longer
        side exceeds ``crop_trigger_size`` (else the whole image is the window), resizes the
        window only when it is larger than ``resolution``, and pastes the result back into the
        full image; ``original`` runs at the native size padded to a multiple of 8 and crops
        back. See :mod:`rorem_data.removers.hd`.
    crop_margin : int
        ``crop``: pixels added around the mask's bounding box (IOPaint's 128).
    crop_trigger_size : int
        ``crop``: crop only images whose longer side exceeds this (IOPaint's 800).
    steps : int, optional
        Denoising steps. Default: the family's (RORem: 50; RORem-LCM: 4 with ``scheduler="lcm"``).
    strength : float, optional
        In (0, 1]. Default: the family's (0.99 for SD / SDXL as RORem, 1.0 otherwise).
    guidance : float, optional
        ``guidance_scale``: classifier-free guidance for SD / SDXL / SD3 / Z-Image / FLUX.2
        (1.0, RORem's, disables it and the negative prompt), the embedded guidance of FLUX.1
        (30 for Fill, 3.5 otherwise). Default: the family's.
    true_cfg : float, optional
        ``true_cfg_scale`` of FLUX.1 and Qwen-Image (> 1 enables the negative prompt). Default:
        the family's (4.0 for Qwen-Image, 1.0 for FLUX.1).
    max_sequence_length : int, optional
        Text tokens for T5 / Qwen encoders. Default: the family's (256 for SD3, 512 otherwise).
    prompt, negative_prompt : str
        Text conditioning; RORem uses the empty prompt (a family with true CFG and an empty
        negative prompt gets ``" "``, as its docs do).
    dilation : int
        Mask dilation: side ``k`` of the ``k x k`` square ``cv2.dilate`` kernel, in source
        pixels (RORem's ``dilate_size``; 0 = none). Grows the mask by about ``k / 2`` px.
    paste_back : bool
        Copy the source outside the dilated mask into the result (then every pixel outside
        the dilated mask is the source's, exactly).
    dtype : {"auto", "float32", "float16", "bfloat16"}
        ``auto`` = float16 on CUDA for SD / SDXL, bfloat16 on CUDA for the transformer
        families, float32 elsewhere.
    device : str
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    offload : {"model", "sequential"}, optional
        CPU offload on an accelerator (``enable_model_cpu_offload`` / sequential, least
        memory, slowest). Not part of the key (same pixels).
    vae_tiling, vae_slicing : bool
        Decode in tiles (large images; changes pixels slightly, so it is in the key) / one image
        of a batch at a time (same pixels, not in the key).
    attention_backend : str, optional
        diffusers' attention backend of the denoiser (``"native"``, ``"flash"``, ``"sage"``,
        ...). Not part of the key, like the device.
    license : str, optional
        The license of the weights (``"Apache-2.0"``, ``"FLUX.1-dev-non-commercial"``);
        recorded with every candidate, and the export's license filters apply it next to the
        pool item's license.
    method : {"telea", "ns"}
        ``classical``: OpenCV inpainting algorithm.
    radius : int
        ``classical``: inpainting neighbourhood radius in pixels.

    Raises
    ------
    ConfigError
        For any invalid value (the message names the field, the value and the choices).

    Examples
    --------
    >>> RemoverSpec(kind="classical", method="ns").kind
    'classical'
    >>> RemoverSpec.parse("classical:telea").method
    'telea'
    """

    kind: str = "diffusers"
    model: str | None = None
    name: str | None = None
    pipeline: str | None = None
    unet: str | None = None
    lora: str | list | None = None
    lora_scale: float = 1.0
    lora_mode: str = "fuse"
    scheduler: str | None = None
    resolution: int | None = None
    hd_strategy: str = "resize"
    crop_margin: int = 128
    crop_trigger_size: int = 800
    steps: int | None = None
    strength: float | None = None
    guidance: float | None = None
    true_cfg: float | None = None
    max_sequence_length: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    dilation: int = 0
    paste_back: bool = False
    dtype: str = "auto"
    device: str = "auto"
    offload: str | None = None
    vae_tiling: bool = False
    vae_slicing: bool = False
    attention_backend: str | None = None
    license: str | None = None
    method: str = "telea"
    radius: int = 3

    def __post_init__(self):
        if self.kind not in REMOVERS:
            raise _bad("kind", f"one of {', '.join(list_removers())}", self.kind,
                       "Register other kinds with rorem_data.removers.register_remover")
        diffusers = self.kind == "diffusers"
        if diffusers and not self.model:
            raise _bad("model", "a pipeline folder or hub id for kind 'diffusers'", self.model,
                       "Set model = \"path/to/pipeline\" (or use kind = \"classical\")")
        for name in ("model", "unet", "name", "scheduler", "pipeline", "attention_backend",
                     "license"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, (str, os.PathLike)):
                raise _bad(name, "a string", v)
        object.__setattr__(self, "lora", _check_loras(self.lora))
        for name in ("resolution", "steps", "crop_trigger_size", "radius", "max_sequence_length"):
            v = getattr(self, name)
            if (v is not None or name in ("crop_trigger_size", "radius")) \
                    and (not checks.is_int(v) or v < 1):
                raise _bad(name, "a positive integer", v)
        for name, what in (("dilation", "an integer >= 0 (kernel side in pixels)"),
                           ("crop_margin", "an integer >= 0 (pixels)")):
            v = getattr(self, name)
            if not checks.is_int(v) or v < 0:
                raise _bad(name, what, v)
        if diffusers and self.resolution is not None and self.resolution % 8:
            raise _bad("resolution", "a multiple of 8 (the VAE scale factor)", self.resolution,
                       f"Use {max(8, self.resolution // 8 * 8)}")
        if self.hd_strategy not in HD_STRATEGIES:
            raise _bad("hd_strategy", f"one of {', '.join(HD_STRATEGIES)}", self.hd_strategy,
                       "resize = RORem's square resize, crop = a window around the mask, "
                       "original = native size")
        if self.strength is not None and (isinstance(self.strength, bool)
                                          or not isinstance(self.strength, (int, float))
                                          or not 0 < self.strength <= 1):
            raise _bad("strength", "a number in (0, 1]", self.strength)
        if diffusers and self.steps is not None and self.strength is not None:
            check_steps(self.steps, self.strength)
        for name in ("guidance", "true_cfg", "lora_scale"):
            v = getattr(self, name)
            if v is None and name != "lora_scale":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (name != "lora_scale" and v < 0):
                raise _bad(name, "a number" if name == "lora_scale" else "a number >= 0", v)
        if self.lora_mode not in LORA_MODES:
            raise _bad("lora_mode", f"one of {', '.join(LORA_MODES)}", self.lora_mode)
        if self.offload is not None and self.offload not in OFFLOAD_MODES:
            raise _bad("offload", f"one of {', '.join(OFFLOAD_MODES)} (or unset)", self.offload,
                       "model = whole models to the GPU when they run; sequential = layer by "
                       "layer (least memory)")
        for name in ("vae_tiling", "vae_slicing"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, "true or false", getattr(self, name))
        for name in ("prompt", "negative_prompt", "device"):
            if not isinstance(getattr(self, name), str):
                raise _bad(name, "a string", getattr(self, name))
        if not isinstance(self.paste_back, bool):
            raise _bad("paste_back", "true or false", self.paste_back)
        if self.dtype not in DTYPES:
            raise _bad("dtype", f"one of {', '.join(DTYPES)}", self.dtype)
        if self.method not in CLASSICAL_METHODS:
            raise _bad("method", f"one of {', '.join(CLASSICAL_METHODS)}", self.method)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> list[str]:
        """The spec's field names, in order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "remover spec") -> RemoverSpec:
        """Build a spec from a dict; unknown keys raise :class:`ConfigError` listing the valid
        ones. A nested ``{"remover": {...}}`` table is accepted too."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table/object of fields; got {type(data).__name__}")
        if set(data) == {"remover"} and isinstance(data["remover"], dict):
            data = data["remover"]
        names = cls.field_names()
        unknown = sorted(set(data) - set(names), key=str)
        if unknown:
            raise ConfigError(f"{where} has unknown field(s) {unknown}; valid fields are "
                              f"{', '.join(names)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str) -> RemoverSpec:
        """Read a spec from a ``.json`` or ``.toml`` file (fields at top level or under a
        ``[remover]`` table). Relative ``model``/``unet``/``lora`` paths that exist next to the
        file are resolved against its folder; ``name`` defaults to the file's stem."""
        is_toml = path.lower().endswith(".toml")
        fix = "fix its syntax"
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise ConfigError(f"remover spec file {path} does not exist; check the path") from None
        except OSError as exc:
            raise ConfigError(f"remover spec file {path} cannot be read ({exc.strerror})") from None
        if is_toml:
            try:
                data = tomllib.loads(raw.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"remover spec file {path} is not valid TOML ({exc}); "
                                  f"{fix}") from None
        else:
            data = jsonfile.loads(raw, what=f"remover spec file {path}", fix=fix)
        if isinstance(data, dict):
            inner = data.get("remover")
            data = dict(inner) if isinstance(inner, dict) else dict(data)
            base = os.path.dirname(os.path.abspath(path))
            for key in _PATH_FIELDS:
                if key in data:
                    data[key] = _beside(base, data[key])
            if isinstance(data.get("lora"), list):
                data["lora"] = [{**e, "path": _beside(base, e.get("path"))} if isinstance(e, dict)
                                else _beside(base, e) for e in data["lora"]]
            data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
        return cls.from_dict(data, where=f"remover spec file {path}")

    @classmethod
    def parse(cls, value: RemoverSpec | dict | str | os.PathLike, **overrides) -> RemoverSpec:
        """Turn anything a user may pass into a spec.

        Parameters
        ----------
        value : RemoverSpec, dict or str
            A spec; a dict of fields; a ``.json`` / ``.toml`` spec file; ``"classical"`` or
            ``"classical:telea"`` / ``"classical:ns"``; otherwise a pipeline folder or hub id.
        **overrides
            Fields to replace (e.g. ``device="cpu"``); ``None`` values are ignored.

        Returns
        -------
        RemoverSpec

        Raises
        ------
        ConfigError
            Anything else, an unknown override field, an invalid value.
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(overrides) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown remover spec field(s) {unknown}; valid fields are "
                              f"{', '.join(cls.field_names())}")
        if isinstance(value, RemoverSpec):
            spec = value
        elif isinstance(value, dict):
            spec = cls.from_dict(value)
        elif isinstance(value, (str, os.PathLike)):
            s = os.fspath(value)
            if s.lower().endswith((".json", ".toml")) and not os.path.isdir(s):
                spec = cls.from_file(s)
            elif s == "classical" or s.startswith("classical:"):
                spec = cls(kind="classical", method=s.partition(":")[2] or "telea")
            else:
                spec = cls(kind="diffusers", model=s)
        else:
            raise ConfigError(f"remover must be a RemoverSpec, a dict, a spec file or a model "
                              f"folder; got {type(value).__name__}")
        return dataclasses.replace(spec, **overrides) if overrides else spec

    def to_dict(self) -> dict:
        """All fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @property
    def display_name(self) -> str:
        """The spec's ``name``, else a short name derived from model / unet / lora / method."""
        if self.name:
            return str(self.name)
        if self.kind == "classical":
            return f"classical-{self.method}"
        if not self.model:
            return self.kind
        parts = [os.path.basename(os.path.normpath(os.fspath(self.model))) or str(self.model)]
        for extra in (self.unet, *(path for path, _ in self.loras)):
            if extra:
                parts.append(os.path.basename(os.path.normpath(os.fspath(extra))))
        return "+".join(parts)

    @property
    def loras(self) -> list[tuple[str, float]]:
        """``[(path, scale), ...]`` of the LoRAs, in loading order (empty without LoRA)."""
        if self.lora is None:
            return []
        if isinstance(self.lora, (str, os.PathLike)):
            return [(os.fspath(self.lora), float(self.lora_scale))]
        return [(e, 1.0) if isinstance(e, str) else (e["path"], e["scale"]) for e in self.lora]


__all__ = ["CLASSICAL_METHODS", "DTYPES", "LORA_MODES", "OFFLOAD_MODES", "SCHEDULERS",
           "RemoverSpec", "check_steps"]
