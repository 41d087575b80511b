"""Image-quality metrics of a removal, inside and outside the mask.

PSNR and SSIM (scikit-image) are computed on the whole image and separately over the pixels
inside and outside the mask, against the object-free target. LPIPS needs pretrained network
weights that no package here ships; :func:`lpips_distance` uses the ``lpips`` package when it
and its weights are installed and otherwise reports that it is unavailable, never a made-up
number.
"""

from __future__ import annotations

import numpy as np


def _as_float(img) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64)


def masked_psnr(result, target, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the pixels where ``mask`` is True (all pixels if None); inf if equal."""
    r, t = _as_float(result), _as_float(target)
    if r.shape != t.shape:
        raise ValueError(f"result {r.shape} and target {t.shape} differ in shape")
    sel = np.ones(r.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if not sel.any():
        return float("nan")
    mse = float(((r - t) ** 2)[sel].mean())
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def ssim_map(result, target) -> np.ndarray:
    """Per-pixel SSIM (mean over channels), shape (H, W)."""
    from skimage.metrics import structural_similarity

    r, t = _as_float(result), _as_float(target)
    win = min(7, min(r.shape[:2]) // 2 * 2 - 1)
    _score, full = structural_similarity(r, t, channel_axis=2 if r.ndim == 3 else None,
                                         data_range=1.0, full=True, win_size=max(3, win))
    return full.mean(axis=2) if full.ndim == 3 else full


def removal_metrics(result, target, mask) -> dict:
    """PSNR and SSIM of ``result`` against ``target``: whole image, inside and outside ``mask``."""
    m = np.asarray(mask, bool)
    smap = ssim_map(result, target)
    return {
        "psnr": masked_psnr(result, target),
        "psnr_in": masked_psnr(result, target, m),
        "psnr_out": masked_psnr(result, target, ~m),
        "ssim": float(smap.mean()),
        "ssim_in": float(smap[m].mean()) if m.any() else float("nan"),
        "ssim_out": float(smap[~m].mean()) if (~m).any() else float("nan"),
    }


def lpips_distance(result, target):
    """LPIPS (AlexNet) if the ``lpips`` package and its weights are available, else None."""
    try:
        import lpips  # noqa: F401
        import torch
    except ImportError:
        return None
    try:
        model = _lpips_model()
    except Exception:  # noqa: BLE001 - weights missing or unloadable offline: report unavailable
        return None
    r = torch.from_numpy(_as_float(result)).permute(2, 0, 1)[None].float() * 2 - 1
    t = torch.from_numpy(_as_float(target)).permute(2, 0, 1)[None].float() * 2 - 1
    with torch.no_grad():
        return float(model(r, t).item())


_LPIPS = {}


def _lpips_model():
    if "m" not in _LPIPS:
        import lpips

        _LPIPS["m"] = lpips.LPIPS(net="alex", verbose=False)
    return _LPIPS["m"]
