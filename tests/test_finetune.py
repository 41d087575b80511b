"""The fine-tuning loop on tiny SD / SDXL inpainting pipelines: full and LoRA, checkpoints,
exact resume, outputs that stock diffusers loads, the recipe, the project entry point and the
input errors."""

from __future__ import annotations

import importlib.util
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.testing import synthetic

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import diffusers
    import transformers

    from rorem_data.testing import tiny

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("ft")
    os.environ["ROREM_DATA_CACHE"] = str(root / "cache")
    synthetic.write_seed_set(str(root / "data"), 5, size=64, seed=0)
    return {"root": root, "data": str(root / "data"),
            "sd": tiny.build_tiny_sd_inpaint(str(root / "sd")),
            "sdxl": tiny.build_tiny_sdxl_inpaint(str(root / "sdxl"))}


def _cfg(env, out, **kw):
    from rorem_data.finetune import FinetuneConfig

    base = dict(pretrained=env["sd"], data=[env["data"]], output=str(out), resolution=64,
                max_train_steps=3, train_batch_size=2, checkpointing_steps=2, validation_steps=0,
                log_every=1)
    base.update(kw)
    return FinetuneConfig(**base)


def _run_stock(pipe, env):
    src = Image.open(os.path.join(env["data"], "source", "000000.png"))
    mask = Image.open(os.path.join(env["data"], "mask", "000000.png"))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="", image=src, mask_image=mask, height=64, width=64, num_inference_steps=2,
               strength=0.99, guidance_scale=1.0).images[0]
    assert out.size == (64, 64)


def test_full_finetune_sd_loads_with_stock_pipeline(env, tmp_path):
    from diffusers import AutoPipelineForInpainting

    from rorem_data.finetune import train

    out = tmp_path / "full"
    res = train(_cfg(env, out, validation_steps=2, num_validation_images=2,
                     validation_inference_steps=2, gradient_checkpointing=True), progress=False)
    assert res.steps == 3 and res.mode == "full" and res.final_loss is not None
    assert [os.path.basename(p) for p in res.checkpoints] == ["checkpoint-2", "checkpoint-3"]
    log = [json.loads(line) for line in open(out / "logs" / "train_log.jsonl")]
    assert [r["step"] for r in log] == [1, 2, 3] and log[0]["lr"] == 5e-5
    strips = sorted(os.listdir(out / "validation" / "step-000002"))
    assert strips == ["00.png", "01.png"]
    assert Image.open(out / "validation" / "step-000002" / "00.png").size == (256, 64)
    meta = json.load(open(out / "rorem_finetune.json"))
    assert meta["step"] == 3 and meta["mode"] == "full" and len(meta["base_sha256"]) == 64
    pipe = AutoPipelineForInpainting.from_pretrained(str(out))
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    _run_stock(pipe, env)
    # the UNet changed, everything else is the base's
    from safetensors.torch import load_file

    new = load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))
    old = load_file(os.path.join(env["sd"], "unet", "diffusion_pytorch_model.safetensors"))
    assert any(not torch.equal(new[k], old[k]) for k in old)
    # and the rorem remover loads it (its key ignores the checkpoints kept beside it)
    from rorem_data.removers import load_remover

    r = load_remover({"model": str(out), "steps": 2, "resolution": 64})
    shutil.rmtree(out / "checkpoints")
    assert load_remover({"model": str(out), "steps": 2, "resolution": 64}).key == r.key


def test_lora_sdxl_loads_with_load_lora_weights(env, tmp_path):
    from diffusers import AutoPipelineForInpainting

    from rorem_data.finetune import train

    out = tmp_path / "lora"
    res = train(_cfg(env, out, pretrained=env["sdxl"], lora_rank=4, lora_alpha=8,
                     validation_steps=3, num_validation_images=1, validation_inference_steps=2),
                progress=False)
    assert res.mode == "lora" and res.weights.endswith("pytorch_lora_weights.safetensors")
    assert not os.path.exists(out / "unet")  # only the LoRA is written
    ckpt_files = os.listdir(res.checkpoints[-1])
    assert "pytorch_lora_weights.safetensors" in ckpt_files and "model.safetensors" not in ckpt_files
    pipe = AutoPipelineForInpainting.from_pretrained(env["sdxl"])
    pipe.load_lora_weights(str(out))
    assert pipe.get_list_adapters().get("unet")
    _run_stock(pipe, env)
    # the rorem remover loads the same LoRA over the base
    from rorem_data.removers import load_remover

    r = load_remover({"model": env["sdxl"], "lora": str(out), "steps": 2, "resolution": 64})
    assert r.provenance()["lora"] == str(out)


