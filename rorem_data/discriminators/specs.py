"""Discriminator specs, the registry, and the save/load format.

A **spec** is a small declarative file (TOML or JSON) naming a featurizer (+ its config) and a
head class (+ its parameters). The repository's top-level ``discriminators/`` folder holds one
per shipped discriminator; copy one, edit it, and put it in that folder or in a folder listed in
``ROREM_DISCRIMINATORS_PATH`` (``os.pathsep``-separated). Later folders override earlier ones;
the built-in specs (identical to the shipped files) come first, so an installed package works
without a checkout. Example (``discriminators/stats-logistic.toml``)::

    description = "Weight-free image statistics + logistic regression."
    head = "logistic"                      # a name from list_heads() or "package.module:Class"

    [featurizer]                           # omit for heads that take raw pairs
    name = "stats"
    config = { size = 256 }

    [params]                               # the head's constructor arguments
    C = 1.0

:func:`get_discriminator` accepts a spec name, a spec file path, or a class by dotted path
(``"my_pkg.mod:MyDisc"``) and returns an **unfitted** sklearn-style estimator.

**Saved discriminators** are folders::

    discriminator.json     {"format", "target", "params", "state", "spec", "versions"}
    weights.safetensors    the fitted arrays (never pickle)

written atomically (a temporary folder renamed into place). :func:`load_discriminator` checks
the folder against a spec when given one. Stdlib-only at import time.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import secrets
import shutil
import tomllib
from dataclasses import dataclass, field
from typing import Any

from rorem_data.core.errors import ConfigError, DependencyError

__all__ = [
    "DiscriminatorSpec",
    "discriminator_folders",
    "discriminator_inputs",
    "get_discriminator",
    "get_spec",
    "list_discriminators",
    "list_heads",
    "load_discriminator",
    "register_head",
    "save_discriminator",
    "saved_spec",
    "score_items",
    "train_discriminator",
]

ENV_PATH = "ROREM_DISCRIMINATORS_PATH"
FORMAT = "rorem-data-discriminator"
FORMAT_VERSION = 1
CONFIG_NAME = "discriminator.json"
WEIGHTS_NAME = "weights.safetensors"

_HEADS: dict[str, str] = {
    "logistic": "rorem_data.discriminators.heads:LogisticHead",
    "mlp": "rorem_data.discriminators.heads:MLPHead",
    "hist-gradient-boosting": "rorem_data.discriminators.heads:HistGradientBoostingHead",
    "pair-classifier": "rorem_data.discriminators.pair_classifier:PairClassifier",
    "unet": "rorem_data.discriminators.unet:UNetDiscriminator",
}

# The shipped specs, identical to the files in the repository's discriminators/ folder (a test
# keeps them in sync), so that `pip install rorem-data` without a checkout still has them.
BUILTIN_SPECS: dict[str, dict] = {
    "stats-logistic": {
        "description": "Weight-free image statistics (colour/texture/residue/blur/outside "
                       "change) + standardised logistic regression. Fast baseline; no GPU.",
        "head": "logistic",
        "featurizer": {"name": "stats", "config": {"size": 256}},
        "params": {"C": 1.0, "max_iter": 1000, "random_state": 0},
    },
    "stats-mlp": {
        "description": "Image statistics + a one-hidden-layer MLP.",
        "head": "mlp",
        "featurizer": {"name": "stats", "config": {"size": 256}},
        "params": {"hidden_layer_sizes": [64], "alpha": 0.001, "max_iter": 500,
                   "random_state": 0},
    },
    "stats-hgb": {
        "description": "Image statistics + histogram gradient boosting (non-linear, robust to "
                       "feature scale).",
        "head": "hist-gradient-boosting",
        "featurizer": {"name": "stats", "config": {"size": 256}},
        "params": {"max_iter": 200, "learning_rate": 0.1, "random_state": 0},
    },
    "clip-logistic": {
        "description": "OpenCLIP ViT-B-32 (OpenAI weights, must be on disk) embeddings of the "
                       "pair, the crops around the mask and the context + logistic regression.",
        "head": "logistic",
        "featurizer": {"name": "clip", "config": {"model": "ViT-B-32", "pretrained": "openai"}},
        "params": {"C": 0.5, "max_iter": 2000, "random_state": 0},
    },
    "clip-mlp": {
        "description": "OpenCLIP ViT-B-32 pair embeddings + an MLP head.",
        "head": "mlp",
        "featurizer": {"name": "clip", "config": {"model": "ViT-B-32", "pretrained": "openai"}},
        "params": {"hidden_layer_sizes": [256], "alpha": 0.001, "max_iter": 300,
                   "early_stopping": True, "random_state": 0},
    },
    "pair-resnet18": {
        "description": "ResNet-18 fine-tuned on the raw pair (source, result, mask stacked as "
                       "7 channels); set pretrained_weights to a torchvision ResNet-18 file.",
        "head": "pair-classifier",
        "params": {"image_size": 224, "epochs": 5, "batch_size": 32, "learning_rate": 0.0001,
                   "weight_decay": 0.01, "random_state": 0},
    },
    "rorem-unet": {
        "description": "The RORem paper's discriminator: SDXL-inpainting UNet encoder + LoRA "
                       "rank 4 + conv head (trained), MSE on softplus scores, t = 0, empty "
                       "prompt. Needs the SDXL-inpainting weights on disk and a GPU.",
        "head": "unet",
        "params": {"pretrained_model": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                   "resolution": 512, "lora_rank": 4, "lora_alpha": 4, "loss": "mse",
                   "learning_rate": 1e-05, "weight_decay": 0.01, "batch_size": 32,
                   "max_steps": 15000, "random_state": 20240421},
    },
}

_SPEC_KEYS = {"name", "description", "head", "featurizer", "params"}


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


def _import_target(target: str, what: str):
    if not isinstance(target, str) or ":" not in target:
        raise ConfigError(f"{what} must be 'package.module:ClassName'; got {target!r}")
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {target!r}: cannot import module {mod_name!r} ({exc}); "
                          "install the package that provides it or fix the path") from None
    obj = getattr(mod, attr, None)
    if obj is None:
        raise ConfigError(f"{what} {target!r}: module {mod_name!r} has no attribute {attr!r}")
    return obj


def register_head(name: str, target: str) -> None:
    """Register a head class under a short name usable in specs (``head = "<name>"``).

    Examples
    --------
    >>> register_head("my-head", "rorem_data.discriminators.heads:LogisticHead")
    >>> "my-head" in list_heads()
    True
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ConfigError(f"head name must be a non-empty string without ':'; got {name!r}")
    if not isinstance(target, str) or ":" not in target:
        raise ConfigError(f"head target must be 'package.module:ClassName'; got {target!r}")
    _HEADS[name] = target


