"""Saving and loading fitted discriminators - and what a saved folder is trusted to do.

A **saved discriminator** is a folder, written atomically (a temporary sibling renamed into
place)::

    discriminator.json     {"format", "format_version", "head", "target", "params", "state",
                            "versions"}
    weights.safetensors    the fitted arrays (never pickle)
    spec.json              the full spec it was trained from (featurizer name, every option
                           and its key; head and parameters; description; source)

:func:`save_discriminator` writes it; :func:`load_discriminator` rebuilds the fitted estimator
and :func:`saved_spec` the spec, from the folder alone - nothing is looked up by name again.

Trust model
-----------
A saved folder is **data**: it may come from a colleague, a shared disk, an old project, or an
attacker, and loading it must never run code it names.

- **Classes.** ``discriminator.json`` names its head by registered name (``"head"``) and by
  ``"module:Class"`` (``"target"``). Only heads in the head registry
  (:mod:`rorem_data.discriminators.registry`: the built-in ones and those registered with
  ``register_head``) are imported. Any other target - ``"os:system"``, a user class - is refused
  before anything is imported, with a :class:`~rorem_data.core.errors.ConfigError` that names
  the file and the two ways out: ``register_head(...)`` in your own code, or
  ``trust_code=True`` (``--trust-code`` on the command line) when you trust the folder. Even
  then the target must be a subclass of
  :class:`~rorem_data.discriminators.base.BaseDiscriminator`; a function or any other object is
  refused.
- **Parameters.** ``params`` must be JSON values (numbers, strings, booleans, null, lists,
  dicts; tuples are tagged lists) and every name must be a named parameter of the class's
  ``__init__``; only the class's ``_runtime_params`` (``device``, ...) may be changed on load.
- **Arrays.** ``weights.safetensors`` is parsed by safetensors (no code, no pickle). Each head
  declares the dtype and shape of every array from its parameters and the saved metadata
  (``_array_layout``); a missing, extra, mistyped or misshaped array is refused, and the values
  are checked (finite weights; tree node tables whose child and feature indices are in range
  and acyclic) before prediction uses them. A corrupt or truncated file is refused with the
  file's name - never a hang, a crash, or a read outside an array.
- **Featurizers** named by ``spec.json`` are looked up in the featurizer registry only, and the
  saved featurizer key must match what the config gives today.
- **Calibrators** saved in a version's ``meta.json`` load by registered kind only
  (:mod:`rorem_data.stats.calibration`).

Torch-based heads (:class:`~rorem_data.discriminators.pair_classifier.PairClassifier`,
:class:`~rorem_data.discriminators.unet.UNetDiscriminator`) check their arrays with
``load_state_dict`` against the architecture their parameters build.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys

import numpy as np

from rorem_data.core import jsonfile
from rorem_data.core.deps import require
from rorem_data.core.errors import ConfigError
from rorem_data.discriminators.base import BaseDiscriminator
from rorem_data.discriminators.registry import (
    head_parameters,
    registered_name,
    resolve_head,
    target_of,
)
from rorem_data.discriminators.specs import DiscriminatorSpec, spec_from_dict

__all__ = ["CONFIG_NAME", "SPEC_NAME", "WEIGHTS_NAME", "load_discriminator",
           "read_saved_config", "save_discriminator", "saved_spec"]

FORMAT = "rorem-data-discriminator"
FORMAT_VERSION = 2
CONFIG_NAME = "discriminator.json"
WEIGHTS_NAME = "weights.safetensors"
SPEC_NAME = "spec.json"


# --------------------------------------------------------------------------------------------
# JSON values
# --------------------------------------------------------------------------------------------


def _to_json(value):
    """JSON with tuples tagged so parameters round-trip exactly."""
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_to_json(v) for v in value.tolist()]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"cannot save parameter value {value!r} ({type(value).__name__}) as JSON; "
                      "use plain numbers, strings, lists, tuples, dicts or None (an integer "
                      "random_state instead of a RandomState)")


def _from_json(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"} and isinstance(value["__tuple__"], list):
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _is_plain_json(value, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False


def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for mod in ("rorem_data", "numpy", "sklearn", "torch", "diffusers", "peft", "open_clip"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "?"))
    return out


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------


def _check_arrays(arrays: dict, layout: dict, *, where: str) -> None:
    """Every array present with the layout's dtype and shape, and nothing else."""
    missing = sorted(set(layout) - set(arrays))
    extra = sorted(set(arrays) - set(layout))
    if missing or extra:
        raise ConfigError(f"{where}: arrays do not match the saved config (missing "
                          f"{missing[:5]}, unexpected {extra[:5]}); the file is corrupt or from "
                          "another model: re-save or retrain the discriminator")
    for name, (dtype, shape) in layout.items():
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or tuple(a.shape) != tuple(shape):
            raise ConfigError(f"{where}: array {name!r} is {a.dtype} {tuple(a.shape)}, but the "
                              f"saved config says {np.dtype(dtype)} {tuple(shape)}; the file is "
                              "corrupt: re-save or retrain the discriminator")


