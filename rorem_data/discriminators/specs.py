"""Discriminator specs: the declarative files that say which featurizer and which head make a
discriminator, where they are found, and how they are parsed.

A **spec** is a small TOML or JSON file naming a featurizer (+ its config) and a head (+ its
parameters). The shipped specs live once, in the repository's top-level ``discriminators/``
folder (the place to copy and edit them); an installed package carries them as package data
(``rorem_data/discriminators/shipped/``, copied from that folder when the wheel is built). Put
your own in a folder listed in ``ROREM_DISCRIMINATORS_PATH`` (``os.pathsep``-separated; later
folders override earlier ones and the shipped specs), or pass a file path. Example
(``discriminators/stats-logistic.toml``)::

    description = "Weight-free image statistics + logistic regression."
    head = "logistic"                      # a name from list_heads()

    [featurizer]                           # omit for heads that take raw pairs
    name = "stats"
    config = { size = 256 }

    [params]                               # the head's constructor arguments
    C = 1.0

Optional keys: ``name`` (must equal the file stem), ``source`` (where the spec came from;
informational) and ``featurizer.key`` (pins the featurizer: the config must give exactly this
key). A trained discriminator saves its spec, fully resolved (every featurizer option and the
key), as ``spec.json`` beside its weights (:mod:`rorem_data.discriminators.persistence`); that
file is a spec file too.

Heads are looked up in the head registry (:mod:`rorem_data.discriminators.registry`); a
``"package.module:Class"`` head that is not registered builds only with ``trust_code=True``.
Stdlib + the feature registry at import time (no scikit-learn, no torch).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from rorem_data.core import jsonfile
from rorem_data.core.errors import ConfigError
from rorem_data.discriminators.registry import head_parameters, list_heads, resolve_head

__all__ = [
    "ENV_PATH",
    "DiscriminatorSpec",
    "discriminator_folders",
    "get_discriminator",
    "get_spec",
    "list_discriminators",
    "read_spec_file",
    "shipped_folder",
    "spec_from_dict",
]

ENV_PATH = "ROREM_DISCRIMINATORS_PATH"
_SPEC_KEYS = {"name", "description", "head", "featurizer", "params", "source"}
_FEATURIZER_KEYS = {"name", "config", "key"}


@dataclass(frozen=True)
class DiscriminatorSpec:
    """A declarative discriminator: featurizer (+config) and head (+parameters).

    Attributes
    ----------
    name : str
    head : str
        A name from :func:`~rorem_data.discriminators.registry.list_heads`, or
        ``"package.module:Class"`` (builds only with ``trust_code=True`` unless registered).
    params : dict
        Head constructor arguments.
    featurizer : str or None
        Featurizer registry name; None for heads on raw pairs.
    featurizer_config : dict
        That featurizer's options (all of them in a resolved spec).
    description : str
    source : str
        Where the spec came from: its file, or ``"class"`` for a bare dotted path.
    """

    name: str
    head: str
    params: dict = field(default_factory=dict)
    featurizer: str | None = None
    featurizer_config: dict = field(default_factory=dict)
    description: str = ""
    source: str = ""

    @property
    def featurizer_key(self) -> str | None:
        """Cache key of the spec's featurizer (None without one); loads no weights.

        Raises
        ------
        ConfigError
            Unknown featurizer or a bad option.
        """
        if self.featurizer is None:
            return None
        from rorem_data.features.base import featurizer_key

        return featurizer_key(self.featurizer, self.featurizer_config)

    def make_featurizer(self, **runtime):
        """The spec's featurizer (weights load on first use), or None.

        Parameters
        ----------
        **runtime
            Runtime options such as ``device="cuda"`` (not part of the key).
        """
        if self.featurizer is None:
            return None
        from rorem_data.features.base import get_featurizer

        return get_featurizer(self.featurizer, **{**self.featurizer_config, **runtime})

    def head_class(self, *, trust_code: bool = False) -> type:
        """The head's class (registered, or a trusted ``"module:Class"``).

        Raises
        ------
        ConfigError
            Unknown head, or an unregistered class without ``trust_code``.
        """
        return resolve_head(self.head, trust_code=trust_code, where=self._where)[1]

    @property
    def _where(self) -> str:
        return f"discriminator spec {self.name!r} ({self.source or 'in memory'})"

    def build(self, *, trust_code: bool = False, **params):
        """An unfitted discriminator; ``params`` override the spec's parameters.

        Raises
        ------
        ConfigError
            Unknown head, featurizer or parameter (the message lists the valid ones), a
            featurizer on a head that takes raw pairs, or an unregistered head class without
            ``trust_code``.

        Examples
        --------
        >>> type(get_spec("stats-logistic").build(C=0.5)).__name__
        'LogisticHead'
        """
        cls = self.head_class(trust_code=trust_code)
        merged = {**self.params, **params}
        if self.featurizer is not None:
            if getattr(cls, "input_kind", "features") != "features":
                raise ConfigError(f"{self._where}: head {self.head!r} takes raw pairs, not "
                                  "features; remove the [featurizer] table")
            self.featurizer_key  # noqa: B018 - validates the featurizer name and config
        accepted = head_parameters(cls)
        unknown = sorted(set(merged) - set(accepted))
        if unknown:
            raise ConfigError(f"{self._where}: unknown parameter(s) {unknown} for head "
                              f"{self.head!r}. Valid: {sorted(accepted)}")
        return cls(**merged)

    def with_params(self, **params) -> DiscriminatorSpec:
        """A copy whose head parameters are updated with ``params``."""
        return dataclasses.replace(self, params={**self.params, **params})

    def resolved(self) -> DiscriminatorSpec:
        """A copy with every featurizer option filled in (what a trained version saves)."""
        f = self.make_featurizer()
        if f is None:
            return self
        return dataclasses.replace(self, featurizer_config=dict(f.config))

    def to_dict(self) -> dict:
        """The spec as a JSON-safe dict in the spec-file format (with the featurizer key)."""
        d = {"name": self.name, "description": self.description, "head": self.head,
             "params": dict(self.params), "source": self.source}
        if self.featurizer is not None:
            d["featurizer"] = {"name": self.featurizer, "config": dict(self.featurizer_config),
                               "key": self.featurizer_key}
        return d


def spec_from_dict(data: Any, *, name: str | None = None, source: str = "",
                   where: str | None = None) -> DiscriminatorSpec:
    """Parse a spec held in a dict (a parsed spec file or ``spec.json``).

    Parameters
    ----------
    data : dict
    name : str, optional
        The spec's name (a file's stem); a ``name`` key must then agree. Without it the dict's
        ``name`` is used.
    source : str
        Recorded as :attr:`DiscriminatorSpec.source`.
    where : str, optional
        What messages call the spec (default: its name and source).

    Raises
    ------
    ConfigError
        Unknown keys, a missing or unknown head, an unknown featurizer, a featurizer key that
        the config does not give, malformed tables.
    """
    label = name if name is not None else (data.get("name") if isinstance(data, dict) else None)
    where = where or f"discriminator spec {label!r} ({source or 'in memory'})"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table/object at the top level")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(_SPEC_KEYS)}")
    if name is not None and "name" in data and data["name"] != name:
        raise ConfigError(f"{where}: 'name' is {data['name']!r} but the file is named {name!r}; "
                          "rename the file or drop the 'name' key")
    name = name if name is not None else data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'name' must be a non-empty string")
    head = data.get("head")
    if not isinstance(head, str) or not head:
        raise ConfigError(f"{where}: 'head' is required: one of {list_heads()} or "
                          "'package.module:Class'")
    if ":" not in head and head not in list_heads():
        raise ConfigError(f"{where}: unknown head {head!r}; choose one of: "
                          f"{', '.join(list_heads())} (or register yours with register_head)")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a table of head parameters")
    fname, fconf = _featurizer_table(data.get("featurizer"), where)
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise ConfigError(f"{where}: 'description' must be a string")
    return DiscriminatorSpec(name=name, head=head, params=dict(params), featurizer=fname,
                             featurizer_config=fconf, description=desc, source=source)


def _featurizer_table(feat, where: str) -> tuple[str | None, dict]:
    if feat is None:
        return None, {}
    from rorem_data.features.base import featurizer_key, list_featurizers

    pinned = None
    if isinstance(feat, str):
        fname, fconf = feat, {}
    elif isinstance(feat, dict):
        extra = sorted(set(feat) - _FEATURIZER_KEYS)
        if extra:
            raise ConfigError(f"{where}: [featurizer] takes {sorted(_FEATURIZER_KEYS)}; got "
                              f"extra key(s) {extra}")
        fname, fconf, pinned = feat.get("name"), feat.get("config", {}), feat.get("key")
    else:
        fname, fconf = None, None
    if not isinstance(fname, str) or not isinstance(fconf, dict):
        raise ConfigError(f"{where}: featurizer must be a name or a table with 'name' (str) and "
                          "'config' (table)")
    if fname not in list_featurizers():
        raise ConfigError(f"{where}: unknown featurizer {fname!r}; choose one of: "
                          f"{', '.join(list_featurizers())}")
    if pinned is not None:
        got = featurizer_key(fname, fconf)
        if got != pinned:  # saved before an option existed: its earlier value may give the key
            fconf, got = _earlier_config(fname, fconf, pinned, got)
        if got != pinned:
            raise ConfigError(
                f"{where}: the featurizer {fname!r} with this config now gives features "
                f"{got!r}, but the spec was made with {pinned!r} (the featurizer's code or "
                "defaults changed). Features would differ from the ones it was trained on: "
                "retrain it, or drop the featurizer 'key' to accept the new features.")
    return fname, dict(fconf)


def _earlier_config(fname: str, fconf: dict, pinned: str, got: str) -> tuple[dict, str]:
    """(config, key): ``fconf`` with the featurizer's options added since it was saved set to
    the values that gave the features of before (``key_omit``), when that gives the pinned key;
    else ``fconf`` and ``got`` unchanged. A version trained before the option existed then
    keeps computing the features it was trained on."""
    from rorem_data.features.base import FEATURIZERS, featurizer_key

    omit = getattr(FEATURIZERS.get(fname), "key_omit", {}) or {}
    old = {**fconf, **{k: v for k, v in omit.items() if k not in fconf}}
    if old != fconf and featurizer_key(fname, old) == pinned:
        return old, pinned
    return fconf, got


def read_spec_file(path: str, *, name_from_file: bool = True) -> DiscriminatorSpec:
    """Parse one spec file (``.toml`` or ``.json``).

    Parameters
    ----------
    path : str
    name_from_file : bool
        The spec is named after the file stem (a ``name`` key must agree); False takes the
        ``name`` key (as in a saved ``spec.json``).

    Raises
    ------
    ConfigError
        Unreadable or malformed file (names the file and the problem).
    """
    path = os.path.abspath(os.fspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    what = f"discriminator spec {path}"
    if ext == ".json":
        data = jsonfile.load(path, what=what, fix="fix the file")
    elif ext == ".toml":
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {what} ({exc.strerror})") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{what} is not valid TOML: {exc}") from None
    else:
        raise ConfigError(f"{what}: expected a .toml or .json file")
    return spec_from_dict(data, name=stem if name_from_file else None, source=path,
                          where=f"{what}")


def shipped_folder() -> str | None:
    """The folder of the shipped spec files: package data in an installed wheel
    (``rorem_data/discriminators/shipped/``), else the checkout's top-level ``discriminators/``.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(here, "shipped"),
                   os.path.join(os.path.dirname(os.path.dirname(here)), "discriminators")):
        if os.path.isdir(folder):
            return folder
    return None


