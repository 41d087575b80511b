"""Tiny, randomly initialised inpainting pipelines of the transformer (flow-matching) families:
FLUX.1 Fill / Inpaint / Kontext-Inpaint, FLUX.2-klein, Stable Diffusion 3, Qwen-Image (and its
Edit variant) and Z-Image; for tests, benchmarks and the demo.

As in :mod:`rorem_data.testing.tiny`, nothing is downloaded: every model is the family's own
diffusers/transformers class built from a small config with random weights, and every tokenizer
is written on the spot (the byte-level CLIP tokenizer of
:func:`~rorem_data.testing.tiny.tiny_tokenizer`, a character-level T5 Unigram vocabulary, a
byte-level Qwen BPE vocabulary with the chat and vision special tokens). Each builder saves an
ordinary diffusers pipeline folder (``model_index.json`` names the pipeline class, weights in
safetensors), so ``DiffusionPipeline.from_pretrained(folder)`` gives the family's inpainting
pipeline. Every ``build_tiny_<family>(out_dir, *, seed=0)`` writes ``out_dir`` (weights seeded
by ``seed``) and returns it. :func:`build_tiny_transformer_lora` writes a LoRA for any of them.

Image sizes: every VAE here has a spatial scale factor of 8 and every transformer works on 2x2
patches of the latent, so height and width must be multiples of 16 (:data:`SIZE_MULTIPLE`);
64x64, 48x64 and 32x32 all work. Quirks of the pipelines themselves, not of these builders:

- ``FluxKontextInpaintPipeline`` resizes its input to a ~1 MP Kontext resolution unless called
  with ``_auto_resize=False`` (in :data:`FAMILY_CALL_KWARGS`); it logs a "height and width have
  been adjusted" warning unless ``max_area=height * width`` is passed too.
- ``QwenImageEditInpaintPipeline`` ignores ``height`` and ``width`` and always generates at
  about one megapixel, hence :data:`SLOW_FAMILY_BUILDERS`.
- ``ZImageInpaintPipeline`` rewrites the caller's ``prompt`` list in place (chat template
  applied), so reusing the list for a second call changes the prompt: pass a fresh list.
- The FLUX.2-klein pipeline is built guidance-distilled like the released klein models, so it
  logs that ``guidance_scale`` is ignored unless called with ``guidance_scale=1.0``.

>>> from rorem_data.testing.tiny_families import build_tiny_flux_fill
>>> folder = build_tiny_flux_fill("/tmp/tiny-flux-fill")          # doctest: +SKIP
"""

from __future__ import annotations

import os

from rorem_data.testing.tiny import _bytes_to_unicode, _text_config, tiny_tokenizer

#: Height and width multiple every family here needs (VAE factor 8 times 2x2 patches).
SIZE_MULTIPLE = 16

T5_SPECIALS = ("<pad>", "</s>", "<unk>")

#: Special tokens of the Qwen chat / vision templates (ids follow the 256 byte symbols).
QWEN_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<think>", "</think>",
)
QWEN_VOCAB_SIZE = 256 + len(QWEN_SPECIALS)

#: A Qwen3-style chat template (text or typed-list contents, ``enable_thinking`` honoured).
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


def _qwen_id(token: str) -> int:
    return 256 + QWEN_SPECIALS.index(token)


# ---------------------------------------------------------------------------------------------
# Tokenizers


def tiny_t5_tokenizer():
    """A ``transformers.T5TokenizerFast`` over a character-level Unigram vocabulary (offline).

    The vocabulary is ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, the word-start symbol ``▁``,
    then the 95 printable ASCII characters, each alone and after ``▁``; no sentinel tokens.

    Returns
    -------
    transformers.T5TokenizerFast
        ``len(tokenizer) == len(t5_vocab())``.
    """
    from transformers import T5TokenizerFast

    return T5TokenizerFast(vocab=t5_vocab(), extra_ids=0, additional_special_tokens=[],
                           model_max_length=512)


def t5_vocab() -> list[tuple[str, float]]:
    """The (token, log-probability) list of :func:`tiny_t5_tokenizer`."""
    chars = [chr(c) for c in range(33, 127)]
    return ([(t, 0.0) for t in T5_SPECIALS] + [("▁", -2.0)]
            + [(c, -3.0) for c in chars] + [("▁" + c, -2.5) for c in chars])