@pytest.mark.parametrize("lora_rank", [None, 4])
def test_resume_continues_exactly(env, tmp_path, lora_rank):
    """3 steps, then resume to 5 == 5 steps straight (weights bit for bit, on the CPU)."""
    from safetensors.torch import load_file

    from rorem_data.finetune import train

    name = "pytorch_lora_weights.safetensors" if lora_rank else "unet/diffusion_pytorch_model.safetensors"
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(_cfg(env, straight, max_train_steps=5, lora_rank=lora_rank), progress=False)
    first = train(_cfg(env, resumed, max_train_steps=3, lora_rank=lora_rank), progress=False)
    assert first.resumed_from is None
    second = train(_cfg(env, resumed, max_train_steps=5, lora_rank=lora_rank), progress=False)
    assert second.resumed_from.endswith("checkpoint-3") and second.steps == 5
    a, b = load_file(str(straight / name)), load_file(str(resumed / name))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a checkpoint folder left half-written by a killed run is ignored and removed
    (resumed / "checkpoints" / "checkpoint-9.tmp").mkdir()
    again = train(_cfg(env, resumed, max_train_steps=5, lora_rank=lora_rank), progress=False)
    assert again.resumed_from.endswith("checkpoint-5") and again.steps == 5
    assert not (resumed / "checkpoints" / "checkpoint-9.tmp").exists()


def test_checkpoint_from_another_base_or_mode_is_refused(env, tmp_path):
    from rorem_data.finetune import train
    from rorem_data.testing import tiny

    out = tmp_path / "run"
    train(_cfg(env, out, max_train_steps=2), progress=False)
    other = tiny.build_tiny_sd_inpaint(str(tmp_path / "other-base"), seed=7)
    with pytest.raises(ConfigError, match="different base model"):
        train(_cfg(env, out, pretrained=other, max_train_steps=3), progress=False)
    with pytest.raises(ConfigError, match="different training mode"):
        train(_cfg(env, out, max_train_steps=3, lora_rank=4), progress=False)
    with pytest.raises(ConfigError, match="not a rorem-data training checkpoint"):
        train(_cfg(env, out, max_train_steps=3, resume=str(tmp_path)), progress=False)
    res = train(_cfg(env, out, pretrained=other, max_train_steps=1, resume="none",
                     checkpointing_steps=0), progress=False)
    assert res.resumed_from is None


def test_bad_inputs_are_clear(env, tmp_path):
    from rorem_data.finetune import train
    from rorem_data.testing import tiny

    # an empty export
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "meta.json").write_text("[]")
    with pytest.raises(ConfigError, match="holds no pairs"):
        train(_cfg(env, tmp_path / "o1", data=[str(tmp_path / "empty")]), progress=False)
    with pytest.raises(ConfigError, match="no meta.json"):
        train(_cfg(env, tmp_path / "o1", data=[str(tmp_path / "nothing")]), progress=False)
    # a resolution the VAE cannot take
    with pytest.raises(ConfigError, match="not divisible by the VAE scale factor 8.*use 56 or 64"):
        train(_cfg(env, tmp_path / "o2", resolution=60), progress=False)
    # pairs of mixed sizes: refused when configured, resized by default
    mixed = tmp_path / "mixed"
    shutil.copytree(env["data"], mixed)
    big = Image.open(mixed / "GT" / "000001.png").resize((80, 80))
    big.save(mixed / "GT" / "000001.png")
    with pytest.raises(ValidationError) as exc:
        train(_cfg(env, tmp_path / "o3", data=[str(mixed)], on_size_mismatch="error"), progress=False)
    assert "GT/000001.png" in str(exc.value) and "80x80, not 64x64" in str(exc.value)
    ok = train(_cfg(env, tmp_path / "o4", data=[str(mixed)], max_train_steps=1,
                    checkpointing_steps=0), progress=False)
    assert ok.steps == 1
    # a missing file and a path escaping the export
    broken = tmp_path / "broken"
    shutil.copytree(env["data"], broken)
    os.remove(broken / "mask" / "000002.png")
    meta = json.load(open(broken / "meta.json"))
    meta[3]["GT"] = "../../etc/passwd"
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValidationError) as exc:
        train(_cfg(env, tmp_path / "o5", data=[str(broken)]), progress=False)
    assert "entry 2" in str(exc.value) and "entry 3" in str(exc.value)
    # a text-to-image (4-channel) UNet, a folder that is not a pipeline, a hub id offline
    t2i = tiny.build_tiny_sd_inpaint(str(tmp_path / "t2i"), in_channels=4)
    with pytest.raises(ConfigError, match="4 input channels"):
        train(_cfg(env, tmp_path / "o6", pretrained=t2i), progress=False)
    with pytest.raises(ConfigError, match="not a diffusers pipeline"):
        train(_cfg(env, tmp_path / "o7", pretrained=str(tmp_path)), progress=False)
    with pytest.raises(ConfigError, match="offline"):
        train(_cfg(env, tmp_path / "o8", pretrained="diffusers/sdxl-inpaint"), progress=False)
    # bad options
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        train(_cfg(env, tmp_path / "o9", mixed_precision="fp16"), progress=False)
    with pytest.raises(ConfigError, match="--on-size-mismatch"):
        _cfg(env, tmp_path, on_size_mismatch="crop")
    with pytest.raises(ConfigError, match="unknown option"):
        from rorem_data.finetune import FinetuneConfig

        FinetuneConfig.from_dict({"pretrained": "x", "data": ["d"], "lr": 1})


