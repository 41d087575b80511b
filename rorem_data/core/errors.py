"""All exceptions raised by rorem_data.

Every error subclasses :class:`RoremError` and a built-in exception, so callers can catch
either. Messages name the item, what was expected, what came, and the fix.
"""

from __future__ import annotations


class RoremError(Exception):
    """Base class of every rorem_data error."""


class ProjectError(RoremError, RuntimeError):
    """No project here, a broken project config, or a project that already exists."""


class ConfigError(RoremError, ValueError):
    """A parameter or setting has an invalid value."""


class ValidationError(RoremError, ValueError):
    """Input data failed validation; ``problems`` lists every bad item.

    Parameters
    ----------
    message : str
        Summary line.
    problems : list of Problem
        One entry per bad item (see :class:`rorem_data.core.validate.Problem`).
    """

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        lines = [head]
        for p in self.problems[:50]:
            lines.append(f"  - {p}")
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        return "\n".join(lines)


class ExportError(RoremError, RuntimeError):
    """An export could not be written (target exists, files changed, nothing to export)."""


class DependencyError(RoremError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""
