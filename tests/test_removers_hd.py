"""HD strategies on real photos of several sizes and aspects, through tiny SD and SDXL inpainting
pipelines built in process: what the pipeline saw (recorded at the call), the result's size,
the pixels outside the window / mask, the remover key, and the classical removers' native size."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rorem_data.core.errors import ConfigError
from rorem_data.removers import RemoverSpec, dilate_mask, load_remover
from rorem_data.removers.hd import mask_box, plan_window, round_up

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
skdata = pytest.importorskip("skimage.data")

# name -> (width, height) as scikit-image ships them
PHOTOS = {"astronaut": (512, 512), "coffee": (600, 400), "chelsea": (451, 300),
          "rocket": (640, 427), "hubble_deep_field": (1000, 872), "retina": (1411, 1411)}


def photo(name: str, *, box_frac=(0.55, 0.35, 0.08, 0.06)):
    """A scikit-image photo at its real size with an elliptic object mask drawn on it
    (centre x, y and radii as fractions of the width / height)."""
    img = np.ascontiguousarray(getattr(skdata, name)()[..., :3])
    h, w = img.shape[:2]
    assert (w, h) == PHOTOS[name]
    cx, cy, rx, ry = box_frac
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - cx * w) / (rx * w)) ** 2 + ((yy - cy * h) / (ry * h)) ** 2 <= 1
    return img, mask




def recording(models, which, **fields):
    from rorem_data.testing.tiny import RecordingPipeline

    r = load_remover({"model": models[which], "steps": 2, **fields})
    r.pipe = RecordingPipeline(r.pipe)
    return r


# -- the window plan (pure) ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(w=st.integers(1, 3000), h=st.integers(1, 3000), data=st.data(),
       strategy=st.sampled_from(["resize", "crop", "original"]),
       resolution=st.sampled_from([64, 512, 1024]), margin=st.integers(0, 300),
       trigger=st.integers(1, 2000))
def test_plan_window_properties(w, h, data, strategy, resolution, margin, trigger):
    x0 = data.draw(st.integers(0, w - 1))
    y0 = data.draw(st.integers(0, h - 1))
    x1 = data.draw(st.integers(x0 + 1, w))
    y1 = data.draw(st.integers(y0 + 1, h))
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    win = plan_window((w, h), mask, strategy=strategy, resolution=resolution,
                      crop_margin=margin, crop_trigger_size=trigger)
    left, top, right, bottom = win.box
    assert 0 <= left < right <= w and 0 <= top < bottom <= h
    assert left <= x0 and top <= y0 and right >= x1 and bottom >= y1  # the whole mask is seen
    pw, ph = win.padded
    assert pw % 8 == 0 and ph % 8 == 0 and pw >= win.size[0] and ph >= win.size[1]
    if strategy == "resize":
        assert win.size == win.padded == (resolution, resolution)
    elif strategy == "original":
        assert win.box == (0, 0, w, h) and win.size == (w, h) and win.padded == (round_up(w), round_up(h))
    else:
        bw, bh = right - left, bottom - top
        if max(w, h) > trigger:  # a window around the mask: margin on every side that fits
            assert bw == min(w, x1 - x0 + 2 * margin) and bh == min(h, y1 - y0 + 2 * margin)
        else:
            assert win.box == (0, 0, w, h)
        if max(bw, bh) > resolution:  # resized, aspect kept, to the model's size
            assert max(win.size) == resolution and win.resized
            assert abs(win.size[0] * bh - win.size[1] * bw) <= bw + bh  # rounding only
        else:  # native resolution
            assert win.size == (bw, bh) and not win.resized


def test_crop_window_at_a_border_is_shifted_inward():
    mask = np.zeros((1000, 1500), bool)
    mask[10:40, 1480:1500] = True  # top-right corner
    win = plan_window((1500, 1000), mask, strategy="crop", resolution=512, crop_margin=128)
    assert win.box == (1500 - 276, 0, 1500, 286)  # 20 + 256 wide, 30 + 256 high, inside the image
    assert mask_box(mask) == (1480, 10, 1500, 40)


# -- through real (tiny) pipelines ------------------------------------------------------------


@pytest.mark.parametrize("which", ["sd", "sdxl"])
@pytest.mark.parametrize("name", ["hubble_deep_field", "retina"])
def test_crop_large_photo_native_window(models, which, name):
    """Above the trigger (800 px) the model sees a native-resolution window holding the whole
    (dilated) mask plus the margin; everything outside the window is the source's."""
    img, mask = photo(name)
    r = recording(models, which, resolution=512, hd_strategy="crop", dilation=5)
    out = r.remove([img], [mask], [0], output="numpy")[0]
    assert out.shape == img.shape
    dilated = dilate_mask(mask, 5)
    x0, y0, x1, y1 = mask_box(dilated)
    (call,) = r.pipe.calls
    win_w, win_h = min(img.shape[1], x1 - x0 + 256), min(img.shape[0], y1 - y0 + 256)
    assert (call["width"], call["height"]) == (round_up(win_w), round_up(win_h))
    assert call["image_sizes"] == [(call["width"], call["height"])]
    seen = call["masks"][0]
    assert seen.sum() == dilated.sum()  # not resized, not cut: every mask pixel reached the model
    left, top, right, bottom = r.windows([img], [dilated])[0].box
    assert np.array_equal(seen[:win_h, :win_w], dilated[top:bottom, left:right])
    outside = np.ones(mask.shape, bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(out[outside], img[outside])
    assert not np.array_equal(out[dilated], img[dilated])


@pytest.mark.parametrize("which", ["sd", "sdxl"])
def test_crop_window_larger_than_the_model_is_resized(models, which):
    img, mask = photo("retina", box_frac=(0.3, 0.6, 0.12, 0.1))  # ~340 x 280 px object
    r = recording(models, which, resolution=128, hd_strategy="crop", paste_back=True)
    out = r.remove([img], [mask], [3], output="numpy")[0]
    assert out.shape == img.shape
    (call,) = r.pipe.calls
    win = r.windows([img], [mask])[0]
    assert win.resized and max(win.size) == 128
    assert (call["width"], call["height"]) == win.padded
    seen = call["masks"][0]
    assert seen.any() and not seen[win.size[1]:].any() and not seen[:, win.size[0]:].any()
    # the mask's bounding box, scaled into the window, is where the model saw the object
    x0, y0, x1, y1 = mask_box(seen)
    sx = win.size[0] / win.box_size[0]
    mx0, my0, mx1, my1 = mask_box(mask)
    assert abs(x0 - (mx0 - win.box[0]) * sx) <= 2 and abs(x1 - (mx1 - win.box[0]) * sx) <= 2
    assert abs(y0 - (my0 - win.box[1]) * sx) <= 2 and abs(y1 - (my1 - win.box[1]) * sx) <= 2
    # paste-back: every pixel outside the mask is the source's, exactly
    assert np.array_equal(out[~mask], img[~mask])


@pytest.mark.parametrize("name, resolution, expected", [
    ("astronaut", 512, (512, 512)),  # below the trigger: the whole image, native
    ("chelsea", 512, (456, 304)),    # native, padded to a multiple of 8
    ("chelsea", 64, (64, 48)),       # resized to the model's size, aspect kept (64 x 43)
])
def test_crop_below_the_trigger_uses_the_whole_image(models, name, resolution, expected):
    img, mask = photo(name)
    r = recording(models, "sd", resolution=resolution, hd_strategy="crop")
    out = r.remove([img], [mask], [0], output="numpy")[0]
    assert out.shape == img.shape
    assert (r.pipe.calls[0]["width"], r.pipe.calls[0]["height"]) == expected


@pytest.mark.parametrize("which", ["sd", "sdxl"])
@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_original_pads_to_a_multiple_of_8_and_crops_back(models, which, name):
    img, mask = photo(name)
    w, h = PHOTOS[name]
    r = recording(models, which, hd_strategy="original", paste_back=True, dilation=3)
    out = r.remove([img], [mask], [0], output="numpy")[0]
    assert out.shape == img.shape
    (call,) = r.pipe.calls
    assert (call["width"], call["height"]) == (round_up(w), round_up(h))
    seen = call["masks"][0]
    dilated = dilate_mask(mask, 3)
    assert np.array_equal(seen[:h, :w], dilated) and not seen[h:].any() and not seen[:, w:].any()
    assert np.array_equal(out[~dilated], img[~dilated])


@pytest.mark.parametrize("which", ["sd", "sdxl"])
def test_resize_is_rorems_square(models, which):
    img, mask = photo("rocket")
    r = recording(models, which, resolution=64)
    out = r.remove([img], [mask], [0], output="numpy")[0]
    assert out.shape == img.shape
    assert (r.pipe.calls[0]["width"], r.pipe.calls[0]["height"]) == (64, 64)
    assert r.provenance()["hd_strategy"] == "resize"


def test_mixed_sizes_in_one_batch_are_grouped_and_match_single_calls(models):
    photos = [photo("chelsea"), photo("coffee"), photo("chelsea", box_frac=(0.3, 0.6, 0.1, 0.1))]
    r = recording(models, "sd", hd_strategy="original")
    out = r.remove([p[0] for p in photos], [p[1] for p in photos], [4, 5, 6], output="numpy")
    assert sorted((c["width"], c["height"], len(c["image_sizes"])) for c in r.pipe.calls) == \
        [(456, 304, 2), (600, 400, 1)]
    for (img, m), o, seed in zip(photos, out, [4, 5, 6]):
        alone = r.remove([img], [m], [seed], output="numpy")[0]
        assert np.abs(alone.astype(int) - o.astype(int)).max() <= 2


def test_provenance_and_key_follow_the_hd_fields(models):
    base = {"model": models["sd"], "steps": 2, "resolution": 64}
    variants = [{}, {"hd_strategy": "crop"}, {"hd_strategy": "original"},
                {"hd_strategy": "crop", "crop_margin": 32},
                {"hd_strategy": "crop", "crop_trigger_size": 256}, {"crop_margin": 64}]
    keys = []
    for v in variants:
        r = load_remover({**base, **v})
        prov = r.provenance()
        spec = RemoverSpec.from_dict({**base, **v})
        assert (prov["hd_strategy"], prov["crop_margin"], prov["crop_trigger_size"]) == \
            (spec.hd_strategy, spec.crop_margin, spec.crop_trigger_size)
        keys.append(r.key)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("fields, words", [
    ({"hd_strategy": "tile"}, ["hd_strategy", "resize, crop, original", "'tile'"]),
    ({"crop_margin": -1}, ["crop_margin", ">= 0"]),
    ({"crop_trigger_size": 0}, ["crop_trigger_size", "positive integer"]),
])
def test_hd_fields_are_checked(fields, words):
    with pytest.raises(ConfigError) as exc:
        RemoverSpec.from_dict({"model": "m", **fields})
    for w in words:
        assert w in str(exc.value)


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_classical_removers_work_at_native_size(method):
    import cv2

    img, mask = photo("hubble_deep_field")
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    expected = cv2.inpaint(np.ascontiguousarray(img[..., ::-1]), mask.astype(np.uint8) * 255,
                           3.0, flag)[..., ::-1]
    a = load_remover({"kind": "classical", "method": method})
    b = load_remover({"kind": "classical", "method": method, "hd_strategy": "crop",
                      "crop_trigger_size": 100})
    for r in (a, b):
        out = r.remove([img], [mask], [0], output="numpy")[0]
        assert np.array_equal(out, expected)
        assert r.provenance()["hd_strategy"] == "original"
    assert a.key == b.key  # the HD fields do not change what cv2.inpaint does


def test_photo_files_of_any_size(models, tmp_path):
    """Files on disk (read with rorem_data.core.images) behave as arrays."""
    img, mask = photo("coffee")
    Image.fromarray(img).save(tmp_path / "coffee.jpg", quality=95)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "coffee-mask.png")
    r = load_remover({"model": models["sd"], "steps": 2, "resolution": 64, "hd_strategy": "crop",
                      "crop_trigger_size": 500, "paste_back": True})
    out = r.remove([str(tmp_path / "coffee.jpg")], [str(tmp_path / "coffee-mask.png")], [0],
                   output="numpy")[0]
    src = np.asarray(Image.open(tmp_path / "coffee.jpg").convert("RGB"))
    assert out.shape == src.shape and np.array_equal(out[~mask], src[~mask])
