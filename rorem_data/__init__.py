"""rorem-data: paired object-removal training data with a human in the loop.

``import rorem_data`` is light: it imports none of torch, diffusers, open_clip or fiftyone;
those load inside the functions that need them.
"""

from rorem_data.core.version import __version__  # noqa: E402

from rorem_data.core.errors import (  # noqa: E402
    ConfigError,
    DependencyError,
    ExportError,
    ProjectError,
    RoremError,
    ValidationError,
)
from rorem_data.rounds.project import Project, init_project, open_project  # noqa: E402

__all__ = [
    "__version__",
    "ConfigError",
    "DependencyError",
    "ExportError",
    "Project",
    "ProjectError",
    "RoremError",
    "ValidationError",
    "init_project",
    "open_project",
]
