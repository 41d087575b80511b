"""Fine-tuning an inpainting remover on exported pairs: one accelerate loop that imports no
project code but :mod:`rorem_data.core` and :mod:`rorem_data.models`. UNet pipelines (SD / SDXL
inpainting) train fully or as a LoRA with the epsilon / v objective; FLUX.1-Fill and
FLUX.2-klein inpainting transformers train a LoRA with the flow-matching objective of
:mod:`~rorem_data.finetune.flow`.

Modules: :mod:`~rorem_data.finetune.config` (the options), :mod:`~rorem_data.finetune.data`
(pairs from RORem-layout exports), :mod:`~rorem_data.finetune.models` (base pipeline, prompt,
LoRA files), :mod:`~rorem_data.finetune.loop` (the training loop), :mod:`~rorem_data.finetune.state`
and :mod:`~rorem_data.finetune.checkpoints` (pickle-free, kill-safe checkpoints and outputs),
:mod:`~rorem_data.finetune.validation` (validation strips). The project-level entry point
(export a round, then train) is :func:`rorem_data.rounds.finetune.finetune`.

>>> from rorem_data.finetune import FinetuneConfig, train
>>> res = train(FinetuneConfig(pretrained="base", data=["export"], output="out"))  # doctest: +SKIP
"""

from rorem_data.finetune.checkpoints import list_checkpoints
from rorem_data.finetune.config import (
    FinetuneConfig,
    add_config_arguments,
    config_from_args,
    read_options_file,
)
from rorem_data.finetune.data import PairDataset, read_pairs
from rorem_data.finetune.loop import FinetuneResult, train

__all__ = ["FinetuneConfig", "FinetuneResult", "PairDataset", "add_config_arguments",
           "config_from_args", "list_checkpoints", "read_options_file", "read_pairs", "train"]
