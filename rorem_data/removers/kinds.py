"""The registry of remover kinds: ``kind`` in a spec names a class registered here.

The library registers ``"classical"`` (OpenCV inpainting) and ``"diffusers"`` (diffusers
inpainting pipelines); a plug-in adds its own with :func:`register_remover`. A spec read from a
file can only name a registered kind: an unknown kind is refused with the list of choices, and
nothing else a spec file names is imported.

>>> from rorem_data.removers.kinds import list_removers, get_remover_class
>>> list_removers()
['classical', 'diffusers']
>>> get_remover_class("classical").__name__
'ClassicalRemover'
"""

from __future__ import annotations

from rorem_data.core.errors import ConfigError
from rorem_data.core.registry import Registry
from rorem_data.removers.base import Remover


def _check_remover_class(kind: str, obj) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Remover)):
        raise ConfigError(f"remover kind {kind!r} is registered as {obj!r}, which is not a "
                          "subclass of rorem_data.removers.Remover; register a Remover subclass")


REMOVERS = Registry("remover kind", {
    "classical": "rorem_data.removers.classical:ClassicalRemover",
    "diffusers": "rorem_data.removers.diffusion:DiffusersRemover",
}, check=_check_remover_class)


def list_removers() -> list[str]:
    """Registered remover kinds, sorted (nothing is imported).

    Examples
    --------
    >>> "diffusers" in list_removers()
    True
    """
    return REMOVERS.names()


def register_remover(kind: str, target, *, overwrite: bool = False) -> None:
    """Register a remover class under ``kind`` (usable as ``kind = "<kind>"`` in specs).

    Parameters
    ----------
    kind : str
        The name specs use.
    target : str or type
        ``"package.module:ClassName"`` (imported on first use) or the class itself; it must
        subclass :class:`rorem_data.removers.base.Remover`.
    overwrite : bool
        Replace an existing registration.

    Raises
    ------
    ConfigError
        A malformed name or target, or a kind already taken.

    Examples
    --------
    >>> register_remover("telea-copy", "rorem_data.removers.classical:ClassicalRemover")
    >>> "telea-copy" in list_removers()
    True
    >>> REMOVERS.unregister("telea-copy")
    """
    REMOVERS.register(kind, target, overwrite=overwrite)


def get_remover_class(kind: str) -> type:
    """The class registered as ``kind``.

    Raises
    ------
    ConfigError
        An unknown kind (the message lists the registered ones), or a target that does not
        import or is not a Remover subclass.
    """
    return REMOVERS.get(kind)
