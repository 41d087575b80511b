"""Object removers behind one interface: diffusers inpainting pipelines and a classical remover.

A remover is described by a :class:`RemoverSpec` (a small dataclass read from keyword
arguments, a dict, or a JSON / TOML file) and loaded with :func:`load_remover`::

    >>> from rorem_data.removers.remover import RemoverSpec, load_remover
    >>> spec = RemoverSpec(model="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    ...                    unet="checkpoints/RORem/unet", dilation=20)        # doctest: +SKIP
    >>> remover = load_remover(spec)                                          # doctest: +SKIP
    >>> results = remover.remove(images, masks, seeds=[0, 1])                 # doctest: +SKIP
    >>> remover.key, remover.provenance(seed=0)                               # doctest: +SKIP

What the diffusion remover feeds the model (RORem's inputs)
----------------------------------------------------------
The pipeline gets the **source** image and the (optionally dilated) **mask**, both resized to
``resolution`` x ``resolution`` (aspect not kept, as RORem trains). An inpainting UNet has
9 input channels: ``[noisy latent (4), mask at latent size (1), latent of the masked source
(4)]``. The pipeline builds the masked source itself: ``source * (mask < 0.5)`` in [-1, 1],
i.e. object pixels become 0 (mid-gray) before VAE encoding, which is RORem's
``x_s * (1 - m)``. With ``strength=0.99`` (RORem's value) the starting latent is the source
latent noised to 99% of the schedule. A 4-channel (text-to-image) UNet also loads; the
pipeline then keeps the unmasked latents at every step (RePaint-style blending). Results are
resized back to the source size; ``paste_back=True`` additionally copies the source outside
the dilated mask into the result.

Loading accepts a local pipeline folder (``model_index.json`` plus components) or a Hugging
Face hub id; ``unet`` swaps in a fine-tuned UNet folder (the RORem checkpoints), ``lora``
loads and fuses a LoRA (with ``scheduler="lcm"`` and ``steps=4`` for RORem-LCM). Every
loading failure raises :class:`~rorem_data.core.errors.ConfigError` naming the folder, what was
expected and the fix; a missing optional dependency raises
:class:`~rorem_data.core.errors.DependencyError`.

The classical remover (``kind="classical"``) is OpenCV's ``cv2.inpaint`` (Telea or
Navier-Stokes) at the source resolution: no model, deterministic, seeds are ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from rorem_data.core.errors import ConfigError, DependencyError

KINDS = ("diffusers", "classical")
CLASSICAL_METHODS = ("telea", "ns")
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
# Provenance fields left out of ``Remover.key``: the seed, names and paths (the content of
# model / unet / lora is in ``checkpoint_sha256``), the device and library versions.
_KEY_EXCLUDED = ("seed", "remover", "remover_key", "model", "unet", "lora", "device", "versions")
_TORCH_EXTRA = "pip install 'rorem-data[torch]'"


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoverSpec:
    """What remover to load and how to run it.

    Parameters
    ----------
    kind : {"diffusers", "classical"}
        A diffusers inpainting pipeline, or OpenCV's ``cv2.inpaint``.
    model : str, optional
        ``diffusers``: a local pipeline folder or a hub id (required).
    name : str, optional
        Human name recorded in provenance (default: derived from the model or method).
    unet : str, optional
        A fine-tuned UNet folder (``config.json`` + weights, or a folder with ``unet/``) that
        replaces the base pipeline's UNet, like the RORem checkpoints.
    lora : str, optional
        LoRA weights (a folder with ``pytorch_lora_weights.safetensors`` or a ``.safetensors``
        file); loaded into the UNet and fused with weight ``lora_scale``.
    lora_scale : float
        Weight of the fused LoRA.
    scheduler : str, optional
        Replace the pipeline's sampler: one of ``"lcm"``, ``"ddim"``, ``"ddpm"``, ``"pndm"``,
        ``"euler"``, ``"euler-a"``, ``"dpm++"``, ``"unipc"`` or a diffusers scheduler class
        name. ``"lcm"`` with ``steps=4`` is RORem-LCM.
    resolution : int
        Side of the square the pipeline works at (512 for RORem). Must be a multiple of 8.
    steps : int
        Denoising steps (RORem: 50; RORem-LCM: 4).
    strength : float
        In (0, 1]; 0.99 as RORem.
    guidance : float
        Classifier-free guidance scale; 1.0 (RORem) disables guidance and the negative prompt.
    prompt, negative_prompt : str
        Text conditioning; RORem uses the empty prompt.
    dilation : int
        Mask dilation: side ``k`` of the ``k x k`` square ``cv2.dilate`` kernel, in source
        pixels (RORem's ``dilate_size``; 0 = none). Grows the mask by about ``k / 2`` px.
    paste_back : bool
        Copy the source outside the dilated mask into the result.
    dtype : {"auto", "float32", "float16", "bfloat16"}
        ``auto`` = float16 on CUDA, float32 elsewhere.
    device : str
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
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
    unet: str | None = None
    lora: str | None = None
    lora_scale: float = 1.0
    scheduler: str | None = None
    resolution: int = 512
    steps: int = 50
    strength: float = 0.99
    guidance: float = 1.0
    prompt: str = ""
    negative_prompt: str = ""
    dilation: int = 0
    paste_back: bool = False
    dtype: str = "auto"
    device: str = "auto"
    method: str = "telea"
    radius: int = 3

    def __post_init__(self):
        def bad(fieldname, expected, value, fix=""):
            raise ConfigError(f"remover spec field {fieldname!r} must be {expected}; got {value!r}"
                              + (f". {fix}" if fix else ""))

        if self.kind not in KINDS:
            bad("kind", f"one of {KINDS}", self.kind)
        if self.kind == "diffusers" and not self.model:
            bad("model", "a pipeline folder or hub id for kind 'diffusers'", self.model,
                "Set model = \"path/to/pipeline\" (or use kind = \"classical\")")
        for name in ("resolution", "steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "a positive integer", v)
        if self.kind == "diffusers" and self.resolution % 8:
            bad("resolution", "a multiple of 8 (the VAE scale factor)", self.resolution,
                f"Use {max(8, self.resolution // 8 * 8)}")
        if not isinstance(self.strength, (int, float)) or not 0 < self.strength <= 1:
            bad("strength", "a number in (0, 1]", self.strength)
        if self.kind == "diffusers" and int(self.steps * self.strength) < 1:
            bad("steps", f"large enough that steps x strength >= 1 (strength {self.strength})",
                self.steps, f"Use steps >= {int(1 / self.strength) + 1}")
        if not isinstance(self.guidance, (int, float)) or self.guidance < 0:
            bad("guidance", "a number >= 0", self.guidance)
        if not isinstance(self.dilation, int) or isinstance(self.dilation, bool) or self.dilation < 0:
            bad("dilation", "an integer >= 0 (kernel side in pixels)", self.dilation)
        if self.dtype not in DTYPES:
            bad("dtype", f"one of {DTYPES}", self.dtype)
        if self.method not in CLASSICAL_METHODS:
            bad("method", f"one of {CLASSICAL_METHODS}", self.method)
        if not isinstance(self.radius, int) or self.radius < 1:
            bad("radius", "a positive integer", self.radius)
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            bad("scheduler", f"a name ({', '.join(SCHEDULERS)}) or a scheduler class", self.scheduler)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "remover spec") -> "RemoverSpec":
        """Build a spec from a dict; unknown keys raise :class:`ConfigError` listing the valid
        ones. A nested ``{"remover": {...}}`` table is accepted too."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table/object of fields; got {type(data).__name__}")
        if set(data) == {"remover"} and isinstance(data["remover"], dict):
            data = data["remover"]
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{where} has unknown field(s) {unknown}; valid fields are "
                              f"{', '.join(names)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str) -> "RemoverSpec":
        """Read a spec from a ``.json`` or ``.toml`` file (fields at top level or under a
        ``[remover]`` table). Relative ``model``/``unet``/``lora`` paths that exist next to the
        file are resolved against its folder."""
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise ConfigError(f"remover spec file {path} does not exist; check the path") from None
        try:
            if path.lower().endswith(".toml"):
                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"remover spec file {path} is not valid "
                              f"{'TOML' if path.lower().endswith('.toml') else 'JSON'} ({exc}); "
                              "fix its syntax") from None
        if isinstance(data, dict):
            data = dict(data.get("remover", data)) if isinstance(data.get("remover"), dict) else dict(data)
            base = os.path.dirname(os.path.abspath(path))
            for key in ("model", "unet", "lora"):
                v = data.get(key)
                if isinstance(v, str) and not os.path.isabs(v):
                    candidate = os.path.join(base, v)
                    if os.path.exists(candidate):
                        data[key] = candidate
            data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
        return cls.from_dict(data, where=f"remover spec file {path}")

    @classmethod
    def parse(cls, value: "RemoverSpec | dict | str | os.PathLike", **overrides) -> "RemoverSpec":
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
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(value, RemoverSpec):
            spec = value
        elif isinstance(value, dict):
            spec = cls.from_dict(value)
        elif isinstance(value, (str, os.PathLike)):
            s = os.fspath(value)
            if s.lower().endswith((".json", ".toml")) and not os.path.isdir(s):
                spec = cls.from_file(s)
            elif s == "classical" or s.startswith("classical:"):
                method = s.partition(":")[2] or "telea"
                spec = cls(kind="classical", method=method)
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
        """The spec's ``name``, else a short name derived from model / unet / method."""
        if self.name:
            return self.name
        if self.kind == "classical":
            return f"classical-{self.method}"
        parts = [os.path.basename(os.path.normpath(self.model or "")) or str(self.model)]
        if self.unet:
            parts.append(os.path.basename(os.path.normpath(self.unet)))
        if self.lora:
            parts.append(os.path.basename(os.path.normpath(self.lora)))
        return "+".join(parts)


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class Remover:
    """Base class: removes the masked object from a batch of images.

    Subclasses implement :meth:`_remove_batch` and :meth:`_provenance`. Use
    :func:`load_remover` to get one.
    """

    def __init__(self, spec: RemoverSpec):
        self.spec = spec
        self._key = None

    def remove(self, images: Sequence, masks: Sequence, seeds: Sequence[int] | None = None, *,
               output: str = "pil") -> list:
        """Remove the masked object from each image.

        Parameters
        ----------
        images : sequence of PIL.Image, ndarray or str
            Sources: RGB(A)/grey PIL images, uint8 arrays (H, W, 3|4) or (H, W), or file paths.
        masks : sequence of PIL.Image, ndarray or str
            Object masks, one per image and of the same size: bool / 0-1 / 0-255 arrays, PIL
            images or files (first channel, ``v / 255 >= 0.5`` is object).
        seeds : sequence of int, optional
            One seed per item; each item gets its own ``torch.Generator`` (default 0, 1, ...).
            The same seed gives the same result in any batch (up to float rounding).
        output : {"pil", "numpy"}
            Return RGB PIL images or uint8 arrays of shape (H, W, 3).

        Returns
        -------
        list
            One result per image, at the source's size.

        Raises
        ------
        ConfigError
            If the lengths differ, a mask's size differs from its image, or a mask is empty.
        """
        if output not in ("pil", "numpy"):
            raise ConfigError(f"output must be 'pil' or 'numpy'; got {output!r}")
        images, masks = list(images), list(masks)
        seeds = list(range(len(images))) if seeds is None else [int(s) for s in seeds]
        if not (len(images) == len(masks) == len(seeds)):
            raise ConfigError(f"remove() needs one mask and one seed per image; got {len(images)} "
                              f"images, {len(masks)} masks, {len(seeds)} seeds")
        if not images:
            return []
        arrays = [_as_rgb_array(im, i) for i, im in enumerate(images)]
        bmasks = []
        for i, (img, m) in enumerate(zip(arrays, masks)):
            bm = _as_bool_mask(m, i)
            if bm.shape != img.shape[:2]:
                raise ConfigError(f"mask {i} is {bm.shape[1]}x{bm.shape[0]} but image {i} is "
                                  f"{img.shape[1]}x{img.shape[0]}; resize the mask to the image")
            bmasks.append(dilate_mask(bm, self.spec.dilation))
        results = self._remove_batch(arrays, bmasks, seeds)
        if self.spec.paste_back:
            results = [np.where(m[..., None], r, a) for r, m, a in zip(results, bmasks, arrays)]
        if output == "pil":
            return [Image.fromarray(r) for r in results]
        return results

    def _remove_batch(self, images: list[np.ndarray], masks: list[np.ndarray],
                      seeds: list[int]) -> list[np.ndarray]:
        raise NotImplementedError

    def _provenance(self) -> dict:
        raise NotImplementedError

    def provenance(self, seed: int | None = None) -> dict:
        """What made a result: spec name, checkpoint hash, sampler, steps, strength, guidance,
        dilation, resolution, dtype, ... and ``seed`` when given. JSON-serialisable."""
        prov = {"remover": self.spec.display_name, "remover_key": self.key, **self._provenance()}
        if seed is not None:
            prov["seed"] = int(seed)
        return prov

    @property
    def key(self) -> str:
        """Short stable hash of the provenance without the seed, the names and paths (the
        files' content is in ``checkpoint_sha256``), the device and library versions: two
        removers with the same key produce the same results, wherever their files live."""
        if self._key is None:
            core = {k: v for k, v in self._provenance().items() if k not in _KEY_EXCLUDED}
            blob = json.dumps(core, sort_keys=True, default=str).encode()
            self._key = "r" + hashlib.sha256(blob).hexdigest()[:15]
        return self._key

    def close(self) -> None:
        """Free the model (and GPU memory)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.display_name!r}, key={self.key!r})"


def load_remover(spec: "RemoverSpec | dict | str", **overrides) -> Remover:
    """Load the remover a spec describes.

    Parameters
    ----------
    spec : RemoverSpec, dict or str
        Anything :meth:`RemoverSpec.parse` accepts.
    **overrides
        Spec fields to replace (``device``, ``dtype``, ``steps``, ...).

    Returns
    -------
    Remover
        A :class:`DiffusersRemover` or :class:`ClassicalRemover`.

    Raises
    ------
    ConfigError
        The folder is not a pipeline, a component is missing, a hub id cannot be reached
        offline, the UNet or LoRA does not fit the pipeline, or a field is invalid.
    DependencyError
        torch / diffusers / opencv is not installed.

    Examples
    --------
    >>> remover = load_remover("classical:telea")                        # doctest: +SKIP
    >>> remover = load_remover({"model": "runs/tiny-sd", "steps": 2})    # doctest: +SKIP
    """
    spec = RemoverSpec.parse(spec, **overrides)
    if spec.kind == "classical":
        return ClassicalRemover(spec)
    return DiffusersRemover(spec)


# --------------------------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------------------------


def _as_rgb_array(img, i: int) -> np.ndarray:
    if isinstance(img, (str, os.PathLike)):
        try:
            with Image.open(img) as im:
                img = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"image {i} ({img}) cannot be read ({exc}); check the file") from None
    if isinstance(img, Image.Image):
        return np.asarray(img.convert("RGB"))
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ConfigError(f"image {i} must be (H, W, 3) or (H, W, 4) or (H, W); got shape {a.shape}")
    if a.dtype != np.uint8:
        raise ConfigError(f"image {i} must be uint8 (0..255); got {a.dtype}. Convert with "
                          "(x * 255).clip(0, 255).astype(np.uint8)")
    return np.ascontiguousarray(a[..., :3])


def _as_bool_mask(m, i: int) -> np.ndarray:
    from rorem_data.core.images import ImageProblem, mask_to_binary, read_mask

    if isinstance(m, (str, os.PathLike)):
        try:
            out = read_mask(os.fspath(m))
        except ImageProblem as exc:
            raise ConfigError(f"mask {i} ({m}): {exc}; check the file") from None
    elif isinstance(m, Image.Image):
        out = mask_to_binary(np.asarray(m.convert("L") if m.mode in ("P", "1") else m))
    else:
        out = mask_to_binary(np.asarray(m))
    if not out.any():
        raise ConfigError(f"mask {i} is empty (no object pixels); give a mask with the object "
                          "as white (255) pixels")
    return out


def dilate_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Dilate a bool mask with a ``size x size`` square kernel (``cv2.dilate``, as RORem).

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    size : int
        Kernel side in pixels; 0 or 1 returns the mask unchanged.

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    if size <= 1:
        return mask
    cv2 = _cv2()
    kernel = np.ones((size, size), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel, iterations=1) > 0


def _cv2():
    try:
        import cv2
    except ImportError:
        raise DependencyError("OpenCV is needed for mask dilation and the classical remover; "
                              "install it with pip install 'rorem-data[ml]' "
                              "(opencv-python-headless)") from None
    return cv2


# --------------------------------------------------------------------------------------------
# Classical remover
# --------------------------------------------------------------------------------------------


class ClassicalRemover(Remover):
    """OpenCV inpainting (``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``) at the source size.

    Deterministic; ``seeds`` are accepted and ignored. Useful as a baseline, for tests and for
    the demo.
    """

    def __init__(self, spec: RemoverSpec):
        super().__init__(spec)
        self._cv2 = _cv2()

    def _remove_batch(self, images, masks, seeds):
        cv2 = self._cv2
        flag = cv2.INPAINT_TELEA if self.spec.method == "telea" else cv2.INPAINT_NS
        out = []
        for img, m in zip(images, masks):
            bgr = np.ascontiguousarray(img[..., ::-1])
            res = cv2.inpaint(bgr, m.astype(np.uint8) * 255, float(self.spec.radius), flag)
            out.append(np.ascontiguousarray(res[..., ::-1]))
        return out

    def _provenance(self) -> dict:
        return {
            "kind": "classical",
            "method": self.spec.method,
            "radius": self.spec.radius,
            "dilation": self.spec.dilation,
            "paste_back": self.spec.paste_back,
            "checkpoint_sha256": None,
            "sampler": f"cv2.inpaint[{self.spec.method}]",
            "versions": {"opencv": self._cv2.__version__},
        }


# --------------------------------------------------------------------------------------------
# Checkpoint hashing
# --------------------------------------------------------------------------------------------

_WEIGHT_EXTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".onnx")


def _hash_cache_path() -> str:
    base = os.environ.get("ROREM_DATA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "rorem_data")
    return os.path.join(base, "sha256-cache.json")


def _file_sha256(path: str, cache: dict) -> str:
    """sha256 of a file's bytes, memoised by (real path, size, mtime) in ``cache``."""
    from rorem_data.core.images import sha256_file

    real = os.path.realpath(path)
    st = os.stat(real)
    tag = f"{st.st_size}:{st.st_mtime_ns}"
    hit = cache.get(real)
    if hit and hit[0] == tag:
        return hit[1]
    digest = sha256_file(real)
    cache[real] = [tag, digest]
    return digest


def _walk_model_folder(root: str):
    """``os.walk`` over a model folder; for a pipeline folder only ``model_index.json`` and the
    component folders it lists (not checkpoints, logs or data kept beside them)."""
    index = os.path.join(root, "model_index.json")
    if not os.path.isfile(index):
        yield from os.walk(root, followlinks=True)
        return
    try:
        with open(index, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        data = {}
    yield root, [], ["model_index.json"]
    for name in sorted(data):
        value = data[name]
        if (not name.startswith("_") and isinstance(value, list) and len(value) == 2
                and value[0] is not None and os.path.isdir(os.path.join(root, name))):
            yield from os.walk(os.path.join(root, name), followlinks=True)


def checkpoint_sha256(paths: Sequence[str]) -> str:
    """A stable sha256 over model files: the relative path and content hash of every config and
    weight file under each folder (or of each file), in sorted order. For a pipeline folder only
    ``model_index.json`` and the components it lists count.

    The same files give the same hash wherever the folder lives. Content hashes are memoised
    in ``$ROREM_DATA_CACHE`` (default ``~/.cache/rorem_data``) by path, size and mtime, so a
    multi-GB checkpoint is read once.

    Parameters
    ----------
    paths : sequence of str
        Folders or files.

    Returns
    -------
    str
        64 hex digits.
    """
    cache_path = _hash_cache_path()
    try:
        with open(cache_path, encoding="utf-8") as fh:
            cache = json.load(fh)
    except (OSError, ValueError):
        cache = {}
    n_before = len(cache)
    snapshot = dict(cache)
    h = hashlib.sha256()
    for root in paths:
        root = os.path.abspath(root)
        if os.path.isfile(root):
            files = [(os.path.basename(root), root)]
        else:
            files = []
            for dirpath, dirnames, filenames in _walk_model_folder(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in filenames:
                    if f.startswith(".") or ".tmp" in f:
                        continue
                    if f.endswith(_WEIGHT_EXTS) or f.endswith((".json", ".txt", ".model")):
                        full = os.path.join(dirpath, f)
                        files.append((os.path.relpath(full, root).replace(os.sep, "/"), full))
            files.sort()
        h.update(b"\x01")
        for rel, full in files:
            h.update(rel.encode())
            h.update(b"\x00")
            h.update(_file_sha256(full, cache).encode())
    if len(cache) != n_before or cache != snapshot:
        try:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            tmp = f"{cache_path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(cache, fh)
            os.replace(tmp, cache_path)
        except OSError:
            pass  # the cache is an optimisation only
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Resolving and checking model folders (shared with rorem_data.finetune.train)
# --------------------------------------------------------------------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _is_offline() -> bool:
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def resolve_pipeline_folder(model: str, *, what: str = "model") -> str:
    """The local folder of a pipeline given a folder or a hub id, with clear errors.

    A local folder is checked with :func:`check_pipeline_folder`. A hub id is looked up in the
    Hugging Face cache when offline (``HF_HUB_OFFLINE=1``), otherwise downloaded with
    ``DiffusionPipeline.download`` (only the files a pipeline needs).

    Raises
    ------
    ConfigError
        A missing folder, a folder that is not a pipeline, or a hub id that cannot be fetched.
    """
    path = os.path.expanduser(os.fspath(model))
    if os.path.isdir(path):
        check_pipeline_folder(path, what=what)
        return os.path.abspath(path)
    if os.path.isfile(path):
        raise ConfigError(
            f"{what} {model} is a file, not a diffusers pipeline folder; single-file checkpoints "
            "are not supported: convert it with diffusers' from_single_file(...).save_pretrained(DIR) "
            "and pass DIR")
    looks_like_path = (path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
                       or not _HUB_ID.match(path))
    if looks_like_path:
        raise ConfigError(f"{what} folder {os.path.abspath(path)} does not exist; check the path "
                          "(or pass a Hugging Face hub id such as org/name)")
    return _download_hub_pipeline(path, what=what)


def _download_hub_pipeline(repo_id: str, *, what: str) -> str:
    from huggingface_hub import try_to_load_from_cache

    local_hint = os.path.abspath(repo_id)
    if _is_offline():
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
        folder = DiffusionPipeline.download(repo_id)
    except (OSError, ValueError) as exc:  # connection errors and HF hub errors subclass these
        raise ConfigError(
            f"{what} {repo_id!r} could not be fetched from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Without network, download it elsewhere "
            f"(`hf download {repo_id}`) and pass the folder. (If you meant a local folder: "
            f"{local_hint} does not exist.)") from None
    check_pipeline_folder(folder, what=what)
    return os.fspath(folder)


_CONFIG_FILES = ("config.json", "scheduler_config.json", "tokenizer_config.json",
                 "preprocessor_config.json", "vocab.json", "tokenizer.json")


def check_pipeline_folder(folder: str, *, what: str = "model") -> dict:
    """Check that ``folder`` is a diffusers pipeline folder with every component it lists.

    Returns
    -------
    dict
        The parsed ``model_index.json``.

    Raises
    ------
    ConfigError
        No ``model_index.json`` (with a hint when it is a UNet or a LoRA folder), invalid
        JSON, or a listed component whose folder, config or weights are missing.
    """
    index = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index):
        hint = "pass the folder that holds model_index.json (the output of pipe.save_pretrained)"
        cfg = os.path.join(folder, "config.json")
        if os.path.isfile(cfg):
            try:
                with open(cfg, encoding="utf-8") as fh:
                    cls = json.load(fh).get("_class_name", "")
            except (OSError, ValueError):
                cls = ""
            if "UNet" in cls:
                hint = (f"it holds a {cls}: pass it as `unet` and a base inpainting pipeline as "
                        "`model`")
        elif any(f.endswith(".safetensors") and "lora" in f for f in os.listdir(folder)):
            hint = "it looks like LoRA weights: pass it as `lora` over a base pipeline `model`"
        raise ConfigError(f"{what} folder {folder} is not a diffusers pipeline (no "
                          f"model_index.json); {hint}")
    try:
        with open(index, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError as exc:
        raise ConfigError(f"{index} is not valid JSON ({exc}); re-save the pipeline") from None
    if not isinstance(data, dict) or "_class_name" not in data:
        raise ConfigError(f"{index} has no '_class_name'; re-save the pipeline with save_pretrained")
    missing = []
    for name, value in data.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        lib, cls = value
        if lib is None or cls is None:
            continue
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            missing.append(f"{name} ({cls}): no folder {sub}")
            continue
        files = os.listdir(sub)
        if not any(f in files for f in _CONFIG_FILES):
            missing.append(f"{name} ({cls}): no config file in {sub}")
        elif ("Scheduler" not in cls and "Tokenizer" not in cls and "Processor" not in cls
              and "FeatureExtractor" not in cls
              and not any(f.endswith(_WEIGHT_EXTS) or f.endswith(".index.json") for f in files)):
            missing.append(f"{name} ({cls}): no weight file in {sub}")
    if missing:
        raise ConfigError(f"{what} folder {folder} lists components that are missing or "
                          "incomplete: " + "; ".join(missing) + ". Copy the complete pipeline "
                          "folder (or re-save it with save_pretrained)")
    return data


def _resolve_unet_folder(unet: str) -> str:
    path = os.path.expanduser(unet)
    if not os.path.isdir(path):
        raise ConfigError(f"unet folder {os.path.abspath(path)} does not exist; pass a folder with "
                          "config.json and diffusion_pytorch_model.safetensors (or one holding unet/)")
    if os.path.isfile(os.path.join(path, "unet", "config.json")):
        path = os.path.join(path, "unet")
    cfg = os.path.join(path, "config.json")
    if not os.path.isfile(cfg):
        raise ConfigError(f"unet folder {path} has no config.json; pass the folder written by "
                          "unet.save_pretrained (config.json + diffusion_pytorch_model.safetensors)")
    if not any(f.endswith(_WEIGHT_EXTS) or f.endswith(".index.json") for f in os.listdir(path)):
        raise ConfigError(f"unet folder {path} has no weight file (*.safetensors or *.bin); copy "
                          "the weights next to config.json")
    return os.path.abspath(path)


def _dtype_kwargs(torch_dtype) -> dict:
    """diffusers >= 0.36 takes ``dtype``; older versions ``torch_dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return {"torch_dtype": torch_dtype}
    return {"dtype": torch_dtype}


def resolve_device_dtype(device: str, dtype: str):
    """(torch.device, torch.dtype) for spec strings ``auto`` / explicit values.

    Raises
    ------
    ConfigError
        float16 asked for on the CPU.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dtype == "auto":
        dt = torch.float16 if dev.type == "cuda" else torch.float32
    else:
        dt = getattr(torch, dtype)
    if dt == torch.float16 and dev.type == "cpu":
        raise ConfigError("dtype 'float16' needs a GPU; on the CPU use dtype 'float32' "
                          "(or 'bfloat16')")
    return dev, dt


def _import_torch_stack():
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise DependencyError(f"the diffusers remover needs torch, diffusers and transformers "
                              f"({exc}); install them with {_TORCH_EXTRA}") from None


# --------------------------------------------------------------------------------------------
# Diffusers remover
# --------------------------------------------------------------------------------------------


class DiffusersRemover(Remover):
    """A diffusers inpainting pipeline (SD, SDXL, ... any class ``AutoPipelineForInpainting``
    maps to) with RORem's defaults. See the module docstring for what the model receives."""

    def __init__(self, spec: RemoverSpec):
        super().__init__(spec)
        _import_torch_stack()
        import diffusers
        import torch

        self.device, self.dtype = resolve_device_dtype(spec.device, spec.dtype)
        self.model_dir = resolve_pipeline_folder(spec.model, what="model")
        self.unet_dir = _resolve_unet_folder(spec.unet) if spec.unet else None
        self.lora_path = self._check_lora_path(spec.lora) if spec.lora else None
        hashed = [self.model_dir] + [p for p in (self.unet_dir, self.lora_path) if p]
        self.checkpoint_sha256 = checkpoint_sha256(hashed)

        kwargs = _dtype_kwargs(self.dtype)
        if self.unet_dir:
            try:
                kwargs["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
                    self.unet_dir, **_dtype_kwargs(self.dtype))
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise ConfigError(f"unet folder {self.unet_dir} could not be loaded "
                                  f"({type(exc).__name__}: {_first_line(exc)}); check that it was "
                                  "written by UNet2DConditionModel.save_pretrained") from None
        try:
            pipe = diffusers.AutoPipelineForInpainting.from_pretrained(self.model_dir, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"model folder {self.model_dir} could not be loaded as an inpainting "
                              f"pipeline ({type(exc).__name__}: {_first_line(exc)}); check that it "
                              "is a complete diffusers pipeline saved with save_pretrained") from None
        self._check_unet_fits(pipe)
        if spec.scheduler:
            pipe.scheduler = self._make_scheduler(pipe.scheduler, spec.scheduler)
        if self.lora_path:
            self._load_lora(pipe)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self._generator_device = "cpu"
        self._versions = {"diffusers": diffusers.__version__, "torch": torch.__version__.split("+")[0]}

    # -- loading helpers ---------------------------------------------------------------------

    @staticmethod
    def _check_lora_path(lora: str) -> str:
        path = os.path.expanduser(lora)
        if os.path.isfile(path):
            if not path.endswith((".safetensors", ".bin")):
                raise ConfigError(f"lora file {path} must be a .safetensors file (LoRA weights "
                                  "saved with save_lora_weights)")
            return os.path.abspath(path)
        if os.path.isdir(path):
            files = [f for f in os.listdir(path) if f.endswith(".safetensors")]
            if not files:
                raise ConfigError(f"lora folder {path} holds no .safetensors file; pass the folder "
                                  "written by save_lora_weights (pytorch_lora_weights.safetensors)")
            return os.path.abspath(path)
        raise ConfigError(f"lora {os.path.abspath(path)} does not exist; pass a LoRA folder or "
                          ".safetensors file")

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

    def _make_scheduler(self, current, name: str):
        import diffusers

        cls_name = SCHEDULERS.get(name.lower(), name)
        cls = getattr(diffusers, cls_name, None)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, diffusers.SchedulerMixin):
            raise ConfigError(f"scheduler {name!r} is not known; use one of "
                              f"{', '.join(SCHEDULERS)} or a diffusers scheduler class name")
        return cls.from_config(current.config)

    def _load_lora(self, pipe) -> None:
        path = self.lora_path
        if os.path.isfile(path):
            src, kw = os.path.dirname(path), {"weight_name": os.path.basename(path)}
        else:
            src, kw = path, {}
        try:
            pipe.load_lora_weights(src, adapter_name="remover", **kw)
        except (ValueError, RuntimeError, KeyError, OSError) as exc:
            raise ConfigError(f"lora {path} does not fit the UNet of {self.unet_dir or self.model_dir} "
                              f"({type(exc).__name__}: {_first_line(exc)}); use the LoRA trained for "
                              "this base model") from None
        adapters = pipe.get_list_adapters()
        if "remover" not in adapters.get("unet", []):
            raise ConfigError(f"lora {path} has no weights that fit the UNet of "
                              f"{self.unet_dir or self.model_dir} (none of its keys matched a UNet "
                              "layer); use the LoRA trained for this base model")
        pipe.fuse_lora(lora_scale=self.spec.lora_scale, adapter_names=["remover"])
        pipe.unload_lora_weights()

    # -- running -----------------------------------------------------------------------------

    def _remove_batch(self, images, masks, seeds):
        import torch

        res = self.spec.resolution
        src = [Image.fromarray(a).resize((res, res), Image.BICUBIC) for a in images]
        msk = [Image.fromarray(m.astype(np.uint8) * 255).resize((res, res), Image.NEAREST)
               for m in masks]
        gens = [torch.Generator(self._generator_device).manual_seed(int(s)) for s in seeds]
        kwargs = dict(
            prompt=[self.spec.prompt] * len(src), image=src, mask_image=msk, height=res, width=res,
            strength=float(self.spec.strength), num_inference_steps=self.spec.steps,
            guidance_scale=float(self.spec.guidance), generator=gens, output_type="np",
        )
        if self.spec.guidance > 1 and self.spec.negative_prompt:
            kwargs["negative_prompt"] = [self.spec.negative_prompt] * len(src)
        with torch.inference_mode():
            out = self.pipe(**kwargs).images
        results = []
        for a, arr in zip(images, out):
            u8 = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
            h, w = a.shape[:2]
            if (h, w) != u8.shape[:2]:
                u8 = np.asarray(Image.fromarray(u8).resize((w, h), Image.BICUBIC))
            results.append(u8)
        return results

    def _provenance(self) -> dict:
        local = os.path.isdir(os.path.expanduser(self.spec.model))
        return {
            "kind": "diffusers",
            "model": self.model_dir if local else self.spec.model,
            "unet": self.unet_dir,
            "lora": self.lora_path,
            "lora_scale": self.spec.lora_scale if self.spec.lora else None,
            "checkpoint_sha256": self.checkpoint_sha256,
            "pipeline": type(self.pipe).__name__,
            "sampler": type(self.pipe.scheduler).__name__,
            "steps": self.spec.steps,
            "strength": self.spec.strength,
            "guidance": self.spec.guidance,
            "prompt": self.spec.prompt,
            "negative_prompt": self.spec.negative_prompt if self.spec.guidance > 1 else "",
            "dilation": self.spec.dilation,
            "paste_back": self.spec.paste_back,
            "resolution": self.spec.resolution,
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


def _first_line(exc: BaseException) -> str:
    """The informative start of an exception message (up to two non-empty lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return ""
    head = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return head[:400]


__all__ = [
    "ClassicalRemover",
    "DiffusersRemover",
    "Remover",
    "RemoverSpec",
    "check_pipeline_folder",
    "checkpoint_sha256",
    "dilate_mask",
    "load_remover",
    "resolve_pipeline_folder",
]