def tiny_qwen_tokenizer():
    """A ``transformers.Qwen2TokenizerFast`` over a byte-level BPE vocabulary (offline).

    The 256 GPT-2 byte symbols (no merges) are ids 0-255; the special tokens of
    :data:`QWEN_SPECIALS` (``<|im_start|>``, ``<|vision_start|>``, ``<|image_pad|>`` ...) follow,
    so the vocabulary has :data:`QWEN_VOCAB_SIZE` tokens.

    Returns
    -------
    transformers.Qwen2TokenizerFast
    """
    from transformers import Qwen2TokenizerFast

    vocab = {s: i for i, s in enumerate(_bytes_to_unicode().values())}
    vocab.update({t: _qwen_id(t) for t in QWEN_SPECIALS})
    tok = Qwen2TokenizerFast(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", model_max_length=32768,
                             chat_template=QWEN_CHAT_TEMPLATE)
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS[1:])})
    return tok


# ---------------------------------------------------------------------------------------------
# Shared tiny models


def _t5_encoder(d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(t5_vocab()), d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=1,
        num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0,
    ))


def _flux_vae(latent_channels: int = 16, *, scaling_factor: float = 0.3611,
              shift_factor: float = 0.1159):
    """AutoencoderKL with the FLUX/SD3 layout (no quant convs, shift and scale), factor 8."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=shift_factor,
        scaling_factor=scaling_factor, force_upcast=False, sample_size=64,
    )


def _flux_transformer(in_channels: int, out_channels: int, *, guidance_embeds: bool,
                      joint_dim: int = 32, pooled_dim: int = 32):
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1, in_channels=in_channels, out_channels=out_channels, num_layers=1,
        num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=joint_dim, pooled_projection_dim=pooled_dim,
        guidance_embeds=guidance_embeds, axes_dims_rope=(4, 4, 8),
    )


def _flux1_components(seed: int, *, in_channels: int, guidance_embeds: bool) -> dict:
    """Components of a FLUX.1 pipeline (CLIP + T5 text encoders, 16-channel VAE)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    transformer = _flux_transformer(in_channels, 64, guidance_embeds=guidance_embeds)
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModel(_text_config(32, 32))
    torch.manual_seed(seed + 2)
    text_encoder_2 = _t5_encoder(32)
    torch.manual_seed(seed + 3)
    vae = _flux_vae(16)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    return dict(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(),
                text_encoder_2=text_encoder_2, tokenizer_2=tiny_t5_tokenizer(),
                transformer=transformer)


def _save(pipe, out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


# ---------------------------------------------------------------------------------------------
# Builders


def build_tiny_flux_fill(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``FluxFillPipeline`` (FLUX.1 Fill: the transformer takes the noisy
    latents, the masked-image latents and the 8x8-unshuffled mask, 64 + 64 + 256 = 384 channels).

    Parameters
    ----------
    out_dir : str
        Folder to write (``model_index.json`` plus one sub-folder per component).
    seed : int
        Seed of the random weights (the same seed gives the same weights).

    Returns
    -------
    str
        ``out_dir``; height and width must be multiples of 16.
    """
    from diffusers import FluxFillPipeline

    components = _flux1_components(seed, in_channels=384, guidance_embeds=True)
    return _save(FluxFillPipeline(**components), out_dir)


def build_tiny_flux2_klein_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``Flux2KleinInpaintPipeline`` (FLUX.2-klein: a Qwen3 text encoder
    whose hidden states 9, 18 and 27 are stacked, an ``AutoencoderKLFlux2`` with latent batch
    norm, 2x2-packed latents; guidance-distilled like the released klein models).

    The Qwen3 encoder has 27 layers (16 wide) because the pipeline reads hidden state 27 by
    default (``text_encoder_out_layers=(9, 18, 27)``).
    """
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinInpaintPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    hidden, latent = 16, 8
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4 * latent, num_layers=1, num_single_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=3 * hidden,
        timestep_guidance_channels=256, axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False,
    )
    torch.manual_seed(seed + 1)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=QWEN_VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=27, num_attention_heads=2, num_key_value_heads=2, head_dim=8,
        max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=_qwen_id("<|endoftext|>"), eos_token_id=_qwen_id("<|im_end|>"),
    ))
    torch.manual_seed(seed + 2)
    vae = AutoencoderKLFlux2(
        in_channels=3, out_channels=3, latent_channels=latent, block_out_channels=(8, 8, 16, 16),
        layers_per_block=1, norm_num_groups=8, sample_size=64,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    pipe = Flux2KleinInpaintPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder,
        tokenizer=tiny_qwen_tokenizer(), transformer=transformer, is_distilled=True,
    )
    return _save(pipe, out_dir)


