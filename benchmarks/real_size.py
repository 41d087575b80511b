#!/usr/bin/env python
"""Real-size models on this machine: SD-1.5-inpainting and SDXL-inpainting at their published
sizes, with random weights built in process (nothing is downloaded).

For each model the pipeline folder is written component by component from the published
``config.json`` values (below, with their sources), then loaded and run for one denoising
step at 512 px through the same path users run (``RemoverSpec`` -> ``load_remover`` ->
``Remover.remove``). Then one training step of the RORem UNet discriminator
(:class:`rorem_data.discriminators.unet.UNetDiscriminator`: SDXL-inpainting encoder + LoRA rank 4
+ head, 512 px, the empty-prompt embedding) on the SDXL folder.

Every measured step runs in its own child process, so its peak RSS (``ru_maxrss``) is its own.
A step whose estimated memory (parameters x bytes + an activation allowance) exceeds
``--limit-gb`` (20) or the memory available now is skipped, and the table says so. Not part of
the test run; takes ~10-20 minutes and ~20 GB of disk on a 2-core machine.

    python benchmarks/real_size.py [--only sd15,sdxl,disc] [--sdxl-dtype float32] [--keep DIR]

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

These values are the ones quoted by the model cards' ``config.json`` files and by public code
that rebuilds them (diffusers' conversion scripts and tests); the tokenizer is the real
49,408-token CLIP vocabulary rebuilt from open_clip's BPE file.
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

CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
              max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu",
              projection_dim=768, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
              pad_token_id=1)
CLIP_BIG_G = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                  num_hidden_layers=32, max_position_embeddings=77, vocab_size=49408,
                  hidden_act="gelu", projection_dim=1280, layer_norm_eps=1e-5, bos_token_id=0,
                  eos_token_id=2, pad_token_id=1)
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
# activation allowances (GB) on top of the weights, measured loosely on this machine
ALLOWANCE = {"build": 2.5, "generate": {"sd15": 2.0, "sdxl": 3.0}, "disc": 4.5}


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


def _photo(size: int = 512):
    import numpy as np
    from PIL import Image
    from skimage import data

    img = np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC))
    yy, xx = np.mgrid[0:size, 0:size]
    mask = ((yy - 0.3 * size) / (0.12 * size)) ** 2 + ((xx - 0.5 * size) / (0.1 * size)) ** 2 <= 1
    return img, mask


def generate(name: str, folder: str, dtype: str) -> dict:
    """load_remover + one 512 px step through Remover.remove."""
    from rorem_data.removers import RemoverSpec, load_remover

    spec = RemoverSpec(model=folder, steps=1, strength=1.0, resolution=512, dtype=dtype,
                       device="cpu", name=f"{name}-random")
    t0 = time.perf_counter()
    remover = load_remover(spec)
    t1 = time.perf_counter()
    img, mask = _photo()
    out = remover.remove([img], [mask], [0], output="numpy")[0]
    t2 = time.perf_counter()
    assert out.shape == img.shape
    return {"load_seconds": t1 - t0, "step_seconds": t2 - t1, "pipeline": type(remover.pipe).__name__}


def train_discriminator(folder: str) -> dict:
    """UNetDiscriminator.fit: build (load + encoder + LoRA + head) and one training step."""
    import numpy as np

    from rorem_data.discriminators.unet import UNetDiscriminator

    img, mask = _photo()
    rng = np.random.default_rng(0)
    noisy = np.clip(img.astype(int) + rng.integers(-40, 40, img.shape), 0, 255).astype(np.uint8)
    X = [(img, noisy, mask), (img, img, mask)]
    disc = UNetDiscriminator(pretrained_model=folder, resolution=512, batch_size=1, max_steps=1,
                             device="cpu", random_state=0)
    t0 = time.perf_counter()
    disc.fit(X, [0, 1])
    seconds = time.perf_counter() - t0
    trainable = sum(p.numel() for p in disc.unet_.parameters() if p.requires_grad)
    return {"seconds": seconds, "steps": disc.n_steps_, "trainable_params": trainable}


def child(argv) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    step, name, folder = argv[0], argv[1], argv[2]
    if step == "build":
        res = build(name, folder)
    elif step == "generate":
        res = generate(name, folder, argv[3])
    else:
        res = train_discriminator(folder)
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB
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


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="sd15,sdxl,disc", help="comma list of sd15, sdxl, disc")
    ap.add_argument("--sd15-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--sdxl-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--limit-gb", type=float, default=20.0)
    ap.add_argument("--keep", default=None, help="write the model folders here and keep them")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="rorem-real-size-")
    os.makedirs(work, exist_ok=True)
    os.environ["ROREM_DATA_CACHE"] = os.path.join(work, "cache")
    rows = []

    def row(model, what, dtype, est, res=None, note=""):
        rows.append((model, what, dtype, est, res or {}, note))
        r = res or {}
        print(f"  {model}: {what}: {r.get('seconds', '-')} s, peak {r.get('peak_rss_gb', '-')} GB "
              f"{note}", flush=True)

    def fits(est: float) -> str:
        avail = available_gb()
        if est > args.limit_gb:
            return f"skipped: estimated {est:.1f} GB > the {args.limit_gb:g} GB limit"
        if est > avail - 1.0:
            return f"skipped: estimated {est:.1f} GB > {avail:.1f} GB available now"
        return ""

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
            est = total * (4 if dtype == "float32" else 2) / GB + ALLOWANCE["generate"][name]
            skip = fits(est)
            if skip:
                row(title, "load_remover + 1 step at 512 px", dtype, est, note=skip)
                continue
            res = run_child("generate", name, folder, dtype)
            if "error" not in res:
                res["seconds"] = res["load_seconds"] + res["step_seconds"]
            row(title, "load_remover + 1 step at 512 px", dtype, est, res, res.get("error", ""))
        if "disc" in only:
            n = counts["sdxl"]
            est = sum(n.values()) * 4 / GB + ALLOWANCE["disc"]
            title = "RORem discriminator (SDXL-inpainting encoder, LoRA r4)"
            skip = fits(est)
            if skip:
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est, note=skip)
            elif not os.path.isfile(os.path.join(work, "sdxl", ".built")):
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est,
                    note="skipped: the SDXL folder was not built")
            else:
                res = run_child("disc", "sdxl", os.path.join(work, "sdxl"))
                row(title, "fit: load + 1 training step, batch 1, 512 px", "float32", est, res,
                    res.get("error", ""))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nReal-size models, random weights, CPU ({os.cpu_count()} cores), torch threads "
          f"{os.cpu_count()}; peak RSS per child process\n")
    print("| model | step | dtype | seconds | peak RSS (GB) | estimated (GB) | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for model, what, dtype, est, res, note in rows:
        secs = res.get("seconds")
        detail = ""
        if "load_seconds" in res:
            detail = f" (load {res['load_seconds']:.1f} + step {res['step_seconds']:.1f})"
        secs_s = f"{secs:.1f}{detail}" if secs is not None else "-"
        rss = f"{res['peak_rss_gb']:.1f}" if "peak_rss_gb" in res else "-"
        print(f"| {model} | {what} | {dtype} | {secs_s} | {rss} | {est:.1f} | {note} |")


if __name__ == "__main__":
    main()
