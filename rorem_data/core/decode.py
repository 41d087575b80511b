"""One decoded image: what the pixels of a source, mask or target are, decided once at import.

Every image becomes **8-bit sRGB, as a viewer shows it**, by stated rules:

====================  ===========================================================  ===========
input                 rule                                                         stored copy
====================  ===========================================================  ===========
EXIF orientation 2-8  applied (rotation / mirror, as browsers and viewers do)      yes
16-bit (gray, RGB)    to 8 bits, ``round(v / 257)``                                yes
CMYK                  to sRGB through its ICC profile (Pillow's formula without)   yes
ICC profile (not      converted to sRGB (perceptual intent)                        yes
sRGB)
TIFF                  stored as PNG (browsers, hence the App, do not show TIFF)    yes
grayscale, palette,   to RGB as Pillow's ``convert("RGB")`` does (what RORem's      no
1-bit                 trainer reads; every reader agrees)
alpha, all opaque     dropped                                                      no
MPO (phone photos)    the primary image                                            no
alpha, transparent    **refused** (a removal pair needs opaque images)             -
several frames        **refused** (an animation or a multi-page file)              -
float pixels          **refused**                                                  -
====================  ===========================================================  ===========

Where the decoded pixels differ from what a plain ``Image.open(f).convert("RGB")`` gives (the
"stored copy" column), the importer stores the decoded image as a PNG in the project's media and
records the original path and the conversions; the remover, the featurizers, the previews, the
App and every export then read that one file. :func:`inspect_image` reads only the header
(cheap, in the import's checks); :func:`decode_image` decodes
(:func:`rorem_data.core.images.decode_rgb` for a path).

Masks follow the same orientation rule (a mask is expected in the orientation a viewer shows),
and a mask drawn only in the alpha channel is read from it (:func:`decode_mask`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from rorem_data.core.errors import ImageProblem

#: Pillow's transpose for each EXIF orientation (what ``ImageOps.exif_transpose`` does).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
_ORIENTATION_WORDS = {2: "mirrored", 3: "rotated 180°", 4: "mirrored upside down",
                      5: "mirrored and rotated 90° counter-clockwise", 6: "rotated 90° clockwise",
                      7: "mirrored and rotated 90° clockwise", 8: "rotated 90° counter-clockwise"}
_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

# conversion names (recorded with each sample, counted in the import summary)
EXIF = "EXIF orientation"
BITS16 = "16-bit to 8-bit"
CMYK = "CMYK to sRGB"
ICC = "ICC profile to sRGB"
TIFF = "TIFF stored as PNG"
OPAQUE_ALPHA = "opaque alpha channel dropped"
MPO = "primary image of an MPO file"
MASK_ALPHA = "mask read from the alpha channel"
#: the conversions whose pixels differ from ``convert("RGB")`` of the file: a copy is stored
COPIED = (EXIF, BITS16, CMYK, ICC, TIFF)


@dataclass(frozen=True)
class Decoding:
    """What decoding a file will do, read from its header.

    Attributes
    ----------
    width, height : int
        The decoded size: as a viewer shows the image (after the EXIF orientation).
    raw_width, raw_height : int
        The size as stored in the file.
    orientation : int
        The EXIF orientation (1 when there is none).
    conversions : tuple of str
        The rules that apply (names in :data:`COPIED` and the others above).
    refusal : str or None
        Why the file cannot be used as a source or target, in words.
    """

    width: int
    height: int
    raw_width: int
    raw_height: int
    orientation: int = 1
    conversions: tuple = field(default_factory=tuple)
    refusal: str | None = None

    @property
    def needs_copy(self) -> bool:
        """The decoded pixels differ from ``convert("RGB")`` of the file: store a copy."""
        return any(c.startswith(name) for c in self.conversions for name in COPIED)

    @property
    def rotated(self) -> bool:
        return self.orientation in (5, 6, 7, 8)

    def orientation_words(self) -> str:
        return _ORIENTATION_WORDS.get(self.orientation, "as stored")


def orientation_of(im) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation
        return 1
    return value if value in range(1, 9) else 1


def _is_16bit_rgb(im) -> bool:
    """Pillow opens 16-bit RGB PNGs as 8-bit RGB (high bytes); its tile says what is stored."""
    try:
        return any(str(t[3] if isinstance(t, tuple) else t.args[0]).endswith(";16B")
                   for t in (im.tile or ()))
    except (AttributeError, IndexError, TypeError):
        return False


def _icc_description(icc: bytes) -> str:
    from PIL import ImageCms

    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:  # noqa: BLE001 - an unreadable profile is treated as absent
        return ""


def _is_srgb(description: str) -> bool:
    d = description.lower().replace(" ", "")
    return "srgb" in d or "iec61966-2" in d


def inspect_image(im, *, role: str = "source") -> Decoding:
    """The :class:`Decoding` of an open image, from its header (the alpha band of images that
    have one is read to tell opaque from transparent)."""
    w, h = im.size
    sixteen = im.mode in _SIXTEEN or _is_16bit_rgb(im)  # before EXIF: reading it loads a PNG
    o = orientation_of(im)
    conv: list[str] = []
    refusal = None
    fmt = (im.format or "").upper()
    frames = int(getattr(im, "n_frames", 1) or 1)
    if fmt == "MPO" and frames > 1:
        conv.append(MPO)
    elif frames > 1:
        refusal = (f"has {frames} frames (an animation or a multi-page file); save the frame you "
                   "mean as PNG and import that")
    mode = im.mode
    if mode == "F":
        refusal = "has floating-point pixels (mode F); convert it to an 8- or 16-bit image"
    if sixteen:
        conv.append(BITS16)
    icc = im.info.get("icc_profile")
    if mode == "CMYK":
        conv.append(f"{CMYK} (its ICC profile)" if icc else f"{CMYK} (no ICC profile: Pillow's formula)")
    elif icc and mode in ("RGB", "L", "RGBA", "LA", "P"):
        desc = _icc_description(icc)
        if desc and not _is_srgb(desc):
            conv.append(f"{ICC} ({desc})")
    if fmt == "TIFF":
        conv.append(TIFF)
    if o != 1:
        conv.append(f"{EXIF} {o} ({_ORIENTATION_WORDS[o]})")
    if refusal is None and (mode in _ALPHA_MODES or "transparency" in im.info):
        alpha = _alpha(im)
        if alpha is not None:
            clear = int((alpha < 255).sum())
            if clear:
                share = 100.0 * clear / alpha.size
                refusal = (f"has transparent pixels ({share:.1f}% not fully opaque); a {role} "
                           "needs an opaque image: flatten it onto its background and import again")
            else:
                conv.append(OPAQUE_ALPHA)
    dw, dh = (h, w) if o in (5, 6, 7, 8) else (w, h)
    return Decoding(width=dw, height=dh, raw_width=w, raw_height=h, orientation=o,
                    conversions=tuple(conv), refusal=refusal)


def _alpha(im) -> np.ndarray | None:
    try:
        if im.mode in _ALPHA_MODES:
            return np.asarray(im.getchannel("A" if "A" in im.mode else "a"))
        if "transparency" in im.info:
            return np.asarray(im.convert("RGBA").getchannel("A"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable image ({exc})") from None
    return None


def _to_srgb(im, icc: bytes):
    from PIL import ImageCms

    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.createProfile("sRGB")
    if im.mode not in ("RGB", "CMYK", "L"):
        im = im.convert("RGB")
    return ImageCms.profileToProfile(im, src, dst, renderingIntent=ImageCms.Intent.PERCEPTUAL,
                                     outputMode="RGB")


def _sixteen_to_rgb(im, path: str | None) -> Image.Image:
    if im.mode in _SIXTEEN:
        a = np.asarray(im).astype(np.float64)
        g = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(g[..., None], 3, axis=2), mode="RGB")
    # 16-bit RGB: Pillow keeps only the high bytes; OpenCV reads the 16 bits
    import cv2

    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION) if path else None
    if raw is None or raw.dtype != np.uint16:
        return im.convert("RGB")
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=2)
    rgb = raw[..., 2::-1] if raw.shape[2] >= 3 else np.repeat(raw[..., :1], 3, axis=2)
    return Image.fromarray(np.clip(np.rint(rgb / 257.0), 0, 255).astype(np.uint8), mode="RGB")


def decode_image(im, *, path: str | None = None, role: str = "source") -> tuple[np.ndarray, Decoding]:
    """Decode an open image by the module's rules: RGB ``uint8`` (H, W, 3) as a viewer shows
    it (:func:`rorem_data.core.images.decode_rgb` opens the file with the usual refusals).

    Raises
    ------
    ImageProblem
        Unreadable, or refused by a rule (the message says which).
    """
    dec = inspect_image(im, role=role)
    if dec.refusal:
        raise ImageProblem(dec.refusal)
    try:
        icc = im.info.get("icc_profile")
        if any(c == BITS16 for c in dec.conversions):
            out = _sixteen_to_rgb(im, path)
        elif icc and (im.mode == "CMYK" or any(c.startswith(ICC) for c in dec.conversions)):
            out = _to_srgb(im, icc)
        else:
            out = im.convert("RGB")
        if dec.orientation != 1:
            out = out.transpose(_TRANSPOSE[dec.orientation])
        arr = np.asarray(out)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable image ({exc})") from None
    return arr, dec


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """``arr`` (H, W[, C]) turned as EXIF ``orientation`` says (as :data:`_TRANSPOSE`)."""
    ops = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
           4: lambda a: a[::-1], 5: lambda a: np.swapaxes(a, 0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[int(orientation)](arr))


def encode_png(arr: np.ndarray) -> bytes:
    """PNG bytes of an RGB array (deterministic, no metadata: no EXIF, no ICC)."""
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def decode_mask_image(im) -> tuple[np.ndarray, tuple[str, ...]]:
    """The mask array of an open mask image as a viewer shows it, and the rules applied: EXIF
    orientation, and a mask drawn only in the alpha channel (color constant, alpha varying) is
    read from the alpha channel."""
    conv: list[str] = []
    o = orientation_of(im)
    if o != 1:
        im = im.transpose(_TRANSPOSE[o])
        conv.append(f"{EXIF} {o} ({_ORIENTATION_WORDS[o]})")
    if im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        color, alpha = rgba[..., :3], rgba[..., 3]
        if alpha.min() != alpha.max() and (color == color.reshape(-1, 3)[0]).all():
            conv.append(MASK_ALPHA)
            return alpha, tuple(conv)
    if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif im.mode == "1":
        im = im.convert("L")
    return np.asarray(im), tuple(conv)
