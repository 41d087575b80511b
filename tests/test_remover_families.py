"""Contract tests of every diffusers inpainting family as a remover, on tiny random pipelines
built offline (rorem_data.testing.tiny / tiny_families): loading through the spec, two image
sizes with ``crop`` and ``resize``, the pixels each strategy keeps, provenance and a stable key."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("diffusers")

from rorem_data.core.errors import ConfigError  # noqa: E402
from rorem_data.models import families  # noqa: E402
from rorem_data.removers import load_remover  # noqa: E402
from rorem_data.testing import tiny, tiny_families  # noqa: E402

BUILDERS = {"StableDiffusionInpaintPipeline": tiny.build_tiny_sd_inpaint,
            "StableDiffusionXLInpaintPipeline": tiny.build_tiny_sdxl_inpaint,
            **tiny_families.FAMILY_BUILDERS}
SLOW = tiny_families.SLOW_FAMILY_BUILDERS  # ~1 megapixel whatever the size asked
# Families the table knows that have no tiny builder would go untested: say so loudly
UNBUILT = sorted(set(families.FAMILIES) - set(BUILDERS) - set(SLOW))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    cache = {}

    def get(cls: str) -> str:
        if cls not in cache:
            cache[cls] = {**BUILDERS, **SLOW}[cls](str(root / cls))
        return cache[cls]

    return get


def _scene(width: int, height: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    mask[height // 3: height // 2, width // 3: width // 2] = True
    return img, mask


def _spec(folder: str, **fields) -> dict:
    return {"model": folder, "device": "cpu", "steps": 2, "resolution": 64, **fields}


def test_every_family_has_a_tiny_builder():
    assert UNBUILT == [], f"families without a tiny pipeline builder: {UNBUILT}"


@pytest.mark.parametrize("cls", sorted(BUILDERS))
def test_family_loads_by_model_index_class_and_records_it(folders, cls):
    folder = folders(cls)
    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    assert index["_class_name"] == cls
    remover = load_remover(_spec(folder, license="Apache-2.0"))
    fam = families.family_of(cls)
    defaults = fam.defaults(index)
    assert type(remover.pipe).__name__ == cls
    prov = remover.provenance(seed=3)
    assert prov["pipeline"] == cls and prov["family"] == fam.name
    assert prov["steps"] == 2 and prov["strength"] == defaults["strength"]
    assert prov["guidance"] == defaults["guidance"] and prov["true_cfg"] == defaults["true_cfg"]
    assert prov["max_sequence_length"] == defaults["max_sequence_length"]
    assert prov["license"] == "Apache-2.0" and prov["seed"] == 3
    json.dumps(prov)  # stored as is in each candidate
    # the key: stable across loads, blind to the license and to vae slicing, not to the steps
    again = load_remover(_spec(folder, license="CC-BY-NC-4.0", vae_slicing=True))
    assert again.key == remover.key
    assert load_remover(_spec(folder, steps=3)).key != remover.key


@pytest.mark.parametrize("strategy", ["resize", "crop"])
@pytest.mark.parametrize("cls", sorted(BUILDERS))
def test_family_generates_at_two_sizes_and_keeps_what_the_strategy_promises(folders, cls, strategy):
    fam = families.family_of(cls)
    fields = {"hd_strategy": strategy, "dilation": 3}
    if strategy == "crop":  # a window around the mask at native size; the rest is the source
        fields.update(crop_trigger_size=48, crop_margin=8)
    else:  # the square resize regenerates everything; paste_back keeps the outside
        fields.update(paste_back=True)
    remover = load_remover(_spec(folders(cls), **fields))
    for width, height in ((96, 64), (56, 80)):
        img, mask = _scene(width, height)
        out, = remover.remove([img], [mask], [7], output="numpy")
        assert out.shape == (height, width, 3) and out.dtype == np.uint8
        from rorem_data.removers.inputs import dilate_mask

        windows = remover.windows([img], [dilate_mask(mask, 3)])
        if strategy == "crop":
            left, top, right, bottom = windows[0].box
            assert windows[0].padded[0] % fam.multiple == 0
            outside = np.ones((height, width), bool)
            outside[top:bottom, left:right] = False
            assert outside.any() and (out[outside] == img[outside]).all()
        else:
            keep = ~dilate_mask(mask, 3)
            assert (out[keep] == img[keep]).all()
        # the same seed gives the same pixels in a batch of two (up to float rounding)
        both = remover.remove([img, img], [mask, mask], [7, 8], output="numpy")
        assert np.abs(both[0].astype(int) - out.astype(int)).max() <= 2
        assert not np.array_equal(both[0], both[1])


@pytest.mark.parametrize("cls", [c for c in sorted(BUILDERS) if families.FAMILIES[c].denoiser
                                 == "transformer"])
def test_transformer_family_rejects_a_resolution_off_its_patch_grid(folders, cls):
    with pytest.raises(ConfigError, match="multiple of 16"):
        load_remover(_spec(folders(cls), resolution=72))


def test_pipeline_override_must_be_a_diffusers_class(folders):
    folder = folders("FluxFillPipeline")
    with pytest.raises(ConfigError, match="not a pipeline class diffusers exports"):
        load_remover(_spec(folder, pipeline="os.system"))
    remover = load_remover(_spec(folder, pipeline="FluxFillPipeline"))
    assert type(remover.pipe).__name__ == "FluxFillPipeline"
    # a model_index.json naming a class from elsewhere is refused before anything is imported
    index = os.path.join(folder, "model_index.json")
    with open(index, encoding="utf-8") as fh:
        data = json.load(fh)
    bad = dict(data, scheduler=["evil_module", "Scheduler"])
    copy = folder + "-tampered"
    import shutil

    shutil.copytree(folder, copy)
    with open(os.path.join(copy, "model_index.json"), "w", encoding="utf-8") as fh:
        json.dump(bad, fh)
    with pytest.raises(ConfigError, match="evil_module"):
        load_remover(_spec(copy))


def test_unet_over_a_transformer_pipeline_is_refused(folders, tmp_path):
    with pytest.raises(ConfigError, match="transformer"):
        load_remover(_spec(folders("FluxFillPipeline"), unet=str(tmp_path)))


def test_noise_sampler_on_a_flow_matching_pipeline_is_refused(folders):
    with pytest.raises(ConfigError, match="flow matching"):
        load_remover(_spec(folders("FluxFillPipeline"), scheduler="ddim"))


def test_family_defaults_fill_unset_fields(folders):
    remover = load_remover({"model": folders("FluxFillPipeline"), "device": "cpu",
                            "resolution": 64, "steps": 2})
    call = remover.call_arguments(1)
    assert call["guidance_scale"] == 30.0 and call["max_sequence_length"] == 512
    assert call["strength"] == 1.0 and "negative_prompt" not in call
    with pytest.raises(ConfigError, match="steps >= 2"):
        load_remover({"model": folders("StableDiffusionInpaintPipeline"), "device": "cpu",
                      "steps": 1, "resolution": 64})


def test_lora_list_fused_or_attached_changes_output_and_key(folders, tmp_path):
    folder = folders("FluxFillPipeline")
    lora = tiny_families.build_tiny_transformer_lora(folder, str(tmp_path / "lora"))
    img, mask = _scene(64, 64)
    plain = load_remover(_spec(folder))
    base = plain.remove([img], [mask], [1], output="numpy")[0]
    fused = load_remover(_spec(folder, lora=[{"path": lora, "scale": 1.0}]))
    out_fused = fused.remove([img], [mask], [1], output="numpy")[0]
    assert not np.array_equal(out_fused, base) and fused.key != plain.key
    attached = load_remover(_spec(folder, lora=[lora], lora_mode="attach"))
    out_attached = attached.remove([img], [mask], [1], output="numpy")[0]
    assert np.abs(out_attached.astype(int) - out_fused.astype(int)).max() <= 2
    prov = attached.provenance()
    assert prov["lora"] == [os.path.abspath(lora)] and prov["lora_scale"] == [1.0]
    assert prov["lora_mode"] == "attach"
    half = load_remover(_spec(folder, lora=[{"path": lora, "scale": 0.5}]))
    assert half.key != fused.key


@pytest.mark.slow
@pytest.mark.parametrize("cls", sorted(SLOW))
def test_fixed_area_family_comes_back_at_the_window_size(folders, cls):
    """Qwen-Image-Edit works at about one megapixel whatever size it is asked for; the remover
    resizes its result back to the window, so the contract holds (at a cost in detail)."""
    remover = load_remover(_spec(folders(cls), steps=2, paste_back=True, dilation=3))
    assert remover.family.fixed_area and remover.provenance()["pipeline"] == cls
    img, mask = _scene(96, 64)
    out, = remover.remove([img], [mask], [7], output="numpy")
    assert out.shape == (64, 96, 3)
    from rorem_data.removers.inputs import dilate_mask

    keep = ~dilate_mask(mask, 3)
    assert (out[keep] == img[keep]).all()


def test_distilled_klein_takes_the_distilled_defaults(folders):
    folder = folders("Flux2KleinInpaintPipeline")
    with open(os.path.join(folder, "model_index.json"), encoding="utf-8") as fh:
        distilled = json.load(fh).get("is_distilled") is True
    remover = load_remover({"model": folder, "device": "cpu", "resolution": 64})
    fam = families.FAMILIES["Flux2KleinInpaintPipeline"]
    expect = fam.distilled if distilled else (fam.steps, fam.guidance)
    assert (remover.settings["steps"], remover.settings["guidance"]) == expect


def test_memory_options_are_recorded_and_keyed_by_whether_they_change_pixels(folders):
    folder = folders("FluxFillPipeline")
    plain = load_remover(_spec(folder))
    native = load_remover(_spec(folder, attention_backend="native", vae_slicing=True))
    prov = native.provenance()
    assert prov["attention_backend"] == "native" and prov["vae_slicing"] is True
    assert native.key == plain.key  # same pixels: not in the key
    img, mask = _scene(64, 64)
    assert np.array_equal(native.remove([img], [mask], [2], output="numpy")[0],
                          plain.remove([img], [mask], [2], output="numpy")[0])
    tiled = load_remover(_spec(folder, vae_tiling=True))
    assert tiled.provenance()["vae_tiling"] is True and tiled.key != plain.key
    with pytest.raises(ConfigError, match="attention_backend 'warp-drive'"):
        load_remover(_spec(folder, attention_backend="warp-drive"))
    with pytest.raises(ConfigError, match="device is the CPU"):
        load_remover(_spec(folder, offload="model"))
