"""Validation during fine-tuning: remove the objects of a fixed set of training pairs with the
current UNet and save ``source | mask | result | GT`` strips (also sent to TensorBoard / W&B).

The validation pipeline reuses the training VAE and UNet and the precomputed prompt embedding
(no text encoders are kept in memory); RORem's settings: strength 0.99, guidance 1.0, a fixed
seed per pair.
"""

from __future__ import annotations

import os

from rorem_data.finetune.models import BaseModel, load_component, pipeline_class


def run_validation(unet, vae, base: BaseModel, dataset, indices, prompt_embeds, pooled, *,
                   resolution: int, steps: int, seed: int, out_dir: str, step: int,
                   accelerator) -> list:
    """Run the current UNet on pairs ``indices`` of ``dataset``; returns the result images.

    Parameters
    ----------
    unet, vae
        The (unwrapped) models being trained.
    base : BaseModel
    dataset : PairDataset
    indices : list of int
        The fixed validation pairs.
    prompt_embeds, pooled
        From :func:`rorem_data.finetune.models.encode_prompt`.
    resolution, steps, seed : int
        Image side, denoising steps, base seed (pair ``i`` uses ``seed + i``).
    out_dir : str
        ``<output>/validation/step-<step>``; one PNG strip per pair.
    step : int
        For the trackers.
    accelerator : accelerate.Accelerator
    """
    import numpy as np
    import torch
    from PIL import Image

    if not indices:
        return []
    scheduler = load_component(base, "scheduler")
    was_training = unet.training
    unet.eval()
    kwargs = dict(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler)
    if base.sdxl:
        kwargs.update(text_encoder_2=None, tokenizer_2=None,
                      requires_aesthetics_score=bool(base.index.get("requires_aesthetics_score", False)))
    else:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = pipeline_class(base.sdxl)(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    items = [dataset.load(i) for i in indices]

    def to_pil(t):
        a = ((t.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a)

    sources = [to_pil(it["source"]) for it in items]
    masks = [Image.fromarray((it["mask"][0].numpy() * 255).astype(np.uint8)) for it in items]
    n = len(items)
    call = dict(image=sources, mask_image=masks, height=resolution, width=resolution,
                num_inference_steps=steps, strength=0.99, guidance_scale=1.0,
                prompt_embeds=prompt_embeds.expand(n, -1, -1).to(unet.dtype),
                generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(n)])
    if base.sdxl:
        call["pooled_prompt_embeds"] = pooled.expand(n, -1).to(unet.dtype)
    with torch.no_grad(), accelerator.autocast():
        results = pipe(**call).images
    os.makedirs(out_dir, exist_ok=True)
    strips = []
    for i, (s, m, r, it) in enumerate(zip(sources, masks, results, items)):
        strip = Image.new("RGB", (4 * resolution, resolution))
        for j, im in enumerate((s, m.convert("RGB"), r, to_pil(it["target"]))):
            strip.paste(im, (j * resolution, 0))
        strip.save(os.path.join(out_dir, f"{i:02d}.png"))
        strips.append(np.asarray(strip))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_images("validation", np.stack(strips), step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": [wandb.Image(s) for s in strips]}, step=step)
    if was_training:
        unet.train()
    return results


__all__ = ["run_validation"]
