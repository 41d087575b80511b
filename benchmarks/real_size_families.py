"""Published configs of the transformer remover families, for ``benchmarks/real_size.py``.

Every weighted component of each family is described here by its class and the values of its
published ``config.json``; nothing is downloaded and nothing is allocated until
:func:`make_component` is called (on the meta device for parameter counts, for real when a
pipeline folder is built). The sources of every value are listed in the docstring of
``benchmarks/real_size.py`` ("Published configs").

``benchmarks/`` is not a package and its scripts strip their own folder from ``sys.path``, so
``real_size.py`` loads this file by path.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Text encoders shared by several families
# --------------------------------------------------------------------------------------------

#: CLIP ViT-L/14 text tower (``openai/clip-vit-large-patch14``; SD-1.5, SDXL, FLUX.1, SD3).
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
              max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu",
              projection_dim=768, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
              pad_token_id=1)
#: OpenCLIP ViT-bigG/14 text tower (SDXL's ``text_encoder_2``, SD3's ``text_encoder_2``).
CLIP_BIG_G = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                  num_hidden_layers=32, max_position_embeddings=77, vocab_size=49408,
                  hidden_act="gelu", projection_dim=1280, layer_norm_eps=1e-5, bos_token_id=0,
                  eos_token_id=2, pad_token_id=1)
#: T5-v1.1-XXL encoder (``google/t5-v1_1-xxl``; FLUX.1 ``text_encoder_2``, SD3 ``text_encoder_3``).
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
              num_decoder_layers=24, num_heads=64, relative_attention_num_buckets=32,
              relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
              dense_act_fn="gelu_new", is_gated_act=True, layer_norm_epsilon=1e-6,
              dropout_rate=0.1, tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
              decoder_start_token_id=0)
#: Qwen3-4B (FLUX.2-klein-4B and Z-Image text encoder).
QWEN3_4B = dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, hidden_act="silu",
                max_position_embeddings=40960, rms_norm_eps=1e-6, tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                attention_bias=False, bos_token_id=151643, eos_token_id=151645)
#: Qwen2.5-VL-7B-Instruct (Qwen-Image ``text_encoder``): 28-layer text model + 32-block ViT.
QWEN25_VL_7B = dict(
    text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                     num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                     hidden_act="silu", max_position_embeddings=128000, rms_norm_eps=1e-6,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                      "mrope_section": [16, 24, 24]},
                     bos_token_id=151643, eos_token_id=151645),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                       out_hidden_size=3584, patch_size=14, spatial_merge_size=2,
                       temporal_patch_size=2, window_size=112, hidden_act="silu",
                       fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2),
    image_token_id=151655, video_token_id=151656, vision_start_token_id=151652,
    vision_end_token_id=151653, tie_word_embeddings=False,
)

# --------------------------------------------------------------------------------------------
# VAEs
# --------------------------------------------------------------------------------------------

_KL_16 = dict(in_channels=3, out_channels=3, latent_channels=16, act_fn="silu",
              block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32,
              down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
              use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True,
              sample_size=1024, force_upcast=True)
#: FLUX.1 autoencoder (also Z-Image's).
FLUX_VAE = dict(_KL_16, scaling_factor=0.3611, shift_factor=0.1159)
#: SD3 autoencoder.
SD3_VAE = dict(_KL_16, scaling_factor=1.5305, shift_factor=0.0609)
#: FLUX.2 autoencoder: diffusers' ``AutoencoderKLFlux2`` defaults (what the conversion script builds).
FLUX2_VAE = dict(in_channels=3, out_channels=3, latent_channels=32,
                 block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32,
                 down_block_types=["DownEncoderBlock2D"] * 4,
                 up_block_types=["UpDecoderBlock2D"] * 4, use_quant_conv=True,
                 use_post_quant_conv=True, mid_block_add_attention=True, sample_size=1024,
                 batch_norm_eps=1e-4, batch_norm_momentum=0.1, patch_size=[2, 2])
#: Qwen-Image autoencoder (the Wan-2.1 causal 3D VAE layout; latent statistics as published).
QWEN_IMAGE_VAE = dict(
    base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
    temperal_downsample=[False, True, True], dropout=0.0,
    latents_mean=[-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                  0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
    latents_std=[2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916],
)

# --------------------------------------------------------------------------------------------
# The families
# --------------------------------------------------------------------------------------------

#: key -> title, pipeline class, weighted components and the activation allowance (GB, bfloat16,
#: one 1024 px step; doubled for float32). A component is ``(library, class, config)``; a
#: transformers model's config is ``(config class, values)``. The allowances are estimates
#: (latents, text states, attention at 4096 image tokens, the VAE at 1024 px), not measurements.
FAMILIES = {
    "flux-fill": {
        "title": "FLUX.1-Fill",
        "pipeline": "FluxFillPipeline",
        "allowance": 5.0,
        "components": {
            "transformer": ("diffusers", "FluxTransformer2DModel", dict(
                patch_size=1, in_channels=384, out_channels=64, num_layers=19,
                num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=[16, 56, 56])),
            "text_encoder": ("transformers", "CLIPTextModel", ("CLIPTextConfig", CLIP_L)),
            "text_encoder_2": ("transformers", "T5EncoderModel", ("T5Config", T5_XXL)),
            "vae": ("diffusers", "AutoencoderKL", FLUX_VAE),
        },
    },
    "flux2-klein": {
        "title": "FLUX.2-klein-4B",
        "pipeline": "Flux2KleinInpaintPipeline",
        "allowance": 4.0,
        "components": {
            "transformer": ("diffusers", "Flux2Transformer2DModel", dict(
                patch_size=1, in_channels=128, num_layers=5, num_single_layers=20,
                attention_head_dim=128, num_attention_heads=24, joint_attention_dim=7680,
                timestep_guidance_channels=256, mlp_ratio=3.0, axes_dims_rope=[32, 32, 32, 32],
                rope_theta=2000, eps=1e-6, guidance_embeds=False)),
            "text_encoder": ("transformers", "Qwen3ForCausalLM", ("Qwen3Config", QWEN3_4B)),
            "vae": ("diffusers", "AutoencoderKLFlux2", FLUX2_VAE),
        },
    },
    "sd3": {
        "title": "SD3-medium",
        "pipeline": "StableDiffusion3InpaintPipeline",
        "allowance": 4.0,
        "components": {
            "transformer": ("diffusers", "SD3Transformer2DModel", dict(
                sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24,
                attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                caption_projection_dim=1536, pooled_projection_dim=2048,
                pos_embed_max_size=192)),
            "text_encoder": ("transformers", "CLIPTextModelWithProjection",
                             ("CLIPTextConfig", CLIP_L)),
            "text_encoder_2": ("transformers", "CLIPTextModelWithProjection",
                               ("CLIPTextConfig", CLIP_BIG_G)),
            "text_encoder_3": ("transformers", "T5EncoderModel", ("T5Config", T5_XXL)),
            "vae": ("diffusers", "AutoencoderKL", SD3_VAE),
        },
    },
    "qwen-image": {
        "title": "Qwen-Image",
        "pipeline": "QwenImageInpaintPipeline",
        "allowance": 6.0,
        "components": {
            "transformer": ("diffusers", "QwenImageTransformer2DModel", dict(
                patch_size=2, in_channels=64, out_channels=16, num_layers=60,
                attention_head_dim=128, num_attention_heads=24, joint_attention_dim=3584,
                guidance_embeds=False, axes_dims_rope=[16, 56, 56])),
            "text_encoder": ("transformers", "Qwen2_5_VLForConditionalGeneration",
                             ("Qwen2_5_VLConfig", QWEN25_VL_7B)),
            "vae": ("diffusers", "AutoencoderKLQwenImage", QWEN_IMAGE_VAE),
        },
    },
    "z-image": {
        "title": "Z-Image",
        "pipeline": "ZImageInpaintPipeline",
        "allowance": 4.0,
        "components": {
            "transformer": ("diffusers", "ZImageTransformer2DModel", dict(
                all_patch_size=[2], all_f_patch_size=[1], in_channels=16, dim=3840, n_layers=30,
                n_refiner_layers=2, n_heads=30, n_kv_heads=30, norm_eps=1e-5, qk_norm=True,
                cap_feat_dim=2560, rope_theta=256.0, t_scale=1000.0, axes_dims=[32, 48, 48],
                axes_lens=[1536, 512, 512])),
            "text_encoder": ("transformers", "Qwen3Model", ("Qwen3Config", QWEN3_4B)),
            "vae": ("diffusers", "AutoencoderKL", FLUX_VAE),
        },
    },
}


def make_component(spec):
    """Build one component from its ``(library, class, config)`` entry (random weights, in
    torch's current default dtype and device: wrap in ``accelerate.init_empty_weights`` to
    allocate nothing)."""
    import copy

    library, cls_name, cfg = spec
    cfg = copy.deepcopy(cfg)
    if library == "diffusers":
        import diffusers

        return getattr(diffusers, cls_name)(**cfg)
    import transformers

    config_cls, values = cfg
    return getattr(transformers, cls_name)(getattr(transformers, config_cls)(**values))


def param_counts(key: str) -> dict:
    """Parameters per weighted component of a family, built on the meta device."""
    from accelerate import init_empty_weights

    counts = {}
    for comp, spec in FAMILIES[key]["components"].items():
        with init_empty_weights():
            model = make_component(spec)
        if hasattr(model, "tie_weights"):  # ties made under init_empty_weights do not hold
            model.tie_weights()
        counts[comp] = sum(p.numel() for p in model.parameters())
    return counts
