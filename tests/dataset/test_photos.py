"""Real photos as cameras and datasets deliver them: one decoded image from import to export.

Each case imports files written from a real photo (scikit-image's astronaut), generates with a
classical remover, exports, and reads the export as RORem's trainer does (PIL
``convert("RGB")``): the source is the photo as a viewer shows it, the mask lies on the object
it was drawn on, and source and result agree outside the mask.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import rorem_data
from rorem_data.core.errors import ValidationError
from rorem_data.testing import photos

PHOTO = None


def photo():
    global PHOTO
    if PHOTO is None:
        PHOTO = photos.real_photo(96, 128)  # non-square: 96 wide, 128 tall
    return PHOTO


def drawn_mask(shape=(128, 96)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[30:62, 18:50] = True  # on the photo as a viewer shows it
    return m


def save_mask(path, m):
    Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(path)


def pool_folder(root, files: dict) -> str:
    """``files``: name -> writer(path); each gets the drawn mask."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "masks"), exist_ok=True)
    for name, write in files.items():
        write(os.path.join(root, "images", name))
        save_mask(os.path.join(root, "masks", os.path.splitext(name)[0] + ".png"), drawn_mask())
    return root


def through_export(project, tmp_path, n) -> list[dict]:
    """Generate, accept everything, export; the pairs as RORem's trainer reads them."""
    rorem_data.generate(project, 1, "classical:telea", progress=False)
    rorem_data.select(project, 1, n, floor=1.0, previews=False, progress=False)
    rorem_data.review(project, 1, lambda item: "accept")
    out = str(tmp_path / "export")
    rorem_data.export(project, 1, out, progress=False)
    pairs = []
    for m in json.load(open(os.path.join(out, "meta.json"))):
        def rgb(rel):
            return np.asarray(Image.open(os.path.join(out, rel)).convert("RGB")).astype(np.int16)
        mask = np.asarray(Image.open(os.path.join(out, m["mask"])).convert("RGB"))[..., 0] / 255 >= 0.5
        pairs.append({"source": rgb(m["source"]), "result": rgb(m["GT"]), "mask": mask})
    return pairs


def assert_sound(pair, want_source=None, tol=4.0):
    src, res, m = pair["source"], pair["result"], pair["mask"]
    assert np.array_equal(m, drawn_mask(src.shape[:2]))  # the mask lies where it was drawn
    assert (np.abs(src - res).max(axis=2)[~m] == 0).all()  # nothing changed outside it
    assert np.abs(src - res)[m].mean() > 5  # the remover worked inside it
    if want_source is not None:  # the source is the photo as a viewer shows it
        assert np.abs(src - want_source.astype(np.int16)).mean() < tol


@pytest.mark.parametrize("square", [False, True])
def test_exif_orientations_1_to_8_from_import_to_export(project, tmp_path, square):
    p = photo() if not square else photo()[:96]
    files = {f"exif{o}.jpg": (lambda path, o=o: photos.write_exif_jpeg(path, p, o)) for o in range(1, 9)}
    pool = pool_folder(str(tmp_path / "pool"), files)
    if square:
        for o in range(1, 9):
            save_mask(os.path.join(pool, "masks", f"exif{o}.png"), drawn_mask(p.shape[:2]))
    res = rorem_data.import_pool(project, pool, origin="phone", progress=False)
    assert res.inserted == 8 and res.conversions == {"EXIF orientation": 7}
    assert "converted 7 EXIF orientation" in res.summary()
    docs = project.dataset.match({"kind": "pool"})
    for orig, conv, path in zip(docs.values("original_path"), docs.values("conversions"),
                                docs.values("filepath")):
        if orig is None:
            assert path.endswith("exif1.jpg") and not conv
        else:
            o = int(os.path.basename(orig)[4])
            assert conv == [f"source: EXIF orientation {o} ({_words(o)})"]
            assert path.startswith(project.media_dir) and path.endswith(".png")
            assert Image.open(path).size == (p.shape[1], p.shape[0])
    pairs = through_export(project, tmp_path, 8)
    assert len(pairs) == 8
    for pair in pairs:
        assert_sound(pair, p)


def _words(o):
    from rorem_data.core.decode import _ORIENTATION_WORDS

    return _ORIENTATION_WORDS[o]


def test_a_mask_drawn_on_the_stored_pixels_is_refused_naming_exif(project, tmp_path):
    pool = str(tmp_path / "pool")
    os.makedirs(os.path.join(pool, "images"))
    os.makedirs(os.path.join(pool, "masks"))
    photos.write_exif_jpeg(os.path.join(pool, "images", "phone.jpg"), photo(), 6)
    save_mask(os.path.join(pool, "masks", "phone.png"), drawn_mask((96, 128)))  # stored shape
    with pytest.raises(ValidationError) as err:
        rorem_data.import_pool(project, pool, progress=False)
    msg = str(err.value)
    assert "mask is 128x96, the size of phone.jpg as stored" in msg
    assert "EXIF orientation 6" in msg and "rotated 90° clockwise" in msg and "96x128" in msg
    assert project.dataset.count() == 0


