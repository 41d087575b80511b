"""One plug-in mechanism for every family: featurizers, heads, strategies, calibrators, removers,
export formats.

A :class:`Registry` maps a short name to ``"package.module:attr"`` and imports the target only
when it is asked for, so listing names imports nothing. Built-in entries are registered by the
package that defines the family; users add their own with ``register_*``. Names a data file
holds (a spec, a saved model's config) are looked up here and nowhere else: a name that is not
registered is refused with the list of choices - nothing a data file names is imported unless
it is a registered plug-in.

>>> from rorem_data.core.registry import Registry
>>> colours = Registry("colour", {"red": "builtins:str"})
>>> colours.names()
['red']
>>> colours.get("blue")
Traceback (most recent call last):
...
rorem_data.core.errors.ConfigError: unknown colour 'blue'; choose one of: red
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable

from rorem_data.core.errors import ConfigError


def import_target(target: str, *, what: str) -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted) and return the attribute.

    Only called for registered targets (and for user code under an explicit ``trust_code``).

    Raises
    ------
    ConfigError
        A malformed target, a module that does not import, a missing attribute.
    """
    if not isinstance(target, str) or target.count(":") != 1:
        raise ConfigError(f"{what} must be 'package.module:attr'; got {target!r}")
    mod_name, attr = target.split(":")
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {target!r}: cannot import {mod_name!r} ({exc}); install the "
                          "package that provides it or fix the name") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{what} {target!r}: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


class Registry:
    """Names -> plug-ins (``"module:attr"`` strings imported lazily, or objects).

    Parameters
    ----------
    kind : str
        What the entries are, for messages (``"featurizer"``, ``"strategy"``, ...).
    builtins : dict of str to str or object, optional
        The entries the library ships.
    check : callable, optional
        Called with ``(name, obj)`` when an entry is first loaded; raises ConfigError when the
        object does not fit the family (e.g. not a subclass of the family's base class).
    """

    def __init__(self, kind: str, builtins: dict[str, Any] | None = None, *,
                 check: Callable[[str, Any], None] | None = None):
        self.kind = kind
        self._targets: dict[str, Any] = dict(builtins or {})
        self._loaded: dict[str, Any] = {}
        self._check = check
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._targets)

    def target(self, name: str) -> Any:
        """What ``name`` is registered as (a ``"module:attr"`` string or an object)."""
        self._known(name)
        return self._targets[name]

    def register(self, name: str, target: Any, *, overwrite: bool = False) -> None:
        """Register ``target`` (``"module:attr"`` or an object) under ``name``.

        Raises
        ------
        ConfigError
            An empty name, a name with ``:``, or a name already taken (without ``overwrite``).
        """
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string without ':'; "
                              f"got {name!r}")
        if isinstance(target, str) and target.count(":") != 1:
            raise ConfigError(f"{self.kind} {name!r}: target must be 'package.module:attr'; "
                              f"got {target!r}")
        with self._lock:
            if name in self._targets and not overwrite and self._targets[name] != target:
                raise ConfigError(f"{self.kind} {name!r} is already registered "
                                  f"({self._targets[name]!r}); pass overwrite=True to replace it")
            self._targets[name] = target
            self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._targets.pop(name, None)
            self._loaded.pop(name, None)

    def get(self, name: str) -> Any:
        """The plug-in registered as ``name`` (imported on first use).

        Raises
        ------
        ConfigError
            An unknown name (the message lists the choices), or a target that does not load.
        """
        self._known(name)
        if name in self._loaded:
            return self._loaded[name]
        target = self._targets[name]
        obj = import_target(target, what=f"{self.kind} {name!r}") if isinstance(target, str) else target
        if self._check is not None:
            self._check(name, obj)
        with self._lock:
            self._loaded[name] = obj
        return obj

    def name_of(self, obj: Any) -> str | None:
        """The registered name whose target is ``obj`` (or whose ``"module:attr"`` names it)."""
        qual = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
        for name, target in self._targets.items():
            if target is obj or target == qual or self._loaded.get(name) is obj:
                return name
        return None

    def _known(self, name: object) -> None:
        if not isinstance(name, str) or name not in self._targets:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: "
                              f"{', '.join(self.names()) or '(none registered)'}")