def _recipe():
    spec = importlib.util.spec_from_file_location(
        "finetune_remover", os.path.join(REPO, "recipes", "finetune_remover.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recipe_main_and_config_file(env, tmp_path, capsys):
    recipe = _recipe()
    out = tmp_path / "recipe-out"
    cfg = tmp_path / "ft.toml"
    cfg.write_text(f'[finetune]\npretrained = "{env["sd"]}"\nresolution = 64\n'
                   'max_train_steps = 2\ntrain_batch_size = 2\nvalidation_steps = 0\n')
    rc = recipe.main(["--config", str(cfg), "--data", env["data"], "--output", str(out),
                      "--checkpointing-steps", "1", "--checkpoints-total-limit", "1",
                      "--no-random-flip", "--no-progress"])
    assert rc == 0 and "fine-tuned (full) for 2 steps" in capsys.readouterr().out
    assert [os.path.basename(p) for p in os.listdir(out / "checkpoints")] == ["checkpoint-2"]
    saved = json.load(open(out / "config.json"))
    assert saved["random_flip"] is False and saved["resolution"] == 64
    rc = recipe.main(["--data", env["data"], "--output", str(out)])
    assert rc == 1 and "pretrained is required" in capsys.readouterr().err


def test_project_finetune_exports_the_round_and_trains(project, env, tmp_path):
    from rorem_data.dataset import store
    from rorem_data.rounds.finetune import finetune

    meta = synthetic.write_seed_set(str(tmp_path / "seeds"), 4, size=64, seed=1)
    project.import_seeds([meta], workers=1)
    opts = tmp_path / "finetune.toml"
    opts.write_text(f'[finetune]\npretrained = "{env["sd"]}"\nresolution = 64\n'
                    'train_batch_size = 2\nvalidation_steps = 0\ncheckpointing_steps = 0\n')
    res = finetune(project, 0, config=str(opts), output=str(tmp_path / "ft"),
                       max_train_steps=2, lora_rank=None, progress=False)
    assert res.steps == 2
    exported = json.load(open(tmp_path / "ft" / "data-round-0" / "meta.json"))
    assert len(exported) == 4
    rec = {r["round"]: r for r in store.get_round_records(project.dataset_name)}[0]
    assert rec["finetune"]["steps"] == 2 and rec["finetune"]["mode"] == "full"


@pytest.mark.slow
def test_recipe_under_accelerate_launch(env, tmp_path):
    """Two processes (``--multi_gpu``: torchrun, a gloo group on a CPU-only machine)."""
    out = tmp_path / "launched"
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           os.path.join(REPO, "recipes", "finetune_remover.py"),
           "--pretrained", env["sd"], "--data", env["data"], "--output", str(out),
           "--resolution", "64", "--max-train-steps", "2", "--train-batch-size", "2",
           "--validation-steps", "0", "--checkpointing-steps", "2", "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(out / "model_index.json")
    states = glob.glob(str(out / "checkpoints" / "*" / "*.json"))
    assert 2 in [json.load(open(p)).get("num_processes") for p in states]
