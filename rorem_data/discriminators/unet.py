"""The RORem paper's discriminator: an SDXL-inpainting UNet encoder with LoRA and a conv head.

Architecture (RORem, CVPR 2025, Sec. "Discriminator"; see ``reference/rorem-paper.md`` §4):

- the inpainting UNet's **encoder only**: ``conv_in`` (9 channels), time and added (SDXL
  text/time) embeddings, the down blocks and the mid block; the up blocks and ``conv_out`` are
  dropped. Base weights frozen;
- **LoRA** rank 4 (alpha 4, gaussian init) on ``to_q``, ``to_k``, ``to_v``, ``to_out.0`` of every
  attention in the down and mid blocks, through diffusers' ``add_adapter`` (peft);
- a **head** on the mid-block feature map: Conv4x4/s2 -> GroupNorm -> SiLU, twice, Conv4x4/s4 ->
  GroupNorm -> SiLU, Conv1x1 -> 1 channel (channels = the mid block's, as in the released
  code). With ``loss="mse"`` (the paper) the score is ``softplus(out)`` regressed onto the 0/1
  label, and P(success) = ``clip(score, 0, 1)``; with ``loss="bce"`` ``out`` is a logit and
  P(success) = ``sigmoid(out)``;
- inputs: the VAE latent of the **result**, the mask at latent size, the VAE latent of the
  **unmasked source** (9 channels), timestep 0, empty-prompt text embeddings, SDXL time ids
  ``(S, S, 0, 0, S, S)``.

**The head is trained here.** The released training script marks the head trainable and then
calls ``unet.add_adapter(...)``, which freezes every non-LoRA parameter, so the head stays at its
random init. This class re-enables the head *after* ``add_adapter`` (``train_head=True``,
default); ``train_head=False`` reproduces the released behaviour.

**Feature-map size.** The paper's head maps the 16x16 mid-block map of a 512 px input (64x64
latent) to 1x1. Here smaller maps (small test models, low resolutions) are upsampled bilinearly
to 16x16 before the head, and larger maps (1024 px) give a grid that is average-pooled before
the final 1x1 conv, so any resolution yields one score.

Differences from the released code, on purpose: the latents are the VAE posterior *mode* (no
sampling) and no t=0 noise is added, so scores are deterministic; the base runs in float32 with
optional autocast (``mixed_precision``) instead of fp16 weights.

The base model comes from a local diffusers inpainting pipeline folder (or a hub id already in
the local cache), loaded with ``from_pretrained(..., use_safetensors=True)`` (pickle-based ``.bin``
weights are refused) - the same code for real SDXL-inpainting and
for the tiny pipelines of :mod:`rorem_data.testing.tiny` used in tests.
"""

from __future__ import annotations

import math
import os

import numpy as np
from sklearn.utils.validation import check_is_fitted

from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError
from rorem_data.discriminators.base import BaseDiscriminator
from rorem_data.discriminators.pair_classifier import PairInputs, _check_number, _device, _seed, _torch

__all__ = ["UNetDiscriminator", "DiscriminatorHead", "unet_encoder_forward"]

_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def _diffusers():
    require("peft", purpose="UNetDiscriminator")
    return require("diffusers", purpose="UNetDiscriminator")


def _head_module(in_channels: int, hidden: int):
    torch = _torch()
    nn = torch.nn

    def gn(c):
        return nn.GroupNorm(math.gcd(32, c), c)

    class DiscriminatorHead(nn.Module):
        """Conv4x4/s2-GN-SiLU x2, Conv4x4/s4-GN-SiLU, Conv1x1 -> one value per image."""

        min_size = 16

        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Conv2d(in_channels, hidden, 4, stride=2, padding=1), gn(hidden), nn.SiLU(),
                nn.Conv2d(hidden, hidden, 4, stride=2, padding=1), gn(hidden), nn.SiLU(),
                nn.Conv2d(hidden, hidden, 4, stride=4, padding=0), gn(hidden), nn.SiLU(),
                nn.AdaptiveAvgPool2d(1),  # identity for the paper's 16x16 map
                nn.Conv2d(hidden, 1, 1),
            )

        def forward(self, h):
            H, W = h.shape[-2:]
            if H < self.min_size or W < self.min_size:
                size = (max(H, self.min_size), max(W, self.min_size))
                h = torch.nn.functional.interpolate(h, size=size, mode="bilinear",
                                                    align_corners=False)
            return self.layers(h).flatten(1)[:, 0]

    return DiscriminatorHead()


