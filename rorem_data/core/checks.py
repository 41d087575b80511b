"""Argument checks with one message template: the name, what was expected, what came, the fix.

>>> from rorem_data.core.checks import positive_int
>>> positive_int(3, "batch_size")
3
>>> positive_int(0, "batch_size")
Traceback (most recent call last):
...
rorem_data.core.errors.ConfigError: batch_size must be a positive integer; got 0
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from rorem_data.core.errors import ConfigError


def bad(name: str, expected: str, value: Any, fix: str = "") -> ConfigError:
    """The error for a parameter ``name`` that is not ``expected`` (raise it)."""
    msg = f"{name} must be {expected}; got {value!r}"
    return ConfigError(f"{msg}. {fix}" if fix else msg)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any, name: str, *, fix: str = "") -> int:
    if not is_int(value) or value < 1:
        raise bad(name, "a positive integer", value, fix)
    return int(value)


def non_negative_int(value: Any, name: str, *, fix: str = "") -> int:
    if not is_int(value) or value < 0:
        raise bad(name, "an integer >= 0", value, fix)
    return int(value)


def round_number(value: Any, name: str = "round", *, minimum: int = 0) -> int:
    if not is_int(value) or value < minimum:
        raise bad(name, f"an integer >= {minimum}", value)
    return int(value)


def fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0,
             open_low: bool = False, open_high: bool = False, fix: str = "") -> float:
    """A float in [low, high] (ends open when asked)."""
    lo_b, hi_b = ("(" if open_low else "["), (")" if open_high else "]")
    expected = f"a number in {lo_b}{low:g}, {high:g}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(name, expected, value, fix)
    v = float(value)
    if (math.isnan(v) or v < low or v > high or (open_low and v == low)
            or (open_high and v == high)):
        raise bad(name, expected, value, fix)
    return v


def choice(value: Any, name: str, choices: Iterable[str], *, fix: str = "") -> str:
    choices = list(choices)
    if value not in choices:
        raise bad(name, f"one of {', '.join(map(str, choices))}", value, fix)
    return value


def non_empty_str(value: Any, name: str, *, fix: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad(name, "a non-empty string", value, fix)
    return value.strip()
