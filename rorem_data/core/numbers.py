"""Small numeric helpers written once: normal quantiles, seeds, rounding, null counts.

Pure numpy (scipy imported on first use).
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.errors import ConfigError

__all__ = ["as_generator", "null_count", "round_half_up", "z_value"]


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 at 0.95)."""
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_generator(rng, *, name: str = "rng", allow_none: bool = False,
                 fix: str = "") -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed >= 0, a SeedSequence or a Generator
    (``None``, a fresh unseeded one, only with ``allow_none``)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence) or (_is_int(rng) and rng >= 0) or (
            rng is None and allow_none):
        return np.random.default_rng(rng)
    raise ConfigError(f"{name} must be an int seed >= 0 or a numpy.random.Generator, got "
                      f"{rng!r}" + (f"; {fix}" if fix else ""))


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (Python's ``round`` goes to even)."""
    return int(np.floor(x + 0.5))


def null_count(m: int, target: float) -> int:
    """The largest count of hits among ``m`` whose share is still below ``target``:
    ``ceil(m * target) - 1``, safe against rounding (at least -1)."""
    return max(math.ceil(m * target - 1e-9) - 1, -1)
