#!/usr/bin/env python
"""Training-step overhead: ``rorem_data.finetune.train`` vs a bare PyTorch loop.

Both train the same tiny SD inpainting UNet (built from a config, on the CPU) on the same
synthetic pairs, batch size and resolution, in the same process:

* ``bare``   - a hand-written loop: DataLoader, VAE encode, noise, 9-channel UNet forward, MSE,
  backward, clip, AdamW step; no accelerate, no logging, no checks;
* ``module`` - ``train()`` with checkpoints and validation off (logging every 10 steps on).

The module's time per step is measured without its one-off set-up (model loading, hashing,
prompt encoding): ``(T(n2 steps) - T(n1 steps)) / (n2 - n1)``. Overhead = module / bare - 1
(target <= 10 %). Not part of the test run.

    python benchmarks/finetune.py [--resolution 64] [--batch-size 2] [--steps 40]
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # see generate.py

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def bare_loop(base: str, data: str, *, steps: int, resolution: int, batch_size: int, seed: int) -> float:
    """Seconds for ``steps`` optimizer steps of a minimal loop (set-up excluded)."""
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from rorem_data.finetune.data import PairDataset, random_flip, read_pairs

    torch.manual_seed(seed)
    sched = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae").requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    tok = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    enc = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    with torch.no_grad():
        emb = enc(tok([""], padding="max_length", max_length=tok.model_max_length,
                      return_tensors="pt").input_ids)[0]
    opt = torch.optim.AdamW(unet.parameters(), lr=5e-5, betas=(0.9, 0.999), weight_decay=1e-2)
    ds = PairDataset(read_pairs([data]), resolution)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    unet.train()
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        for batch in loader:
            batch = random_flip(batch)
            with torch.no_grad():
                lat = vae.encode(torch.cat([batch["target"], batch["masked_source"]])).latent_dist.sample()
                lat = lat * vae.config.scaling_factor
                lat, masked = lat.chunk(2)
                mask = F.interpolate(batch["mask"], size=lat.shape[-2:])
            noise = torch.randn_like(lat)
            t = torch.randint(0, sched.config.num_train_timesteps, (lat.shape[0],))
            pred = unet(torch.cat([sched.add_noise(lat, noise, t), mask, masked], 1), t,
                        encoder_hidden_states=emb.expand(lat.shape[0], -1, -1)).sample
            loss = F.mse_loss(pred.float(), noise.float())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done >= steps:
                break
    return time.perf_counter() - t0


def module_run(base: str, data: str, out: str, *, steps: int, resolution: int, batch_size: int,
               seed: int) -> float:
    from rorem_data.finetune import FinetuneConfig, train

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    train(FinetuneConfig(pretrained=base, data=[data], output=out, resolution=resolution,
                         train_batch_size=batch_size, max_train_steps=steps, checkpointing_steps=0,
                         validation_steps=0, seed=seed, report_to="none"), progress=False)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40, help="steps of the long runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="rorem-bench-ft-")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["ROREM_DATA_CACHE"] = os.path.join(tmp, "cache")
    import torch
    from diffusers.utils import logging as dlog

    from rorem_data.testing import synthetic
    from rorem_data.testing import tiny

    torch.set_num_threads(args.threads)
    dlog.disable_progress_bar()
    try:
        base = tiny.build_tiny_sd_inpaint(os.path.join(tmp, "sd"))
        data = os.path.dirname(synthetic.write_seed_set(os.path.join(tmp, "data"), 16,
                                                        size=args.resolution, seed=0))
        n1, n2 = max(2, args.steps // 4), args.steps
        kw = dict(resolution=args.resolution, batch_size=args.batch_size, seed=4)
        bare_loop(base, data, steps=3, **kw)  # warm-up
        module_run(base, data, os.path.join(tmp, "out"), steps=3, **kw)
        bare, module = [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(base, data, steps=n2 - n1, **kw) / (n2 - n1))
            t_short = module_run(base, data, os.path.join(tmp, "out"), steps=n1, **kw)
            t_long = module_run(base, data, os.path.join(tmp, "out"), steps=n2, **kw)
            module.append((t_long - t_short) / (n2 - n1))
        b, m = statistics.median(bare), statistics.median(module)
        print(f"\nTraining-step overhead: tiny SD inpainting UNet, {args.resolution}x{args.resolution}, "
              f"batch {args.batch_size}, CPU, torch threads {args.threads}, median of {args.repeats}")
        print(f"{'loop':<8} {'ms/step':>9} {'overhead':>9}")
        print(f"{'bare':<8} {1000 * b:>9.1f} {0.0:>8.1f}%")
        print(f"{'module':<8} {1000 * m:>9.1f} {100 * (m / b - 1):>8.1f}%")
        print(json.dumps({"bare_ms": round(1000 * b, 2), "module_ms": round(1000 * m, 2)}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