def test_16bit_cmyk_icc_gif_and_alpha_masks_from_import_to_export(project, tmp_path):
    p = photo()
    written = {}

    def gray16(path):
        written["gray16"] = photos.write_16bit_png(path, p, gray=True)

    def rgb16(path):
        written["rgb16"] = photos.write_16bit_png(path, p)

    files = {"gray16.png": gray16, "rgb16.png": rgb16,
             "cmyk.jpg": lambda path: photos.write_cmyk_jpeg(path, p),
             "icc.jpg": lambda path: photos.write_icc_jpeg(path, p),
             "still.gif": lambda path: Image.fromarray(p).convert("P").save(path),
             "alphamask.png": lambda path: Image.fromarray(p).save(path)}
    pool = pool_folder(str(tmp_path / "pool"), files)
    photos.write_alpha_mask(os.path.join(pool, "masks", "alphamask.png"), drawn_mask())
    res = rorem_data.import_pool(project, pool, origin="mixed", progress=False)
    assert res.inserted == 6
    assert res.conversions == {"16-bit to 8-bit": 2, "CMYK to sRGB": 1, "ICC profile to sRGB": 1,
                               "mask read from the alpha channel": 1}
    by_name = {os.path.basename(o or f): (f, c) for f, o, c in zip(
        *(project.dataset.match({"kind": "pool"}).values(k) for k in ("filepath", "original_path", "conversions")))}
    assert by_name["gray16.png"][1] == ["source: 16-bit to 8-bit"]
    assert by_name["still.gif"][0].endswith("still.gif")  # read the same by every reader: kept
    pairs = through_export(project, tmp_path, 6)
    assert len(pairs) == 6
    sources = []
    for pair in pairs:
        assert_sound(pair)
        sources.append(pair["source"])

    def found(want):  # the exported source that is this file's decoded pixels
        return any(s.shape == want.shape and np.abs(s - want).max() <= 0 for s in sources)

    v = written["gray16"]
    assert found(np.repeat(np.rint(v / 257.0).astype(np.int16)[..., None], 3, axis=2))
    assert found(np.rint(written["rgb16"] / 257.0).astype(np.int16))
    from PIL import ImageCms

    im = Image.open(os.path.join(pool, "images", "icc.jpg"))
    srgb = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(
        __import__("io").BytesIO(im.info["icc_profile"])), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    assert found(np.asarray(srgb).astype(np.int16))
    naive = np.asarray(im.convert("RGB")).astype(np.int16)
    assert np.abs(naive - np.asarray(srgb).astype(np.int16)).mean() > 2  # the profile mattered


def test_transparent_sources_and_animations_are_refused_by_name(project, tmp_path):
    p = photo()
    pool = pool_folder(str(tmp_path / "pool"), {
        "clear.png": lambda path: photos.write_transparent(path, p),
        "anim.gif": lambda path: photos.write_animated_gif(path, p),
        "fine.png": lambda path: Image.fromarray(p).save(path)})
    with pytest.raises(ValidationError) as err:
        rorem_data.import_pool(project, pool, progress=False)
    msg = str(err.value)
    assert "clear.png" in msg and "transparent pixels (50.0% not fully opaque)" in msg
    assert "anim.gif" in msg and "has 3 frames" in msg
    assert project.dataset.count() == 0
    res = rorem_data.import_pool(project, pool, skip_invalid=True, progress=False)
    assert res.inserted == 1 and res.invalid == 2


def test_a_seed_target_with_transparent_pixels_is_refused(project, tmp_path):
    p = photo()
    root = tmp_path / "seeds"
    for d in ("source", "mask", "GT"):
        os.makedirs(root / d)
    Image.fromarray(p).save(root / "source" / "a.png")
    save_mask(root / "mask" / "a.png", drawn_mask())
    Image.fromarray(np.dstack([p, np.zeros(p.shape[:2], np.uint8)]), "RGBA").save(root / "GT" / "a.png")
    json.dump([{"source": "source/a.png", "mask": "mask/a.png", "GT": "GT/a.png"}],
              open(root / "meta.json", "w"))
    with pytest.raises(ValidationError, match=r"target \(GT\) image has transparent pixels \(100.0% not fully opaque\). Fix: a target needs"):
        rorem_data.import_seeds(project, [str(root / "meta.json")], progress=False)


def test_import_decisions_are_named_and_counted(project, tmp_path):
    p = photo()
    pool = str(tmp_path / "pool")
    os.makedirs(os.path.join(pool, "images"))
    os.makedirs(os.path.join(pool, "masks"))
    for name in ("x", "x_1", "lonely"):
        Image.fromarray(p).save(os.path.join(pool, "images", f"{name}.png"))
    photos.write_exif_jpeg(os.path.join(pool, "images", "turned.jpg"), p, 3)
    save_mask(os.path.join(pool, "masks", "x_1.png"), drawn_mask())
    save_mask(os.path.join(pool, "masks", "turned.png"), drawn_mask())
    save_mask(os.path.join(pool, "masks", "nothing.png"), drawn_mask())  # matches no image
    res = rorem_data.import_pool(project, pool, skip_invalid=True, progress=False)
    text = res.summary()
    assert "imported 2" in text and "converted 1 EXIF orientation" in text
    assert "2 image(s) in images/ have no mask and were not imported: lonely.png, x.png" in text
    assert "masks/x_1.png -> images/x_1.png" in text and "rather than images/x.png" in text
    report = json.load(open(res.report_path))
    assert [r["item"] for r in report][:1] == ["masks/nothing.png"]
    notes = [r["problem"] for r in report if r["item"] == "(note)"]
    assert any("have no mask" in n for n in notes) and any("more than one image" in n for n in notes)
    assert any(n.startswith("converted (decoded by stated rules): 1 EXIF orientation") for n in notes)
    # importing again adds nothing: converted items are recognised by their original files
    again = rorem_data.import_pool(project, pool, skip_invalid=True, progress=False)
    assert again.inserted == 0 and again.already_present == 2
    assert len(os.listdir(os.path.join(project.media_dir, "images"))) == 1
