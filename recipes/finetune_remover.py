#!/usr/bin/env python
"""Fine-tune an object remover on exported pairs: an inpainting UNet (full or LoRA) or a LoRA
of a flow-matching inpainting transformer (FLUX.1-Fill, FLUX.2-klein).

The objective follows the base pipeline (``--pretrained``):

* **UNet** (Stable Diffusion (XL) inpainting): the RORem recipe. 512 px, empty prompt, lr 5e-5
  constant, AdamW (0.9, 0.999), weight decay 1e-2, gradient clipping 1.0, fp16 on GPUs,
  9-channel input (noisy GT latent, mask, latent of the source with the object zeroed),
  epsilon / v-prediction loss. Full fine-tune, or ``--lora-rank``.
* **Flow-matching transformer** (``FluxFillPipeline``, ``Flux2KleinInpaintPipeline``): LoRA
  only (``--lora-rank`` is required), bf16 on GPUs. Rectified-flow loss (``noisy = (1 - s) x0 +
  s noise``, target ``noise - x0``) with the base's own scheduler, timesteps drawn by
  ``--weighting-scheme`` (``none`` = uniform, ``logit_normal``, ...), FLUX's guidance embedding
  at ``--guidance-scale`` (default: the family's, 30 for Fill); the same masked-source pairs and
  empty prompt (encoded once).

The loop lives in ``rorem_data.finetune.loop`` (the transformer parts in
``rorem_data.finetune.flow``); this file only parses arguments, so copy and edit it freely.

Examples
--------
One machine, every GPU (or the CPU)::

    accelerate launch recipes/finetune_remover.py \\
        --pretrained diffusers/stable-diffusion-xl-1.0-inpainting-0.1 \\
        --data exports/round-3 --output runs/remover-r3 \\
        --train-batch-size 16 --max-train-steps 50000 --gradient-checkpointing

A 4-step LCM-style LoRA instead of a full fine-tune::

    accelerate launch recipes/finetune_remover.py --pretrained runs/remover-r3 \\
        --data exports/round-3 --output runs/remover-r3-lora --lora-rank 64

A FLUX.1-Fill LoRA (bf16 on GPUs, gradient checkpointing)::

    accelerate launch recipes/finetune_remover.py \\
        --pretrained black-forest-labs/FLUX.1-Fill-dev \\
        --data exports/round-3 --output runs/fill-lora-r3 --lora-rank 16 \\
        --resolution 512 --learning-rate 1e-4 --train-batch-size 1 \\
        --gradient-accumulation-steps 4 --max-train-steps 2000 --gradient-checkpointing \\
        --weighting-scheme logit_normal --validation-inference-steps 28

Options can also come from a TOML file (``--config finetune.toml``, a ``[finetune]`` table);
flags win. Rerunning the same command resumes from the newest checkpoint in ``--output``.
The result loads with stock diffusers, and serves as the next round's remover::

    pipe = AutoPipelineForInpainting.from_pretrained("runs/remover-r3")      # full
    pipe.load_lora_weights("runs/remover-r3-lora")                            # LoRA
    pipe = FluxFillPipeline.from_pretrained("black-forest-labs/FLUX.1-Fill-dev")
    pipe.load_lora_weights("runs/fill-lora-r3")                               # transformer LoRA
    # remover spec: {"model": "black-forest-labs/FLUX.1-Fill-dev", "lora": "runs/fill-lora-r3"}

A FLUX.2-klein LoRA is trained with the *masked source* as the pipeline's reference image
(RORem's convention); serve it with the masked source as ``image``.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv=None):
    from rorem_data.finetune import add_config_arguments

    parser = argparse.ArgumentParser(
        description="Fine-tune an inpainting UNet (full or LoRA) or a LoRA of a FLUX.1-Fill / "
                    "FLUX.2-klein inpainting transformer on RORem-layout pairs (rorem-data).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from rorem_data.core.errors import RoremError
    from rorem_data.finetune import config_from_args, train

    args = parse_args(argv)
    try:
        config = config_from_args(args)
        result = train(config, progress=not args.no_progress)
    except RoremError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
