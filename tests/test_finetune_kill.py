"""Kill tests for fine-tuning: the training process is SIGKILLed at every write point of a
checkpoint save and of the final save, then the same run is started again. It must end where
an uninterrupted run ends: the same step count, the same weights bit for bit (CPU), the same
checkpoints and log, an output that stock diffusers loads, and no temporary folder left.

The kill is injected by replacing ``rorem_data.finetune.checkpoints.write_point`` in a child
process (see that module's Guarantees): a fork of the test process (torch already imported, so
a case takes seconds), and for two cases a fresh interpreter started the way a user starts a
run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from rorem_data.finetune import checkpoints
from rorem_data.testing import synthetic

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    from rorem_data.finetune import FinetuneConfig, checkpoints, train

    config, point, occurrence = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}

    def kill_here(name):
        if name == point:
            seen["n"] += 1
            if seen["n"] == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)

    checkpoints.write_point = kill_here
    with open(config) as fh:
        train(FinetuneConfig(**json.load(fh)), progress=False)
""")

CHECKPOINT_POINTS = [p for p in checkpoints.WRITE_POINTS if p.startswith("checkpoint:")]
FINAL_POINTS = [p for p in checkpoints.WRITE_POINTS if p.startswith("final:")]
# (point, occurrence): checkpoints are saved at steps 2, 4 and 5; the 1st save has nothing to
# resume from, the 3rd prunes checkpoint-2
CASES = ([(p, 1) for p in CHECKPOINT_POINTS] + [("checkpoint:published", 3), ("checkpoint:weights", 3)]
         + [(p, 1) for p in FINAL_POINTS])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import diffusers

    from rorem_data.testing import tiny

    diffusers.utils.logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("ft-kill")
    os.environ["ROREM_DATA_CACHE"] = str(root / "cache")
    synthetic.write_seed_set(str(root / "data"), 5, size=64, seed=0)
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    return {"root": root, "data": str(root / "data"), "driver": str(driver),
            "sd": tiny.build_tiny_sd_inpaint(str(root / "sd")), "references": {}}


def _options(env, out, mode):
    opts = dict(pretrained=env["sd"], data=[env["data"]], output=str(out), resolution=64,
                max_train_steps=5, train_batch_size=2, checkpointing_steps=2,
                checkpoints_total_limit=2, validation_steps=0, log_every=1, report_to="none")
    if mode == "lora":
        opts.update(lora_rank=4, lora_alpha=4)
    return opts


def _weights(out, mode):
    from safetensors.torch import load_file

    name = "pytorch_lora_weights.safetensors" if mode == "lora" else \
        os.path.join("unet", "diffusion_pytorch_model.safetensors")
    return load_file(os.path.join(out, name))


def _state(out, mode):
    log = [json.loads(line) for line in open(os.path.join(out, "logs", "train_log.jsonl"))]
    return {"checkpoints": [os.path.basename(p) for _s, p in checkpoints.list_checkpoints(str(out))],
            "log": [(r["step"], r["loss"]) for r in log]}


def _reference(env, mode):
    from rorem_data.finetune import FinetuneConfig, train

    if mode not in env["references"]:
        out = env["root"] / f"reference-{mode}"
        res = train(FinetuneConfig(**_options(env, out, mode)), progress=False)
        env["references"][mode] = (res, _weights(out, mode), _state(out, mode))
    return env["references"][mode]


def _leftovers(out):
    return [os.path.join(d, n) for d, dirs, files in os.walk(out) for n in dirs + files
            if ".tmp" in n]


def _loads_with_stock_diffusers(env, out, mode):
    from diffusers import AutoPipelineForInpainting
    from PIL import Image

    if mode == "full":
        pipe = AutoPipelineForInpainting.from_pretrained(str(out))
    else:
        pipe = AutoPipelineForInpainting.from_pretrained(env["sd"])
        pipe.load_lora_weights(str(out))
        assert pipe.get_list_adapters().get("unet")
    pipe.set_progress_bar_config(disable=True)
    src = Image.open(os.path.join(env["data"], "source", "000000.png"))
    mask = Image.open(os.path.join(env["data"], "mask", "000000.png"))
    img = pipe(prompt="", image=src, mask_image=mask, height=64, width=64, num_inference_steps=2,
               strength=0.99, guidance_scale=1.0).images[0]
    assert img.size == (64, 64)


