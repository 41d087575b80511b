"""Optional dependencies: one helper, one message.

``import rorem_data`` needs none of torch, diffusers, open_clip, scikit-learn or FiftyOne; the
functions that need them call :func:`require`, which names the extra to install when a module
is missing.

>>> from rorem_data.core.deps import require
>>> require("json").__name__
'json'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rorem_data.core.errors import DependencyError

# module -> extra of rorem-data that installs it
EXTRAS = {
    "torch": "torch", "torchvision": "torch", "diffusers": "torch", "transformers": "torch",
    "peft": "torch", "accelerate": "torch", "open_clip": "torch", "safetensors": "ml",
    "sklearn": "ml", "scipy": "ml", "pandas": "ml", "pyarrow": "ml", "cv2": "ml",
    "matplotlib": "ml", "skops": "ml",
}
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn", "cv2": "opencv-python-headless",
                 "open_clip": "open_clip_torch"}


def install_hint(module: str) -> str:
    """``pip install 'rorem-data[<extra>]'`` (or the package itself) for an import name."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    if extra:
        return f"pip install 'rorem-data[{extra}]'"
    return f"pip install {DISTRIBUTIONS.get(top, top)}"


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`DependencyError` naming what to install.

    Parameters
    ----------
    module : str
        Import name, e.g. ``"diffusers"`` or ``"sklearn.linear_model"``.
    purpose : str
        What needs it, for the message (e.g. ``"the clip featurizer"``).

    Raises
    ------
    DependencyError
        The module (or something it imports) is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{purpose} needs {module}" if purpose else f"{module} is needed"
        raise DependencyError(f"{what} ({exc}); install it with: {install_hint(module)}") from None
