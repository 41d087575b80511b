"""The tiny transformer-family inpainting pipelines: each builds offline, reloads as its own
pipeline class through ``DiffusionPipeline.from_pretrained``, generates a batch at two sizes,
is deterministic given the generators, and takes a transformer LoRA."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from rorem_data.testing.tiny import build_tiny_sd_inpaint
from rorem_data.testing.tiny_families import (
    FAMILY_BUILDERS,
    FAMILY_CALL_KWARGS,
    SLOW_FAMILY_BUILDERS,
    build_tiny_flux_fill,
    build_tiny_transformer_lora,
)

SIZES = [(64, 64), (48, 64)]


def _inputs(height: int, width: int, n: int):
    from PIL import Image

    rng = np.random.default_rng(height * 1000 + width)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: height // 2, width // 4: width // 2] = 255
    return [image] * n, [Image.fromarray(mask, "L")] * n


def _generate(pipe, name: str, height: int, width: int, *, n: int = 2, seeds=None):
    import torch

    images, masks = _inputs(height, width, n)
    seeds = seeds if seeds is not None else list(range(n))
    # a fresh prompt list per call: some pipelines (Z-Image) rewrite the caller's list in place
    return pipe(prompt=[""] * n, image=images, mask_image=masks, height=height, width=width,
                num_inference_steps=2, output_type="np",
                generator=[torch.Generator().manual_seed(s) for s in seeds],
                **FAMILY_CALL_KWARGS[name]).images


def _load(folder: str):
    import diffusers

    pipe = diffusers.DiffusionPipeline.from_pretrained(folder, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("name", sorted(FAMILY_BUILDERS))
def test_family_builds_loads_and_generates(name, tmp_path):
    folder = str(tmp_path / "pipe")
    os.makedirs(folder)  # an existing empty folder is fine
    assert FAMILY_BUILDERS[name](folder, seed=0) == folder
    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as fh:
        assert json.load(fh)["_class_name"] == name
    pipe = _load(folder)
    assert type(pipe).__name__ == name

    for height, width in SIZES:
        out = _generate(pipe, name, height, width)
        assert out.shape == (2, height, width, 3)
        assert np.isfinite(out).all()
        again = _generate(pipe, name, height, width)
        np.testing.assert_array_equal(out, again)


def test_same_seed_gives_same_weights(tmp_path):
    from safetensors.numpy import load_file

    a = build_tiny_flux_fill(str(tmp_path / "a"), seed=3)
    b = build_tiny_flux_fill(str(tmp_path / "b"), seed=3)
    wa = load_file(os.path.join(a, "transformer", "diffusion_pytorch_model.safetensors"))
    wb = load_file(os.path.join(b, "transformer", "diffusion_pytorch_model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_transformer_lora_changes_flux_fill_output(tmp_path):
    folder = build_tiny_flux_fill(str(tmp_path / "pipe"))
    lora = build_tiny_transformer_lora(folder, str(tmp_path / "lora"), rank=4, seed=1)
    assert os.listdir(lora) == ["pytorch_lora_weights.safetensors"]
    pipe = _load(folder)
    before = _generate(pipe, "FluxFillPipeline", 32, 32, n=1)
    pipe.load_lora_weights(lora)
    after = _generate(pipe, "FluxFillPipeline", 32, 32, n=1)
    assert np.abs(after - before).max() > 1e-3


def test_transformer_lora_needs_a_transformer(tmp_path):
    folder = build_tiny_sd_inpaint(str(tmp_path / "sd"))
    with pytest.raises(ValueError, match="no transformer"):
        build_tiny_transformer_lora(folder, str(tmp_path / "lora"))


@pytest.mark.slow
def test_qwen_image_edit_inpaint_generates_at_one_megapixel(tmp_path):
    name = "QwenImageEditInpaintPipeline"
    pipe = _load(SLOW_FAMILY_BUILDERS[name](str(tmp_path / "pipe")))
    assert type(pipe).__name__ == name
    out = _generate(pipe, name, 32, 32, n=1)
    assert out.shape == (1, 1024, 1024, 3)  # height and width are ignored by this pipeline
