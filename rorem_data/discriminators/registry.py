"""The head registry: the names a spec or a saved discriminator may use for its head class.

A head is a :class:`~rorem_data.discriminators.base.BaseDiscriminator` subclass registered
under a short name (``logistic``, ``mlp``, ``hist-gradient-boosting``, ``pair-classifier``,
``unet``; add yours with :func:`register_head`). Spec files and saved discriminators name their
head here, and only registered heads are imported; a ``"package.module:Class"`` that is not
registered is imported only under an explicit ``trust_code=True`` and must subclass
``BaseDiscriminator`` (see the trust model in :mod:`rorem_data.discriminators.persistence`).
"""

from __future__ import annotations

import inspect
from typing import Any

from rorem_data.core.errors import ConfigError
from rorem_data.core.registry import Registry, import_target

__all__ = ["HEADS", "head_parameters", "list_heads", "register_head", "registered_name",
           "resolve_head"]


def _check_head(name: str, obj: Any) -> None:
    from rorem_data.discriminators.base import BaseDiscriminator

    if not (inspect.isclass(obj) and issubclass(obj, BaseDiscriminator)):
        raise ConfigError(f"head {name!r} must be a subclass of "
                          f"rorem_data.discriminators.base.BaseDiscriminator; got {obj!r}")


#: Head plug-ins: name -> BaseDiscriminator subclass (``"module:Class"``, imported on first use).
HEADS = Registry("head", {
    "logistic": "rorem_data.discriminators.heads:LogisticHead",
    "mlp": "rorem_data.discriminators.heads:MLPHead",
    "hist-gradient-boosting": "rorem_data.discriminators.heads:HistGradientBoostingHead",
    "random-forest": "rorem_data.discriminators.heads:RandomForestHead",
    "cross-validated": "rorem_data.discriminators.heads:CrossValidatedHead",
    "pair-classifier": "rorem_data.discriminators.pair_classifier:PairClassifier",
    "unet": "rorem_data.discriminators.unet:UNetDiscriminator",
}, check=_check_head)


def register_head(name: str, target, *, overwrite: bool = False) -> None:
    """Register a head class under a short name usable in specs (``head = "<name>"``) and in
    saved discriminators.

    Parameters
    ----------
    name : str
    target : str or type
        ``"package.module:Class"`` (imported on first use) or the class; it must subclass
        :class:`rorem_data.discriminators.base.BaseDiscriminator`.
    overwrite : bool
        Replace an existing entry of that name.

    Examples
    --------
    >>> register_head("my-head", "rorem_data.discriminators.heads:LogisticHead")
    >>> "my-head" in list_heads()
    True
    >>> HEADS.unregister("my-head")
    """
    HEADS.register(name, target, overwrite=overwrite)


def list_heads() -> list[str]:
    """Short names of the registered heads.

    Examples
    --------
    >>> "logistic" in list_heads()
    True
    """
    return HEADS.names()


def target_of(cls: type) -> str:
    """``"package.module:Class"`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def registered_name(head: str | type) -> str | None:
    """The registered name of a head given as a name, a ``"module:Class"`` or a class."""
    if isinstance(head, str) and head in HEADS:
        return head
    want = target_of(head) if inspect.isclass(head) else head
    for name in HEADS.names():
        target = HEADS.target(name)
        if target == want or (inspect.isclass(target) and target_of(target) == want):
            return name
    return None


def resolve_head(head: str, *, trust_code: bool = False, where: str) -> tuple[str | None, type]:
    """The class a head name or ``"module:Class"`` stands for.

    Parameters
    ----------
    head : str
        A registered name, or ``"package.module:Class"``.
    trust_code : bool
        Allow importing an unregistered ``"package.module:Class"`` (it must subclass
        BaseDiscriminator). Only for code you trust: importing runs the module.
    where : str
        What names the head (a spec, a saved file), for messages.

    Returns
    -------
    name : str or None
        The registered name (None for a trusted, unregistered class).
    cls : type

    Raises
    ------
    ConfigError
        Unknown names (the message lists the registered heads), an unregistered class without
        ``trust_code`` (the message says how to register it), or a class that is not a
        discriminator.
    """
    if not isinstance(head, str) or not head:
        raise ConfigError(f"{where}: head must be a registered name ({', '.join(list_heads())}) "
                          f"or 'package.module:Class'; got {head!r}")
    name = registered_name(head)
    if name is not None:
        return name, HEADS.get(name)
    if ":" not in head:
        raise ConfigError(f"{where}: unknown head {head!r}; choose one of: "
                          f"{', '.join(list_heads())} (or register yours with register_head)")
    if not trust_code:
        raise ConfigError(
            f"{where}: head {head!r} is not a registered head, and rorem-data imports only "
            f"registered ones (registered: {', '.join(list_heads())}). If it is your own "
            "discriminator class, register it first - rorem_data.discriminators.registry."
            f"register_head('my-head', {head!r}) - or, if you trust where this came from, "
            "pass trust_code=True (CLI: --trust-code).")
    cls = import_target(head, what=f"{where}: head")
    _check_head(head, cls)
    return None, cls


def head_parameters(cls: type) -> list[str]:
    """The named parameters of ``cls.__init__`` (no ``self``, ``*args`` or ``**kwargs``)."""
    sig = inspect.signature(cls.__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in sig.parameters.items() if n != "self" and p.kind in kinds]
