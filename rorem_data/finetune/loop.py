"""Fine-tune an inpainting UNet (or a LoRA of a flow-matching transformer) on exported pairs:
one readable training loop on accelerate.

The objective is chosen from the base pipeline: a UNet pipeline (SD / SDXL inpainting) takes
the path below; ``FluxFillPipeline`` and ``Flux2KleinInpaintPipeline`` train a LoRA with the
flow-matching objective of :mod:`rorem_data.finetune.flow` (same data, flip, checkpoints,
resume, trackers and outputs). The UNet path follows RORem's released training code (see
``reference/rorem-paper.md`` §2):

* **Inputs.** (source, mask, GT) triplets from RORem-layout exports
  (:mod:`rorem_data.finetune.data`), resized to ``resolution`` x ``resolution`` (aspect not
  kept) and flipped horizontally at random (the same flip for all three).
* **Model input.** 9 channels: the noisy GT latent (4), the mask at latent size (1, nearest
  interpolation) and the latent of the *masked source*: source pixels inside the mask are set
  to 0 (mid-gray in [-1, 1]) before VAE encoding, RORem's ``x_s * (1 - m)``.
* **Text.** The empty prompt by default, encoded once before training (SD: last hidden state;
  SDXL: penultimate hidden states of both encoders concatenated, pooled embedding of encoder 2,
  micro-conditioning time ids ``(res, res, 0, 0, res, res)``); the text encoders are then freed.
* **Loss.** Epsilon (or v) prediction MSE with timesteps uniform over the base model's DDPM
  schedule.
* **Defaults.** 512 px, lr 5e-5 constant, AdamW (0.9, 0.999), weight decay 1e-2, gradient
  clipping 1.0, mixed precision (fp16) only on a GPU, VAE in float32, seed 4.
* **Full or LoRA.** Full fine-tuning of every UNet parameter (RORem) or a peft LoRA added with
  ``unet.add_adapter``.
* **Checkpoints.** ``<output>/checkpoints/checkpoint-<step>`` every ``checkpointing_steps`` and
  at the last step, at most ``checkpoints_total_limit`` kept, without pickle and never half
  written (:mod:`rorem_data.finetune.checkpoints`); ``resume="latest"`` continues from the newest
  one, after checking it was made from the same base model and mode. On the CPU (and with
  ``dataloader_num_workers=0``) a resumed run ends bit for bit where an uninterrupted one does.
* **Output.** Full: ``<output>`` becomes a pipeline folder that loads with stock
  ``diffusers.AutoPipelineForInpainting.from_pretrained(output)``. LoRA:
  ``<output>/pytorch_lora_weights.safetensors`` that loads with ``pipe.load_lora_weights(output)``.
  Both get ``rorem_finetune.json`` (config, base hash, steps, final loss).

Multi-process training is accelerate's DDP (``accelerate launch --multi_gpu``); DeepSpeed and
FSDP are refused (their sharded states are written with pickle).

>>> from rorem_data.finetune import FinetuneConfig, train
>>> result = train(FinetuneConfig(pretrained="base", data=["export"], output="out"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

from rorem_data.models import hashing
from rorem_data.core.deps import require
from rorem_data.core.display import Displayable
from rorem_data.core.errors import ConfigError, DependencyError
from rorem_data.finetune import checkpoints, flow, models
from rorem_data.finetune.config import FinetuneConfig
from rorem_data.finetune.data import PairDataset, check_sizes, random_flip, read_pairs
from rorem_data.finetune.validation import run_validation

LOG_NAME = os.path.join("logs", "train_log.jsonl")


@dataclass(repr=False)
class FinetuneResult(Displayable):
    """What :func:`train` produced.

    Attributes
    ----------
    output : str
    mode : {"full", "lora"}
    steps : int
        Optimizer steps done in total (including those before a resume).
    resumed_from : str or None
        The checkpoint this run continued from.
    final_loss : float or None
        Mean loss of the last logged block of steps.
    seconds : float
    checkpoints : list of str
        The finished checkpoints kept.
    weights : str
        The output folder (full) or the LoRA file.
    base : str or None
        The base pipeline folder the LoRA goes on.
    unet : str or None
        The fine-tuned UNet folder the training started from (``--unet``), if any.
    """

    output: str
    mode: str
    steps: int
    resumed_from: str | None
    final_loss: float | None
    seconds: float
    checkpoints: list
    weights: str
    base: str | None = None
    unet: str | None = None

    @property
    def remover_spec(self) -> dict:
        """The next round's remover: ``{"model": output}`` after a full fine-tune,
        ``{"model": base, "lora": output}`` after a LoRA (any family); pass it to
        ``run_round(remover=...)`` or ``load_remover``."""
        if self.mode == "lora" and self.base:
            spec = {"model": self.base, "lora": self.output}
            return {**spec, "unet": self.unet} if self.unet else spec
        return {"model": self.output}

    def summary(self) -> str:
        loss = "n/a" if self.final_loss is None else f"{self.final_loss:.4f}"
        res = f" (resumed from {self.resumed_from})" if self.resumed_from else ""
        return (f"fine-tuned ({self.mode}) for {self.steps} steps{res} in {self.seconds:.1f} s, "
                f"loss {loss}; weights: {self.weights}; next remover: {self.remover_spec}")


def use_cpu() -> bool:
    """Train on the CPU: ``ACCELERATE_USE_CPU`` is set or there is no GPU."""
    import torch

    return (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
            or not torch.cuda.is_available())


def trackers(report_to: str) -> list[str]:
    """The accelerate trackers for ``--report-to`` (checking they are installed)."""
    import importlib.util

    has_tb = (importlib.util.find_spec("tensorboard") is not None
              or importlib.util.find_spec("tensorboardX") is not None)
    has_wandb = importlib.util.find_spec("wandb") is not None
    if report_to == "none":
        return []
    if report_to == "auto":
        return ["tensorboard"] if has_tb else []
    wanted = ["tensorboard", "wandb"] if report_to == "all" else [report_to]
    for w, ok in (("tensorboard", has_tb), ("wandb", has_wandb)):
        if w in wanted and not ok:
            raise DependencyError(f"report_to {report_to} needs {w}; pip install {w}, or use "
                                  "report_to='auto' (--report-to auto)")
    return wanted


def _make_accelerator(cfg: FinetuneConfig, output: str, *, auto_precision: str = "fp16"):
    import torch
    from accelerate import Accelerator
    from accelerate.utils import (
        DataLoaderConfiguration,
        DistributedType,
        ProjectConfiguration,
    )

    mp = cfg.mixed_precision
    if mp == "auto":
        mp = auto_precision if torch.cuda.is_available() else "no"
    if mp == "fp16" and use_cpu():
        raise ConfigError("mixed_precision fp16 needs a GPU; on the CPU use mixed_precision='no' (--mixed-precision no) "
                          "(or bf16)")
    tracked = trackers(cfg.report_to)
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=mp,
        log_with=tracked or None, cpu=use_cpu(),
        project_config=ProjectConfiguration(project_dir=output,
                                             logging_dir=os.path.join(output, "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP,
                                        DistributedType.MEGATRON_LM):
        raise ConfigError(f"fine-tuning under {accelerator.distributed_type.value} is not "
                          "supported (its sharded states are written with pickle); launch with "
                          "plain DDP: accelerate launch --multi_gpu ...")
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mp, torch.float32)
    return accelerator, weight_dtype, bool(tracked)


def _trainable_unet(cfg: FinetuneConfig, base, accelerator, weight_dtype):
    """The UNet with what it trains set to require grad (all of it, or a fresh LoRA)."""
    import torch

    unet = models.load_unet(base)
    if cfg.lora_rank:
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.to(accelerator.device)
        if weight_dtype != torch.float32:  # frozen base weights in half precision on a GPU
            unet.to(dtype=weight_dtype)
        unet.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha or cfg.lora_rank,
                                    init_lora_weights="gaussian",
                                    target_modules=list(cfg.lora_target_modules)))
        for p in unet.parameters():  # trainable LoRA weights stay float32 under mixed precision
            if p.requires_grad:
                p.data = p.data.float()
    else:
        unet.requires_grad_(True)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    return unet


def _text_conditioning(cfg: FinetuneConfig, base, unet, accelerator, weight_dtype):
    """(prompt_embeds, pooled, add_time_ids) on the device, the text encoders freed."""
    tok_names = ["tokenizer", "tokenizer_2"] if base.sdxl else ["tokenizer"]
    enc_names = ["text_encoder", "text_encoder_2"] if base.sdxl else ["text_encoder"]
    tokenizers = [models.load_component(base, n) for n in tok_names]
    encoders = [models.load_component(base, n).to(accelerator.device) for n in enc_names]
    prompt_embeds, pooled = models.encode_prompt(cfg.prompt, tokenizers, encoders, sdxl=base.sdxl)
    del encoders, tokenizers
    time_ids = None
    prompt_embeds = prompt_embeds.to(accelerator.device, dtype=weight_dtype)
    if base.sdxl:
        time_ids = models.sdxl_time_ids(unet, pooled.shape[-1], cfg.resolution)
        pooled = pooled.to(accelerator.device, dtype=weight_dtype)
        time_ids = time_ids.to(accelerator.device, dtype=weight_dtype)
    return prompt_embeds, pooled, time_ids


def _truncate_log(path: str, step: int) -> None:
    """Keep the log lines of steps <= ``step`` (a resumed run logs the later ones again)."""
    if not os.path.isfile(path):
        return
    keep = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                if int(json.loads(line)["step"]) <= step:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(keep)
    os.replace(tmp, path)


def _quiet_hf_bars() -> None:
    """Silence the loading / saving bars of diffusers, transformers and the hub (progress=False)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    for mod in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            __import__(mod, fromlist=["disable_progress_bar"]).disable_progress_bar()
        except (ImportError, AttributeError):
            pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass


def train(config: FinetuneConfig, *, progress: bool | None = None) -> FinetuneResult:
    """Run the fine-tuning loop described in the module docstring.

    Parameters
    ----------
    config : FinetuneConfig
    progress : bool
        Show a progress bar on the main process.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ConfigError
        A base that is not an inpainting pipeline (or has a 4-channel UNet), a resolution the VAE
        cannot take, an empty export, a checkpoint from another base model / mode.
    UnsafeWeightsError
        Pickle-based weights (base, ``--unet``) or a checkpoint with only pickle state.
    ValidationError
        Unusable pairs (missing files, unsafe paths, or wrong sizes with
        ``on_size_mismatch="error"``).
    DependencyError
        torch / diffusers / accelerate / peft (LoRA) / a requested tracker is missing.

    Examples
    --------
    >>> res = train(FinetuneConfig(pretrained="runs/tiny-sd", data=["exports/r1"],
    ...                            output="runs/r1", max_train_steps=2))  # doctest: +SKIP
    >>> res.steps                                                       # doctest: +SKIP
    2
    """
    for module in ("torch", "diffusers", "transformers", "accelerate", "safetensors"):
        require(module, purpose="fine-tuning")
    if config.lora_rank:
        require("peft", purpose="LoRA training")
    import torch
    import torch.nn.functional as F
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    from rorem_data.core.progress import progress as progress_bar

    if not progress:
        _quiet_hf_bars()

    t0 = time.perf_counter()
    cfg = config
    output = os.path.abspath(cfg.output)

    # -- data and base model checks (before any heavy work) ---------------------------------
    pairs = read_pairs(cfg.data)
    if cfg.on_size_mismatch == "error":
        check_sizes(pairs, cfg.resolution)
    flow_base = flow.inspect_flow_base(cfg)  # None for a UNet pipeline
    base = flow_base or models.inspect_base(cfg.pretrained, resolution=cfg.resolution, unet=cfg.unet)
    identity = {"base_sha256": hashing.checkpoint_sha256([base.folder]), "mode": cfg.mode,
                "lora_rank": cfg.lora_rank, "sdxl": base.sdxl, "resolution": cfg.resolution,
                "unet_sha256": hashing.checkpoint_sha256([base.unet_dir]) if cfg.unet else None}
    if flow_base:
        identity["family"] = flow_base.pipeline

    # -- accelerate, models, optimizer --------------------------------------------------------
    # "unet" below is the denoiser being trained: the UNet, or the transformer with its LoRA
    accelerator, weight_dtype, tracking = _make_accelerator(
        cfg, output, auto_precision="bf16" if flow_base else "fp16")
    set_seed(cfg.seed)
    main = accelerator.is_main_process
    if main:
        os.makedirs(os.path.join(output, "checkpoints"), exist_ok=True)
        checkpoints.remove_leftovers(output)
    objective, lora_saver, lora_loader = None, None, None
    if flow_base:
        objective = flow.FlowObjective(flow_base, cfg, accelerator.device, weight_dtype)
        lora_saver, lora_loader = objective.save_lora, objective.load_lora
        vae = objective.vae
        unet = objective.trainable_transformer()
    else:
        noise_scheduler = DDPMScheduler.from_pretrained(base.folder, subfolder="scheduler")
        vae = models.load_component(base, "vae")
        unet = _trainable_unet(cfg, base, accelerator, weight_dtype)
        prompt_embeds, pooled, add_time_ids = _text_conditioning(cfg, base, unet, accelerator,
                                                                 weight_dtype)
        vae.requires_grad_(False)
        vae.to(accelerator.device)  # float32 as loaded (RORem keeps the VAE in float32)
        vae_sf = vae.config.scaling_factor
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                  weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
    dataset = PairDataset(pairs, cfg.resolution)
    # the loader's own generator: creating an iterator (each epoch, or to skip batches on
    # resume) then draws nothing from the global RNG, which the loop's draws use
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train_batch_size, shuffle=True,
                                         num_workers=cfg.dataloader_num_workers, drop_last=False,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=cfg.max_train_steps * accelerator.num_processes)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)

    # -- resume -------------------------------------------------------------------------------
    global_step, resumed_from = 0, None
    if cfg.resume:
        if cfg.resume == "latest":
            found = checkpoints.list_checkpoints(output)
            path = found[-1][1] if found else None
        else:
            path = os.path.abspath(cfg.resume)
            if not os.path.isdir(path):
                raise ConfigError(f"resume {cfg.resume}: no such checkpoint folder; pass 'latest', "
                                  "'none' or <output>/checkpoints/checkpoint-<step>")
        if path:
            checkpoints.check_checkpoint(path, identity)
            global_step = checkpoints.load_checkpoint(accelerator, path, unet=unet,
                                                      optimizer=optimizer,
                                                      lr_scheduler=lr_scheduler,
                                                      lora=bool(cfg.lora_rank),
                                                      lora_loader=lora_loader)
            resumed_from = path
    log_path = os.path.join(output, LOG_NAME)
    if main:
        checkpoints.write_json(os.path.join(output, "config.json"), {**cfg.to_dict(), **identity})
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        _truncate_log(log_path, global_step)
        if tracking:
            accelerator.init_trackers("rorem-finetune", config={
                k: (v if isinstance(v, (int, float, str, bool)) else str(v))
                for k, v in cfg.to_dict().items()})

    def save_checkpoint(step: int) -> None:
        checkpoints.save_checkpoint(accelerator, output, step, unet=unet, optimizer=optimizer,
                                    lr_scheduler=lr_scheduler, identity=identity,
                                    config=cfg.to_dict(), sdxl=base.sdxl,
                                    lora=bool(cfg.lora_rank), keep=cfg.checkpoints_total_limit,
                                    lora_saver=lora_saver)

    val_idx = list(range(min(cfg.num_validation_images, len(dataset))))

    def validate(step: int) -> None:
        if main and cfg.validation_steps:
            out_dir = os.path.join(output, "validation", f"step-{step:06d}")
            if objective is not None:
                flow.validate(objective, accelerator.unwrap_model(unet), dataset, val_idx,
                              resolution=cfg.resolution, steps=cfg.validation_inference_steps,
                              seed=cfg.seed, out_dir=out_dir, step=step, accelerator=accelerator)
            else:
                run_validation(accelerator.unwrap_model(unet), vae, base, dataset, val_idx,
                               prompt_embeds, pooled, resolution=cfg.resolution,
                               steps=cfg.validation_inference_steps, seed=cfg.seed,
                               out_dir=out_dir, step=step, accelerator=accelerator)
            unet.train()

    def unet_loss(batch):
        """Epsilon / v-prediction MSE of one batch (the UNet path)."""
        with torch.no_grad():
            both = torch.cat([batch["target"], batch["masked_source"]]).to(torch.float32)
            latents = vae.encode(both).latent_dist.sample() * vae_sf
            latents, masked_latents = latents.chunk(2)
            mask = F.interpolate(batch["mask"], size=latents.shape[-2:])
        noise = torch.randn_like(latents)
        bsz = latents.shape[0]
        timesteps = torch.randint(0, T, (bsz,), device=latents.device).long()
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        model_in = torch.cat([noisy, mask, masked_latents], dim=1).to(weight_dtype)
        added = None
        if base.sdxl:
            added = {"text_embeds": pooled.expand(bsz, -1),
                     "time_ids": add_time_ids.expand(bsz, -1)}
        pred = unet(model_in, timesteps, encoder_hidden_states=prompt_embeds.expand(bsz, -1, -1),
                    added_cond_kwargs=added, return_dict=False)[0]
        target = noise if prediction_type == "epsilon" else \
            noise_scheduler.get_velocity(latents, noise, timesteps)
        return F.mse_loss(pred.float(), target.float())

    # -- the loop -----------------------------------------------------------------------------
    steps_per_epoch = max(1, math.ceil(len(loader) / cfg.gradient_accumulation_steps))
    epoch = global_step // steps_per_epoch
    skip_batches = (global_step % steps_per_epoch) * cfg.gradient_accumulation_steps
    log_fh = open(log_path, "a", encoding="utf-8") if main else None
    loss_sum = torch.zeros((), device=accelerator.device)
    loss_n, last_loss = 0, None
    if objective is None:
        T = noise_scheduler.config.num_train_timesteps
        prediction_type = noise_scheduler.config.prediction_type
    if objective is None and prediction_type not in ("epsilon", "v_prediction"):
        raise ConfigError(f"the base scheduler's prediction_type {prediction_type!r} is not "
                          "supported (epsilon or v_prediction)")
    unet.train()
    bar = progress_bar(total=cfg.max_train_steps, desc="fine-tuning", unit="step",
                       enabled=progress if main else False)
    bar.update(global_step)
    try:
        while global_step < cfg.max_train_steps:
            loader.set_epoch(epoch)
            active = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
            skip_batches = 0
            for batch in active:
                if cfg.random_flip:
                    batch = random_flip(batch)
                with accelerator.accumulate(unet):
                    loss = objective.loss(unet, batch) if objective else unet_loss(batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach()
                loss_n += 1
                if not accelerator.sync_gradients:
                    continue
                global_step += 1
                bar.update(1)
                if global_step % cfg.log_every == 0 or global_step == cfg.max_train_steps:
                    last_loss = float(accelerator.reduce(loss_sum, reduction="mean").item()) / max(loss_n, 1)
                    loss_sum.zero_()
                    loss_n = 0
                    logs = {"loss": last_loss, "lr": lr_scheduler.get_last_lr()[0]}
                    accelerator.log(logs, step=global_step)
                    if log_fh:
                        log_fh.write(json.dumps({"step": global_step, **logs}) + "\n")
                        log_fh.flush()
                    bar.set_postfix(loss=f"{last_loss:.4f}", refresh=False)
                if cfg.checkpointing_steps and (global_step % cfg.checkpointing_steps == 0
                                                or global_step == cfg.max_train_steps):
                    save_checkpoint(global_step)
                if cfg.validation_steps and global_step % cfg.validation_steps == 0:
                    validate(global_step)
                if global_step >= cfg.max_train_steps:
                    break
            epoch += 1
    finally:
        bar.close()
        if log_fh:
            log_fh.close()

    # -- final weights ------------------------------------------------------------------------
    accelerator.wait_for_everyone()
    kept = checkpoints.list_checkpoints(output)
    if cfg.checkpointing_steps and (not kept or kept[-1][0] != global_step):
        save_checkpoint(global_step)  # e.g. resumed past the end: so a longer run can continue
    if main:
        checkpoints.prune_checkpoints(output, cfg.checkpoints_total_limit)
    if cfg.validation_steps and global_step % cfg.validation_steps:
        validate(global_step)
    weights = output
    if main:
        final_unet = accelerator.unwrap_model(unet)
        meta = {**identity, "step": global_step, "final_loss": last_loss, "base": base.folder,
                "config": cfg.to_dict(), "resumed_from": resumed_from}
        if cfg.lora_rank:
            weights = checkpoints.publish_lora(final_unet, output, {**meta, "weights":
                                                                    models.LORA_WEIGHTS},
                                               sdxl=base.sdxl, lora_saver=lora_saver)
        else:
            checkpoints.publish_full_pipeline(models.full_pipeline(final_unet, vae, base), output,
                                              {**meta, "weights": "."})
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return FinetuneResult(output=output, mode=cfg.mode, steps=global_step, resumed_from=resumed_from,
                          final_loss=last_loss, seconds=time.perf_counter() - t0,
                          checkpoints=[p for _s, p in checkpoints.list_checkpoints(output)],
                          weights=weights, base=base.folder,
                          unet=getattr(base, "unet_dir", None) if cfg.unet else None)


__all__ = ["FinetuneResult", "trackers", "train", "use_cpu"]