def list_heads() -> list[str]:
    """Short names of the head classes specs can use.

    Examples
    --------
    >>> "logistic" in list_heads()
    True
    """
    return sorted(_HEADS)


@dataclass(frozen=True)
class DiscriminatorSpec:
    """A declarative discriminator: featurizer (+config) and head class (+parameters).

    Attributes
    ----------
    name : str
    head : str
        A name from :func:`list_heads` or ``"package.module:Class"``.
    params : dict
        Head constructor arguments.
    featurizer : str or None
        Featurizer registry name; None for heads on raw pairs.
    featurizer_config : dict
    description : str
    source : str
        The spec file, ``"built-in"``, or ``"class"`` for a bare dotted path.
    """

    name: str
    head: str
    params: dict = field(default_factory=dict)
    featurizer: str | None = None
    featurizer_config: dict = field(default_factory=dict)
    description: str = ""
    source: str = "built-in"

    @property
    def target(self) -> str:
        """``"package.module:Class"`` of the head."""
        if ":" in self.head:
            return self.head
        if self.head not in _HEADS:
            raise ConfigError(f"discriminator spec {self.name!r} ({self.source}): unknown head "
                              f"{self.head!r}. Available: {list_heads()} or "
                              "'package.module:Class'")
        return _HEADS[self.head]

    @property
    def featurizer_key(self) -> str | None:
        """Cache key of the spec's featurizer (None without one); loads no weights."""
        if self.featurizer is None:
            return None
        from rorem_data.features.featurizers import featurizer_key

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
        from rorem_data.features.featurizers import get_featurizer

        return get_featurizer(self.featurizer, **{**self.featurizer_config, **runtime})

    def head_class(self):
        cls = _import_target(self.target, f"head of discriminator spec {self.name!r}")
        if not (inspect.isclass(cls) and callable(getattr(cls, "fit", None))
                and callable(getattr(cls, "predict_proba", None))):
            raise ConfigError(f"{self.target!r} (discriminator {self.name!r}) is not a classifier "
                              "class with fit and predict_proba")
        return cls

    def build(self, **params):
        """An unfitted discriminator; ``params`` override the spec's parameters.

        Raises
        ------
        ConfigError
            Unknown head, featurizer or parameter (the message lists the valid ones).
        """
        cls = self.head_class()
        merged = dict(self.params)
        merged.update(params)
        accepted = _init_params(cls)
        if self.featurizer is not None:
            if "featurizer" not in accepted:
                raise ConfigError(
                    f"discriminator spec {self.name!r}: head {self.target!r} takes raw pairs, "
                    f"not features; remove the [featurizer] table")
            self.featurizer_key  # noqa: B018 - validates the featurizer name and config
            merged.setdefault("featurizer", self.featurizer)
            merged.setdefault("featurizer_config", dict(self.featurizer_config))
        unknown = sorted(set(merged) - accepted) if accepted is not None else []
        if unknown:
            raise ConfigError(f"discriminator spec {self.name!r} ({self.source}): unknown "
                              f"parameter(s) {unknown} for {self.target}. Valid: "
                              f"{sorted(accepted)}")
        merged = {k: tuple(v) if k == "hidden_layer_sizes" and isinstance(v, list) else v
                  for k, v in merged.items()}
        return cls(**merged)

    def to_dict(self) -> dict:
        d = {"name": self.name, "description": self.description, "head": self.head,
             "params": self.params}
        if self.featurizer is not None:
            d["featurizer"] = {"name": self.featurizer, "config": self.featurizer_config}
        return d


