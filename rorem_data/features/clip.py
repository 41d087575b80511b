"""The ``clip`` featurizer: open_clip image embeddings of the pair, around the mask and in context.

Five views per candidate go through an open_clip image encoder - the source, the result, square
crops of both around the mask, and the result crop with the masked pixels blanked out (its
surroundings) - and are combined so a head sees what changed in the mask and whether the fill
matches its surroundings (:class:`ClipFeaturizer`). The weights are found by
:mod:`rorem_data.features.clip_weights` (local files only, safetensors only).

numpy at import time; OpenCV, torch, torchvision and open_clip load on first use.
"""

from __future__ import annotations

import os

import numpy as np

from rorem_data.core.checks import bad, choice, fraction, positive_int
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError
from rorem_data.features.base import Featurizer
from rorem_data.features.clip_weights import (
    PICKLE_SUFFIXES,
    check_weights_file,
    import_open_clip,
    model_config,
    resolve_weights,
)

__all__ = ["ClipFeaturizer", "mask_crop_box"]


def _cv2():
    return require("cv2", purpose="the 'clip' featurizer")


def _area_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area (box) downscaling to ``size`` = (width, height).

    Halves exactly with OpenCV's fast 2x area path while the image is at least twice the
    target (dropping a last odd row/column), then finishes with one area resize - several times
    faster than a single large-factor area resize, same result up to rounding.
    """
    cv2 = _cv2()
    tw, th = size
    while img.shape[0] >= 2 * th and img.shape[1] >= 2 * tw:
        h2, w2 = img.shape[0] // 2, img.shape[1] // 2
        img = cv2.resize(img[:2 * h2, :2 * w2], (w2, h2), interpolation=cv2.INTER_AREA)
    if (img.shape[1], img.shape[0]) != (tw, th):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    return img


def mask_crop_box(mask: np.ndarray, margin: float, min_size: int) -> tuple[int, int, int, int]:
    """Square box ``(x0, y0, x1, y1)`` around the mask's bounding box.

    The side is ``max(bbox_w, bbox_h) * (1 + 2 * margin)`` (at least ``min_size``), centred on
    the bounding box and shifted (then clipped) to stay inside the image.
    """
    cv2 = _cv2()
    bx, by, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    x0, y0, x1, y1 = bx, by, bx + bw, by + bh
    h, w = mask.shape
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    side = min(max(side, min_size), max(h, w))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bx0 = int(round(cx - side / 2))
    by0 = int(round(cy - side / 2))
    bx0 = min(max(bx0, 0), max(w - side, 0))
    by0 = min(max(by0, 0), max(h - side, 0))
    return bx0, by0, min(bx0 + side, w), min(by0 + side, h)


class ClipFeaturizer(Featurizer):
    """``clip``: open_clip image embeddings of the pair, around the mask and in context.

    Five views per item go through the image encoder (L2-normalised embeddings, dimension
    ``D``): the full source ``s`` and result ``r``, square crops of both around the mask
    ``s_c``, ``r_c`` (bounding box plus ``crop_margin`` on each side) and a *context* view
    ``x``: the result crop with the masked pixels replaced by the preprocessing mean colour, so
    it shows only the surroundings. The feature vector (``4 * D + 4`` columns) is::

        [r_c,  r_c - s_c,  r_c * x,  r - s,
         cos(r_c, s_c), cos(r_c, x), cos(s_c, x), cos(r, s)]

    ``r_c - s_c`` says what changed in the mask, ``r_c * x`` and ``cos(r_c, x)`` whether the fill
    matches its surroundings, and ``cos(r, s)`` how much the whole image changed.

    Config
    ------
    model : str, default "ViT-B-32"
        An open_clip architecture name (``open_clip.list_models()``, or one added with
        ``open_clip.add_model_config``), ``"local-dir:<folder>"`` (a folder with
        ``open_clip_config.json`` and ``open_clip_model.safetensors``) or ``"hf-hub:org/repo"``
        (must already be in the local Hugging Face cache: nothing is downloaded).
    pretrained : str or None, default None
        For an architecture name: ``None`` (random weights: tests only), a ``.safetensors``
        weights file, or an open_clip tag (e.g. ``"openai"``) whose safetensors file is already
        in the local cache. Pickle-based files (``.bin``, ``.pt``, ``.pth``) are refused with
        the recipe to convert them.
    crop_margin : float, default 0.5
        Margin around the mask's bounding box, as a fraction of its longer side.
    min_crop : int, default 32
        Smallest crop side in pixels.
    reducing_gap : float or None, default 2.0
        Before open_clip's transform, views whose short side is at least ``2 * reducing_gap``
        times the model input are first shrunk to ``reducing_gap`` times the input with
        OpenCV's area interpolation (the idea of PIL's ``Image.resize(reducing_gap=...)``);
        open_clip's own bicubic resize, crop and normalisation then run on the smaller image.
        ``None`` runs open_clip's transform on the full image. Saves most of the resize cost
        with small models; the difference is a fraction of a grey level.
    resize : {"open_clip", "area"}, default "open_clip"
        ``"open_clip"``: open_clip's own eval transform (bicubic resize, centre crop) on each
        view. ``"area"``: OpenCV area resize of the short side to the model input and the same
        centre crop, then open_clip's normalisation - cheaper per view, for small models where
        decoding dominates (needs a "shortest"-side open_clip transform).

    Runtime options (not part of the key)
    -------------------------------------
    device : str, default "cpu"

    Raises
    ------
    ConfigError
        A pickle-based ``pretrained`` file (at once); on first use, weights that cannot be
        found locally (the message says how to get them) - hub ids and tags are never
        downloaded - or that exist only in a pickle-based format.

    Examples
    --------
    >>> f = ClipFeaturizer(model="ViT-B-32", pretrained=None)
    >>> f.dim
    2052
    """

    name = "clip"
    defaults = {"model": "ViT-B-32", "pretrained": None, "crop_margin": 0.5, "min_crop": 32,
                "reducing_gap": 2.0, "resize": "open_clip"}
    runtime_options = {"device": "cpu"}

    def _validate_config(self, config):
        model = config["model"]
        if not isinstance(model, str) or not model:
            raise bad("clip featurizer: 'model'", "an open_clip model name, 'local-dir:<folder>' "
                      "or 'hf-hub:org/repo'", model)
        if model.startswith("local-dir:"):
            config["model"] = "local-dir:" + os.path.abspath(os.path.expanduser(model[10:]))
        pre = config["pretrained"]
        if pre is not None and not isinstance(pre, str):
            raise bad("clip featurizer: 'pretrained'", "None, a tag or a .safetensors file path",
                      pre)
        if isinstance(pre, str) and (os.sep in pre or os.path.isfile(pre)
                                     or pre.lower().endswith(PICKLE_SUFFIXES + (".safetensors",))):
            config["pretrained"] = check_weights_file(os.path.abspath(os.path.expanduser(pre)),
                                                      what="pretrained")
        config["crop_margin"] = fraction(config["crop_margin"], "clip featurizer: 'crop_margin'",
                                         high=10.0)
        positive_int(config["min_crop"], "clip featurizer: 'min_crop'")
        rg = config["reducing_gap"]
        if rg is not None:
            if isinstance(rg, bool) or not isinstance(rg, (int, float)) or not rg >= 1:
                raise bad("clip featurizer: 'reducing_gap'", "None or a number >= 1", rg)
            config["reducing_gap"] = float(rg)
        choice(config["resize"], "clip featurizer: 'resize'", ("open_clip", "area"))
        return config

    # -- architecture and weights ---------------------------------------------------------------
    @property
    def dim(self) -> int:
        if getattr(self, "_embed_dim", None) is None:
            self._embed_dim = int(model_config(self.config["model"])["embed_dim"])
        return 4 * self._embed_dim + 4

    @property
    def feature_names(self) -> list[str]:
        d = (self.dim - 4) // 4
        names = []
        for part in ("rc", "rc_minus_sc", "rc_times_ctx", "r_minus_s"):
            names += [f"{part}_{i}" for i in range(d)]
        return names + ["cos_rc_sc", "cos_rc_ctx", "cos_sc_ctx", "cos_r_s"]

    @property
    def light(self) -> bool:
        """Tiny image towers (under 10M parameters) are light; real CLIP models are not."""
        if getattr(self, "_model", None) is None:
            return False
        n = sum(p.numel() for p in self._model.visual.parameters())
        return n < 10_000_000

    def setup(self) -> None:
        if getattr(self, "_model", None) is not None:
            return
        import inspect

        open_clip = import_open_clip()
        import torch

        name, pre, force_pp = resolve_weights(self.config["model"], self.config["pretrained"])
        kwargs = {"force_preprocess_cfg": force_pp} if force_pp else {}
        if "weights_only" in inspect.signature(open_clip.create_model_and_transforms).parameters:
            kwargs["weights_only"] = True  # belt and braces: only safetensors reach open_clip
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pre, device=self.runtime["device"], **kwargs)
        except (RuntimeError, ValueError, FileNotFoundError, OSError) as exc:
            raise ConfigError(f"clip featurizer: cannot build {self.config['model']!r} "
                              f"(pretrained={self.config['pretrained']!r}): {exc}") from None
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._torch = torch
        size = model.visual.image_size
        self._input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        mean = getattr(model.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        self._fill = tuple(int(round(255 * v)) for v in mean)
        self._split_preprocess()

    def _split_preprocess(self) -> None:
        """Split open_clip's eval transform into its image stage (resize, crop; run per view in
        the workers) and its ``ToTensor`` + ``Normalize`` tail (run batched in ``embed``, the
        same arithmetic). Falls back to the whole transform per view if the shape differs."""
        transforms = require("torchvision.transforms", purpose="the 'clip' featurizer")
        Compose, Normalize, ToTensor = transforms.Compose, transforms.Normalize, transforms.ToTensor

        self._image_stage, self._norm = None, None
        steps = list(getattr(self._preprocess, "transforms", []))
        if len(steps) >= 2 and isinstance(steps[-2], ToTensor) and isinstance(steps[-1], Normalize):
            self._image_stage = Compose(steps[:-2])
            self._norm = (tuple(float(v) for v in steps[-1].mean),
                          tuple(float(v) for v in steps[-1].std))
        if self.config["resize"] == "area":
            mode = getattr(self._model.visual, "preprocess_cfg", {}).get("resize_mode", "shortest")
            if self._norm is None or mode != "shortest":
                raise ConfigError(
                    "clip featurizer: resize='area' needs an open_clip transform that resizes the "
                    f"shortest side, centre-crops and normalises (this model: {self._preprocess});"
                    " use resize='open_clip'")

    def __getstate__(self):  # workers get the preprocessing, never the model
        state = dict(self.__dict__)
        state.pop("_model", None)
        state.pop("_torch", None)
        return state

    # -- per item and per batch -----------------------------------------------------------------
    def _shrink(self, view: np.ndarray) -> np.ndarray:
        """Area-shrink a view before its transform.

        ``resize="area"``: the short side to the model input (cubic when enlarging).
        ``resize="open_clip"``: to ``reducing_gap`` x the input when at least twice that large.
        """
        cv2 = _cv2()
        h, w = view.shape[:2]
        if self.config["resize"] == "area":
            S = self._input_size
            scale = S / min(h, w)
            size = (max(S, round(w * scale)), max(S, round(h * scale)))
            if size == (w, h):
                return view
            if scale >= 1:
                return cv2.resize(view, size, interpolation=cv2.INTER_CUBIC)
            return _area_resize(view, size)
        gap = self.config["reducing_gap"]
        if gap is None:
            return view
        scale = gap * self._input_size / min(h, w)
        if scale > 0.5:
            return view
        return _area_resize(view, (max(1, round(w * scale)), max(1, round(h * scale))))

    def _transform(self, view: np.ndarray):
        """open_clip's eval transform on one RGB uint8 view (its image stage only when the
        tensor tail runs batched in :meth:`embed`; only the centre crop with resize="area")."""
        from PIL import Image

        if self.config["resize"] == "area":  # already resized by _shrink: centre crop
            S = self._input_size
            h, w = view.shape[:2]
            top, left = int(round((h - S) / 2.0)), int(round((w - S) / 2.0))
            return np.ascontiguousarray(view[top:top + S, left:left + S])
        if self._image_stage is not None:  # uint8 (S, S, 3); ToTensor + Normalize in embed()
            return np.asarray(self._image_stage(Image.fromarray(view)), dtype=np.uint8)
        return self._preprocess(Image.fromarray(view))

    def prepare(self, source, result, mask):
        """Five views (source, result, their crops around the mask, context) after open_clip's
        transform: uint8 (5, S, S, 3) when its tensor tail runs in :meth:`embed`, else float32
        (5, 3, S, S)."""
        import torch

        if getattr(self, "_preprocess", None) is None:
            self.setup()
        x0, y0, x1, y1 = mask_crop_box(mask, self.config["crop_margin"], self.config["min_crop"])
        s_c = self._shrink(source[y0:y1, x0:x1])
        r_c = self._shrink(result[y0:y1, x0:x1])
        m_c = mask[y0:y1, x0:x1]
        if m_c.shape != r_c.shape[:2]:
            m_c = self._shrink(m_c.view(np.uint8) * np.uint8(255)) >= 128
        ctx = r_c.copy()
        np.copyto(ctx, np.asarray(self._fill, np.uint8), where=m_c[..., None])
        views = [self._shrink(source), self._shrink(result), s_c, r_c, ctx]
        views = [self._transform(v) for v in views]
        if self._image_stage is not None:
            return torch.from_numpy(np.stack(views))
        return torch.stack(views)

    def collate(self, prepared):
        import torch

        return torch.stack(prepared)

    def _to_model_input(self, batch):
        """(n, 5, ...) prepared batch -> float32 (n * 5, 3, S, S) normalised."""
        torch = self._torch
        n, v = batch.shape[:2]
        if batch.dtype == torch.uint8:  # open_clip's ToTensor + Normalize, batched
            x = batch.reshape(n * v, *batch.shape[2:]).to(self.runtime["device"])
            x = x.permute(0, 3, 1, 2).contiguous().float().div_(255)
            mean = torch.tensor(self._norm[0], device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self._norm[1], device=x.device).view(1, -1, 1, 1)
            return x.sub_(mean).div_(std)
        return batch.reshape(n * v, *batch.shape[2:]).to(self.runtime["device"])

    def embed(self, batch) -> np.ndarray:
        if getattr(self, "_model", None) is None:
            self.setup()
        torch = self._torch
        n, v = batch.shape[:2]
        with torch.inference_mode():
            x = self._to_model_input(batch)
            e = self._model.encode_image(x, normalize=True).float().reshape(n, v, -1).cpu()
        e = e.numpy()
        s, r, s_c, r_c, ctx = (e[:, i] for i in range(5))

        def cos(a, b):
            return (a * b).sum(axis=1, keepdims=True)

        out = np.concatenate([r_c, r_c - s_c, r_c * ctx, r - s, cos(r_c, s_c), cos(r_c, ctx),
                              cos(s_c, ctx), cos(r, s)], axis=1)
        return out.astype(np.float32)
