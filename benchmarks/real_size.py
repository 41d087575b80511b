#!/usr/bin/env python
"""Real-size models on this machine: SD-1.5-inpainting, SDXL-inpainting and the transformer
remover families (FLUX.1-Fill, FLUX.2-klein-4B, SD3-medium, Qwen-Image, Z-Image) at their
published sizes, with random weights built in process (nothing is downloaded).

For each model the pipeline folder is written component by component from the published
``config.json`` values (below, with their sources), then loaded and run for one denoising
step through the same path users run (``RemoverSpec`` -> ``load_remover`` ->
``Remover.remove``): SD / SDXL at 512 px (float32 by default), the transformer families at
1024 px (bfloat16 by default), each with its family's own defaults (so SD3's classifier-free
guidance and Qwen-Image's true CFG run the transformer twice in that step). Then one training
step of the RORem UNet discriminator
(:class:`rorem_data.discriminators.unet.UNetDiscriminator`: SDXL-inpainting encoder + LoRA rank 4
+ head, 512 px, the empty-prompt embedding) on the SDXL folder.

Every measured step runs in its own child process, so its peak RSS (``ru_maxrss``) is its own;
with ``--device cuda`` the step also records ``torch.cuda.max_memory_allocated()`` (peak GPU
memory), the GPU's name, and the seconds of a second image after a warm-up one. A step whose
estimated memory (parameters x bytes + an activation allowance) exceeds ``--limit-gb`` (20 on
the CPU, the GPU's memory with ``--device cuda``) or the memory available now (RAM, or free GPU
memory for a step on the GPU) is skipped, and the table says so; so is a build whose weights
would not fit on the disk. Parameter counts come from the configs on the meta device, so they
print everywhere. Not part of the test run; SD / SDXL take ~10-20 minutes and ~20 GB of disk on
a 2-core machine; on a 24 GB machine every transformer family is skipped. The transformer
families' folders are written in the run dtype and removed after their step (unless ``--keep``);
Qwen-Image needs ~58 GB of disk in bfloat16.

    python benchmarks/real_size.py [--only sd15,sdxl,disc] [--families all] [--device cpu]
                                   [--sdxl-dtype float32] [--families-dtype bfloat16] [--keep DIR]
    python benchmarks/real_size.py --only none --families flux-fill,z-image --device cuda

Published configs
-----------------
* SD-1.5 inpainting (``runwayml/stable-diffusion-inpainting``): UNet ``block_out_channels``
  (320, 640, 1280, 1280), ``attention_head_dim`` 8, ``cross_attention_dim`` 768,
  ``layers_per_block`` 2, ``in_channels`` 9; VAE (128, 256, 512, 512), ``layers_per_block`` 2,
  scaling 0.18215; text encoder CLIP ViT-L/14 text tower (768 wide, 12 layers, 12 heads, 3072
  MLP, ``quick_gelu``, vocab 49408); PNDM scheduler, scaled-linear betas 0.00085-0.012.
* SDXL inpainting (``diffusers/stable-diffusion-xl-1.0-inpainting-0.1``, initialised from
  SDXL-base-1.0): UNet (320, 640, 1280), ``attention_head_dim`` (5, 10, 20),
  ``transformer_layers_per_block`` (1, 2, 10), ``cross_attention_dim`` 2048,
  ``addition_time_embed_dim`` 256, ``projection_class_embeddings_input_dim`` 2816,
  linear projections, ``in_channels`` 9; VAE as SD with scaling 0.13025 and ``force_upcast``;
  text encoders CLIP ViT-L/14 (as above) and OpenCLIP ViT-bigG/14 text tower (1280 wide, 32
  layers, 20 heads, 5120 MLP, ``gelu``, projection 1280); Euler scheduler, "leading" spacing.
* FLUX.1-Fill (``black-forest-labs/FLUX.1-Fill-dev``): ``FluxTransformer2DModel`` patch 1,
  ``in_channels`` 384 (64 noisy + 64 masked-image + 256 mask channels), ``out_channels`` 64, 19
  double + 38 single blocks, 24 heads x 128, ``joint_attention_dim`` 4096,
  ``pooled_projection_dim`` 768, ``guidance_embeds``, RoPE axes (16, 56, 56); text encoders CLIP
  ViT-L/14 (``CLIPTextModel``, as above) and T5-v1.1-XXL encoder (4096 wide, 24 layers, 64 heads
  x 64, 10240 gated-GELU MLP, 32 relative-position buckets, vocab 32128); VAE ``AutoencoderKL``
  16 latent channels, (128, 256, 512, 512), no quant convs, scaling 0.3611, shift 0.1159.
  Sources: the Fill-dev ``transformer/config.json`` as quoted by public FLUX.1-Fill-dev
  loaders (384 / 19 / 38 / 24 x 128 / 4096 / 768 / guidance) and diffusers'
  ``FluxTransformer2DModel`` defaults (the same, and RoPE (16, 56, 56)); the T5-XXL
  ``config.json`` as quoted by SD3 / FLUX reference code; the VAE ``config.json`` as quoted for
  the FLUX / Z-Image VAE. Not confirmed from the hub file: ``out_channels`` 64 (the value the
  pipeline needs: 16 latent channels x 2 x 2 packed; one public quote says 16 with patch 2).
* FLUX.2-klein-4B (``black-forest-labs/FLUX.2-klein-4B``): ``Flux2Transformer2DModel`` patch 1,
  ``in_channels`` 128, 5 double + 20 single blocks, 24 heads x 128, ``joint_attention_dim``
  7680 (3 stacked Qwen3 hidden states x 2560), timestep channels 256, MLP ratio 3, RoPE axes
  (32, 32, 32, 32), theta 2000, no guidance embedding (from the ``klein-4b`` entry of diffusers'
  ``scripts/convert_flux2_to_diffusers.py``); text encoder Qwen3-4B (``Qwen3ForCausalLM``, see
  Z-Image); VAE ``AutoencoderKLFlux2`` with diffusers' class defaults (32 latent channels,
  (128, 256, 512, 512), quant convs, latent batch norm), which is what that conversion script
  builds. Not confirmed: that the klein text encoder is exactly Qwen3-4B's published config
  (public ports say "Qwen3-4B"; 7680 = 3 x 2560 agrees).
* SD3-medium (``stabilityai/stable-diffusion-3-medium-diffusers``): ``SD3Transformer2DModel``
  24 layers, 24 heads x 64, patch 2, 16 channels, ``joint_attention_dim`` 4096,
  ``caption_projection_dim`` 1536, ``pooled_projection_dim`` 2048, ``pos_embed_max_size`` 192,
  ``sample_size`` 128 (its ``transformer/config.json`` as quoted by several public loaders);
  text encoders CLIP ViT-L/14 and OpenCLIP bigG/14 (both ``CLIPTextModelWithProjection``, as
  above) and T5-v1.1-XXL (as FLUX.1); VAE as FLUX.1's with scaling 1.5305, shift 0.0609.
* Qwen-Image (``Qwen/Qwen-Image``): ``QwenImageTransformer2DModel`` 60 layers, 24 heads x 128,
  patch 2, ``in_channels`` 64, ``out_channels`` 16, ``joint_attention_dim`` 3584, RoPE axes
  (16, 56, 56), no guidance embedding (its ``transformer/config.json`` as quoted by public
  loaders; also diffusers' defaults); text encoder Qwen2.5-VL-7B-Instruct
  (``Qwen2_5_VLForConditionalGeneration``: 3584 wide, 28 layers, 28 heads, 4 KV heads, 18944
  MLP, vocab 152064, untied, mRoPE sections (16, 24, 24); ViT 32 blocks x 1280, 16 heads, 3420
  MLP, patch 14, merge 2, window 112, full attention at 7, 15, 23, 31; its ``config.json`` as
  quoted by public conversion code); VAE ``AutoencoderKLQwenImage`` base 96, z 16, mults
  (1, 2, 4, 4), 2 res blocks, temporal downsample (F, T, T), Wan-2.1 latent statistics (also
  diffusers' defaults). Not confirmed from the hub file itself: the VAE's latent statistics
  (they change no shape).
* Z-Image (``Tongyi-MAI/Z-Image-Turbo``): ``ZImageTransformer2DModel`` dim 3840, 30 layers, 2
  refiner layers, 30 heads (30 KV), QK norm, ``cap_feat_dim`` 2560, patch 2, 16 channels, RoPE
  axes (32, 48, 48) over (1536, 512, 512), theta 256, ``t_scale`` 1000; text encoder Qwen3-4B
  (``Qwen3Model``: 2560 wide, 36 layers, 32 heads, 8 KV heads x 128, 9728 MLP, vocab 151936,
  tied embeddings, RoPE theta 1e6); VAE the FLUX.1 VAE (the three ``config.json`` files as
  quoted by public Z-Image loaders; diffusers' class defaults agree except ``axes_lens``).

These values are the ones quoted by the model cards' ``config.json`` files and by public code
that rebuilds them (diffusers' conversion scripts and tests); no hub file was read directly, so
each is as good as those quotes (they agree with each other). The CLIP tokenizer is the real
49,408-token CLIP vocabulary rebuilt from open_clip's BPE file. The T5 and Qwen tokenizers are
the tiny ones of :mod:`rorem_data.testing.tiny_families` (a ~190-token T5 vocabulary, a
266-token byte-level Qwen vocabulary): the real vocabularies (32,128 / ~151,600 tokens) are not
shipped offline, and the tiny ids are a subset of the encoders' embedding tables, so the
shapes and the compute are the real ones; only the token counts of a prompt differ. The
schedulers (and ``model_index.json``) are those of the tiny pipelines, which follow the
families' published scheduler configs.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # see generate.py

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time

GB = 1024 ** 3



def _load_families():
    """benchmarks/real_size_families.py, loaded by path (this folder is not on sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "real_size_families", os.path.join(HERE, "real_size_families.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAMILIES_MODULE = _load_families()
FAMILIES = FAMILIES_MODULE.FAMILIES
CLIP_L, CLIP_BIG_G = FAMILIES_MODULE.CLIP_L, FAMILIES_MODULE.CLIP_BIG_G
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, act_fn="silu",
           block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32,
           down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
MODELS = {
    "sd15": {
        "title": "SD-1.5-inpainting",
        "pipeline": "StableDiffusionInpaintPipeline",
        "unet": dict(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                     block_out_channels=[320, 640, 1280, 1280], attention_head_dim=8,
                     cross_attention_dim=768, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
                     center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
                     downsample_padding=1, mid_block_scale_factor=1,
                     down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                     up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3),
        "vae": dict(VAE, sample_size=512, scaling_factor=0.18215),
        "text_encoders": {"text_encoder": ("CLIPTextModel", CLIP_L)},
        "scheduler": ("PNDMScheduler", dict(beta_start=0.00085, beta_end=0.012,
                                            beta_schedule="scaled_linear", num_train_timesteps=1000,
                                            set_alpha_to_one=False, skip_prk_steps=True,
                                            steps_offset=1, clip_sample=False)),
    },
    "sdxl": {
        "title": "SDXL-inpainting",
        "pipeline": "StableDiffusionXLInpaintPipeline",
        "unet": dict(sample_size=128, in_channels=9, out_channels=4, layers_per_block=2,
                     block_out_channels=[320, 640, 1280], attention_head_dim=[5, 10, 20],
                     transformer_layers_per_block=[1, 2, 10], cross_attention_dim=2048,
                     addition_embed_type="text_time", addition_time_embed_dim=256,
                     projection_class_embeddings_input_dim=2816, use_linear_projection=True,
                     act_fn="silu", norm_num_groups=32, norm_eps=1e-5, center_input_sample=False,
                     flip_sin_to_cos=True, freq_shift=0, downsample_padding=1,
                     mid_block_scale_factor=1,
                     down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                     up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]),
        "vae": dict(VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True),
        "text_encoders": {"text_encoder": ("CLIPTextModel", CLIP_L),
                          "text_encoder_2": ("CLIPTextModelWithProjection", CLIP_BIG_G)},
        "scheduler": ("EulerDiscreteScheduler", dict(beta_start=0.00085, beta_end=0.012,
                                                     beta_schedule="scaled_linear",
                                                     num_train_timesteps=1000, steps_offset=1,
                                                     timestep_spacing="leading",
                                                     interpolation_type="linear",
                                                     use_karras_sigmas=False)),
    },
}
# activation allowances (GB) on top of the weights, measured loosely on this machine (the
# transformer families' own allowances, estimates, are in real_size_families.FAMILIES)
ALLOWANCE = {"build": 2.5, "generate": {"sd15": 2.0, "sdxl": 3.0}, "disc": 4.5}
# the transformer families are saved in 5 GB shards; loading one on the CPU holds the mapped
# shard being read on top of the weights already loaded
SHARD_GB = 5.0


# --------------------------------------------------------------------------------------------
# Parameter counts and estimates (no weights allocated)
# --------------------------------------------------------------------------------------------


def _components(name: str):
    """(component name, constructor) of a model's weighted components."""
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    spec = MODELS[name]
    out = [("unet", lambda: UNet2DConditionModel(**spec["unet"])),
           ("vae", lambda: AutoencoderKL(**spec["vae"]))]
    for comp, (cls, cfg) in spec["text_encoders"].items():
        out.append((comp, lambda cls=cls, cfg=cfg: getattr(transformers, cls)(
            transformers.CLIPTextConfig(**cfg))))
    return out


def param_counts(name: str) -> dict:
    """Parameters per component, from the configs on the meta device."""
    from accelerate import init_empty_weights

    counts = {}
    for comp, make in _components(name):
        with init_empty_weights():
            m = make()
        counts[comp] = sum(p.numel() for p in m.parameters())
    return counts


def available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    return float("inf")


def gpu_info(device: str) -> dict:
    """Free and total memory (bytes) and name of a CUDA device, asked in a child process so
    that this process holds no CUDA context (which would take GPU memory from the steps)."""
    code = ("import json, sys, torch; d = torch.device(sys.argv[1]); "
            "f, t = torch.cuda.mem_get_info(d); "
            "print(json.dumps({'free': f, 'total': t, 'name': torch.cuda.get_device_name(d)}))")
    proc = subprocess.run([sys.executable, "-c", code, device], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or "").strip().splitlines()
        raise SystemExit(f"--device {device}: no CUDA device ({tail[-1] if tail else 'no output'})")


#: Written into a --keep folder this script made: the model folders under it are removed and
#: rebuilt only in a folder that carries it.
MARK = ".rorem-real-size"


def own_work_dir(path: str) -> str:
    """The --keep folder, made (and marked) here, or one this script marked before; a symlink
    or a folder with other contents is refused (its subfolders would be deleted and rebuilt)."""
    work = os.path.abspath(path)
    if os.path.islink(path):
        raise SystemExit(f"--keep {path}: a symbolic link; give a real folder")
    if os.path.isdir(work) and os.listdir(work) and not os.path.isfile(os.path.join(work, MARK)):
        raise SystemExit(f"--keep {path}: the folder holds files this script did not write; "
                         "give a new or empty folder (model folders under it are deleted and rebuilt)")
    os.makedirs(work, exist_ok=True)
    open(os.path.join(work, MARK), "a").close()
    return work


def _short(n: int) -> str:
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


# --------------------------------------------------------------------------------------------
# The measured steps (each runs in a child process: python real_size.py --child STEP ...)
# --------------------------------------------------------------------------------------------


def build(name: str, folder: str) -> dict:
    """Write a full-size pipeline folder with random weights, one component at a time."""
    import diffusers
    import torch

    from rorem_data.testing import tiny

    spec = MODELS[name]
    t0 = time.perf_counter()
    builder = tiny.build_tiny_sdxl_inpaint if name == "sdxl" else tiny.build_tiny_sd_inpaint
    builder(folder)  # model_index.json and the component classes; every component is replaced
    tok = tiny.clip_tokenizer()
    for sub in ("tokenizer", "tokenizer_2"):
        if os.path.isdir(os.path.join(folder, sub)):
            shutil.rmtree(os.path.join(folder, sub))
            tok.save_pretrained(os.path.join(folder, sub))
    cls_name, cfg = spec["scheduler"]
    shutil.rmtree(os.path.join(folder, "scheduler"))
    # from_config, as diffusers reads a scheduler_config.json: keys a class does not take are ignored
    getattr(diffusers, cls_name).from_config(cfg).save_pretrained(os.path.join(folder, "scheduler"))
    torch.manual_seed(0)
    for comp, make in _components(name):
        shutil.rmtree(os.path.join(folder, comp))
        model = make()
        model.save_pretrained(os.path.join(folder, comp), safe_serialization=True,
                              max_shard_size="2GB")
        del model
    return {"seconds": time.perf_counter() - t0}


def build_family(key: str, folder: str, dtype: str) -> dict:
    """Write a real-size pipeline folder of a transformer family with random weights in
    ``dtype``: the family's tiny pipeline (``model_index.json``, scheduler, tokenizers) with
    every weighted component replaced, one at a time, by its published-config counterpart."""
    import torch

    from rorem_data.testing import tiny
    from rorem_data.testing.tiny_families import FAMILY_BUILDERS

    fam = FAMILIES[key]
    t0 = time.perf_counter()
    FAMILY_BUILDERS[fam["pipeline"]](folder)
    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    for sub in ("tokenizer", "tokenizer_2", "tokenizer_3"):  # T5 / Qwen ones stay tiny
        if str((index.get(sub) or [None, None])[1]).startswith("CLIPTokenizer"):
            shutil.rmtree(os.path.join(folder, sub))
            tiny.clip_tokenizer().save_pretrained(os.path.join(folder, sub))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # weights are created in the run dtype
    try:
        torch.manual_seed(0)
        for comp, spec in fam["components"].items():
            listed = (index.get(comp) or [None, None])[1]
            if listed != spec[1]:
                raise RuntimeError(f"{fam['pipeline']} lists {comp} as {listed}, not {spec[1]}")
            shutil.rmtree(os.path.join(folder, comp))
            model = FAMILIES_MODULE.make_component(spec)
            model.save_pretrained(os.path.join(folder, comp), max_shard_size=f"{SHARD_GB:g}GB")
            del model
    finally:
        torch.set_default_dtype(previous)
    return {"seconds": time.perf_counter() - t0}


def _photo(size: int = 512):
    import numpy as np
    from PIL import Image
    from skimage import data

    img = np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC))
    yy, xx = np.mgrid[0:size, 0:size]
    mask = ((yy - 0.3 * size) / (0.12 * size)) ** 2 + ((xx - 0.5 * size) / (0.1 * size)) ** 2 <= 1
    return img, mask


