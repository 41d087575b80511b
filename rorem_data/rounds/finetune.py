"""``rorem-data finetune``: fine-tune the remover on a project's training set after round N.

Exports the round (seeds plus everything accepted in rounds <= N, RORem layout,
deterministic) into ``<output>/data-round-<N>``, runs :func:`rorem_data.finetune.train` on it,
and records the run in the round record (``finetune``). Under ``accelerate launch -m
rorem_data.cli finetune ...`` the main process exports while the others wait, then all train.

>>> from rorem_data.rounds.finetune import finetune
>>> res = finetune(project, 3, pretrained="sdxl-inpaint", max_train_steps=2000)  # doctest: +SKIP
>>> print(res.summary())                                                        # doctest: +SKIP
"""

from __future__ import annotations

import os

from rorem_data.core import checks
from rorem_data.finetune import FinetuneConfig, FinetuneResult, read_options_file, train


def finetune(project, round: int, *, pretrained: str | None = None, output: str | None = None,
             config: str | None = None, progress: bool | None = None, **options) -> FinetuneResult:
    """Export the training set as it stood after round ``round`` and fine-tune on it.

    Parameters
    ----------
    project : Project
    round : int
        Train on seeds + everything accepted in rounds <= ``round``.
    pretrained : str, optional
        Base inpainting pipeline (folder or hub id); may come from ``config`` instead.
    output : str, optional
        Default ``<project>/finetune/round-<N>``.
    config : str, optional
        TOML (``[finetune]`` table) or JSON file with more options; keyword options win.
    progress : bool
        Show a progress bar.
    **options
        Any :class:`~rorem_data.finetune.FinetuneConfig` field (``max_train_steps``,
        ``lora_rank``, ...) but ``data``; ``None`` values are ignored.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ConfigError
        A bad round, option or base model (see :func:`rorem_data.finetune.train`).
    ExportError
        Nothing to export for the round.

    Examples
    --------
    >>> finetune(project, 3, pretrained="sdxl-inpaint", lora_rank=64)  # doctest: +SKIP
    """
    from rorem_data.dataset import store
    from rorem_data.dataset.export import export_round

    checks.round_number(round, "--round")
    opts = {**(read_options_file(config) if config else {}),
            **{k: v for k, v in options.items() if v is not None}}
    file_pretrained, file_output = opts.pop("pretrained", None), opts.pop("output", None)
    opts.pop("data", None)  # the data is the round's export
    pretrained = pretrained or file_pretrained
    output = os.path.abspath(output or file_output
                             or os.path.join(project.root, "finetune", f"round-{round}"))
    data_dir = os.path.join(output, f"data-round-{round}")
    cfg = FinetuneConfig.from_dict({**opts, "pretrained": pretrained, "data": [data_dir],
                                    "output": output})
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        from rorem_data.finetune.loop import use_cpu

        state = PartialState(cpu=use_cpu())
        with state.main_process_first():
            if state.is_main_process:
                export_round(project, round, data_dir, format="rorem", overwrite=True)
    else:
        export_round(project, round, data_dir, format="rorem", overwrite=True)
    result = train(cfg, progress=progress)
    if int(os.environ.get("RANK", "0")) == 0:
        store.update_round_record(project.dataset_name, round, set={"finetune": {
            "output": result.output, "mode": result.mode, "steps": result.steps,
            "final_loss": result.final_loss, "weights": result.weights, "pretrained": pretrained,
            "seconds": float(f"{result.seconds:.3f}")}})
    return result


__all__ = ["finetune"]