def _init_params(cls) -> set[str] | None:
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n in sig.parameters if n != "self"}


def _spec_from_dict(name: str, data: Any, source: str) -> DiscriminatorSpec:
    where = f"discriminator spec {name!r} ({source})"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table/object at the top level")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(_SPEC_KEYS)}")
    if "name" in data and data["name"] != name:
        raise ConfigError(f"{where}: 'name' is {data['name']!r} but the file is named {name!r}; "
                          "rename the file or drop the 'name' key")
    head = data.get("head")
    if not isinstance(head, str) or not head:
        raise ConfigError(f"{where}: 'head' is required: one of {list_heads()} or "
                          "'package.module:Class'")
    if ":" not in head and head not in _HEADS:
        raise ConfigError(f"{where}: unknown head {head!r}. Available: {list_heads()} or "
                          "'package.module:Class'")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a table of head parameters")
    feat = data.get("featurizer")
    fname, fconf = None, {}
    if feat is not None:
        if isinstance(feat, str):
            fname = feat
        elif isinstance(feat, dict):
            extra = sorted(set(feat) - {"name", "config"})
            if extra:
                raise ConfigError(f"{where}: [featurizer] takes 'name' and 'config'; got extra "
                                  f"key(s) {extra}")
            fname = feat.get("name")
            fconf = feat.get("config", {})
        if not isinstance(fname, str) or not isinstance(fconf, dict):
            raise ConfigError(f"{where}: featurizer must be a name or a table with 'name' "
                              "(str) and 'config' (table)")
        from rorem_data.features.featurizers import list_featurizers

        if fname not in list_featurizers():
            raise ConfigError(f"{where}: unknown featurizer {fname!r}. Available: "
                              f"{list_featurizers()}")
    desc = data.get("description", "")
    return DiscriminatorSpec(name=name, head=head, params=dict(params), featurizer=fname,
                             featurizer_config=dict(fconf), description=str(desc), source=source)


def read_spec_file(path: str) -> DiscriminatorSpec:
    """Parse one spec file (``.toml`` or ``.json``); the spec is named after the file stem.

    Raises
    ------
    ConfigError
        Unreadable or malformed file (names the file and the problem).
    """
    path = os.fspath(path)
    stem, ext = os.path.splitext(os.path.basename(path))
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read discriminator spec {path} ({exc.strerror})") from None
    try:
        if ext == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        elif ext == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            raise ConfigError(f"discriminator spec {path}: expected a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"discriminator spec {path} is not valid {ext[1:].upper()}: "
                          f"{exc}") from None
    return _spec_from_dict(stem, data, os.path.abspath(path))


