"""LoRA fine-tuning of flow-matching inpainting transformers (FLUX.1-Fill, FLUX.2-klein) on the
tiny pipelines of :mod:`rorem_data.testing.tiny_families`: the packing matches the pipelines',
the loss goes down on 2 pairs, resume is bit-exact, the LoRA loads with stock diffusers and
changes its output, and the refused set-ups say why."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from rorem_data.core.errors import ConfigError
from rorem_data.testing import synthetic

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
torch.set_num_threads(1)

FAMILIES = ["fill", "klein"]
RES = 32
TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_out"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import diffusers
    import transformers

    from rorem_data.testing import tiny_families

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("ft-flow")
    os.environ["ROREM_DATA_CACHE"] = str(root / "cache")
    synthetic.write_seed_set(str(root / "data"), 2, size=RES, seed=0)
    return {"root": root, "data": str(root / "data"),
            "fill": tiny_families.build_tiny_flux_fill(str(root / "fill")),
            "klein": tiny_families.build_tiny_flux2_klein_inpaint(str(root / "klein"))}


def _cfg(env, family, out, **kw):
    from rorem_data.finetune import FinetuneConfig

    opts = dict(pretrained=env[family], data=[env["data"]], output=str(out), resolution=RES,
                lora_rank=4, lora_target_modules=TARGETS, max_train_steps=4, train_batch_size=2,
                learning_rate=1e-2, checkpointing_steps=2, validation_steps=0, log_every=1,
                report_to="none")
    opts.update(kw)
    return FinetuneConfig(**opts)


def _lora(out):
    from safetensors.torch import load_file

    return load_file(os.path.join(out, "pytorch_lora_weights.safetensors"))


def test_packing_matches_the_pipelines(env):
    """The latent layouts flow.py builds are the ones the stock pipelines build."""
    from diffusers import FluxFillPipeline, Flux2KleinInpaintPipeline

    from rorem_data.finetune import flow
    from rorem_data.models.pipelines import load_pipeline

    x = torch.randn(2, 16, 4, 6)
    assert torch.equal(flow.pack_patches(x), FluxFillPipeline._pack_latents(x, 2, 16, 4, 6))
    assert torch.equal(flow.flux1_ids(2, 3, "cpu"),
                       FluxFillPipeline._prepare_latent_image_ids(2, 2, 3, "cpu", torch.float32))
    assert torch.equal(flow.patchify(x), Flux2KleinInpaintPipeline._patchify_latents(x))
    p = flow.patchify(x)
    assert torch.equal(flow.to_tokens(p), Flux2KleinInpaintPipeline._pack_latents(p))
    assert torch.equal(flow.flux2_ids(2, 2, 3, 0, "cpu"),
                       Flux2KleinInpaintPipeline._prepare_latent_ids(p))
    assert torch.equal(flow.flux2_ids(2, 2, 3, flow.KLEIN_REFERENCE_T, "cpu"),
                       Flux2KleinInpaintPipeline._prepare_image_ids([p], 2))
    # Fill's mask tokens: the pixel mask unshuffled 8x8 and packed, as prepare_mask_latents does
    pipe = load_pipeline(env["fill"], transformer=None, text_encoder=None, text_encoder_2=None)
    mask = (torch.rand(2, 1, RES, RES) > 0.5).float()
    ref, _ = pipe.prepare_mask_latents(mask, torch.zeros(2, 16, 4, 4), 2, 16, 1, RES, RES,
                                       torch.float32, "cpu", None)
    assert torch.equal(flow.fill_mask_tokens(mask, 8), ref)


def _eval_loss(cfg, lora_dir=None) -> float:
    """Mean loss over fixed draws (the same noise and sigmas each call) of the base transformer
    with a zero LoRA, or with the LoRA saved in ``lora_dir``."""
    from rorem_data.finetune import flow
    from rorem_data.finetune.data import PairDataset, read_pairs

    base = flow.inspect_flow_base(cfg)
    obj = flow.FlowObjective(base, cfg, torch.device("cpu"), torch.float32)
    transformer = obj.trainable_transformer()
    if lora_dir:
        obj.load_lora(transformer, lora_dir)
    else:  # B = 0: the LoRA adds nothing
        for name, p in transformer.named_parameters():
            if "lora_B" in name:
                p.data.zero_()
    ds = PairDataset(read_pairs(cfg.data), cfg.resolution)
    batch = {k: torch.stack([ds[i][k] for i in range(len(ds))])
             for k in ("target", "masked_source", "mask")}
    torch.manual_seed(123)
    with torch.no_grad():
        return sum(obj.loss(transformer, batch).item() for _ in range(6)) / 6


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_loss_decreases_on_two_pairs(env, tmp_path, family):
    from rorem_data.finetune import train

    out = tmp_path / "run"
    cfg = _cfg(env, family, out, max_train_steps=20, checkpointing_steps=0, random_flip=False,
               lora_rank=8, max_grad_norm=0.0, gradient_checkpointing=True, validation_steps=20,
               num_validation_images=1, validation_inference_steps=2)
    res = train(cfg, progress=False)
    assert res.steps == 20 and res.mode == "lora" and res.final_loss is not None
    before, after = _eval_loss(cfg), _eval_loss(cfg, str(out))
    assert after < 0.98 * before, (before, after)
    meta = json.load(open(out / "rorem_finetune.json"))
    assert meta["family"] in ("FluxFillPipeline", "Flux2KleinInpaintPipeline")
    assert Image.open(out / "validation" / "step-000020" / "00.png").size == (4 * RES, RES)
    assert all(k.startswith("transformer.") for k in _lora(out))


@pytest.mark.parametrize("family", FAMILIES)
def test_resume_is_bit_exact(env, tmp_path, family):
    """4 steps straight == 2 steps, stop, resume to 4 (LoRA tensors equal, on the CPU)."""
    from rorem_data.finetune import train

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(_cfg(env, family, straight), progress=False)
    first = train(_cfg(env, family, resumed, max_train_steps=2), progress=False)
    assert first.resumed_from is None
    second = train(_cfg(env, family, resumed), progress=False)
    assert second.resumed_from.endswith("checkpoint-2") and second.steps == 4
    a, b = _lora(straight), _lora(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ckpt = _lora(os.path.join(resumed, "checkpoints", "checkpoint-4"))
    assert all(torch.equal(a[k], ckpt[k]) for k in a)
    # a checkpoint of another family or mode is refused
    with pytest.raises(ConfigError, match="different"):
        train(_cfg(env, family, resumed, max_train_steps=6, lora_rank=8), progress=False)


def _stock_output(pipe, env, family):
    src = Image.open(os.path.join(env["data"], "source", "000000.png"))
    mask = Image.open(os.path.join(env["data"], "mask", "000000.png"))
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt="", image=src, mask_image=mask, height=RES, width=RES, num_inference_steps=2,
              generator=torch.Generator().manual_seed(0), output_type="np")
    if family == "klein":
        kw["strength"] = 1.0
    return pipe(**kw).images[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_loads_with_stock_diffusers(env, tmp_path, family):
    from diffusers import DiffusionPipeline

    from rorem_data.finetune import train

    out = tmp_path / "lora"
    res = train(_cfg(env, family, out, checkpointing_steps=0), progress=False)
    assert res.weights == str(out / "pytorch_lora_weights.safetensors")
    pipe = DiffusionPipeline.from_pretrained(env[family])
    assert type(pipe).__name__ == {"fill": "FluxFillPipeline",
                                   "klein": "Flux2KleinInpaintPipeline"}[family]
    plain = _stock_output(pipe, env, family)
    pipe.load_lora_weights(str(out))
    assert pipe.get_list_adapters().get("transformer")
    tuned = _stock_output(pipe, env, family)
    assert plain.shape == tuned.shape == (RES, RES, 3)
    assert not np.array_equal(plain, tuned)


def test_lora_serves_as_the_next_remover(env, tmp_path):
    from rorem_data.finetune import train
    from rorem_data.removers import load_remover

    out = tmp_path / "lora"
    res = train(_cfg(env, "fill", out, max_train_steps=1, checkpointing_steps=0), progress=False)
    assert res.remover_spec == {"model": os.path.abspath(env["fill"]), "lora": str(out)}
    assert "next remover" in res.summary()
    r = load_remover(res.remover_spec, steps=2, resolution=RES, device="cpu")
    assert r.provenance()["lora"] == str(out)
    plain = load_remover({"model": env["fill"]}, steps=2, resolution=RES, device="cpu")
    assert r.key != plain.key


def test_refused_setups_say_why(env, tmp_path):
    from rorem_data.finetune import train

    with pytest.raises(ConfigError, match="full fine-tuning of its transformer.*lora-rank"):
        train(_cfg(env, "fill", tmp_path / "o1", lora_rank=None), progress=False)
    with pytest.raises(ConfigError, match="not a multiple of 16.*use 32 or 48"):
        train(_cfg(env, "klein", tmp_path / "o2", resolution=40), progress=False)
    with pytest.raises(ConfigError, match="leave unet unset"):
        train(_cfg(env, "fill", tmp_path / "o3", unet=env["fill"]), progress=False)
    other = tmp_path / "kontext"
    shutil.copytree(env["fill"], other)
    index = json.load(open(other / "model_index.json"))
    index["_class_name"] = "FluxKontextInpaintPipeline"
    (other / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="FluxFillPipeline, Flux2KleinInpaintPipeline"):
        train(_cfg(env, "fill", tmp_path / "o4", pretrained=str(other)), progress=False)
    with pytest.raises(ConfigError, match="--weighting-scheme"):
        _cfg(env, "fill", tmp_path, weighting_scheme="sigmoid")


def _recipe():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "finetune_remover", os.path.join(REPO, "recipes", "finetune_remover.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recipe_trains_a_fill_lora(env, tmp_path, capsys):
    out = tmp_path / "recipe"
    rc = _recipe().main(["--pretrained", env["fill"], "--data", env["data"], "--output", str(out),
                         "--resolution", str(RES), "--lora-rank", "4", "--max-train-steps", "2",
                         "--train-batch-size", "2", "--validation-steps", "0",
                         "--weighting-scheme", "logit_normal", "--guidance-scale", "3.5",
                         "--max-sequence-length", "32", "--no-progress"])
    assert rc == 0 and "fine-tuned (lora) for 2 steps" in capsys.readouterr().out
    saved = json.load(open(out / "config.json"))
    assert saved["weighting_scheme"] == "logit_normal" and saved["guidance_scale"] == 3.5
    assert saved["family"] == "FluxFillPipeline"
    rc = _recipe().main(["--pretrained", env["fill"], "--data", env["data"], "--output",
                         str(tmp_path / "full"), "--resolution", str(RES), "--no-progress"])
    assert rc == 1 and "train a LoRA" in capsys.readouterr().err


@pytest.mark.slow
def test_recipe_under_accelerate_launch(env, tmp_path):
    """Two processes (``--multi_gpu``: torchrun; on a CPU-only machine they join a gloo group),
    as across GPUs: each trains on its share of every batch and one LoRA comes out.
    (``--cpu --num_processes 2`` starts a single process unless mpirun is set up.)"""
    import subprocess
    import sys

    out = tmp_path / "launched"
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           os.path.join(REPO, "recipes", "finetune_remover.py"),
           "--pretrained", env["klein"], "--data", env["data"], "--output", str(out),
           "--resolution", str(RES), "--lora-rank", "4", "--max-train-steps", "2",
           "--train-batch-size", "2", "--validation-steps", "0", "--checkpointing-steps", "2",
           "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(out / "pytorch_lora_weights.safetensors")
    states = glob.glob(str(out / "checkpoints" / "*" / "*.json"))
    recorded = [json.load(open(p)).get("num_processes") for p in states]
    assert 2 in recorded, recorded
