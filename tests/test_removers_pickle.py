"""Weights that would be unpickled are refused: a malicious ``.bin`` / ``.pt`` / ``.ckpt`` UNet,
LoRA or pipeline component that creates a folder when unpickled is never loaded (the folder is
not created), and the message names the file and the fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from rorem_data.models.files import (
    UnsafeWeightsError,
    check_pipeline_folder,
    resolve_lora_file,
    resolve_unet_folder,
)
from rorem_data.models.hub import resolve_pipeline_folder
from rorem_data.removers import load_remover

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


class _Payload:
    """Unpickling this creates ``marker`` (stands for any code a pickle can run)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def write_malicious(path, marker) -> str:
    """A torch-format file that runs ``os.mkdir(marker)`` when loaded with pickle."""
    torch.save({"conv_in.weight": _Payload(str(marker))}, str(path))
    return str(path)




def test_the_payload_really_runs_when_unpickled(tmp_path):
    """The fixture files are truly malicious: a plain torch.load(weights_only=False) runs them."""
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.bin", marker)
    code = f"import torch; torch.load({evil!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert marker.is_dir()


def _assert_refused(exc, path, marker):
    msg = str(exc.value)
    assert isinstance(exc.value, UnsafeWeightsError) and exc.value.path == str(path)
    assert str(path) in msg and "pickle" in msg and "safetensors" in msg
    assert "save_pretrained(..., safe_serialization=True)" in msg
    assert not os.path.exists(marker), "the pickle was loaded"


@pytest.mark.parametrize("name", ["diffusion_pytorch_model.bin", "diffusion_pytorch_model.pt",
                                  "model.ckpt", "unet.pth"])
def test_pickle_unet_folder_is_refused(models, tmp_path, name):
    marker = tmp_path / "pwned"
    unet = tmp_path / "evil-unet"
    unet.mkdir()
    shutil.copy(os.path.join(models["sd"], "unet", "config.json"), unet / "config.json")
    evil = write_malicious(unet / name, marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        load_remover({"model": models["sd"], "unet": str(unet), "steps": 2, "resolution": 64})
    _assert_refused(exc, evil, marker)
    with pytest.raises(UnsafeWeightsError):
        resolve_unet_folder(str(unet))


def test_pickle_lora_file_and_folder_are_refused(models, tmp_path):
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "pytorch_lora_weights.bin", marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        load_remover({"model": models["sd"], "lora": evil, "steps": 2, "resolution": 64})
    _assert_refused(exc, evil, marker)
    folder = tmp_path / "lora-folder"
    folder.mkdir()
    evil2 = write_malicious(folder / "pytorch_lora_weights.bin", marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        load_remover({"model": models["sd"], "lora": str(folder), "steps": 2, "resolution": 64})
    _assert_refused(exc, evil2, marker)
    # beside a safetensors file, the pickle is ignored
    shutil.copy(os.path.join(models["lora"], "pytorch_lora_weights.safetensors"), folder)
    assert resolve_lora_file(str(folder)).endswith(".safetensors")


@pytest.mark.parametrize("component, weights", [
    ("unet", "diffusion_pytorch_model.safetensors"),
    ("text_encoder", "model.safetensors"),
    ("vae", "diffusion_pytorch_model.safetensors"),
])
def test_pipeline_component_with_pickle_weights_only_is_refused(models, tmp_path, component, weights):
    marker = tmp_path / "pwned"
    folder = shutil.copytree(models["sd"], tmp_path / "evil-pipe")
    os.remove(os.path.join(folder, component, weights))
    evil = write_malicious(os.path.join(folder, component, weights.replace(".safetensors", ".bin")),
                           marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        load_remover({"model": str(folder), "steps": 2, "resolution": 64})
    _assert_refused(exc, evil, marker)
    assert component in str(exc.value)
    with pytest.raises(UnsafeWeightsError):
        check_pipeline_folder(str(folder))
    with pytest.raises(UnsafeWeightsError):
        resolve_pipeline_folder(str(folder), what="UNetDiscriminator pretrained_model")


def test_pickle_files_beside_safetensors_are_never_read(models, tmp_path):
    """A folder with both formats loads from safetensors; the pickle is not touched."""
    import numpy as np

    marker = tmp_path / "pwned"
    folder = shutil.copytree(models["sd"], tmp_path / "both")
    for comp, name in (("unet", "diffusion_pytorch_model.bin"), ("vae", "diffusion_pytorch_model.bin"),
                       ("text_encoder", "pytorch_model.bin")):
        write_malicious(os.path.join(folder, comp, name), marker)
    r = load_remover({"model": str(folder), "steps": 2, "resolution": 64})
    img = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    assert r.remove([img], [mask], [0], output="numpy")[0].shape == img.shape
    assert not marker.exists()


def test_single_pickle_checkpoint_as_model_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "sd-inpainting.ckpt", marker)
    with pytest.raises(UnsafeWeightsError) as exc:
        load_remover({"model": evil})
    _assert_refused(exc, evil, marker)