def generate(name: str, folder: str, dtype: str, device: str = "cpu",
             resolution: int = 512) -> dict:
    """load_remover + one step at ``resolution`` px through Remover.remove. On an accelerator
    a second image is timed after the first (which pays for kernel selection and warm-up)."""
    from rorem_data.removers import RemoverSpec, load_remover

    spec = RemoverSpec(model=folder, steps=1, strength=1.0, resolution=resolution, dtype=dtype,
                       device=device, name=f"{name}-random")
    t0 = time.perf_counter()
    remover = load_remover(spec)
    t1 = time.perf_counter()
    img, mask = _photo(resolution)
    out = remover.remove([img], [mask], [0], output="numpy")[0]  # numpy output: synchronised
    t2 = time.perf_counter()
    assert out.shape == img.shape
    res = {"load_seconds": t1 - t0, "step_seconds": t2 - t1, "pipeline": type(remover.pipe).__name__}
    if device != "cpu":
        remover.remove([img], [mask], [1], output="numpy")
        res["warmup_seconds"], res["step_seconds"] = res["step_seconds"], time.perf_counter() - t2
    return res


def train_discriminator(folder: str, device: str = "cpu") -> dict:
    """UNetDiscriminator.fit: build (load + encoder + LoRA + head) and one training step."""
    import numpy as np

    from rorem_data.discriminators.unet import UNetDiscriminator

    img, mask = _photo()
    rng = np.random.default_rng(0)
    noisy = np.clip(img.astype(int) + rng.integers(-40, 40, img.shape), 0, 255).astype(np.uint8)
    X = [(img, noisy, mask), (img, img, mask)]
    disc = UNetDiscriminator(pretrained_model=folder, resolution=512, batch_size=1, max_steps=1,
                             device=device, random_state=0)
    t0 = time.perf_counter()
    disc.fit(X, [0, 1])
    seconds = time.perf_counter() - t0
    trainable = sum(p.numel() for p in disc.unet_.parameters() if p.requires_grad)
    return {"seconds": seconds, "steps": disc.n_steps_, "trainable_params": trainable}