def DiscriminatorHead(in_channels: int, hidden: int | None = None):  # noqa: N802 - a factory
    """The paper's conv head (a torch module) for ``in_channels`` mid-block channels.

    ``(n, C, H, W)`` -> ``(n,)``; maps under 16x16 are upsampled to 16x16, larger ones pooled.
    """
    return _head_module(int(in_channels), int(hidden or in_channels))


def unet_encoder_forward(unet, sample, timestep, encoder_hidden_states, added_cond_kwargs=None):
    """Run a ``UNet2DConditionModel`` up to and including its mid block.

    Parameters
    ----------
    unet : diffusers.UNet2DConditionModel
    sample : Tensor (n, in_channels, h, w)
    timestep : int or Tensor
    encoder_hidden_states : Tensor (n, seq, cross_attention_dim)
    added_cond_kwargs : dict, optional
        ``{"text_embeds", "time_ids"}`` for SDXL UNets.

    Returns
    -------
    Tensor (n, C_mid, h', w')
        The mid-block feature map.
    """
    added_cond_kwargs = added_cond_kwargs or {}
    t_emb = unet.get_time_embed(sample=sample, timestep=timestep)
    emb = unet.time_embedding(t_emb, None)
    aug = unet.get_aug_embed(emb=emb, encoder_hidden_states=encoder_hidden_states,
                             added_cond_kwargs=added_cond_kwargs)
    if aug is not None:
        emb = emb + aug
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    encoder_hidden_states = unet.process_encoder_hidden_states(
        encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs)
    h = unet.conv_in(sample)
    for block in unet.down_blocks:
        if getattr(block, "has_cross_attention", False):
            h, _ = block(hidden_states=h, temb=emb, encoder_hidden_states=encoder_hidden_states)
        else:
            h, _ = block(hidden_states=h, temb=emb)
    if unet.mid_block is not None:
        if getattr(unet.mid_block, "has_cross_attention", False):
            h = unet.mid_block(h, emb, encoder_hidden_states=encoder_hidden_states)
        else:
            h = unet.mid_block(h, emb)
    return h


