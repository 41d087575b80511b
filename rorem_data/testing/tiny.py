"""Tiny, randomly initialised inpainting pipelines built from configs, for tests, benchmarks and
the demo.

Nothing here downloads anything: the CLIP tokenizer is a byte-level BPE vocabulary written on
the spot (256 byte symbols, the same with ``</w>``, two specials; no merges), and every model is
built from a small config and saved with ``save_pretrained``. The saved folders are ordinary
diffusers pipeline folders, so they load through exactly the code users run on real
checkpoints (:func:`rorem_data.removers.load_remover`,
``diffusers.AutoPipelineForInpainting.from_pretrained``, :func:`rorem_data.finetune.train`).
:class:`RecordingPipeline` wraps a loaded pipeline to record what each call was given.

The models produce noise-like images; they exist to exercise the plumbing, not to remove
objects. The VAE has four blocks, so its scale factor is 8 as in real Stable Diffusion: a
64x64 image is an 8x8 latent.

>>> from rorem_data.testing.tiny import build_tiny_sd_inpaint
>>> folder = build_tiny_sd_inpaint("/tmp/tiny-sd")          # doctest: +SKIP
"""

from __future__ import annotations

import os

BYTE_VOCAB_SIZE = 514  # 256 byte symbols, 256 with "</w>", <|startoftext|>, <|endoftext|>
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 / CLIP byte -> printable unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def byte_vocab() -> dict[str, int]:
    """The 514-token byte-level CLIP vocabulary (ids 512 and 513 are BOS and EOS)."""
    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": i + 256 for i, s in enumerate(symbols)})
    vocab[BOS] = 512
    vocab[EOS] = 513
    return vocab