def child(argv) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    step, name, folder = argv[0], argv[1], argv[2]
    device = argv[4] if len(argv) > 4 else "cpu"
    if step == "build":
        res = build(name, folder)
    elif step == "build-family":
        res = build_family(name, folder, argv[3])
    elif step == "generate":
        res = generate(name, folder, argv[3], device, int(argv[5]) if len(argv) > 5 else 512)
    else:
        res = train_discriminator(folder, device)
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB
    if device.startswith("cuda"):
        res["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / GB
        res["gpu"] = torch.cuda.get_device_name(device)
    print("RESULT " + json.dumps(res), flush=True)


def run_child(*args) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ROREM_PROGRESS": "0",
           "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args],
                          capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout)[-1500:]
    return {"error": f"exit {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}"}


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _parse_families(value: str) -> list:
    if value.strip() in ("all", ""):
        return list(FAMILIES) if value.strip() == "all" else []
    keys = [k.strip() for k in value.split(",") if k.strip() and k.strip() != "none"]
    unknown = [k for k in keys if k not in FAMILIES]
    if unknown:
        raise SystemExit(f"--families: unknown {', '.join(unknown)}; choose from all, none, "
                         + ", ".join(FAMILIES))
    return keys


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="sd15,sdxl,disc", help="comma list of sd15, sdxl, disc")
    ap.add_argument("--families", default="all",
                    help="comma list of " + ", ".join(FAMILIES) + "; or all, none")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (where the steps run)")
    ap.add_argument("--sd15-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--sdxl-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--families-dtype", default="bfloat16", choices=["float32", "bfloat16"],
                    help="dtype of the transformer families' weights and run")
    ap.add_argument("--resolution", type=int, default=1024,
                    help="working size of the transformer families (px)")
    ap.add_argument("--limit-gb", type=float, default=None,
                    help="skip steps estimated above this (default 20 on the CPU, the GPU's "
                         "memory on cuda)")
    ap.add_argument("--keep", default=None, help="write the model folders here and keep them")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    families = _parse_families(args.families)
    on_gpu = args.device != "cpu"
    gpu = gpu_info(args.device) if on_gpu else {}
    limit = args.limit_gb if args.limit_gb is not None else (gpu["total"] / GB if on_gpu else 20.0)
    work = own_work_dir(args.keep) if args.keep else tempfile.mkdtemp(prefix="rorem-real-size-")
    os.environ["ROREM_DATA_CACHE"] = os.path.join(work, "cache")
    rows = []

    def row(model, what, dtype, est, res=None, note=""):
        rows.append((model, what, dtype, est, res or {}, note))
        r = res or {}
        print(f"  {model}: {what}: {r.get('seconds', '-')} s, peak {r.get('peak_rss_gb', '-')} GB "
              f"{note}", flush=True)

    def fits(est: float, host: float | None = None) -> str:
        """Why a step estimated at ``est`` GB is skipped ('' if it is not). ``host``: the part
        held in RAM when the step runs on the GPU (the weights pass through it while loading);
        None for a step that runs in RAM (a build, or any step on the CPU)."""
        if est > limit:
            return f"skipped: estimated {est:.1f} GB > the {limit:g} GB limit"
        avail = available_gb()
        if host is not None:
            free = gpu_info(args.device)["free"] / GB
            if est > free - 1.0:
                return f"skipped: estimated {est:.1f} GB > {free:.1f} GB free on the GPU now"
            if host > avail - 1.0:
                return f"skipped: {host:.1f} GB of weights to load > {avail:.1f} GB RAM available now"
        elif est > avail - 1.0:
            return f"skipped: estimated {est:.1f} GB > {avail:.1f} GB available now"
        return ""

    def on_device(est: float, weights: float) -> str:
        return fits(est, weights if on_gpu else None)

    try:
        counts = {name: param_counts(name) for name in MODELS}
        for name in ("sd15", "sdxl"):
            title = MODELS[name]["title"]
            n = counts[name]
            total = sum(n.values())
            print(f"{title}: " + ", ".join(f"{k} {v / 1e6:.0f}M" for k, v in n.items())
                  + f" = {total / 1e9:.2f}B parameters", flush=True)
            if name not in only and not (name == "sdxl" and "disc" in only):
                continue
            folder = os.path.join(work, name)
            est = max(n.values()) * 4 / GB * 1.25 + ALLOWANCE["build"]
            skip = fits(est)
            if skip:
                row(title, "build + save (random weights)", "float32", est, note=skip)
                continue
            if not os.path.isfile(os.path.join(folder, ".built")):
                shutil.rmtree(folder, ignore_errors=True)
                res = run_child("build", name, folder)
                row(title, "build + save (random weights)", "float32", est, res,
                    res.get("error", ""))
                if "error" in res:
                    continue
                open(os.path.join(folder, ".built"), "w").close()
            if name not in only:
                continue
            dtype = args.sdxl_dtype if name == "sdxl" else args.sd15_dtype
            weights = total * (4 if dtype == "float32" else 2) / GB
            est = weights + ALLOWANCE["generate"][name]
            skip = on_device(est, weights)
            if skip:
                row(title, "load_remover + 1 step at 512 px", dtype, est, note=skip)
                continue
            res = run_child("generate", name, folder, dtype, args.device, "512")
            if "error" not in res:
                res["seconds"] = res["load_seconds"] + res["step_seconds"]
            row(title, "load_remover + 1 step at 512 px", dtype, est, res, res.get("error", ""))
        if "disc" in only:
            n = counts["sdxl"]
            weights = sum(n.values()) * 4 / GB
            est = weights + ALLOWANCE["disc"]
            title = "RORem discriminator (SDXL-inpainting encoder, LoRA r4)"
            skip = on_device(est, weights)
            if skip:
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est, note=skip)
            elif not os.path.isfile(os.path.join(work, "sdxl", ".built")):
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est,
                    note="skipped: the SDXL folder was not built")
            else:
                res = run_child("disc", "sdxl", os.path.join(work, "sdxl"), "float32", args.device)
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est, res,
                    res.get("error", ""))
        if families and not args.keep:  # the SD folders are done with: free their disk
            for name in MODELS:
                shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        for key in families:
            run_family(key, args, work, row, fits, on_device)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    where = (f"GPU {gpu['name']} ({gpu['total'] / GB:.0f} GB), {os.cpu_count()} CPU cores"
             if on_gpu else f"CPU ({os.cpu_count()} cores), torch threads {os.cpu_count()}")
    print(f"\nReal-size models, random weights, {where}; peak RSS per child process"
          + ("; peak GPU = torch.cuda.max_memory_allocated() per child process; seconds per "
             "image timed after a warm-up image" if on_gpu else "") + "\n")
    gpu_col = " peak GPU (GB) |" if on_gpu else ""
    print(f"| model | step | dtype | seconds | peak RSS (GB) |{gpu_col} estimated (GB) | note |")
    print("| --- | --- | --- | --- | --- |" + (" --- |" if on_gpu else "") + " --- | --- |")
    for model, what, dtype, est, res, note in rows:
        secs = res.get("seconds")
        detail = ""
        if "load_seconds" in res:
            detail = f" (load {res['load_seconds']:.1f} + step {res['step_seconds']:.1f})"
        secs_s = f"{secs:.1f}{detail}" if secs is not None else "-"
        rss = f"{res['peak_rss_gb']:.1f}" if "peak_rss_gb" in res else "-"
        peak = (f" {res['peak_gpu_gb']:.1f} |" if "peak_gpu_gb" in res else " - |") if on_gpu else ""
        print(f"| {model} | {what} | {dtype} | {secs_s} | {rss} |{peak} {est:.1f} | {note} |")