def build_tiny_sd3_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``StableDiffusion3InpaintPipeline`` (MMDiT on 2x2 patches of a
    16-channel latent; two CLIP encoders with projection whose hidden states, 16 + 16 wide, are
    padded to the 32-wide T5 states; pooled projections 16 + 16).
    """
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3InpaintPipeline,
    )
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=1,
        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=32,
        caption_projection_dim=32, pooled_projection_dim=32, pos_embed_max_size=32,
    )
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModelWithProjection(_text_config(16, 16))
    torch.manual_seed(seed + 2)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(16, 16))
    torch.manual_seed(seed + 3)
    text_encoder_3 = _t5_encoder(32)
    torch.manual_seed(seed + 4)
    vae = _flux_vae(16, scaling_factor=1.5305, shift_factor=0.0609)
    pipe = StableDiffusion3InpaintPipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder, tokenizer=tiny_tokenizer(), text_encoder_2=text_encoder_2,
        tokenizer_2=tiny_tokenizer(), text_encoder_3=text_encoder_3,
        tokenizer_3=tiny_t5_tokenizer(),
    )
    return _save(pipe, out_dir)


def build_tiny_flux_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``FluxInpaintPipeline`` (FLUX.1-dev layout: a 64-channel packed
    text-to-image transformer with guidance embedding; inpainting by re-noising and blending).
    """
    from diffusers import FluxInpaintPipeline

    components = _flux1_components(seed, in_channels=64, guidance_embeds=True)
    return _save(FluxInpaintPipeline(**components), out_dir)


def build_tiny_flux_kontext_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``FluxKontextInpaintPipeline`` (FLUX.1 Kontext: the image latents
    are appended to the sequence of a 64-channel packed transformer).

    The pipeline sizes its output from the input image and, by default, resizes that image to
    one of Kontext's ~1 megapixel training resolutions; call it with ``_auto_resize=False``
    (see :data:`FAMILY_CALL_KWARGS`) to keep small images small.
    """
    from diffusers import FluxKontextInpaintPipeline

    components = _flux1_components(seed, in_channels=64, guidance_embeds=True)
    return _save(FluxKontextInpaintPipeline(**components), out_dir)


def _qwen_vl_text_encoder(hidden: int = 16):
    """A tiny ``Qwen2_5_VLForConditionalGeneration`` (2 text layers, 2-block vision tower) whose
    vocabulary and image token ids are those of :func:`tiny_qwen_tokenizer`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": QWEN_VOCAB_SIZE, "hidden_size": hidden, "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                                "mrope_section": [1, 1, 2]},
            "bos_token_id": _qwen_id("<|endoftext|>"), "eos_token_id": _qwen_id("<|im_end|>"),
            "pad_token_id": _qwen_id("<|endoftext|>"),
        },
        vision_config={
            "depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
            "out_hidden_size": hidden, "fullatt_block_indexes": [1],
        },
        image_token_id=_qwen_id("<|image_pad|>"), video_token_id=_qwen_id("<|video_pad|>"),
        vision_start_token_id=_qwen_id("<|vision_start|>"),
        vision_end_token_id=_qwen_id("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def _qwen_image_components(seed: int, *, hidden: int = 16) -> dict:
    """Transformer, VAE, Qwen2.5-VL text encoder, tokenizer and scheduler of a Qwen-Image
    pipeline (VAE factor 8 from three downsamples, 16 latent channels packed 2x2)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )

    z_dim = 16
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=4 * z_dim, out_channels=z_dim, num_layers=2,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=hidden,
        axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(seed + 1)
    text_encoder = _qwen_vl_text_encoder(hidden)
    torch.manual_seed(seed + 2)
    vae = AutoencoderKLQwenImage(
        base_dim=4, z_dim=z_dim, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
        base_image_seq_len=256, max_image_seq_len=8192, shift_terminal=0.02,
        time_shift_type="exponential",
    )
    return dict(scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                tokenizer=tiny_qwen_tokenizer(), transformer=transformer)


def build_tiny_qwen_image_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``QwenImageInpaintPipeline`` (Qwen-Image MMDiT on 2x2 patches of
    a 16-channel ``AutoencoderKLQwenImage`` latent; a Qwen2.5-VL text encoder, 16 wide).

    The pipeline runs true classifier-free guidance only when a ``negative_prompt`` is given.
    """
    from diffusers import QwenImageInpaintPipeline

    return _save(QwenImageInpaintPipeline(**_qwen_image_components(seed)), out_dir)


def tiny_qwen_vl_processor():
    """A ``transformers.Qwen2VLProcessor`` of :func:`tiny_qwen_tokenizer` and a
    ``Qwen2VLImageProcessor`` (and video processor) capped at 112x112 pixels (at most 16 image
    tokens), offline.

    Returns
    -------
    transformers.Qwen2VLProcessor
    """
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        video_processor=Qwen2VLVideoProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        tokenizer=tiny_qwen_tokenizer(), chat_template=QWEN_CHAT_TEMPLATE,
    )


