"""How results show themselves: a short ``repr``, an HTML table in Jupyter, ``to_dict()``.

Every result a public function returns mixes in :class:`Displayable`: ``repr(result)`` is one
short line (``_short()``), Jupyter renders ``_repr_html_()`` (a small table, every value
escaped), and ``to_dict()`` gives plain JSON-able Python for scripts.
"""

from __future__ import annotations

import dataclasses
import html
import math
from datetime import datetime
from typing import Any, Iterable


def plain(value: Any) -> Any:
    """``value`` as plain JSON-able Python (dataclasses and results become dicts, numpy
    scalars become Python numbers, datetimes ISO strings, non-finite floats None)."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    return str(value)


def fmt(value: Any) -> str:
    """A value as short text for a table cell."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"{len(value)} items"
        return ", ".join(fmt(v) for v in value)
    return str(value)


def html_table(title: str, rows: Iterable[tuple[str, Any]], *, header: tuple | None = None) -> str:
    """A two-column (or ``header``-wide) HTML table; every cell is escaped."""
    out = [f"<div><strong>{html.escape(str(title))}</strong>",
           "<table style='border-collapse:collapse;text-align:left'>"]
    if header:
        out.append("<tr>" + "".join(f"<th style='padding:2px 8px'>{html.escape(str(h))}</th>"
                                    for h in header) + "</tr>")
    for row in rows:
        cells = row if isinstance(row, (list, tuple)) else (row,)
        out.append("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(fmt(c))}</td>"
                                    for c in cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


class Displayable:
    """Mix-in for result dataclasses: short ``repr``, ``_repr_html_``, ``to_dict``.

    Subclasses give ``_short()`` (one line) and may give ``_rows()`` (label, value pairs for
    the HTML table; default: the dataclass fields).
    """

    def to_dict(self) -> dict:
        """Every field as plain JSON-able Python."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not f.name.startswith("_")}

    def _short(self) -> str:
        summary = getattr(self, "summary", None)
        if callable(summary):
            line = (summary() or "").splitlines()[0] if summary() else ""
            return line if len(line) <= 160 else line[:157] + "..."
        return ", ".join(f"{k}={fmt(v)}" for k, v in list(self.to_dict().items())[:4])

    def _rows(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self.to_dict().items() if v not in (None, [], {})]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._short()})"

    def __str__(self) -> str:
        summary = getattr(self, "summary", None)
        return summary() if callable(summary) else repr(self)

    def _repr_html_(self) -> str:
        return html_table(repr(self), self._rows())


_MARKDOWN_SPECIAL = set("\\`*_[]|#~")


def markdown_text(value: Any) -> str:
    """``value`` as markdown text that shows literally (a user-provided name in a report or panel).

    Markdown punctuation (``\\ ` * _ [ ] | # ~``) gets a backslash, ``& < >`` become HTML
    entities (so ``<script>`` is text, not a tag), and line breaks become spaces (a name
    cannot start a heading or a list of its own). Safe in running text and table cells; not
    inside a code span, where nothing is unescaped.

    Parameters
    ----------
    value : Any
        Converted with ``str``.

    Returns
    -------
    str

    Examples
    --------
    >>> markdown_text("**bold**|x")
    '\\\\*\\\\*bold\\\\*\\\\*\\\\|x'
    >>> markdown_text("<b>x</b>")
    '&lt;b&gt;x&lt;/b&gt;'
    """
    text = " ".join(str(value).splitlines())
    text = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in text)
    return html.escape(text, quote=False)
