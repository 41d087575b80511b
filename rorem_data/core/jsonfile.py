"""Reading JSON that users and other tools wrote: one reader, clear refusals.

Deeply nested documents (which make Python's parser raise ``RecursionError``), invalid UTF-8
and syntax errors all become one :class:`~rorem_data.core.errors.ConfigError` (or the error
type the caller asks for) naming the file and the fix. A UTF-8 byte-order mark (spreadsheets and
Windows editors write one) is accepted.
"""

from __future__ import annotations

import json
from typing import Any

from rorem_data.core.errors import ConfigError

MAX_DEPTH = 100


def _depth_ok(text: str, max_depth: int) -> bool:
    """Bracket nesting of a JSON text stays within ``max_depth`` (strings skipped); linear."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads(text: str | bytes, *, what: str, error=ConfigError, max_depth: int = MAX_DEPTH,
          fix: str = "fix the file") -> Any:
    """Parse JSON text; ``what`` names it in messages (e.g. ``"meta.json /data/x/meta.json"``).

    Raises
    ------
    error (ConfigError by default)
        Not UTF-8, not JSON, or nested deeper than ``max_depth``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text ({exc}); {fix}") from None
    text = text.lstrip("\ufeff")
    if max_depth and not _depth_ok(text, max_depth):
        raise error(f"{what} nests deeper than {max_depth} levels; this is not a file rorem-data "
                    f"reads. {fix}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON ({exc}); {fix}") from None
    except RecursionError:
        raise error(f"{what} nests too deeply to read; {fix}") from None


def load(path: str, *, what: str | None = None, error=ConfigError, max_depth: int = MAX_DEPTH,
         fix: str = "fix the file") -> Any:
    """Read and parse a JSON file (see :func:`loads`); a missing file is an ``error`` too."""
    what = what or path
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise error(f"{what} does not exist; {fix}") from None
    except OSError as exc:
        raise error(f"{what} cannot be read ({exc.strerror}); {fix}") from None
    return loads(data, what=what, error=error, max_depth=max_depth, fix=fix)


def expect(value: Any, types, *, what: str, expected: str, error=ConfigError) -> Any:
    """``value`` if it is an instance of ``types`` (bools are not numbers); else ``error``."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise error(f"{what} must be {expected}; got {value!r}")
    if not isinstance(value, types):
        raise error(f"{what} must be {expected}; got {type(value).__name__} {value!r:.60}")
    return value
