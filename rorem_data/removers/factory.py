"""The one factory: :func:`load_remover` turns anything that describes a remover into one.

>>> from rorem_data.removers.factory import load_remover
>>> load_remover("classical:ns", radius=5).spec.radius
5
"""

from __future__ import annotations

from rorem_data.removers.base import Remover
from rorem_data.removers.kinds import get_remover_class
from rorem_data.removers.spec import RemoverSpec


def load_remover(spec: RemoverSpec | dict | str, **overrides) -> Remover:
    """Load the remover a spec describes.

    Parameters
    ----------
    spec : RemoverSpec, dict or str
        Anything :meth:`RemoverSpec.parse` accepts.
    **overrides
        Spec fields to replace (``device``, ``dtype``, ``steps``, ``hd_strategy``, ...).

    Returns
    -------
    Remover
        An instance of the class registered for ``spec.kind``
        (:func:`~rorem_data.removers.kinds.get_remover_class`).

    Raises
    ------
    ConfigError
        An unknown kind (the choices are listed), a folder that is not a pipeline, a missing
        component, a hub id that cannot be reached offline, a UNet or LoRA that does not fit
        the pipeline, or an invalid field.
    UnsafeWeightsError
        Weights that are pickle-based files only (convert them to safetensors).
    DependencyError
        torch / diffusers / opencv is not installed.

    Examples
    --------
    >>> remover = load_remover("classical:telea")
    >>> remover = load_remover({"model": "runs/tiny-sd", "steps": 2})    # doctest: +SKIP
    """
    spec = RemoverSpec.parse(spec, **overrides)
    return get_remover_class(spec.kind)(spec)


__all__ = ["load_remover"]
