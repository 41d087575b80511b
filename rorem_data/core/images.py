"""Image and mask files: cheap integrity checks, the RORem mask convention, canonical masks.

Pure PIL + numpy; no database, no torch. Used by the importers (in worker processes) and by
the exporters.

The mask convention is the one the official RORem training code uses: take the first channel,
divide by 255, and a value >= 0.5 is object. Masks whose values are only 0 and 1 (a common
"index mask" form) are read as 1 = object. Every mask is stored in one canonical form: a
single-channel 8-bit PNG whose pixels are 0 (background) or 255 (object).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rorem_data.core.errors import ImageProblem  # noqa: F401 - raised here, defined there

CANONICAL_OBJECT_VALUE = 255
HOST = "".join(c if c.isalnum() else "_" for c in __import__("socket").gethostname())[:32]

_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_EOI = b"\xff\xd9"


def max_pixels() -> int:
    """Largest image (width x height) opened: ``ROREM_MAX_IMAGE_PIXELS``, default 178,956,970
    (Pillow's own decompression-bomb limit, about 13,000 x 13,000)."""
    try:
        return int(os.environ.get("ROREM_MAX_IMAGE_PIXELS", "178956970"))
    except ValueError:
        return 178956970


def _check_size(width: int, height: int) -> None:
    limit = max_pixels()
    if width * height > limit:
        raise ImageProblem(f"image is {width}x{height} = {width * height:,} pixels, above the limit "
                           f"of {limit:,}; downscale it, or raise ROREM_MAX_IMAGE_PIXELS if it is "
                           "genuine")


@contextlib.contextmanager
def open_image(path: str):
    """``PIL.Image.open`` with one set of refusals: missing, unreadable, too large.

    Raises
    ------
    ImageProblem
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError:
        raise ImageProblem("file does not exist") from None
    except IsADirectoryError:
        raise ImageProblem("is a folder, not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageProblem(f"image too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable image ({exc})") from None
    try:
        _check_size(*im.size)
        yield im
    finally:
        im.close()


def _decode(im, what: str):
    """Run a decoding step, turning decoder failures into ImageProblem."""
    try:
        return im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable {what} ({exc})") from None


def read_rgb(path: str, *, reduce_to: int | None = None) -> np.ndarray:
    """Decode an image file to RGB ``uint8`` of shape (H, W, 3): the one image reader.

    Uses OpenCV's decoder when it is installed (faster on PNG; EXIF orientation ignored, as
    Pillow does: files whose orientation matters are stored decoded at import, see
    :mod:`rorem_data.core.decode`) after the size check, and Pillow otherwise.

    Parameters
    ----------
    reduce_to : int, optional
        The caller works at this longest side: a JPEG at least twice as large is decoded
        scaled by 1/2, 1/4 or 1/8 in the DCT (several times faster; the longest side stays at
        least ``reduce_to``). Other formats decode at full size.

    Raises
    ------
    ImageProblem
        Missing, unreadable, truncated, or larger than :func:`max_pixels`.
    """
    with open_image(path) as im:
        fast = _cv2_reader() if im.format in ("PNG", "JPEG") else None
        if fast is None:
            return _pil_rgb(im)
        factor = _reduction(im.size, reduce_to) if im.format == "JPEG" else 1
    cv2, flags = fast
    if factor > 1:
        reduced = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                   8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
        arr = cv2.imread(path, reduced | cv2.IMREAD_IGNORE_ORIENTATION)
        if arr is not None and arr.ndim == 3 and arr.shape[2] == 3:
            return np.ascontiguousarray(arr[..., ::-1])
    arr = cv2.imread(path, flags)
    if arr is not None and arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
        return arr
    with open_image(path) as im:  # OpenCV could not: Pillow decodes it or says why not
        return _pil_rgb(im)


def decode_rgb(path: str, *, role: str = "source"):
    """Decode ``path`` by the rules of :mod:`rorem_data.core.decode` (EXIF orientation, 16
    bits, CMYK, ICC profiles, ...): ``(RGB uint8 array as a viewer shows it, Decoding)``.

    Raises
    ------
    ImageProblem
        Missing, unreadable, too large, or refused by a rule.
    """
    from rorem_data.core.decode import decode_image

    with open_image(path) as im:
        return decode_image(im, path=path, role=role)


def _reduction(size: tuple[int, int], reduce_to: int | None) -> int:
    """The largest DCT scale-down (1, 2, 4 or 8) that keeps the longest side >= ``reduce_to``."""
    if not reduce_to:
        return 1
    longest = max(size)
    for f in (8, 4, 2):
        if longest / f >= reduce_to:
            return f
    return 1


def _pil_rgb(im) -> np.ndarray:
    try:
        return np.asarray(im.convert("RGB") if im.mode != "RGB" else im)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable image ({exc})") from None


_CV2 = None


def _cv2_reader():
    global _CV2
    if _CV2 is None:
        try:
            import cv2

            _CV2 = (cv2, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
        except (ImportError, AttributeError):
            _CV2 = False
    return _CV2 or None


@dataclass(frozen=True)
class ImageInfo:
    """What a header check learns about an image file: its size as a viewer shows it, its
    format, and how it decodes (:class:`rorem_data.core.decode.Decoding`)."""

    width: int
    height: int
    format: str
    decoding: object = None


def check_image(path: str, *, full_decode: bool = False, role: str = "source") -> ImageInfo:
    """Check that ``path`` is a complete, readable image without decoding its pixels.

    PNG files must end with an ``IEND`` chunk and JPEG files with an end-of-image marker, which
    catches truncated files from interrupted copies; other formats are fully decoded.

    Parameters
    ----------
    path : str
        Image file.
    full_decode : bool
        Decode every pixel as well (slower; catches corruption inside the data stream).

    Returns
    -------
    ImageInfo

    Raises
    ------
    ImageProblem
        With a message naming the problem (missing, not an image, truncated, corrupt).
    """
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise ImageProblem("file does not exist") from None
    except OSError as exc:
        raise ImageProblem(f"cannot read file ({exc.strerror})") from None
    if size == 0:
        raise ImageProblem("file is empty (0 bytes)")
    from rorem_data.core.decode import inspect_image

    with open_image(path) as im:
        fmt = im.format or "?"
        if full_decode or fmt not in ("PNG", "JPEG", "MPO"):
            _decode(im, "image")
        decoding = inspect_image(im, role=role)
        width, height = decoding.width, decoding.height
    if fmt in ("PNG", "JPEG") and not full_decode:
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 4096))
            tail = fh.read()
        if fmt == "PNG" and not tail.endswith(_PNG_IEND):
            raise ImageProblem("PNG is truncated (no IEND chunk at the end of the file)")
        if fmt == "JPEG" and _JPEG_EOI not in tail[-1024:]:
            raise ImageProblem("JPEG is truncated (no end-of-image marker)")
    if width <= 0 or height <= 0:
        raise ImageProblem(f"image has no pixels ({width}x{height})")
    return ImageInfo(width=width, height=height, format=fmt, decoding=decoding)


def mask_to_binary(array: np.ndarray) -> np.ndarray:
    """Binarize a mask array the way the RORem training code reads masks.

    Parameters
    ----------
    array : ndarray, shape (H, W) or (H, W, C), any integer or float dtype
        Raw mask pixels. Only the first channel is used.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True where the object is. 8-bit values >= 128 (i.e. ``v / 255 >= 0.5``) are object;
        masks whose values are all 0 or 1 treat 1 as object; 16-bit masks use half of 65535;
        float masks use 0.5.
    """
    a = np.asarray(array)
    if a.ndim == 3:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"mask must be 2-D or 3-D, got shape {a.shape}")
    if a.dtype == bool:
        return a.copy()
    if np.issubdtype(a.dtype, np.floating):
        return a >= 0.5
    peak = int(a.max()) if a.size else 0
    if peak <= 1:
        return a >= 1
    if a.dtype.itemsize == 1 or peak <= 255:
        return a >= 128  # v / 255 >= 0.5
    return a >= 32768  # 16-bit


def read_mask(path: str) -> np.ndarray:
    """Read a mask file into a bool array (see :func:`mask_to_binary`).

    Raises
    ------
    ImageProblem
        If the file is missing, unreadable or truncated.
    """
    return load_mask(path)[0]


def load_mask(path: str) -> tuple[np.ndarray, bool]:
    """Read a mask file; also tell whether it is already canonical.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
    canonical : bool
        True if the file is an 8-bit single-channel PNG holding only 0 and 255.

    Raises
    ------
    ImageProblem
        If the file is missing, unreadable or truncated.
    """
    return load_mask_decoded(path)[:2]


def load_mask_decoded(path: str) -> tuple[np.ndarray, bool, tuple]:
    """:func:`load_mask`, and the rules applied to read it (EXIF orientation, alpha channel;
    see :func:`rorem_data.core.decode.decode_mask_image`)."""
    from rorem_data.core.decode import decode_mask_image

    with open_image(path) as im:
        fmt, mode = im.format, im.mode
        frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1 and fmt != "MPO":
            raise ImageProblem(f"mask has {frames} frames (an animation or a multi-page file); "
                               "save the mask as one PNG")
        try:
            arr, conversions = decode_mask_image(im)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageProblem(f"not a readable mask image ({exc})") from None
    mask = mask_to_binary(arr)
    canonical = False
    if fmt == "PNG" and mode == "L" and not conversions:
        # canonical iff every pixel is 0 or 255, i.e. equals 255 * mask
        canonical = bool(np.array_equal(arr, mask.view(np.uint8) * np.uint8(CANONICAL_OBJECT_VALUE)))
    return mask, canonical, conversions


def is_canonical_mask_file(path: str) -> bool:
    """True if ``path`` is already a canonical mask: an 8-bit single-channel PNG of 0/255."""
    return load_mask(path)[1]


def encode_canonical_mask(mask: np.ndarray) -> bytes:
    """PNG bytes of a bool mask in canonical form (mode L, 0 and 255). Deterministic."""
    img = Image.fromarray(np.where(mask, CANONICAL_OBJECT_VALUE, 0).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def canonical_mask_name(png_bytes: bytes) -> str:
    """Content-addressed file name for canonical mask bytes."""
    return hashlib.sha1(png_bytes).hexdigest()[:24] + ".png"


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no half-written file)."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    # per run and host: writers never share one, even on a media folder shared between machines
    tmp = f"{path}.tmp-{os.getpid()}-{HOST}-{secrets.token_hex(3)}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, path) from exc  # a full disk names the file
        raise


def sha256_file(path: str, bufsize: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(bufsize)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()