def discriminator_folders() -> list[str]:
    """Folders scanned for spec files: the checkout's ``discriminators/`` (if present), then
    each folder in ``ROREM_DISCRIMINATORS_PATH``. Later folders override earlier ones."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folders = [os.path.join(here, "discriminators")]
    for p in os.environ.get(ENV_PATH, "").split(os.pathsep):
        if p.strip():
            folders.append(os.path.abspath(os.path.expanduser(p.strip())))
    return [f for f in folders if os.path.isdir(f)]


def _all_specs() -> dict[str, DiscriminatorSpec]:
    specs = {n: _spec_from_dict(n, d, "built-in") for n, d in BUILTIN_SPECS.items()}
    for folder in discriminator_folders():
        for fname in sorted(os.listdir(folder)):
            if fname.startswith(".") or not fname.endswith((".toml", ".json")):
                continue
            spec = read_spec_file(os.path.join(folder, fname))
            specs[spec.name] = spec
    return specs


def list_discriminators() -> list[str]:
    """Names of every discriminator spec (built-in, ``discriminators/``, the env folders).

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
    raise ConfigError(f"Unknown discriminator {s!r}. Available: {sorted(specs)} (or a spec file "
                      "path, or 'package.module:Class')")


def get_discriminator(name_or_path, **params):
    """An unfitted discriminator from a spec name, a spec file, or ``"package.module:Class"``.

    Parameters
    ----------
    name_or_path : str or DiscriminatorSpec
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
    return get_spec(name_or_path).build(**params)


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


def _to_json(value):
    """JSON with tuples tagged so parameters round-trip exactly."""
    import numpy as np

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
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _target_of(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _versions() -> dict:
    import sys

    out = {"python": sys.version.split()[0]}
    for mod in ("rorem_data", "numpy", "sklearn", "torch", "diffusers", "peft", "open_clip"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "?"))
    return out


def save_discriminator(disc, folder: str, *, spec: DiscriminatorSpec | str | None = None) -> str:
    """Write a fitted discriminator to ``folder`` atomically (replacing an older save).

    Parameters
    ----------
    disc : BaseDiscriminator
        Fitted; must implement ``_get_state()``.
    folder : str
    spec : DiscriminatorSpec or str, optional
        Recorded in the folder so :func:`load_discriminator` can check it later.

    Returns
    -------
    str
        ``folder``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        Before fit.
    ConfigError
        Parameters that are not JSON-serialisable.
    """
    import numpy as np

    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise DependencyError("Saving a discriminator needs safetensors: pip install "
                              "safetensors") from None
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(disc)
    if not hasattr(disc, "_get_state"):
        raise ConfigError(f"{type(disc).__name__} cannot be saved: it has no _get_state(); "
                          "subclass rorem_data.discriminators.heads.BaseDiscriminator")
    arrays, meta = disc._get_state()
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    meta = dict(meta)
    meta["classes_"] = _to_json(np.asarray(disc.classes_).tolist())
    if spec is not None and not isinstance(spec, DiscriminatorSpec):
        spec = get_spec(spec)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "target": _target_of(disc),
        "params": _to_json(disc.get_params(deep=False)),
        "state": _to_json(meta),
        "spec": spec.to_dict() if spec is not None else None,
        "versions": _versions(),
    }
    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.tmp-{secrets.token_hex(4)}")
    os.makedirs(tmp)
    try:
        save_file(arrays, os.path.join(tmp, WEIGHTS_NAME), metadata={"format": FORMAT})
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=1, sort_keys=True)
            fh.write("\n")
        old = None
        if os.path.exists(folder):
            if not os.path.isfile(os.path.join(folder, CONFIG_NAME)) and os.listdir(folder):
                raise ConfigError(f"{folder} exists and is not a saved discriminator; choose an "
                                  "empty or new folder")
            old = os.path.join(parent, f".{os.path.basename(folder)}.old-{secrets.token_hex(4)}")
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_saved_config(folder: str) -> dict:
    """The parsed ``discriminator.json`` of a saved discriminator (clear errors otherwise)."""
    folder = os.fspath(folder)
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        raise ConfigError(f"{folder} is not a saved discriminator (no {CONFIG_NAME}); pass the "
                          "folder written by disc.save(folder)")
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); re-save the discriminator") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a rorem-data discriminator config")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(f"{path} has format version {config.get('format_version')}; this "
                          f"rorem-data reads up to {FORMAT_VERSION}: upgrade rorem-data")
    return config


def _check_against_spec(config: dict, spec: DiscriminatorSpec, folder: str,
                        runtime: set[str]) -> None:
    problems = []
    if config["target"] != spec.target:
        problems.append(f"class {config['target']} (spec: {spec.target})")
    params = _from_json(config["params"])
    if spec.featurizer is not None:
        saved_key = None
        if params.get("featurizer") is not None:
            from rorem_data.features.featurizers import featurizer_key

            saved_key = featurizer_key(params["featurizer"], params.get("featurizer_config") or {})
        if saved_key != spec.featurizer_key:
            problems.append(f"featurizer {saved_key} (spec: {spec.featurizer_key})")
    for k, v in spec.params.items():
        if k in runtime or k not in params:
            continue
        got = list(params[k]) if isinstance(params[k], tuple) else params[k]
        if got != v:
            problems.append(f"{k}={params[k]!r} (spec: {v!r})")
    if problems:
        raise ConfigError(
            f"saved discriminator {folder} does not match spec {spec.name!r} ({spec.source}): "
            + "; ".join(problems) + ". Load it without a spec, or with the spec it was trained "
            "from.")


def load_discriminator(folder: str, *, spec: DiscriminatorSpec | str | None = None,
                       expect_class=None, **overrides):
    """Load a discriminator saved with :func:`save_discriminator`.

    Parameters
    ----------
    folder : str
    spec : DiscriminatorSpec or str, optional
        Check that the folder was trained from this spec: same class, same featurizer key,
        same structural parameters (runtime ones such as ``device`` may differ).
    expect_class : type, optional
        Require an instance of this class.
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
        Not a saved discriminator, spec mismatch, missing or mismatched weights.
    """
    import numpy as np

    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise DependencyError("Loading a discriminator needs safetensors: pip install "
                              "safetensors") from None
    folder = os.path.abspath(os.fspath(folder))
    config = read_saved_config(folder)
    cls = _import_target(config["target"], f"saved discriminator class in {folder}")
    runtime = set(getattr(cls, "_runtime_params", ()))
    if spec is not None:
        _check_against_spec(config, get_spec(spec), folder, runtime)
    if expect_class is not None and not issubclass(cls, expect_class):
        raise ConfigError(f"{folder} holds a {config['target']}, not a "
                          f"{expect_class.__module__}:{expect_class.__qualname__}")
    bad = sorted(set(overrides) - runtime)
    if bad:
        raise ConfigError(f"load_discriminator: {bad} cannot be changed on load for "
                          f"{cls.__name__}; allowed: {sorted(runtime)}")
    params = _from_json(config["params"])
    params.update(overrides)
    try:
        disc = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"{folder}: saved parameters do not fit {config['target']} ({exc}); "
                          "was it saved by another rorem-data version?") from None
    wpath = os.path.join(folder, WEIGHTS_NAME)
    if not os.path.isfile(wpath):
        raise ConfigError(f"{folder} has no {WEIGHTS_NAME}; the save is incomplete: re-save it")
    try:
        arrays = load_file(wpath)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ConfigError(f"{wpath} is unreadable ({exc}); re-save the discriminator") from None
    meta = _from_json(config["state"])
    classes = meta.pop("classes_")
    disc.classes_ = np.asarray(classes)
    try:
        disc._set_state(arrays, meta)
    except KeyError as exc:
        raise ConfigError(f"{wpath} lacks array {exc} expected by {config['target']}; the weights "
                          "do not match the config (re-save the discriminator)") from None
    return disc


def saved_spec(folder: str) -> DiscriminatorSpec | None:
    """The spec recorded in a saved discriminator, if any."""
    cfg = read_saved_config(folder)
    d = cfg.get("spec")
    if not d:
        return None
    name = d.get("name", "saved")
    body = {k: v for k, v in d.items() if k != "name"}
    return _spec_from_dict(name, body, os.path.join(os.fspath(folder), CONFIG_NAME))


def spec_replace(spec: DiscriminatorSpec, **changes) -> DiscriminatorSpec:
    """A copy of ``spec`` with fields replaced (e.g. ``params={...}``)."""
    return dataclasses.replace(spec, **changes)


# --------------------------------------------------------------------------------------------
# File-level glue for the dataset/CLI layer: featurize (cached), train, score
# --------------------------------------------------------------------------------------------


def _featurizer_of(disc, spec: DiscriminatorSpec | None):
    """The featurizer a discriminator needs (None for raw-pair discriminators)."""
    if getattr(disc, "input_kind", "features") == "pairs":
        return None
    name = getattr(disc, "featurizer", None)
    if name is not None:
        from rorem_data.features.featurizers import get_featurizer

        return get_featurizer(name, **dict(getattr(disc, "featurizer_config", None) or {}))
    if spec is not None and spec.featurizer is not None:
        return spec.make_featurizer()
    raise ConfigError(f"{type(disc).__name__} takes features but names no featurizer; set its "
                      "featurizer/featurizer_config parameters or pass the spec")


def discriminator_inputs(disc_or_spec, items, *, ids=None, cache_root: str | None = None,
                         batch_size: int = 32, num_workers: int = 2, progress: bool = True,
                         device: str | None = None):
    """``X`` for a discriminator: cached features (computing only missing ones) or the items.

    Parameters
    ----------
    disc_or_spec : estimator, DiscriminatorSpec or str
    items : sequence of (source_path, result_path, mask_path)
    ids : sequence of str, optional
        One sample id per item; required with ``cache_root``.
    cache_root : str, optional
        Feature cache root (``<root>/<featurizer key>/``); None computes without caching.
    batch_size, num_workers, progress
        See :func:`rorem_data.features.featurizers.featurize_paths`.
    device : str, optional
        Device of the featurizer's model (e.g. ``"cuda"``).

    Returns
    -------
    FeatureMatrix (n, d) for feature heads, or ``items`` (as a list) for raw-pair
    discriminators.

    Examples
    --------
    >>> X = discriminator_inputs("stats-logistic", items, ids=ids,
    ...                          cache_root="features/")         # doctest: +SKIP
    """
    if isinstance(disc_or_spec, (str, os.PathLike, DiscriminatorSpec)):
        spec = get_spec(disc_or_spec)
        disc = spec.build()
    else:
        spec, disc = None, disc_or_spec
    featurizer = _featurizer_of(disc, spec)
    if featurizer is None:
        return [tuple(os.fspath(p) for p in it) for it in items]
    if device is not None:
        featurizer.runtime["device"] = device
    from rorem_data.features.featurizers import featurize_paths

    return featurize_paths(featurizer, items, ids=ids, cache=cache_root, batch_size=batch_size,
                           num_workers=num_workers, progress=progress)


def train_discriminator(spec, items, y, *, ids=None, cache_root: str | None = None,
                        folder: str | None = None, progress: bool = True, **params):
    """Build the spec's discriminator, featurize (cached) if needed, fit, optionally save.

    Parameters
    ----------
    spec : DiscriminatorSpec or str
    items : sequence of (source_path, result_path, mask_path)
    y : array-like (n,)
        1 = success, 0 = failure.
    ids, cache_root, progress
        See :func:`discriminator_inputs`.
    folder : str, optional
        Save the fitted discriminator here (with the spec recorded).
    **params
        Override the spec's head parameters.

    Returns
    -------
    estimator
        Fitted.

    Examples
    --------
    >>> disc = train_discriminator("stats-logistic", items, y, ids=ids,
    ...                            cache_root="features/", folder="disc/r3")  # doctest: +SKIP
    """
    spec = get_spec(spec)
    if params:
        spec = dataclasses.replace(spec, params={**spec.params, **params})
    disc = spec.build()
    X = discriminator_inputs(disc, items, ids=ids, cache_root=cache_root, progress=progress)
    disc.fit(X, y)
    if folder is not None:
        save_discriminator(disc, folder, spec=spec)
    return disc


def score_items(disc_or_folder, items, *, ids=None, cache_root: str | None = None,
                batch_size: int = 32, num_workers: int = 2, progress: bool = True):
    """P(success) of each item with a fitted discriminator (or a saved folder).

    Returns
    -------
    ndarray, float64, shape (n,)
        ``predict_proba(X)[:, 1]``; higher = more likely a good removal.

    Examples
    --------
    >>> p = score_items("disc/r3", items, ids=ids, cache_root="features/")  # doctest: +SKIP
    """
    spec = None
    if isinstance(disc_or_folder, (str, os.PathLike)):
        spec = saved_spec(disc_or_folder)
        disc = load_discriminator(disc_or_folder)
    else:
        disc = disc_or_folder
    featurizer = _featurizer_of(disc, spec)
    if featurizer is None:
        X = [tuple(os.fspath(p) for p in it) for it in items]
    else:
        from rorem_data.features.featurizers import featurize_paths

        X = featurize_paths(featurizer, items, ids=ids, cache=cache_root, batch_size=batch_size,
                            num_workers=num_workers, progress=progress)
    return disc.predict_proba(X)[:, 1]
