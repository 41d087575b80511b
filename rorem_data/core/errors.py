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


class ImageProblem(RoremError, ValueError):
    """A file is missing, unreadable or truncated (message says which and why)."""


class UnsafePath(RoremError, ValueError):
    """A path from a data file is absolute, leaves its root folder, or links out of it."""


class NotEnoughLabels(ConfigError):
    """Too few human labels (or too few of one kind) for what was asked; the message says how
    many there are and how many are needed."""


class RemoverInputError(ConfigError):
    """One item of a ``Remover.remove`` batch is unusable (unreadable, wrong size, empty mask).

    Attributes
    ----------
    index : int
        The item's position in the batch.
    """

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index

class UnsafeWeightsError(ConfigError):
    """A weight or state file would have to be unpickled; rorem-data refuses to load it.

    Attributes
    ----------
    path : str
        The refused file (the first one when there are several).
    """

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path

class OutputError(ConfigError):
    """An output folder cannot be written, replaced or removed (the message says why)."""


class PlanChanged(ConfigError):
    """A round is run again with a parameter that differs from the one its finished steps used.

    ``parameter``, ``before`` and ``after`` name the difference; ``step`` is the first finished
    step that used it (``redo=step`` runs the round again from there).
    """

    def __init__(self, message: str, *, parameter: str = "", before=None, after=None, step: str = ""):
        super().__init__(message)
        self.parameter, self.before, self.after, self.step = parameter, before, after, step


class RoundBusy(RoremError, RuntimeError):
    """Another process holds the round's lease (``holder`` says who: host, pid, step, since)."""

    def __init__(self, message: str, *, holder: dict | None = None):
        super().__init__(message)
        self.holder = dict(holder or {})


class EnvironmentProblem(RoremError, OSError):
    """The machine refused: a full disk, a read-only folder, a database that does not answer.

    The message names the resource (a path, the database address) and the fix.
    """


class RoundInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a round; what was done is stored and the same call resumes it.

    A ``KeyboardInterrupt`` (so ``except Exception`` never swallows it), with one line of text:
    ``round N stopped in STEP (k of n judged, stored); run the same call again to resume``.
    Jupyter shows that line instead of a traceback.
    """

    def __init__(self, message: str, *, round: int | None = None, step: str = "",
                 judged: int | None = None, total: int | None = None):
        super().__init__(message)
        self.round, self.step, self.judged, self.total = round, step, judged, total

    def _render_traceback_(self):  # IPython: one line, no traceback
        return [f"{type(self).__name__}: {self}"]
