"""The Featurizer base class and the featurizer registry.

A featurizer maps a batch of removal candidates - the source image with the object, the
remover's result and the object mask - to a float32 matrix of shape ``(n, d)`` that a feature
head (:mod:`rorem_data.discriminators.heads`) learns success/failure from. Featurizers are
plug-ins of :data:`FEATURIZERS` (:func:`list_featurizers`, :func:`get_featurizer`,
:func:`register_featurizer`), like open_clip's architectures; the built-in ones are ``stats``
(:mod:`rorem_data.features.stats`) and ``clip`` (:mod:`rorem_data.features.clip`).

Every featurizer has a ``config`` dict (everything that changes the features) and a stable
``key`` (name + short hash of the config); features are cached per key
(:mod:`rorem_data.features.cache`) and a trained discriminator records the key of the features
it was trained on. Options that do not change the features (``device``) are not part of the
config. Feature matrices are plain float32 ndarrays: the key travels beside them, never inside.

Only numpy at import time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Sequence

import numpy as np

from rorem_data.core.checks import positive_int
from rorem_data.core.errors import ConfigError, ValidationError
from rorem_data.core.registry import Registry
from rorem_data.features.pairs import check_pair_arrays

__all__ = [
    "FEATURIZERS",
    "Featurizer",
    "featurizer_key",
    "get_featurizer",
    "list_featurizers",
    "register_featurizer",
]


def _config_hash(name: str, config: dict) -> str:
    blob = json.dumps({"name": name, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _json_clean(value, where: str):
    """Round-trip a config value through JSON so the key is stable (tuples become lists)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must be JSON-serialisable (str, number, bool, list, dict or "
                          f"None); got {value!r} ({exc})") from None


