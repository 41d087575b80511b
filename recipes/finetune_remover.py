#!/usr/bin/env python
"""Fine-tune an object remover (an inpainting UNet, full or LoRA) on exported pairs.

The RORem recipe: 512 px, empty prompt, lr 5e-5 constant, AdamW (0.9, 0.999), weight decay
1e-2, gradient clipping 1.0, fp16 on GPUs, 9-channel input (noisy GT latent, mask, latent of the
source with the object zeroed). The loop lives in ``rorem_data.finetune.loop``; this file only parses
arguments, so copy and edit it freely.

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

Options can also come from a TOML file (``--config finetune.toml``, a ``[finetune]`` table);
flags win. Rerunning the same command resumes from the newest checkpoint in ``--output``.
The result loads with stock diffusers::

    pipe = AutoPipelineForInpainting.from_pretrained("runs/remover-r3")      # full
    pipe.load_lora_weights("runs/remover-r3-lora")                            # LoRA
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv=None):
    from rorem_data.finetune import add_config_arguments

    parser = argparse.ArgumentParser(
        description="Fine-tune an inpainting UNet on RORem-layout pairs (rorem-data).",
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