def tiny_tokenizer(model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` over the byte-level vocabulary (no merges, offline).

    Parameters
    ----------
    model_max_length : int
        Sequence length the pipeline pads to (77 like CLIP).

    Returns
    -------
    transformers.CLIPTokenizer
    """
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=byte_vocab(), merges=[], model_max_length=model_max_length)


def clip_tokenizer(model_max_length: int = 77):
    """The real 49,408-token CLIP tokenizer, rebuilt offline from the BPE merges file that the
    open_clip_torch wheel ships (``bpe_simple_vocab_16e6.txt.gz``); for real-size models.

    Returns
    -------
    transformers.CLIPTokenizer
        ``<|startoftext|>`` = 49406, ``<|endoftext|>`` = 49407, as Stable Diffusion's.

    Raises
    ------
    DependencyError
        open_clip_torch is not installed.
    """
    import gzip
    import json
    import tempfile

    from transformers import CLIPTokenizer

    from rorem_data.core.deps import require

    open_clip = require("open_clip", purpose="the real CLIP vocabulary")
    bpe = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    with gzip.open(bpe, "rt", encoding="utf-8") as fh:
        merges = fh.read().split("\n")[1:49152 - 256 - 2 + 1]
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + [BOS, EOS]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
        with open(vocab_file, "w", encoding="utf-8") as fh:
            json.dump({t: i for i, t in enumerate(tokens)}, fh)
        with open(merges_file, "w", encoding="utf-8") as fh:
            fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")
        return CLIPTokenizer(vocab_file, merges_file, model_max_length=model_max_length,
                             pad_token=EOS)


def _text_config(hidden: int, projection: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=hidden,
        intermediate_size=2 * hidden, layer_norm_eps=1e-05, num_attention_heads=2,
        num_hidden_layers=2, vocab_size=BYTE_VOCAB_SIZE, hidden_act="gelu",
        projection_dim=projection, max_position_embeddings=77,
    )


def _tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8, force_upcast=False,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64,
    )


def build_tiny_sd_inpaint(out_dir: str, *, seed: int = 0, in_channels: int = 9) -> str:
    """Build and save a tiny Stable Diffusion inpainting pipeline.

    Parameters
    ----------
    out_dir : str
        Folder to write (``model_index.json`` plus one sub-folder per component).
    seed : int
        Seed of the random weights (the same seed gives byte-identical weights).
    in_channels : int
        UNet input channels: 9 (an inpainting UNet, the default) or 4 (a text-to-image UNet).

    Returns
    -------
    str
        ``out_dir``, loadable with ``AutoPipelineForInpainting.from_pretrained``.
    """
    import torch
    from diffusers import (
        PNDMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4,
    )
    vae = _tiny_vae()
    text_encoder = CLIPTextModel(_text_config(16, 16))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(), unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_tiny_sdxl_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny SDXL inpainting pipeline (two text encoders, pooled embeddings,
    six micro-conditioning time ids as in ``stable-diffusion-xl-1.0-inpainting-0.1``).

    Parameters
    ----------
    out_dir : str
        Folder to write.
    seed : int
        Seed of the random weights.

    Returns
    -------
    str
        ``out_dir``.
    """
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    hidden1, hidden2, pooled, time_dim = 16, 16, 16, 8
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * time_dim + pooled,
        cross_attention_dim=hidden1 + hidden2,
    )
    vae = _tiny_vae()
    text_encoder = CLIPTextModel(_text_config(hidden1, hidden1))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(hidden2, pooled))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=scheduler,
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True, add_watermarker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def build_tiny_lora(pipeline_dir: str, out_dir: str, *, rank: int = 4, seed: int = 0,
                    target_modules=("to_q", "to_k", "to_v", "to_out.0")) -> str:
    """Save a random LoRA for the UNet of the pipeline at ``pipeline_dir`` (diffusers format,
    ``pytorch_lora_weights.safetensors``), loadable with ``pipe.load_lora_weights(out_dir)``.

    Returns
    -------
    str
        ``out_dir``.
    """
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(pipeline_dir, "unet"))
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=list(target_modules)))
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionXLInpaintPipeline,
    )

    is_xl = getattr(unet.config, "addition_embed_type", None) == "text_time"
    saver = StableDiffusionXLInpaintPipeline if is_xl else StableDiffusionInpaintPipeline
    saver.save_lora_weights(out_dir, unet_lora_layers=get_peft_model_state_dict(unet),
                            safe_serialization=True)
    return out_dir


class RecordingPipeline:
    """A pipeline wrapper that records what each call received, then calls the pipeline.

    Put it in place of a remover's pipeline (``remover.pipe = RecordingPipeline(remover.pipe)``)
    to see the size and the mask the model was given.

    Attributes
    ----------
    calls : list of dict
        One per call: ``width``, ``height``, ``image_sizes`` (list of (w, h)) and ``masks``
        (list of bool arrays, True = object, as given to the pipeline).
    """

    def __init__(self, pipe):
        self.pipe = pipe
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        import numpy as np

        images, masks = kwargs.get("image") or [], kwargs.get("mask_image") or []
        self.calls.append({
            "width": kwargs.get("width"), "height": kwargs.get("height"),
            "image_sizes": [tuple(im.size) for im in images],
            "masks": [np.asarray(m.convert("L")) >= 128 for m in masks],
        })
        return self.pipe(**kwargs)

    def __getattr__(self, name):
        return getattr(self.pipe, name)


def build_tiny_clip(out_dir: str, *, embed_dim: int = 32, image_size: int = 64, layers: int = 2,
                    width: int = 64, context_length: int = 16, vocab_size: int = 256,
                    text_width: int = 32, text_layers: int = 1, seed: int = 0) -> str:
    """Save a random open_clip model as a ``local-dir`` folder (``open_clip_config.json`` and
    ``open_clip_model.safetensors``), loadable by the ``clip`` featurizer with
    ``model="local-dir:<out_dir>"``. No download, no pickle.

    Returns
    -------
    str
        ``out_dir``.
    """
    import json
    import os

    import open_clip
    import torch
    from safetensors.torch import save_file

    cfg = {"embed_dim": embed_dim,
           "vision_cfg": {"image_size": image_size, "layers": layers, "width": width,
                          "patch_size": 16},
           "text_cfg": {"context_length": context_length, "vocab_size": vocab_size,
                        "width": text_width, "heads": 2, "layers": text_layers}}
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(out_dir, "open_clip_model.safetensors"))
    with open(os.path.join(out_dir, "open_clip_config.json"), "w") as fh:
        json.dump({"model_cfg": cfg, "preprocess_cfg": {}}, fh)
    return out_dir