class Featurizer:
    """Base class: a named, configured map from (source, result, mask) batches to features.

    Subclasses set ``name``, ``defaults`` (the config keys and their default values),
    ``runtime_options`` (keyword arguments that do not change the features) and, for an option
    added after features were cached, ``key_omit`` (``{option: value}``: the value that gives the
    features of before, left out of the key so those keys stay valid), and implement
    :meth:`prepare` (per item, runs in DataLoader workers) and :meth:`embed` (per batch, runs
    in the main process).

    Parameters
    ----------
    **config
        Values for the keys in ``defaults`` (others raise :class:`ConfigError`) and for
        ``runtime_options``.

    Attributes
    ----------
    config : dict
        The full config (defaults filled in), JSON-serialisable.
    key : str
        ``"<name>-<10 hex chars>"``: a stable hash of name + :attr:`key_config`; one cache
        folder per key.
    runtime : dict
        The runtime options (e.g. ``device``).
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    runtime_options: ClassVar[dict] = {}
    key_omit: ClassVar[dict] = {}

    def __init__(self, **config):
        unknown = sorted(set(config) - set(self.defaults) - set(self.runtime_options))
        if unknown:
            raise ConfigError(
                f"Unknown option(s) {unknown} for featurizer {self.name!r}. Valid options: "
                f"{sorted(self.defaults) + sorted(self.runtime_options)}")
        merged = {k: config.get(k, v) for k, v in self.defaults.items()}
        merged = _json_clean(merged, f"the config of featurizer {self.name!r}")
        self.config = self._validate_config(merged)
        self.runtime = {k: config.get(k, v) for k, v in self.runtime_options.items()}

    # -- identity ----------------------------------------------------------------------------
    def _validate_config(self, config: dict) -> dict:
        """Check (and normalise) the merged config; raise ConfigError naming the option."""
        return config

    @property
    def key_config(self) -> dict:
        """The config the key hashes (and a feature cache records): ``config`` without the
        options at their ``key_omit`` value."""
        return {k: v for k, v in self.config.items()
                if not (k in self.key_omit and v == self.key_omit[k])}

    @property
    def key(self) -> str:
        return f"{self.name}-{_config_hash(self.name, self.key_config)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, config={self.config!r})"

    @property
    def dim(self) -> int:
        """Number of features ``d``."""
        raise NotImplementedError

    @property
    def feature_names(self) -> list[str]:
        """One name per feature column (length ``dim``)."""
        return [f"f{i}" for i in range(self.dim)]

    @property
    def work_size(self) -> int | None:
        """The longest side this featurizer works at, if it only needs the images that large
        (the reader then decodes JPEGs scaled down); None: full size."""
        return None

    @property
    def light(self) -> bool:
        """True when the per-batch model work is negligible next to decoding (no model, or a
        tiny one): the pipeline then keeps this process to one torch thread."""
        return True

    # -- the two halves of the computation --------------------------------------------------
    def setup(self) -> None:
        """Load what the featurizer needs (model weights) before workers start. Idempotent."""

    def prepare(self, source: np.ndarray, result: np.ndarray, mask: np.ndarray):
        """Per-item work on checked arrays (runs in DataLoader worker processes).

        ``source``/``result`` are uint8 (H, W, 3), ``mask`` bool (H, W) and not empty.
        """
        raise NotImplementedError

    def collate(self, prepared: list):
        """Stack prepared items into one batch (runs in the workers)."""
        return np.stack(prepared)

    def embed(self, batch) -> np.ndarray:
        """Batch -> float32 ``(n, d)`` (runs in the main process)."""
        return np.asarray(batch, dtype=np.float32)

    # -- in-process convenience ---------------------------------------------------------------
    def featurize_arrays(self, sources: Sequence[np.ndarray], results: Sequence[np.ndarray],
                         masks: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """Features of in-memory pairs, computed in this process (no workers).

        Parameters
        ----------
        sources, results : sequence of ndarray, uint8, shape (H, W, 3)
            Source images (with the object) and remover results, RGB; same size per item.
        masks : sequence of ndarray, bool, shape (H, W)
            Object masks (True = object, the region the remover filled); must not be empty.
        batch_size : int
            Items per model call.

        Returns
        -------
        ndarray, float32, shape (n, d), C-contiguous
            One row per item, in order (``self.key`` names the features).

        Raises
        ------
        ValidationError
            If an item has the wrong shape/dtype, mismatched sizes or an empty mask.

        Examples
        --------
        >>> from rorem_data.testing import synthetic
        >>> sc = synthetic.make_scene(0)
        >>> res = synthetic.degrade(sc.source, sc.truths[0], sc.masks[0], "clean", seed=0)
        >>> X = get_featurizer("stats").featurize_arrays([sc.source], [res], [sc.masks[0]])
        >>> X.shape[0], X.dtype
        (1, dtype('float32'))
        """
        if not (len(sources) == len(results) == len(masks)):
            raise ValidationError(
                f"sources, results and masks must have the same length; got {len(sources)}, "
                f"{len(results)} and {len(masks)}")
        bs = positive_int(batch_size, "batch_size")
        self.setup()
        out = []
        for start in range(0, len(sources), bs):
            prepared = []
            for i in range(start, min(start + bs, len(sources))):
                s, r, m = check_pair_arrays(sources[i], results[i], masks[i], item=f"item {i}")
                prepared.append(self.prepare(s, r, m))
            out.append(self.embed(self.collate(prepared)))
        feats = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(feats, dtype=np.float32)


def _check_featurizer_class(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Featurizer)):
        raise ConfigError(f"featurizer {name!r} must be a subclass of "
                          f"rorem_data.features.base.Featurizer; got {obj!r}")


#: Featurizer plug-ins: name -> Featurizer subclass (``"module:Class"``, imported on first use).
FEATURIZERS = Registry("featurizer", {
    "stats": "rorem_data.features.stats:StatsFeaturizer",
    "clip": "rorem_data.features.clip:ClipFeaturizer",
}, check=_check_featurizer_class)


def register_featurizer(name: str, target, *, overwrite: bool = False) -> None:
    """Register a featurizer class under ``name``.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"my-feats"``; it names (and keys) the features.
    target : str or type
        ``"package.module:ClassName"`` of a :class:`Featurizer` subclass (imported on first
        use), or the class itself.
    overwrite : bool
        Replace an existing entry of that name.

    Raises
    ------
    ConfigError
        A bad name or target, or a name already taken (without ``overwrite``).

    Examples
    --------
    >>> register_featurizer("stats2", "rorem_data.features.stats:StatsFeaturizer")
    >>> "stats2" in list_featurizers()
    True
    >>> FEATURIZERS.unregister("stats2")
    """
    FEATURIZERS.register(name, target, overwrite=overwrite)


def list_featurizers() -> list[str]:
    """Names of the registered featurizers, sorted.

    Examples
    --------
    >>> list_featurizers()[:2]
    ['clip', 'stats']
    """
    return FEATURIZERS.names()


def get_featurizer(name: str, **config) -> Featurizer:
    """A featurizer by registry name, configured (cheap: weights load on first use).

    Parameters
    ----------
    name : str
        One of :func:`list_featurizers`.
    **config
        Featurizer options (see each class); unknown options raise.

    Returns
    -------
    Featurizer

    Raises
    ------
    ConfigError
        Unknown name (the message lists the choices) or a bad option.

    Examples
    --------
    >>> f = get_featurizer("stats", size=128)
    >>> f.key.startswith("stats-")
    True
    """
    cls = FEATURIZERS.get(name)
    obj = cls(**config)
    if obj.name != name:  # registered under an alias: the alias names (and keys) its features
        obj.name = name
    return obj


def featurizer_key(name: str, config: dict | None = None) -> str:
    """The cache key of featurizer ``name`` with ``config`` (defaults filled in), without
    loading any weights.

    Examples
    --------
    >>> featurizer_key("stats") == get_featurizer("stats").key
    True
    """
    return get_featurizer(name, **(config or {})).key