def run_family(key: str, args, work: str, row, fits, on_device) -> None:
    """Parameter counts, then (if they fit) build + load_remover + 1 step of one family."""
    fam = FAMILIES[key]
    title, dtype = fam["title"], args.families_dtype
    n = FAMILIES_MODULE.param_counts(key)  # meta device: nothing allocated
    total = sum(n.values())
    print(f"{title}: " + ", ".join(f"{k} {_short(v)}" for k, v in n.items())
          + f" = {_short(total)} parameters", flush=True)
    nbytes = 4 if dtype == "float32" else 2
    weights = total * nbytes / GB
    est = weights + fam["allowance"] * (2 if dtype == "float32" else 1)
    if args.device == "cpu":
        est += SHARD_GB
    what = f"load_remover + 1 step at {args.resolution} px"
    skip = on_device(est, weights)
    if skip:  # no point building what cannot run
        row(title, what, dtype, est, note=skip)
        return
    folder = os.path.join(work, key)
    if not os.path.isfile(os.path.join(folder, ".built")):
        build_est = max(n.values()) * nbytes / GB * 1.25 + ALLOWANCE["build"]
        free = shutil.disk_usage(work).free / GB
        skip = fits(build_est)
        if not skip and weights * 1.02 + 1.0 > free:
            skip = f"skipped: needs {weights * 1.02 + 1.0:.1f} GB of disk > {free:.1f} GB free"
        if skip:
            row(title, "build + save (random weights)", dtype, build_est, note=skip)
            return
        shutil.rmtree(folder, ignore_errors=True)
        res = run_child("build-family", key, folder, dtype)
        row(title, "build + save (random weights)", dtype, build_est, res, res.get("error", ""))
        if "error" in res:
            shutil.rmtree(folder, ignore_errors=True)
            return
        open(os.path.join(folder, ".built"), "w").close()
    res = run_child("generate", key, folder, dtype, args.device, str(args.resolution))
    if "error" not in res:
        res["seconds"] = res["load_seconds"] + res["step_seconds"]
    row(title, what, dtype, est, res, res.get("error", ""))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
