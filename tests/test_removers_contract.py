"""One contract for every registered remover kind (like the discriminator and strategy suites):
the output count, size and dtype, determinism, documented provenance, refusals that name the
item, and photos of any size and aspect.

Every registered kind must have cases here: registering a kind without adding it fails
``test_every_registered_kind_has_cases``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rorem_data.removers import (
    PROVENANCE_KEYS,
    RemoverInputError,
    get_remover_class,
    list_removers,
    load_remover,
)

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

# kind -> {case id: spec builder (models dict -> spec dict)}
CASES = {
    "classical": {
        "telea": lambda m: {"kind": "classical", "method": "telea", "radius": 3, "dilation": 3},
        "ns": lambda m: {"kind": "classical", "method": "ns", "radius": 5},
    },
    "diffusers": {
        "tiny-sd": lambda m: {"model": m["sd"], "steps": 2, "resolution": 64, "dilation": 3},
        "tiny-sdxl": lambda m: {"model": m["sdxl"], "steps": 2, "resolution": 64},
        "tiny-sd-lcm-lora": lambda m: {"model": m["sd"], "lora": m["lora"], "scheduler": "lcm",
                                       "steps": 4, "resolution": 64},
        "tiny-sd-crop": lambda m: {"model": m["sd"], "steps": 2, "resolution": 64,
                                   "hd_strategy": "crop", "crop_trigger_size": 48,
                                   "crop_margin": 8, "paste_back": True},
        "tiny-sdxl-original": lambda m: {"model": m["sdxl"], "steps": 2, "resolution": 64,
                                         "hd_strategy": "original"},
    },
}
CASE_IDS = [(kind, case) for kind in sorted(CASES) for case in CASES[kind]]




@pytest.fixture(scope="module")
def removers(models):
    loaded = {}

    def get(kind, case):
        if (kind, case) not in loaded:
            loaded[kind, case] = load_remover(CASES[kind][case](models))
        return loaded[kind, case]

    yield get
    for r in loaded.values():
        r.close()


def _photo(name: str, size: tuple[int, int]):
    """A real photo (scikit-image) resized to ``size`` with an elliptic mask off-centre."""
    data = pytest.importorskip("skimage.data")
    img = np.asarray(Image.fromarray(getattr(data, name)()).resize(size, Image.BICUBIC))
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((yy - 0.4 * h) / max(1.0, h / 5)) ** 2 + ((xx - 0.6 * w) / max(1.0, w / 6)) ** 2 <= 1
    mask[int(0.4 * h), int(0.6 * w)] = True
    return img, mask


def _batch():
    return [_photo("astronaut", (72, 72)), _photo("coffee", (96, 64)),
            _photo("chelsea", (45, 70))]


def test_every_registered_kind_has_cases():
    assert set(list_removers()) == set(CASES), "add contract cases for every registered kind"


@pytest.mark.parametrize("kind, case", CASE_IDS)
def test_outputs_count_size_dtype(removers, kind, case):
    r = removers(kind, case)
    batch = _batch()
    images, masks = [b[0] for b in batch], [b[1] for b in batch]
    arrays = r.remove(images, masks, [1, 2, 3], output="numpy")
    assert len(arrays) == 3
    for a, img in zip(arrays, images):
        assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == img.shape
    pils = r.remove(images[:1], masks[:1], [1])
    assert len(pils) == 1 and pils[0].mode == "RGB" and pils[0].size == (72, 72)
    # files work the same as arrays
    assert r.remove([], [], []) == []


@pytest.mark.parametrize("kind, case", CASE_IDS)
def test_same_seed_same_bytes(removers, kind, case):
    r = removers(kind, case)
    images, masks = zip(*_batch())
    a = r.remove(images, masks, [5, 6, 7], output="numpy")
    b = r.remove(images, masks, [5, 6, 7], output="numpy")
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))


@pytest.mark.parametrize("kind, case", CASE_IDS)
def test_provenance_has_the_documented_keys(removers, kind, case):
    r = removers(kind, case)
    prov = r.provenance(seed=3)
    documented = set(PROVENANCE_KEYS) | set(get_remover_class(kind).provenance_keys) | {"seed"}
    assert set(prov) == documented
    assert prov["kind"] == kind and prov["seed"] == 3 and prov["remover_key"] == r.key
    assert r.key.startswith("r") and len(r.key) == 16
    assert json.loads(json.dumps(prov)) == prov  # stored in the database as is
    assert "seed" not in r.provenance()


@pytest.mark.parametrize("kind, case", CASE_IDS)
def test_a_bad_item_is_refused_with_its_index(removers, kind, case):
    r = removers(kind, case)
    (img0, m0), (img1, _m1), (img2, m2) = _batch()
    wrong = np.ones((img1.shape[0] + 3, img1.shape[1]), bool)
    with pytest.raises(RemoverInputError) as exc:
        r.remove([img0, img1, img2], [m0, wrong, m2], [0, 1, 2])
    assert exc.value.index == 1 and "batch item 1" in str(exc.value)
    assert f"{img1.shape[1]}x{img1.shape[0]}" in str(exc.value)
    with pytest.raises(RemoverInputError) as exc:
        r.remove([img0, img2], [m0, np.zeros(img2.shape[:2], bool)], [0, 1])
    assert exc.value.index == 1 and "empty" in str(exc.value)


@pytest.mark.parametrize("kind, case", CASE_IDS)
def test_any_size_and_aspect(removers, kind, case):
    r = removers(kind, case)
    sizes = [(13, 7), (200, 24), (24, 150), (97, 61)]
    photos = [_photo(n, s) for n, s in zip(("rocket", "coffee", "chelsea", "astronaut"), sizes)]
    out = r.remove([p[0] for p in photos], [p[1] for p in photos], [0, 1, 2, 3], output="numpy")
    assert [o.shape for o in out] == [p[0].shape for p in photos]
    if r.spec.paste_back:
        from rorem_data.removers import dilate_mask

        for o, (img, m) in zip(out, photos):
            outside = ~dilate_mask(m, r.spec.dilation)
            assert np.array_equal(o[outside], img[outside])
