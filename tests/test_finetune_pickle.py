"""Fine-tuning never unpickles: pickle-based base / UNet weights are refused, checkpoints hold no
pickle file, resume reads safetensors + JSON only, and a checkpoint holding only accelerate's
pickle state (``random_states_0.pkl``, ``optimizer.bin``, ...) is refused - a malicious one
would create a folder when unpickled, and the folder is not created."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from rorem_data.models.files import UnsafeWeightsError, is_pickle_file
from rorem_data.testing import synthetic

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def write_malicious(path, marker) -> str:
    """A torch.save file that runs ``os.mkdir(marker)`` when unpickled."""
    torch.save({"state": _Payload(str(marker))}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import diffusers

    from rorem_data.testing import tiny

    diffusers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("ft-pickle")
    os.environ["ROREM_DATA_CACHE"] = str(root / "cache")
    synthetic.write_seed_set(str(root / "data"), 4, size=64, seed=0)
    return {"data": str(root / "data"), "sd": tiny.build_tiny_sd_inpaint(str(root / "sd"))}


def _cfg(env, out, **kw):
    from rorem_data.finetune import FinetuneConfig

    opts = dict(pretrained=env["sd"], data=[env["data"]], output=str(out), resolution=64,
                max_train_steps=2, train_batch_size=2, checkpointing_steps=1,
                validation_steps=0, report_to="none")
    opts.update(kw)
    return FinetuneConfig(**opts)


@pytest.mark.parametrize("lora_rank", [None, 4])
def test_checkpoints_hold_no_pickle_and_resume_reads_none(env, tmp_path, lora_rank):
    from rorem_data.finetune import train

    out = tmp_path / "run"
    train(_cfg(env, out, lora_rank=lora_rank), progress=False)
    files = [os.path.join(d, f) for d, _dirs, fs in os.walk(out) for f in fs]
    assert files and not [f for f in files if is_pickle_file(f)]
    # a malicious pickle dropped into the newest checkpoint is never read by resume
    marker = tmp_path / "pwned"
    ckpt = out / "checkpoints" / "checkpoint-2"
    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin", "sampler.bin",
                 "pytorch_lora_weights.bin", "custom_checkpoint_0.pkl"):
        write_malicious(ckpt / name, marker)
    res = train(_cfg(env, out, lora_rank=lora_rank, max_train_steps=3), progress=False)
    assert res.resumed_from == str(ckpt) and res.steps == 3
    assert not marker.exists()


def _accelerate_style_checkpoint(real_ckpt: str, dst, marker) -> str:
    """A checkpoint folder as accelerate's save_state writes it (pickle state), with our
    metadata so that it passes the identity check."""
    os.makedirs(dst)
    shutil.copy(os.path.join(real_ckpt, "rorem_finetune.json"), dst)
    shutil.copytree(os.path.join(real_ckpt, "unet"), os.path.join(dst, "unet"))
    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        write_malicious(os.path.join(dst, name), marker)
    return str(dst)


def test_checkpoint_with_only_pickle_state_is_refused(env, tmp_path):
    from rorem_data.finetune import train

    out = tmp_path / "run"
    train(_cfg(env, out, max_train_steps=1), progress=False)
    marker = tmp_path / "pwned"
    real = str(out / "checkpoints" / "checkpoint-1")
    legacy = _accelerate_style_checkpoint(real, out / "checkpoints" / "checkpoint-7", marker)
    for resume in ("latest", legacy):  # the newest checkpoint, or named
        with pytest.raises(UnsafeWeightsError) as exc:
            train(_cfg(env, out, max_train_steps=9, resume=resume), progress=False)
        msg = str(exc.value)
        assert legacy in msg and "optimizer.bin" in msg and "random_states_0.pkl" in msg
        assert "pickle" in msg and "--resume none" in msg
        assert not marker.exists()
    # starting fresh is the way out
    res = train(_cfg(env, out, max_train_steps=1, resume="none", checkpointing_steps=0),
                progress=False)
    assert res.resumed_from is None and not marker.exists()


def test_pickle_base_or_unet_weights_are_refused(env, tmp_path):
    from rorem_data.finetune import train

    marker = tmp_path / "pwned"
    base = shutil.copytree(env["sd"], tmp_path / "evil-base")
    os.remove(os.path.join(base, "unet", "diffusion_pytorch_model.safetensors"))
    evil = write_malicious(os.path.join(base, "unet", "diffusion_pytorch_model.bin"), marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        train(_cfg(env, tmp_path / "o1", pretrained=str(base)), progress=False)
    assert evil in str(exc.value) and "safetensors" in str(exc.value)
    unet = tmp_path / "evil-unet"
    unet.mkdir()
    shutil.copy(os.path.join(env["sd"], "unet", "config.json"), unet)
    evil = write_malicious(unet / "diffusion_pytorch_model.ckpt", marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        train(_cfg(env, tmp_path / "o2", unet=str(unet)), progress=False)
    assert evil in str(exc.value) and "--unet" in str(exc.value)
    assert not marker.exists()


def test_state_files_are_safetensors_and_json(env, tmp_path):
    """What a checkpoint's training state is made of (and that a tampered list is refused)."""
    from rorem_data.finetune import train

    out = tmp_path / "run"
    train(_cfg(env, out, max_train_steps=1), progress=False)
    ckpt = out / "checkpoints" / "checkpoint-1"
    state = json.load(open(ckpt / "training_state.json"))
    assert state["format"] == "rorem-finetune-state/1" and state["step"] == 1
    assert state["optimizer"]["files"] == ["optimizer-00000.safetensors"]
    assert sorted(os.listdir(ckpt)) == ["optimizer-00000.safetensors", "rng-0.safetensors",
                                        "rorem_finetune.json", "training_state.json", "unet"]
    state["optimizer"]["files"] = ["../../../evil.safetensors"]
    (ckpt / "training_state.json").write_text(json.dumps(state))
    from rorem_data.core.errors import ConfigError

    with pytest.raises(ConfigError, match="only .safetensors files inside the checkpoint"):
        train(_cfg(env, out, max_train_steps=2), progress=False)
