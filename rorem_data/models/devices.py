"""Devices and dtypes from spec strings (``"auto"``, ``"cuda:1"``, ``"bfloat16"``)."""

from __future__ import annotations

from rorem_data.core.errors import ConfigError


def resolve_device_dtype(device: str, dtype: str, *, half: str = "float16"):
    """(torch.device, torch.dtype) for spec strings ``auto`` / explicit values.

    ``device="auto"`` is CUDA when available, else the CPU; ``dtype="auto"`` is ``half``
    (float16, or bfloat16 for the transformer families, which overflow in float16) on CUDA
    and float32 elsewhere.

    Raises
    ------
    ConfigError
        float16 asked for on the CPU.

    Examples
    --------
    >>> resolve_device_dtype("cpu", "auto")                        # doctest: +SKIP
    (device(type='cpu'), torch.float32)
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    dt = (getattr(torch, half) if dev.type == "cuda" else torch.float32) if dtype == "auto" \
        else getattr(torch, dtype)
    if dt == torch.float16 and dev.type == "cpu":
        raise ConfigError("dtype 'float16' needs a GPU; on the CPU use dtype 'float32' "
                          "(or 'bfloat16')")
    return dev, dt


def dtype_kwargs(torch_dtype) -> dict:
    """The ``from_pretrained`` keyword for a dtype: ``dtype`` (diffusers >= 0.36) or ``torch_dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return {"torch_dtype": torch_dtype}
    return {"dtype": torch_dtype}