def build_tiny_qwen_image_edit_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``QwenImageEditInpaintPipeline`` (Qwen-Image-Edit: the Qwen2.5-VL
    encoder sees the image through :func:`tiny_qwen_vl_processor`, the image latents are
    appended to the transformer's sequence).

    The pipeline ignores ``height`` and ``width``: it always generates at about one megapixel
    with the input's aspect ratio (multiples of 32, e.g. 1024x1024 for a square input), so its
    calls are far slower than the other families' and its output is not the requested size.
    """
    from diffusers import QwenImageEditInpaintPipeline

    pipe = QwenImageEditInpaintPipeline(**_qwen_image_components(seed),
                                        processor=tiny_qwen_vl_processor())
    return _save(pipe, out_dir)


def build_tiny_z_image_inpaint(out_dir: str, *, seed: int = 0) -> str:
    """Build and save a tiny ``ZImageInpaintPipeline`` (Z-Image single-stream DiT on 2x2
    patches of a 16-channel FLUX-style latent; a 16-wide Qwen3 text encoder whose second-to-last
    hidden state is the caption).
    """
    import torch
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        ZImageInpaintPipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    hidden = 16
    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2,
        n_refiner_layers=1, n_heads=2, n_kv_heads=2, qk_norm=True, cap_feat_dim=hidden,
        axes_dims=[8, 4, 4], axes_lens=[1024, 128, 128],
    )
    with torch.no_grad():  # the pad tokens start as torch.empty: give them seeded values
        transformer.x_pad_token.normal_(0, 0.02)
        transformer.cap_pad_token.normal_(0, 0.02)
    torch.manual_seed(seed + 1)
    text_encoder = Qwen3Model(Qwen3Config(
        vocab_size=QWEN_VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=8,
        max_position_embeddings=1024, pad_token_id=_qwen_id("<|endoftext|>"),
        eos_token_id=_qwen_id("<|im_end|>"),
    ))
    torch.manual_seed(seed + 2)
    vae = _flux_vae(16)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    pipe = ZImageInpaintPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                                 tokenizer=tiny_qwen_tokenizer(), transformer=transformer)
    return _save(pipe, out_dir)


# ---------------------------------------------------------------------------------------------
# Registry and LoRA

#: Pipeline class name -> builder, for the families whose tiny pipelines honour ``height`` and
#: ``width`` and run in about a second on a CPU (every one of them at 64x64, 48x64, 32x32).
FAMILY_BUILDERS = {
    "FluxFillPipeline": build_tiny_flux_fill,
    "Flux2KleinInpaintPipeline": build_tiny_flux2_klein_inpaint,
    "StableDiffusion3InpaintPipeline": build_tiny_sd3_inpaint,
    "FluxInpaintPipeline": build_tiny_flux_inpaint,
    "FluxKontextInpaintPipeline": build_tiny_flux_kontext_inpaint,
    "QwenImageInpaintPipeline": build_tiny_qwen_image_inpaint,
    "ZImageInpaintPipeline": build_tiny_z_image_inpaint,
}

#: Builders left out of :data:`FAMILY_BUILDERS`: ``QwenImageEditInpaintPipeline`` always
#: generates at about one megapixel whatever ``height`` and ``width`` say (~15 s a call here).
SLOW_FAMILY_BUILDERS = {
    "QwenImageEditInpaintPipeline": build_tiny_qwen_image_edit_inpaint,
}

#: The pipeline's own default ``strength`` per family (1.0 where the pipeline has no lower
#: default), plus the keywords a family needs so that a small image stays small.
FAMILY_CALL_KWARGS = {
    "FluxFillPipeline": {"strength": 1.0},
    "Flux2KleinInpaintPipeline": {"strength": 0.8},
    "StableDiffusion3InpaintPipeline": {"strength": 0.6},
    "FluxInpaintPipeline": {"strength": 0.6},
    # without it the input is resized to a ~1 MP Kontext resolution and so is the output
    "FluxKontextInpaintPipeline": {"strength": 1.0, "_auto_resize": False},
    "QwenImageInpaintPipeline": {"strength": 0.6},
    "QwenImageEditInpaintPipeline": {"strength": 0.6},
    "ZImageInpaintPipeline": {"strength": 1.0},
}

ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


def build_tiny_transformer_lora(pipeline_dir: str, out_dir: str, *, rank: int = 4, seed: int = 0,
                                target_modules=ATTENTION_PROJECTIONS) -> str:
    """Save a random LoRA for the ``transformer`` of the pipeline folder at ``pipeline_dir``.

    The adapter (peft ``LoraConfig`` on the attention projections, random non-zero ``B`` so it
    changes the output) is saved with the pipeline class's own ``save_lora_weights`` as
    ``pytorch_lora_weights.safetensors``, so ``Pipeline.from_pretrained(pipeline_dir)`` then
    ``pipe.load_lora_weights(out_dir)`` applies it.

    Parameters
    ----------
    pipeline_dir : str
        A diffusers pipeline folder (e.g. from a builder of :data:`FAMILY_BUILDERS`).
    out_dir : str
        Folder to write.
    rank : int
        LoRA rank (``lora_alpha`` is the same, so the scale is 1).
    seed : int
        Seed of the random LoRA weights.
    target_modules : sequence of str
        Names of the transformer's linear layers to adapt.

    Returns
    -------
    str
        ``out_dir``.

    Raises
    ------
    ValueError
        The pipeline has no ``transformer``, or its class has no LoRA loader for it.
    """
    import json

    import diffusers
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    with open(os.path.join(pipeline_dir, "model_index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    name = index["_class_name"]
    pipe_cls = getattr(diffusers, name, None)
    if "transformer" not in index or not isinstance(index["transformer"], list):
        raise ValueError(f"{name} at {pipeline_dir} has no transformer to put a LoRA on")
    if pipe_cls is None or not hasattr(pipe_cls, "save_lora_weights") or \
            "transformer" not in getattr(pipe_cls, "_lora_loadable_modules", ()):
        raise ValueError(f"{name} has no LoRA loader for its transformer (no LoraLoaderMixin)")
    transformer_cls = getattr(diffusers, index["transformer"][1])
    transformer = transformer_cls.from_pretrained(os.path.join(pipeline_dir, "transformer"))
    torch.manual_seed(seed)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=list(target_modules)))
    with torch.no_grad():
        for pname, p in transformer.named_parameters():
            if "lora_B" in pname:
                p.normal_(0, 0.1)
    os.makedirs(out_dir, exist_ok=True)
    pipe_cls.save_lora_weights(out_dir,
                               transformer_lora_layers=get_peft_model_state_dict(transformer))
    return out_dir