class UNetDiscriminator(BaseDiscriminator):
    """RORem's discriminator: SDXL-inpainting UNet encoder + LoRA + a trained conv head.

    Parameters
    ----------
    pretrained_model : str, default "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
        A local diffusers inpainting pipeline folder (``unet/`` with 9 input channels,
        ``vae/``, and for ``text_embeddings="empty-prompt"`` the text encoders and tokenizers),
        or a hub id already in the local Hugging Face cache.
    resolution : int, default 512
        Pairs are resized to ``resolution`` x ``resolution`` (the paper: 512).
    lora_rank, lora_alpha : int, default 4, 4
    head_channels : int or None, default None
        Width of the head's convolutions; None = the mid block's channels (as released).
    loss : {"mse", "bce"}, default "mse"
        "mse": softplus score regressed onto 0/1 (the paper); "bce": logistic loss on a logit.
    learning_rate : float, default 1e-5
    weight_decay : float, default 0.01
    batch_size : int, default 4
    epochs : int, default 1
        Passes over the data (ignored when ``max_steps`` is set).
    max_steps : int or None, default None
        Exact number of optimiser steps (the paper: 15,000 at batch 32); 0 = no training.
    train_head : bool, default True
        Train the head with the LoRA. False reproduces the released code (frozen random head).
    text_embeddings : {"empty-prompt", "zeros"}, default "empty-prompt"
        Encode "" with the pipeline's text encoders, or use zeros (no text encoders needed).
    gradient_checkpointing : bool, default False
    mixed_precision : {"no", "fp16", "bf16"}, default "no"
        Autocast for the forward passes (weights stay float32).
    device : str or None, default None
        None/"auto" = CUDA when available.
    num_workers : int, default 0
    random_state : int, RandomState or None
        Seeds LoRA/head init and batch order.

    Attributes
    ----------
    classes_ : ndarray (2,)
    unet_ : diffusers.UNet2DConditionModel
        Encoder part (up blocks removed) with the LoRA adapter and ``cls_pred_branch`` (the head).
    vae_ : diffusers.AutoencoderKL
        Frozen.
    n_steps_ : int
    train_loss_ : list of float
        Mean loss per logged block of steps (one per epoch, or per 100 steps with max_steps).

    Examples
    --------
    >>> from rorem_data.testing.tiny import build_tiny_sdxl_inpaint        # doctest: +SKIP
    >>> base = build_tiny_sdxl_inpaint("/tmp/tiny-sdxl")            # doctest: +SKIP
    >>> disc = UNetDiscriminator(pretrained_model=base, resolution=64, max_steps=2,
    ...                          learning_rate=1e-3, random_state=0)  # doctest: +SKIP
    >>> disc.fit(X, y).predict_proba(X)[:, 1]                       # doctest: +SKIP
    """

    input_kind = "pairs"
    _runtime_params = ("device", "num_workers", "pretrained_model", "gradient_checkpointing",
                       "mixed_precision")

    def __init__(self, pretrained_model="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                 resolution=512, lora_rank=4, lora_alpha=4, head_channels=None, loss="mse",
                 learning_rate=1e-5, weight_decay=0.01, batch_size=4, epochs=1, max_steps=None,
                 train_head=True, text_embeddings="empty-prompt", gradient_checkpointing=False,
                 mixed_precision="no", device=None, num_workers=0, random_state=None):
        self.pretrained_model = pretrained_model
        self.resolution = resolution
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.head_channels = head_channels
        self.loss = loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.train_head = train_head
        self.text_embeddings = text_embeddings
        self.gradient_checkpointing = gradient_checkpointing
        self.mixed_precision = mixed_precision
        self.device = device
        self.num_workers = num_workers
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------------
    def _check_params(self):
        pm = self.pretrained_model
        if not isinstance(pm, (str, os.PathLike)) or not str(pm):
            raise ConfigError("UNetDiscriminator: pretrained_model must be a local inpainting "
                              f"pipeline folder or a cached hub id; got {self.pretrained_model!r}")
        res = _check_number(self.resolution, "UNetDiscriminator: resolution", kind=int, low=32)
        if res % 8:
            raise ConfigError(f"UNetDiscriminator: resolution must be a multiple of 8; got {res}")
        _check_number(self.lora_rank, "UNetDiscriminator: lora_rank", kind=int, low=1)
        _check_number(self.lora_alpha, "UNetDiscriminator: lora_alpha", low=0, low_open=True)
        if self.head_channels is not None:
            _check_number(self.head_channels, "UNetDiscriminator: head_channels", kind=int, low=1)
        if self.loss not in ("mse", "bce"):
            raise ConfigError(f"UNetDiscriminator: loss must be 'mse' (paper) or 'bce'; got "
                              f"{self.loss!r}")
        _check_number(self.learning_rate, "UNetDiscriminator: learning_rate", low=0,
                      low_open=True)
        _check_number(self.weight_decay, "UNetDiscriminator: weight_decay", low=0)
        _check_number(self.batch_size, "UNetDiscriminator: batch_size", kind=int, low=1)
        _check_number(self.epochs, "UNetDiscriminator: epochs", kind=int, low=1)
        if self.max_steps is not None:
            _check_number(self.max_steps, "UNetDiscriminator: max_steps", kind=int, low=0)
        if self.text_embeddings not in ("empty-prompt", "zeros"):
            raise ConfigError(f"UNetDiscriminator: text_embeddings must be 'empty-prompt' or "
                              f"'zeros'; got {self.text_embeddings!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"UNetDiscriminator: mixed_precision must be 'no', 'fp16' or "
                              f"'bf16'; got {self.mixed_precision!r}")
        _check_number(self.num_workers, "UNetDiscriminator: num_workers", kind=int, low=0)

    # -- building --------------------------------------------------------------------------------
    def _resolve_folder(self) -> str:
        from rorem_data.models.hub import resolve_pipeline_folder

        folder = resolve_pipeline_folder(os.fspath(self.pretrained_model),
                                         what="UNetDiscriminator pretrained_model")
        for sub in ("unet", "vae"):
            if not os.path.isfile(os.path.join(folder, sub, "config.json")):
                raise ConfigError(f"UNetDiscriminator: {folder} has no {sub}/config.json; pass an "
                                  "inpainting pipeline folder (e.g. stable-diffusion-xl-1.0-"
                                  "inpainting-0.1)")
        return folder

    def _text_conditioning(self, folder: str, unet):
        """(prompt_embeds (1, seq, D), pooled (1, P) or None) for the empty prompt."""
        torch = _torch()
        cfg = unet.config
        xl = cfg.addition_embed_type == "text_time"
        pooled_dim = None
        if xl:
            pooled_dim = int(cfg.projection_class_embeddings_input_dim
                             - 6 * cfg.addition_time_embed_dim)
        if self.text_embeddings == "zeros":
            seq = 77
            emb = torch.zeros(1, seq, int(cfg.cross_attention_dim))
            pooled = torch.zeros(1, pooled_dim) if xl else None
            return emb, pooled
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        pairs = [("tokenizer", "text_encoder", CLIPTextModel)]
        if os.path.isdir(os.path.join(folder, "text_encoder_2")):
            pairs.append(("tokenizer_2", "text_encoder_2", CLIPTextModelWithProjection))
        hidden, pooled = [], None
        for tok_name, enc_name, enc_cls in pairs:
            if not os.path.isdir(os.path.join(folder, enc_name)):
                raise ConfigError(f"UNetDiscriminator: {folder} has no {enc_name}/ for "
                                  "text_embeddings='empty-prompt'; use text_embeddings='zeros' "
                                  "or a full pipeline folder")
            tok = CLIPTokenizer.from_pretrained(folder, subfolder=tok_name)
            try:
                enc = enc_cls.from_pretrained(folder, subfolder=enc_name,
                                              use_safetensors=True).eval()
            except (OSError, ValueError) as exc:
                raise ConfigError(f"UNetDiscriminator: cannot load {folder}/{enc_name} from "
                                  f"safetensors weights: {str(exc).splitlines()[0]}") from None
            ids = tok("", padding="max_length", max_length=tok.model_max_length,
                      truncation=True, return_tensors="pt").input_ids
            with torch.no_grad():
                out = enc(ids, output_hidden_states=True)
            hidden.append(out.hidden_states[-2] if xl else out.last_hidden_state)
            if xl:
                pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
            del enc
        emb = torch.cat(hidden, dim=-1)
        if emb.shape[-1] != cfg.cross_attention_dim:
            raise ConfigError(f"UNetDiscriminator: text embeddings have width {emb.shape[-1]} but "
                              f"the UNet expects {cfg.cross_attention_dim}; the folder's text "
                              "encoders do not match its UNet")
        if xl and (pooled is None or pooled.shape[-1] != pooled_dim):
            raise ConfigError("UNetDiscriminator: the pooled text embedding does not match the "
                              "UNet's added-embedding size; use text_embeddings='zeros' or a "
                              "matching pipeline")
        return emb, pooled

    def _build(self, seed: int):
        """Load base UNet/VAE, drop the up blocks, attach head + LoRA; returns nothing."""
        torch = _torch()
        _diffusers()
        from peft import LoraConfig

        from rorem_data.models.pipelines import load_component

        folder = self._resolve_folder()
        what = "UNetDiscriminator pretrained_model"
        try:
            # the classes model_index.json names (diffusers exports only), safetensors only
            unet = load_component(folder, "unet", what=what)
            vae = load_component(folder, "vae", what=what)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"UNetDiscriminator: cannot load the UNet/VAE of {folder}: "
                              f"{str(exc).splitlines()[0]}") from None
        if unet.config.in_channels != 9:
            raise ConfigError(f"UNetDiscriminator: {folder}/unet has {unet.config.in_channels} "
                              "input channels; the discriminator needs an inpainting UNet (9: "
                              "latent, mask, source latent)")
        emb, pooled = self._text_conditioning(folder, unet)
        unet.up_blocks = torch.nn.ModuleList()  # encoder only: drop the decoder half
        unet.conv_norm_out = None
        unet.conv_act = None
        unet.conv_out = None
        mid_ch = int(unet.config.block_out_channels[-1])
        unet.requires_grad_(False)
        vae.requires_grad_(False)
        vae.eval()
        torch.manual_seed(seed)
        unet.cls_pred_branch = DiscriminatorHead(mid_ch, self.head_channels)
        unet.cls_pred_branch.requires_grad_(True)  # as released ...
        unet.add_adapter(LoraConfig(r=int(self.lora_rank), lora_alpha=self.lora_alpha,
                                    init_lora_weights="gaussian", target_modules=_LORA_TARGETS))
        # ... but add_adapter has just frozen every non-LoRA parameter, the head included.
        # Re-enable it (the released trainer does not, so its head never trains).
        unet.cls_pred_branch.requires_grad_(bool(self.train_head))
        if self.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        latent = int(self.resolution) // vae_factor
        down = 2 ** (len(unet.config.down_block_types) - 1)
        if latent % down:
            raise ConfigError(f"UNetDiscriminator: resolution {self.resolution} gives a "
                              f"{latent}x{latent} latent, not divisible by the UNet's "
                              f"downsampling {down}; use a multiple of {vae_factor * down}")
        device = _device(self.device)
        self.unet_ = unet.to(device)
        self.vae_ = vae.to(device)
        self.prompt_embeds_ = emb.to(device)
        self.pooled_embeds_ = pooled.to(device) if pooled is not None else None
        self._xl = unet.config.addition_embed_type == "text_time"

    # -- forward ---------------------------------------------------------------------------------
    def _latents(self, images):
        vae = self.vae_
        lat = vae.encode(images).latent_dist.mode()
        shift = getattr(vae.config, "shift_factor", None)
        if shift is not None:
            lat = lat - shift
        return lat * vae.config.scaling_factor

    def _autocast(self, device):
        torch = _torch()
        import contextlib

        if self.mixed_precision == "no":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.mixed_precision == "fp16" else torch.bfloat16
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _forward(self, xb):
        """(n, 7, S, S) in [0, 1] -> raw head output (n,)."""
        torch = _torch()
        import torch.nn.functional as F

        device = self.prompt_embeds_.device
        xb = xb.to(device)
        n = xb.shape[0]
        src = xb[:, 0:3] * 2 - 1
        res = xb[:, 3:6] * 2 - 1
        mask = (xb[:, 6:7] >= 0.5).to(xb.dtype)
        with self._autocast(device):
            with torch.no_grad():
                lat_res = self._latents(res)
                lat_src = self._latents(src)
            m_lat = F.interpolate(mask, size=lat_res.shape[-2:], mode="nearest")
            sample = torch.cat([lat_res, m_lat, lat_src], dim=1)
            added = None
            if self._xl:
                s = float(self.resolution)
                time_ids = torch.tensor([[s, s, 0.0, 0.0, s, s]], device=device).expand(n, 6)
                added = {"text_embeds": self.pooled_embeds_.expand(n, -1), "time_ids": time_ids}
            h = unet_encoder_forward(self.unet_, sample, 0, self.prompt_embeds_.expand(n, -1, -1),
                                     added)
            out = self.unet_.cls_pred_branch(h)
        return out.float()

    def _score_to_p1(self, out):
        torch = _torch()
        if self.loss == "mse":
            return torch.nn.functional.softplus(out).clamp(0.0, 1.0)
        return torch.sigmoid(out)

    # -- sklearn API -----------------------------------------------------------------------------
    def fit(self, X, y):
        """Train LoRA + head on pairs ``X`` with labels ``y`` (1 = success, 0 = failure).

        Parameters
        ----------
        X : sequence of (source, result, mask) or ndarray (n, 7, H, W)
            See :mod:`rorem_data.discriminators.pair_classifier`.
        y : array-like (n,)

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            One class only, non-binary labels, bad items.
        ConfigError
            Bad parameters; a base model that is missing, not an inpainting pipeline, or a hub
            id that is not in the local cache.
        """
        torch = _torch()
        from torch.utils.data import DataLoader

        self._check_params()
        y01 = self._encode_labels(y)
        data = PairInputs(X, int(self.resolution), labels=y01.astype(np.float32))
        seed = _seed(self.random_state)
        device = _device(self.device)
        bs = int(self.batch_size)
        per_epoch = math.ceil(len(data) / bs)
        total = int(self.max_steps) if self.max_steps is not None else per_epoch * int(self.epochs)
        log_every = per_epoch if self.max_steps is None else 100
        losses, block, block_n, steps = [], 0.0, 0, 0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            self._build(seed)
            params = [p for p in self.unet_.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=float(self.learning_rate),
                                    weight_decay=float(self.weight_decay))
            self.unet_.train()
            g = torch.Generator()
            g.manual_seed(seed)
            epoch = 0
            while steps < total:
                loader = DataLoader(data, batch_size=bs, shuffle=True, generator=g,
                                    num_workers=int(self.num_workers))
                for xb, yb in loader:
                    if steps >= total:
                        break
                    yb = yb.to(device=self.prompt_embeds_.device, dtype=torch.float32)
                    out = self._forward(xb)
                    if self.loss == "mse":
                        loss = torch.nn.functional.mse_loss(
                            torch.nn.functional.softplus(out), yb)
                    else:
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    steps += 1
                    block += float(loss.detach())
                    block_n += 1
                    if block_n == log_every:
                        losses.append(block / block_n)
                        block, block_n = 0.0, 0
                epoch += 1
            if block_n:
                losses.append(block / block_n)
        self.unet_.eval()
        self.n_steps_ = steps
        self.train_loss_ = losses
        return self

    def predict_proba(self, X) -> np.ndarray:
        """P(failure), P(success) per pair: float64 (n, 2), rows sum to 1; column 1 higher =
        better.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        ValidationError
            Bad items.
        """
        torch = _torch()
        from torch.utils.data import DataLoader

        check_is_fitted(self)
        data = PairInputs(X, int(self.resolution))
        out = []
        self.unet_.eval()
        with torch.inference_mode():
            for xb in DataLoader(data, batch_size=int(self.batch_size), shuffle=False,
                                 num_workers=int(self.num_workers)):
                out.append(self._score_to_p1(self._forward(xb)).cpu())
        p1 = torch.cat(out).double().numpy()
        return np.column_stack([1.0 - p1, p1])

    def score_raw(self, X) -> np.ndarray:
        """The head's raw output per pair (softplus score for "mse", logit for "bce"), float64."""
        torch = _torch()
        from torch.utils.data import DataLoader

        check_is_fitted(self)
        data = PairInputs(X, int(self.resolution))
        out = []
        with torch.inference_mode():
            for xb in DataLoader(data, batch_size=int(self.batch_size), shuffle=False):
                o = self._forward(xb)
                out.append((torch.nn.functional.softplus(o) if self.loss == "mse" else o).cpu())
        return torch.cat(out).double().numpy()

    def head_state(self) -> dict:
        """Copies of the head's parameters, ``{name: ndarray}`` (to check that it trains)."""
        check_is_fitted(self)
        return {k: v.detach().cpu().numpy().copy()
                for k, v in self.unet_.cls_pred_branch.state_dict().items()}

    def trainable_parameter_names(self) -> list[str]:
        """Names of the parameters the optimiser updates (LoRA, and the head if trained)."""
        check_is_fitted(self)
        return [n for n, p in self.unet_.named_parameters() if p.requires_grad]

    # -- persistence -----------------------------------------------------------------------------
    def _get_state(self):
        from peft.utils import get_peft_model_state_dict

        lora = get_peft_model_state_dict(self.unet_)
        arrays = {f"lora.{k}": v.detach().float().cpu().numpy() for k, v in lora.items()}
        for k, v in self.unet_.cls_pred_branch.state_dict().items():
            arrays[f"head.{k}"] = v.detach().float().cpu().numpy()
        return arrays, {"n_steps_": self.n_steps_, "train_loss_": list(self.train_loss_)}

    def _set_state(self, arrays, meta):
        torch = _torch()
        from peft.utils import set_peft_model_state_dict

        self._check_params()
        with torch.random.fork_rng(devices=[]):  # the throwaway init must not touch global RNG
            self._build(0)
        lora = {k[5:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                if k.startswith("lora.")}
        head = {k[5:]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                if k.startswith("head.")}
        res = set_peft_model_state_dict(self.unet_, lora)
        unexpected = list(getattr(res, "unexpected_keys", []) or [])
        missing = [k for k in (getattr(res, "missing_keys", []) or []) if "lora_" in k]
        if unexpected or missing or not lora:
            raise ConfigError(
                "UNetDiscriminator: the saved LoRA weights do not fit the base model "
                f"{self.pretrained_model} (unexpected {unexpected[:3]}, missing {missing[:3]}); "
                "load it with the pretrained_model it was trained on")
        try:
            self.unet_.cls_pred_branch.load_state_dict(head)
        except RuntimeError as exc:
            raise ConfigError(f"UNetDiscriminator: saved head weights do not fit the base model: "
                              f"{str(exc).splitlines()[0]}") from None
        self.unet_.eval()
        self.n_steps_ = int(meta["n_steps_"])
        self.train_loss_ = [float(v) for v in meta["train_loss_"]]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_steps_") and hasattr(self, "unet_")
