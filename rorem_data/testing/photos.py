"""Photo files as cameras and datasets deliver them, written from a real photo for tests.

Each writer stores ``photo`` (an RGB ``uint8`` array, as a viewer should show it) in one of the
forms real inputs come in: a JPEG whose EXIF orientation turns it, a 16-bit PNG, a CMYK JPEG, a
JPEG tagged with a wide-gamut ICC profile, a GIF, an image with an alpha channel. Real photos
come from scikit-image's bundled data (``skimage.data``), offline.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

#: EXIF orientation -> the orientation whose turn undoes it (6 and 8 undo each other)
_UNDO = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def real_photo(width: int = 96, height: int = 128) -> np.ndarray:
    """A real photo (scikit-image's astronaut), cropped and scaled to ``height x width``."""
    from skimage import data

    im = Image.fromarray(data.astronaut())
    side = min(im.size)
    im = im.crop((0, 0, int(side * width / height), side)) if width < height else im
    return np.asarray(im.resize((width, height), Image.LANCZOS))


def write_exif_jpeg(path: str, photo: np.ndarray, orientation: int, quality: int = 95) -> None:
    """A JPEG whose stored pixels, turned by EXIF ``orientation``, show ``photo``."""
    from rorem_data.core.decode import orient_array

    im = Image.fromarray(orient_array(photo, _UNDO[orientation]))
    exif = im.getexif()
    exif[0x0112] = int(orientation)
    im.save(path, exif=exif.tobytes(), quality=quality)


def write_16bit_png(path: str, photo: np.ndarray, *, gray: bool = False) -> np.ndarray:
    """A 16-bit PNG (gray or RGB) of ``photo``; returns the 16-bit values written."""
    import cv2

    if gray:
        v = (np.asarray(Image.fromarray(photo).convert("L")).astype(np.uint16) * 257
             + np.arange(photo.shape[1], dtype=np.uint16)[None, :] % 97)
        cv2.imwrite(path, v)
        return v
    v = photo.astype(np.uint16) * 257 + (np.arange(photo.shape[1], dtype=np.uint16)[None, :, None] % 97)
    cv2.imwrite(path, v[..., ::-1])
    return v


def write_cmyk_jpeg(path: str, photo: np.ndarray, quality: int = 95) -> None:
    Image.fromarray(photo).convert("CMYK").save(path, quality=quality)


def _s15(x: float) -> bytes:
    return struct.pack(">i", int(round(x * 65536)))


def _xyz(x, y, z) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def wide_gamut_profile(description: str = "rorem test wide-gamut RGB") -> bytes:
    """An ICC v2 RGB matrix/TRC profile with Adobe RGB (1998)-like primaries (D50-adapted) and
    a 2.2 gamma: a real profile that is not sRGB, written here (no profile files are needed)."""
    desc_ascii = description.encode("ascii") + b"\0"
    desc = (b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_ascii)) + desc_ascii
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", 563) + b"\0\0"
    text = b"text" + b"\0" * 4 + b"no copyright, test data\0"
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", _xyz(0.6097, 0.3111, 0.0195)), (b"gXYZ", _xyz(0.2053, 0.6257, 0.0609)),
            (b"bXYZ", _xyz(0.1492, 0.0632, 0.7446)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve), (b"cprt", text)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB " + b"XYZ " + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp"
              + b"\0" * 4 + struct.pack(">I", 0) + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def write_icc_jpeg(path: str, photo: np.ndarray, quality: int = 95) -> bytes:
    """A JPEG of ``photo``'s values tagged with :func:`wide_gamut_profile`; returns the profile."""
    icc = wide_gamut_profile()
    Image.fromarray(photo).save(path, quality=quality, icc_profile=icc)
    return icc


def write_alpha_mask(path: str, mask: np.ndarray) -> None:
    """A mask drawn only in the alpha channel (the colour is black everywhere)."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., 3] = np.where(mask, 255, 0)
    Image.fromarray(rgba, "RGBA").save(path)


def write_transparent(path: str, photo: np.ndarray) -> None:
    """An RGBA PNG of ``photo`` whose left half is fully transparent."""
    a = np.full(photo.shape[:2], 255, np.uint8)
    a[:, : photo.shape[1] // 2] = 0
    Image.fromarray(np.dstack([photo, a]), "RGBA").save(path)


def write_animated_gif(path: str, photo: np.ndarray, frames: int = 3) -> None:
    ims = [Image.fromarray(np.roll(photo, 5 * k, axis=1)).convert("P") for k in range(frames)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=100, loop=0)