# --------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------


def save_discriminator(disc, folder: str, *, spec: DiscriminatorSpec | None = None) -> str:
    """Write a fitted discriminator to ``folder`` atomically (replacing an older save).

    Parameters
    ----------
    disc : BaseDiscriminator
        Fitted.
    folder : str
    spec : DiscriminatorSpec, optional
        The spec it was built from; saved, resolved, as ``spec.json`` (its head must be the
        class of ``disc``). A project version always saves one.

    Returns
    -------
    str
        ``folder`` (absolute).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        Before fit.
    ConfigError
        Not a BaseDiscriminator, parameters that are not JSON-serialisable, a spec of another
        head, or a ``folder`` that exists and is not a saved discriminator.

    Examples
    --------
    >>> from rorem_data.discriminators.specs import get_spec
    >>> spec = get_spec("stats-logistic")
    >>> X = np.random.default_rng(0).normal(size=(20, 3)); y = np.arange(20) % 2
    >>> import tempfile
    >>> path = save_discriminator(spec.build().fit(X, y), tempfile.mkdtemp() + "/d", spec=spec)
    >>> sorted(os.listdir(path))
    ['discriminator.json', 'spec.json', 'weights.safetensors']
    """
    save_file = require("safetensors.numpy", purpose="saving a discriminator").save_file
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(disc, BaseDiscriminator):
        raise ConfigError(f"{type(disc).__name__} cannot be saved: subclass "
                          "rorem_data.discriminators.base.BaseDiscriminator")
    check_is_fitted(disc)
    cls = type(disc)
    head = registered_name(cls)
    if spec is not None:
        if not isinstance(spec, DiscriminatorSpec):
            raise ConfigError(f"save_discriminator: spec must be a DiscriminatorSpec; got "
                              f"{type(spec).__name__}")
        spec_head = registered_name(spec.head) or spec.head
        if spec_head != (head or target_of(cls)):
            raise ConfigError(f"save_discriminator: the spec {spec.name!r} builds head "
                              f"{spec.head!r} but the discriminator is a {target_of(cls)}")
        spec_doc = spec.resolved().to_dict()
    arrays, meta = disc._get_state()
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    layout = disc._array_layout(meta)
    if layout is not None:
        _check_arrays(arrays, layout, where=f"save_discriminator ({target_of(cls)})")
    meta = dict(meta)
    meta["classes_"] = _to_json(np.asarray(disc.classes_).tolist())
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "head": head,
        "target": target_of(cls),
        "params": _to_json(disc.get_params(deep=False)),
        "state": _to_json(meta),
        "versions": _versions(),
    }
    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    if os.path.exists(folder) and not os.path.isfile(os.path.join(folder, CONFIG_NAME)) and \
            os.listdir(folder):
        raise ConfigError(f"{folder} exists and is not a saved discriminator; choose an empty or "
                          "new folder")
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.tmp-{secrets.token_hex(4)}")
    os.makedirs(tmp)
    try:
        save_file(arrays, os.path.join(tmp, WEIGHTS_NAME), metadata={"format": FORMAT})
        _write_json(os.path.join(tmp, CONFIG_NAME), config)
        if spec is not None:
            _write_json(os.path.join(tmp, SPEC_NAME), spec_doc)
        old = None
        if os.path.exists(folder):
            old = os.path.join(parent, f".{os.path.basename(folder)}.old-{secrets.token_hex(4)}")
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_json(path: str, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


def read_saved_config(folder: str) -> dict:
    """The parsed, structurally checked ``discriminator.json`` of a saved discriminator.

    Raises
    ------
    ConfigError
        No such file, not JSON, not a rorem-data discriminator, a format this version does not
        read, or entries of the wrong type (each message names the file).
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        raise ConfigError(f"{folder} is not a saved discriminator (no {CONFIG_NAME}); pass the "
                          "folder written by save_discriminator")
    config = jsonfile.load(path, fix="re-save or retrain the discriminator")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a rorem-data discriminator config")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ConfigError(f"{path} has format version {version!r}; this rorem-data reads "
                          f"version {FORMAT_VERSION}: "
                          + ("upgrade rorem-data" if newer else "retrain the discriminator"))
    for key, types in (("target", str), ("params", dict), ("state", dict)):
        if not isinstance(config.get(key), types):
            raise ConfigError(f"{path}: {key!r} must be a {types.__name__}; the file is corrupt "
                              "(re-save or retrain the discriminator)")
    if config.get("head") is not None and not isinstance(config["head"], str):
        raise ConfigError(f"{path}: 'head' must be a head name or null")
    return config


def load_discriminator(folder: str, *, trust_code: bool = False, **overrides):
    """Load a discriminator saved with :func:`save_discriminator` (see the trust model above).

    Parameters
    ----------
    folder : str
    trust_code : bool
        Allow a head class that is not registered (it must subclass BaseDiscriminator).
        Importing it runs its module: only for folders you trust.
    **overrides
        Runtime parameters to set on load (only those the class lists in ``_runtime_params``,
        e.g. ``device``, or ``pretrained_model`` for a moved base model).

    Returns
    -------
    estimator
        Fitted; ``predict_proba`` gives the same probabilities as before saving.

    Raises
    ------
    ConfigError
        Not a saved discriminator; an unregistered head without ``trust_code``; parameters that
        the class does not take or that are not JSON values; missing, corrupt, truncated or
        mismatched weights (each message names the file and the fix).
    """
    load_file = require("safetensors.numpy", purpose="loading a discriminator").load_file
    folder = os.path.abspath(os.fspath(folder))
    config = read_saved_config(folder)
    cpath = os.path.join(folder, CONFIG_NAME)
    head = config.get("head") or config["target"]
    _, cls = resolve_head(head, trust_code=trust_code, where=f"saved discriminator {cpath}")
    runtime = set(getattr(cls, "_runtime_params", ()))
    bad = sorted(set(overrides) - runtime)
    if bad:
        raise ConfigError(f"load_discriminator: {bad} cannot be changed on load for "
                          f"{cls.__name__}; allowed: {sorted(runtime)}")
    raw_params = config["params"]
    if not _is_plain_json(raw_params) or not _is_plain_json(config["state"]):
        raise ConfigError(f"{cpath}: 'params' and 'state' must hold plain JSON values")
    accepted = head_parameters(cls)
    unknown = sorted(set(raw_params) - set(accepted))
    if unknown:
        raise ConfigError(f"{cpath}: parameter(s) {unknown} are not parameters of "
                          f"{target_of(cls)} (valid: {sorted(accepted)}); the file is corrupt or "
                          "from another version: retrain the discriminator")
    params = _from_json(raw_params)
    params.update(overrides)
    try:
        disc = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cpath}: saved parameters do not fit {target_of(cls)} ({exc}); "
                          "retrain the discriminator") from None
    meta = _from_json(config["state"])
    classes = meta.pop("classes_", None)
    if not (isinstance(classes, list) and len(classes) == 2 and all(
            isinstance(c, (int, str)) for c in classes)):
        raise ConfigError(f"{cpath}: 'state.classes_' must be the two labels; got {classes!r:.80}")
    wpath = os.path.join(folder, WEIGHTS_NAME)
    if not os.path.isfile(wpath):
        raise ConfigError(f"{folder} has no {WEIGHTS_NAME}; the save is incomplete: re-save or "
                          "retrain the discriminator")
    try:
        arrays = load_file(wpath)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ConfigError(f"{wpath} is unreadable ({exc}); the file is corrupt or truncated: "
                          "re-save or retrain the discriminator") from None
    try:
        layout = disc._array_layout(meta)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{cpath}: {exc}; the file is corrupt: re-save or retrain the "
                          "discriminator") from None
    if layout is not None:
        _check_arrays(arrays, layout, where=wpath)
    disc.classes_ = np.asarray(classes)
    try:
        disc._set_state(arrays, meta)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{wpath}: {exc}; the file is corrupt: re-save or retrain the "
                          "discriminator") from None
    return disc


def saved_spec(folder: str) -> DiscriminatorSpec | None:
    """The spec a saved discriminator was trained from (its ``spec.json``), or None.

    Its ``source`` is where the spec originally came from (recorded at training).

    Raises
    ------
    ConfigError
        A malformed ``spec.json``, a featurizer that is not registered, or one whose key no
        longer matches the saved key (each message names the file).
    """
    path = os.path.join(os.path.abspath(os.fspath(folder)), SPEC_NAME)
    if not os.path.isfile(path):
        return None
    data = jsonfile.load(path, what=f"saved spec {path}", fix="retrain the discriminator")
    source = data.get("source") if isinstance(data, dict) else None
    return spec_from_dict(data, source=source if isinstance(source, str) and source else path,
                          where=f"saved spec {path}")
