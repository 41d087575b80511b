"""Removers: one spec and one interface for diffusers inpainting pipelines, OpenCV inpainting and
registered plug-ins.

A remover is described by a :class:`RemoverSpec` (keyword arguments, a dict, a JSON / TOML
file, or a short string) and loaded with :func:`load_remover`::

    >>> from rorem_data.removers import RemoverSpec, load_remover
    >>> spec = RemoverSpec(model="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    ...                    unet="checkpoints/RORem/unet", dilation=20,
    ...                    hd_strategy="crop")                                # doctest: +SKIP
    >>> remover = load_remover(spec)                                          # doctest: +SKIP
    >>> results = remover.remove(images, masks, seeds=[0, 1])                 # doctest: +SKIP
    >>> remover.key, remover.provenance(seed=0)                               # doctest: +SKIP

Modules: :mod:`~rorem_data.removers.spec` (the spec and its parsing),
:mod:`~rorem_data.removers.kinds` (the registry of kinds), :mod:`~rorem_data.removers.base`
(the interface), :mod:`~rorem_data.removers.factory` (:func:`load_remover`), :mod:`~rorem_data.removers.inputs` (batch checks),
:mod:`~rorem_data.removers.hd` (HD strategies for photos of any size),
:mod:`~rorem_data.removers.classical` and :mod:`~rorem_data.removers.diffusion` (the two
built-in kinds). Model folders are resolved, checked and hashed, and pipelines loaded, by
:mod:`rorem_data.models`; :func:`list_families` lists the diffusers inpainting families (SD,
SDXL, SD3, FLUX.1 / FLUX.2, Qwen-Image, Z-Image) and their defaults (``docs/removers.md``).
Importing this package imports neither torch nor OpenCV.

    >>> [f.name for f in list_families()][:3]
    ['sd', 'sdxl', 'sd3']
"""

from rorem_data.models.families import list_families
from rorem_data.removers.base import KEY_EXCLUDED, PROVENANCE_KEYS, Remover
from rorem_data.removers.factory import load_remover
from rorem_data.removers.hd import HD_STRATEGIES, Window, plan_window
from rorem_data.removers.inputs import RemoverInputError, dilate_mask
from rorem_data.removers.kinds import get_remover_class, list_removers, register_remover
from rorem_data.removers.spec import RemoverSpec

__all__ = [
    "HD_STRATEGIES", "KEY_EXCLUDED", "PROVENANCE_KEYS", "Remover", "RemoverInputError",
    "RemoverSpec", "Window", "dilate_mask", "get_remover_class", "list_families", "list_removers",
    "load_remover", "plan_window", "register_remover",
]
