"""The license an import gives its samples, and the license names export filters take.

A license is an SPDX identifier (``CC-BY-4.0``) or short free text (``"OpenImages: CC BY 2.0,
see source URLs"``): one line of at most :data:`MAX_LICENSE_CHARS` characters. Unset is
:data:`rorem_data.core.schema.UNKNOWN_LICENSE` (``"unknown"``). The URL, when given, is one line
without spaces that starts with a scheme (``https://...``).

>>> license_name("CC-BY-4.0")
'CC-BY-4.0'
>>> license_name(None)
'unknown'
"""

from __future__ import annotations

import re
from typing import Iterable

from rorem_data.core.checks import bad
from rorem_data.core.schema import UNKNOWN_LICENSE

MAX_LICENSE_CHARS = 200
MAX_URL_CHARS = 2000
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def _one_line(value: str) -> bool:
    return len(value.splitlines()) <= 1 and not any(ord(c) < 32 or ord(c) == 127 for c in value)


def license_name(value: object, name: str = "--license") -> str:
    """A validated license name; None means :data:`UNKNOWN_LICENSE`.

    Raises
    ------
    ConfigError
        Not a string, empty, longer than 200 characters, or more than one line.
    """
    if value is None:
        return UNKNOWN_LICENSE
    expected = (f"an SPDX id such as CC-BY-4.0 or a single line of text of at most "
                f"{MAX_LICENSE_CHARS} characters")
    if not isinstance(value, str):
        raise bad(name, expected, value)
    text = value.strip()
    if not text or len(text) > MAX_LICENSE_CHARS or not _one_line(text):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise bad(name, expected, shown, "put the license's full text in a file and give its URL "
                  "with license_url (--license-url)")
    return text


def license_url(value: object, name: str = "--license-url") -> str | None:
    """A validated license URL (None stays None).

    Raises
    ------
    ConfigError
        Not a string, longer than 2000 characters, with spaces or line breaks, or no scheme.
    """
    if value is None:
        return None
    expected = "a URL such as https://creativecommons.org/licenses/by/4.0/ (one line, no spaces)"
    if not isinstance(value, str):
        raise bad(name, expected, value)
    text = value.strip()
    if len(text) > MAX_URL_CHARS or not _one_line(text) or not _SCHEME.match(text):
        raise bad(name, expected, value if len(value) <= 80 else value[:77] + "...")
    return text


def license_list(value: object, name: str) -> list[str] | None:
    """License names for an export filter: a list, or one comma-separated string; None = no filter.

    Raises
    ------
    ConfigError
        An empty list, or a name that :func:`license_name` refuses.
    """
    if value is None:
        return None
    if isinstance(value, str):
        items: Iterable = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise bad(name, "a list of license names or one comma-separated string", value)
    names = sorted({license_name(v, name) for v in items if not (isinstance(v, str) and not v.strip())})
    if not names:
        raise bad(name, "at least one license name", value,
                  f"leave {name} out to export every license")
    return names