def _killed_in_fork(options: dict, point: str, occurrence: int) -> int:
    """Run training in a forked child that SIGKILLs itself at the ``occurrence``-th ``point``;
    returns the child's wait status."""
    from rorem_data.finetune import FinetuneConfig, train

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            seen = {"n": 0}

            def kill_here(name):
                if name == point:
                    seen["n"] += 1
                    if seen["n"] == occurrence:
                        os.kill(os.getpid(), signal.SIGKILL)

            checkpoints.write_point = kill_here
            train(FinetuneConfig(**options), progress=False)
        finally:
            os._exit(3)  # the point was never reached (or training failed)
    _pid, status = os.waitpid(pid, 0)
    return status


def _kill_and_rerun(env, tmp_path, mode, point, occurrence, *, fresh_interpreter=False):
    from rorem_data.finetune import FinetuneConfig, train

    ref, ref_weights, ref_state = _reference(env, mode)
    out = tmp_path / "run"
    if fresh_interpreter:
        cfg_file = tmp_path / "config.json"
        cfg_file.write_text(json.dumps(_options(env, out, mode)))
        proc = subprocess.run([sys.executable, env["driver"], str(cfg_file), point, str(occurrence)],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])
    else:
        status = _killed_in_fork(_options(env, out, mode), point, occurrence)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (point, status)
    if point.startswith("final:"):  # a killed final save never looks finished
        assert not os.path.exists(out / "rorem_finetune.json")
    for _step, ckpt in checkpoints.list_checkpoints(str(out)):  # what counts as finished is whole
        files = os.listdir(ckpt)
        assert "training_state.json" in files and "rng-0.safetensors" in files
        assert ("pytorch_lora_weights.safetensors" in files) if mode == "lora" else ("unet" in files)
    res = train(FinetuneConfig(**_options(env, out, mode)), progress=False)  # the same command again
    assert res.steps == ref.steps == 5 and res.mode == mode
    if point.startswith("checkpoint:") and occurrence == 1 and point != "checkpoint:published":
        assert res.resumed_from is None  # the first checkpoint never finished
    else:
        assert res.resumed_from is not None
    weights = _weights(out, mode)
    assert weights.keys() == ref_weights.keys()
    assert all(torch.equal(weights[k], ref_weights[k]) for k in weights), "not where an uninterrupted run ends"
    assert _state(out, mode) == ref_state
    assert _leftovers(out) == []
    meta = json.load(open(out / "rorem_finetune.json"))
    assert meta["step"] == 5 and meta["mode"] == mode
    _loads_with_stock_diffusers(env, out, mode)


@pytest.mark.parametrize("mode", ["full", pytest.param("lora", marks=pytest.mark.slow)])
@pytest.mark.parametrize("point, occurrence", CASES)
def test_kill_then_resume_ends_like_an_uninterrupted_run(env, tmp_path, mode, point, occurrence):
    _kill_and_rerun(env, tmp_path, mode, point, occurrence)


@pytest.mark.parametrize("mode, point", [
    ("full", "checkpoint:state"), pytest.param("lora", "final:weights", marks=pytest.mark.slow)])
def test_kill_a_fresh_process(env, tmp_path, mode, point):
    """The same, with training in a new interpreter (no state shared with the test process)."""
    _kill_and_rerun(env, tmp_path, mode, point, 1, fresh_interpreter=True)


def test_every_write_point_is_reached(env, tmp_path):
    """The list of write points is the one the code passes (no dead names, none missing)."""
    from rorem_data.finetune import FinetuneConfig, train

    seen = []
    real = checkpoints.write_point
    checkpoints.write_point = seen.append
    try:
        train(FinetuneConfig(**_options(env, tmp_path / "full", "full")), progress=False)
    finally:
        checkpoints.write_point = real
    assert sorted(set(seen)) == sorted(checkpoints.WRITE_POINTS)
    assert seen.count("checkpoint:weights") == 3  # steps 2, 4, 5
