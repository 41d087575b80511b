"""The remover: specs, loading real (tiny) diffusers pipelines from disk, results, provenance,
loading failures, and the classical remover."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from rorem_data.core.errors import ConfigError
from rorem_data.models.hashing import checkpoint_sha256
from rorem_data.removers import (
    Remover,
    RemoverInputError,
    RemoverSpec,
    dilate_mask,
    list_removers,
    load_remover,
    register_remover,
)
from rorem_data.removers.classical import ClassicalRemover
from rorem_data.removers.diffusion import DiffusersRemover
from rorem_data.removers.kinds import REMOVERS
from rorem_data.testing import synthetic

torch = pytest.importorskip("torch")
torch.set_num_threads(1)




def _photos():
    """Real photos from scikit-image, shrunk (non-square), with an elliptic object mask."""
    data = pytest.importorskip("skimage.data")
    out = []
    for name, size in (("astronaut", (72, 72)), ("coffee", (90, 60)), ("chelsea", (80, 56))):
        img = np.asarray(Image.fromarray(getattr(data, name)()).resize(size, Image.BICUBIC))
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        mask = ((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 5)) ** 2 <= 1
        out.append((img, mask))
    return out


# -- specs -----------------------------------------------------------------------------------


def test_spec_from_dict_json_toml_and_strings(tmp_path):
    spec = RemoverSpec.from_dict({"model": "m", "steps": 4, "dilation": 20})
    # unset run values are the family's defaults, filled in when the pipeline class is known
    assert (spec.kind, spec.steps, spec.strength, spec.guidance, spec.resolution) == \
        ("diffusers", 4, None, None, None)
    (tmp_path / "m").mkdir()
    (tmp_path / "a.json").write_text(json.dumps({"model": "m", "scheduler": "lcm", "steps": 4}))
    js = RemoverSpec.from_file(str(tmp_path / "a.json"))
    assert js.model == str(tmp_path / "m") and js.name == "a" and js.scheduler == "lcm"
    (tmp_path / "b.toml").write_text('[remover]\nkind = "classical"\nmethod = "ns"\nradius = 5\n')
    tm = RemoverSpec.parse(str(tmp_path / "b.toml"))
    assert (tm.kind, tm.method, tm.radius) == ("classical", "ns", 5)
    assert RemoverSpec.parse("classical:ns").method == "ns"
    assert RemoverSpec.parse("some/model", steps=3).model == "some/model"
    assert RemoverSpec.parse(spec, dilation=None).dilation == 20


@pytest.mark.parametrize("fields, words", [
    ({"model": "m", "stepz": 3}, ["unknown field", "stepz", "steps"]),
    ({"kind": "magic"}, ["kind", "magic"]),
    ({"kind": "diffusers"}, ["model"]),
    ({"model": "m", "strength": 1.5}, ["strength", "(0, 1]"]),
    ({"model": "m", "resolution": 500}, ["resolution", "multiple of 8", "496"]),
    ({"model": "m", "dilation": -1}, ["dilation"]),
    ({"kind": "classical", "method": "fmm"}, ["method", "telea"]),
    ({"model": "m", "dtype": "float8"}, ["dtype"]),
    ({"model": "m", "steps": 1, "strength": 0.99}, ["steps", "strength", "steps >= 2"]),
    ({"model": "m", "lora": [{"path": "a", "weight": 2}]}, ["lora", "path", "scale"]),
    ({"model": "m", "lora": [{"path": "a", "scale": "high"}]}, ["lora", "scale", "high"]),
    ({"model": "m", "lora": 3}, ["lora", "list of paths"]),
    ({"model": "m", "lora_mode": "merge"}, ["lora_mode", "fuse", "attach"]),
    ({"model": "m", "offload": "gpu"}, ["offload", "sequential"]),
    ({"model": "m", "vae_tiling": "yes"}, ["vae_tiling", "true or false"]),
    ({"model": "m", "true_cfg": -1}, ["true_cfg", ">= 0"]),
    ({"model": "m", "max_sequence_length": 0}, ["max_sequence_length", "positive integer"]),
])
def test_spec_errors_name_the_field(fields, words):
    with pytest.raises(ConfigError) as exc:
        RemoverSpec.from_dict(fields)
    for w in words:
        assert w in str(exc.value)


def test_remover_kinds_are_one_registry(tmp_path):
    assert list_removers() == ["classical", "diffusers"]
    with pytest.raises(ConfigError, match="'kind' must be one of classical, diffusers; got 'magic'"):
        RemoverSpec(kind="magic")
    # a spec file can only name a registered kind: nothing it names is imported
    (tmp_path / "evil.json").write_text(json.dumps({"kind": "os:system"}))
    with pytest.raises(ConfigError, match="one of classical, diffusers"):
        load_remover(str(tmp_path / "evil.json"))

    class Negative(Remover):
        """A plug-in: the negative of the image inside the mask."""

        provenance_keys = ("how",)

        def _remove_batch(self, images, masks, seeds):
            return [np.where(m[..., None], 255 - a, a).astype(np.uint8) for a, m in zip(images, masks)]

        def _provenance(self):
            return {"kind": self.spec.kind, "how": "negative", "checkpoint_sha256": None,
                    "sampler": "none", "dilation": self.spec.dilation,
                    "paste_back": self.spec.paste_back, "hd_strategy": "original", "versions": {}}

    register_remover("negative", Negative)
    register_remover("not-a-remover", "builtins:dict")
    try:
        assert "negative" in list_removers()
        r = load_remover({"kind": "negative", "dilation": 3})
        img = np.full((10, 12, 3), 10, np.uint8)
        m = np.zeros((10, 12), bool)
        m[4, 4] = True
        out = r.remove([img], [m], [0], output="numpy")[0]
        assert out[4, 4, 0] == 245 and out[0, 0, 0] == 10 and r.provenance()["how"] == "negative"
        with pytest.raises(ConfigError, match="not a subclass of rorem_data.removers.Remover"):
            load_remover({"kind": "not-a-remover"})
        with pytest.raises(ConfigError, match="already registered"):
            register_remover("classical", Negative)
    finally:
        REMOVERS.unregister("negative")
        REMOVERS.unregister("not-a-remover")


def test_spec_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RemoverSpec.from_file(str(tmp_path / "nope.json"))
    (tmp_path / "bad.toml").write_text("model = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RemoverSpec.from_file(str(tmp_path / "bad.toml"))


# -- diffusers removers on disk --------------------------------------------------------------


@pytest.mark.parametrize("which, pipeline", [("sd", "StableDiffusionInpaintPipeline"),
                                             ("sdxl", "StableDiffusionXLInpaintPipeline")])
def test_diffusers_remover_on_real_photos(models, which, pipeline):
    r = load_remover({"model": models[which], "steps": 2, "resolution": 64, "dilation": 5})
    assert isinstance(r, DiffusersRemover)
    photos = _photos()
    images, masks = [p[0] for p in photos], [p[1] for p in photos]
    out = r.remove(images, masks, seeds=[7, 8, 7])
    assert [o.size for o in out] == [(im.shape[1], im.shape[0]) for im in images]
    assert all(o.mode == "RGB" for o in out)
    # each item has its own generator: the same seed gives the same result in another batch
    again = r.remove([images[1]], [masks[1]], seeds=[8], output="numpy")[0]
    assert np.abs(again.astype(int) - np.asarray(out[1]).astype(int)).max() <= 2
    other_seed = r.remove([images[1]], [masks[1]], seeds=[9], output="numpy")[0]
    assert np.abs(other_seed.astype(int) - again.astype(int)).max() > 10

    prov = r.provenance(seed=8)
    assert prov["pipeline"] == pipeline and prov["seed"] == 8
    for k in ("checkpoint_sha256", "sampler", "steps", "strength", "guidance", "dilation",
              "resolution", "dtype", "remover", "remover_key"):
        assert k in prov, k
    assert prov["steps"] == 2 and prov["strength"] == 0.99 and prov["dtype"] == "float32"
    assert len(prov["checkpoint_sha256"]) == 64
    json.dumps(prov)  # stored in the database as is


def test_key_is_stable_and_depends_on_what_changes_results(models, tmp_path):
    a = load_remover({"model": models["sd"], "steps": 2, "resolution": 64})
    copy = shutil.copytree(models["sd"], tmp_path / "copy")
    b = load_remover({"model": str(copy), "steps": 2, "resolution": 64, "name": "renamed"})
    assert a.key == b.key and a.provenance()["checkpoint_sha256"] == b.provenance()["checkpoint_sha256"]
    assert "seed" not in a.provenance() and a.provenance(seed=1)["remover_key"] == a.key
    c = load_remover({"model": models["sd"], "steps": 3, "resolution": 64})
    assert c.key != a.key
    # changing a weight file changes the checkpoint hash
    from safetensors.torch import load_file, save_file

    w = os.path.join(str(copy), "unet", "diffusion_pytorch_model.safetensors")
    sd = load_file(w)
    name = sorted(sd)[0]
    sd[name] = sd[name] + 1
    save_file(sd, w)
    assert checkpoint_sha256([str(copy)]) != a.provenance()["checkpoint_sha256"]


def test_finetuned_unet_over_base_and_lora_lcm(models, tmp_path):
    from diffusers import UNet2DConditionModel

    from rorem_data.testing import tiny

    other = tiny.build_tiny_sd_inpaint(str(tmp_path / "other"), seed=5)
    unet_dir = str(tmp_path / "rorem-unet")
    UNet2DConditionModel.from_pretrained(os.path.join(other, "unet")).save_pretrained(unet_dir)
    photo, mask = _photos()[0]
    base = load_remover({"model": models["sd"], "steps": 2, "resolution": 64})
    tuned = load_remover({"model": models["sd"], "unet": unet_dir, "steps": 2, "resolution": 64})
    assert tuned.key != base.key and tuned.provenance()["unet"] == unet_dir
    r0 = base.remove([photo], [mask], [1], output="numpy")[0]
    r1 = tuned.remove([photo], [mask], [1], output="numpy")[0]
    assert np.abs(r0.astype(int) - r1.astype(int)).max() > 10

    lcm = load_remover({"model": models["sd"], "lora": models["lora"], "scheduler": "lcm",
                        "steps": 4, "resolution": 64})
    prov = lcm.provenance()
    assert prov["sampler"] == "LCMScheduler" and prov["steps"] == 4 and prov["lora"]
    assert lcm.remove([photo], [mask], [1], output="numpy")[0].shape == photo.shape
    single_file = os.path.join(models["lora"], "pytorch_lora_weights.safetensors")
    lf = load_remover({"model": models["sd"], "lora": single_file, "steps": 2, "resolution": 64})
    assert lf.key != base.key


def test_loading_failures_are_clear(models, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cases = []
    # a folder that is not a pipeline
    (tmp_path / "empty").mkdir()
    cases.append(({"model": str(tmp_path / "empty")}, ["not a diffusers pipeline", "model_index.json"]))
    # a UNet folder given as the model
    cases.append(({"model": os.path.join(models["sd"], "unet")}, ["pass it as `unet`"]))
    # a missing component
    broken = shutil.copytree(models["sd"], tmp_path / "broken")
    shutil.rmtree(os.path.join(broken, "vae"))
    cases.append(({"model": str(broken)}, ["vae", "missing", "AutoencoderKL"]))
    # component without weights
    noweights = shutil.copytree(models["sd"], tmp_path / "noweights")
    os.remove(os.path.join(noweights, "text_encoder", "model.safetensors"))
    cases.append(({"model": str(noweights)}, ["text_encoder", "no weight file"]))
    # a hub id while offline
    cases.append(({"model": "LetsThink/RORem"}, ["hub id", "offline", "HF_HUB_OFFLINE",
                                                  "hf download LetsThink/RORem"]))
    # a path that does not exist
    cases.append(({"model": str(tmp_path / "no" / "such")}, ["does not exist"]))
    # a file instead of a folder
    cases.append(({"model": os.path.join(models["sd"], "model_index.json")}, ["is a file"]))
    # a LoRA made for another UNet (shapes do not fit)
    cases.append(({"model": models["sdxl"], "lora": models["lora"]}, ["does not fit", "size mismatch"]))
    # a LoRA none of whose keys match the UNet
    from safetensors.torch import save_file

    (tmp_path / "alien-lora").mkdir()
    save_file({"unet.nothing_here.lora_A.weight": torch.zeros(4, 16),
               "unet.nothing_here.lora_B.weight": torch.zeros(16, 4)},
              str(tmp_path / "alien-lora" / "pytorch_lora_weights.safetensors"))
    cases.append(({"model": models["sd"], "lora": str(tmp_path / "alien-lora")}, ["does not fit"]))
    # a UNet from another base (SD UNet over SDXL)
    cases.append(({"model": models["sdxl"], "unet": models["sd"]}, ["another base model"]))
    cases.append(({"model": models["sd"], "unet": str(tmp_path / "empty")}, ["no config.json"]))
    cases.append(({"model": models["sd"], "scheduler": "warp"}, ["scheduler 'warp'", "lcm"]))
    cases.append(({"model": models["sd"], "dtype": "float16", "device": "cpu"}, ["GPU"]))
    for fields, words in cases:
        with pytest.raises(ConfigError) as exc:
            load_remover({"resolution": 64, "steps": 2, **fields})
        for w in words:
            assert w in str(exc.value), (fields, str(exc.value))


def test_remove_input_errors_name_the_item(models, tmp_path):
    r = load_remover("classical")
    img = np.zeros((20, 30, 3), np.uint8)
    ok = np.zeros((20, 30), bool)
    ok[5:8, 5:8] = True
    with pytest.raises(RemoverInputError) as exc:
        r.remove([img, img], [ok, np.ones((20, 20), bool)], [0, 1])
    assert exc.value.index == 1 and isinstance(exc.value, ConfigError)
    assert "batch item 1: the mask is 20x20 but the image is 30x20" in str(exc.value)
    with pytest.raises(RemoverInputError, match="batch item 0: the mask is empty") as exc:
        r.remove([img], [np.zeros((20, 30), bool)], [0])
    assert exc.value.index == 0
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nothing")
    with pytest.raises(RemoverInputError, match="batch item 2: image .*broken.png") as exc:
        r.remove([img, img, str(tmp_path / "broken.png")], [ok, ok, ok], [0, 1, 2])
    assert exc.value.index == 2
    with pytest.raises(RemoverInputError, match="batch item 0: image must be uint8"):
        r.remove([img.astype(np.float32)], [ok], [0])
    with pytest.raises(RemoverInputError, match="batch item 1: seed must be an integer"):
        r.remove([img, img], [ok, ok], [0, "1"])
    with pytest.raises(ConfigError, match="one mask and one seed per image"):
        r.remove([img, img], [ok], [0])
    with pytest.raises(ConfigError, match="output must be one of pil, numpy"):
        r.remove([img], [ok], [0], output="tensor")
    assert r.remove([], [], []) == []


# -- classical remover -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_classical_remover_removes_a_synthetic_object(method):
    r = load_remover({"kind": "classical", "method": method, "radius": 5, "dilation": 3})
    assert isinstance(r, ClassicalRemover)
    scenes = [synthetic.make_scene(s, size=96) for s in range(6)]
    out = r.remove([s.source for s in scenes], [s.masks[0] for s in scenes], output="numpy")
    before, after = [], []
    for s, o in zip(scenes, out):
        m = s.masks[0]
        truth = s.truths[0].astype(float)
        before.append(np.abs(s.source.astype(float) - truth)[m].mean())
        after.append(np.abs(o.astype(float) - truth)[m].mean())
        # outside the (dilated) mask the source is untouched
        outside = ~dilate_mask(m, 3)
        assert np.array_equal(o[outside], s.source[outside])
    assert np.mean(after) < 0.6 * np.mean(before), (before, after)
    prov = r.provenance(seed=0)
    assert prov["method"] == method and prov["checkpoint_sha256"] is None
    assert r.key == load_remover(f"classical:{method}", radius=5, dilation=3).key


def test_keys_made_before_the_hd_fields_existed_are_unchanged():
    """New provenance fields at their old behaviour stay out of the key (values computed by the
    remover before ``hd_strategy`` existed), so existing candidates are not generated again."""
    assert load_remover("classical:telea").key == "r6a92ccd9572b1b1"
    assert load_remover("classical:ns").key == "r1b8fe562664424f"
    assert load_remover("classical:telea", radius=5, dilation=3).key == "r37d5da85bfce1a9"


def test_dilation_and_paste_back(models):
    m = np.zeros((32, 32), bool)
    m[10:12, 10:12] = True
    d = dilate_mask(m, 5)
    assert d.sum() > m.sum() and d[m].all() and not d[0, 0]
    scene = synthetic.make_scene(3, size=64)
    r = load_remover({"model": models["sd"], "steps": 2, "resolution": 64, "paste_back": True,
                      "dilation": 3})
    out = r.remove([scene.source], [scene.masks[0]], [0], output="numpy")[0]
    outside = ~dilate_mask(scene.masks[0], 3)
    assert np.array_equal(out[outside], scene.source[outside])
    assert not np.array_equal(out, scene.source)


def test_remover_modules_import_light():
    """The remover, generation and fine-tuning modules load torch / diffusers / fiftyone only
    when used."""
    import subprocess
    import sys

    code = ("import sys, rorem_data.removers, rorem_data.removers.diffusion, "
            "rorem_data.removers.classical, rorem_data.models, rorem_data.rounds.generate, "
            "rorem_data.finetune, rorem_data.finetune.loop, rorem_data.finetune.checkpoints, "
            "rorem_data.rounds.finetune, rorem_data.testing.tiny; print(','.join(m for m in ('torch', 'diffusers', 'transformers', "
            "'fiftyone', 'cv2', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