def discriminator_folders() -> list[str]:
    """Folders scanned for spec files: the shipped specs (:func:`shipped_folder`), then each
    folder in ``ROREM_DISCRIMINATORS_PATH``. Later folders override earlier ones."""
    folders = [shipped_folder()]
    for p in os.environ.get(ENV_PATH, "").split(os.pathsep):
        if p.strip():
            folders.append(os.path.abspath(os.path.expanduser(p.strip())))
    return [f for f in folders if f and os.path.isdir(f)]


def _all_specs() -> dict[str, DiscriminatorSpec]:
    specs = {}
    for folder in discriminator_folders():
        for fname in sorted(os.listdir(folder)):
            if fname.startswith(".") or not fname.endswith((".toml", ".json")):
                continue
            spec = read_spec_file(os.path.join(folder, fname))
            specs[spec.name] = spec
    return specs


def list_discriminators() -> list[str]:
    """Names of every discriminator spec (shipped, and in the ``ROREM_DISCRIMINATORS_PATH``
    folders).

    Examples
    --------
    >>> "stats-logistic" in list_discriminators()
    True
    """
    return sorted(_all_specs())


def get_spec(name_or_path) -> DiscriminatorSpec:
    """A spec by name, by spec file path, or a bare class spec from ``"package.module:Class"``.

    Raises
    ------
    ConfigError
        Unknown name (lists the choices), malformed file, unknown head or featurizer.

    Examples
    --------
    >>> get_spec("stats-logistic").featurizer
    'stats'
    """
    if isinstance(name_or_path, DiscriminatorSpec):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ConfigError(f"discriminator must be a spec name, a spec file or "
                          f"'package.module:Class'; got {name_or_path!r}")
    s = os.fspath(name_or_path)
    if os.path.isfile(s) or s.endswith((".toml", ".json")):
        if not os.path.isfile(s):
            raise ConfigError(f"discriminator spec file {os.path.abspath(s)} does not exist")
        return read_spec_file(s)
    specs = _all_specs()
    if s in specs:
        return specs[s]
    if ":" in s:
        return DiscriminatorSpec(name=s, head=s, source="class")
    raise ConfigError(f"unknown discriminator {s!r}; choose one of: {', '.join(sorted(specs))} "
                      "(or a spec file path)")


def get_discriminator(name_or_path, *, trust_code: bool = False, **params):
    """An unfitted discriminator from a spec name, a spec file, or ``"package.module:Class"``.

    Parameters
    ----------
    name_or_path : str or DiscriminatorSpec
    trust_code : bool
        Allow a head class that is not registered (see :meth:`DiscriminatorSpec.build`).
    **params
        Override the spec's head parameters.

    Returns
    -------
    estimator
        sklearn-style: ``fit(X, y)``, ``predict_proba(X)`` with column 1 = P(success).

    Raises
    ------
    ConfigError
        Unknown name/class/featurizer/parameter.

    Examples
    --------
    >>> disc = get_discriminator("stats-logistic", C=0.5)
    >>> type(disc).__name__, disc.C
    ('LogisticHead', 0.5)
    """
    return get_spec(name_or_path).build(trust_code=trust_code, **params)
