"""Featurizers: turn (source, result, mask) pairs into fixed-length feature vectors.

A featurizer maps a batch of removal candidates - the source image with the object, the
remover's result and the object mask - to a float32 matrix of shape ``(n, d)`` that a feature
head (:mod:`rorem_data.discriminators.heads`) can learn success/failure from. Featurizers are registered by
name, like open_clip's architectures:

- ``stats``: no weights. Colour, texture, gradient and edge statistics inside the mask against
  a ring around it, the change between source and result inside and outside the mask, how much
  of the removed object is left (residue), high-frequency energy (blur) and colour outliers
  against the ring's distribution (hallucinated objects). Pure numpy + OpenCV.
- ``clip``: an open_clip image encoder applied to the source, the result, square crops of both
  around the mask and a "context" crop of the result with the masked region blanked out,
  combined so a head sees what changed in the mask and whether the fill matches its
  surroundings.

Every featurizer has a ``config`` dict (everything that changes the features) and a stable
``key`` (name + short hash of the config); features are cached per key
(:mod:`rorem_data.features.cache`). Options that do not change the features (``device``) are
not part of the config.

:func:`featurize_paths` runs a featurizer over image files with a torch ``DataLoader``: worker
processes decode the PNG/JPEG files (masks through :func:`rorem_data.core.images.read_mask`) and do
the per-item preprocessing, the main process batches and runs the model. With a cache, only the
missing items are computed and every finished chunk is written at once, so an interrupted run
resumes where it stopped.

This module imports only numpy at import time; OpenCV, torch and open_clip load when needed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from typing import ClassVar, Sequence

import numpy as np

from rorem_data.core.errors import ConfigError, DependencyError, ValidationError

__all__ = [
    "ClipFeaturizer",
    "FeatureMatrix",
    "Featurizer",
    "StatsFeaturizer",
    "featurize_paths",
    "featurizer_key",
    "get_featurizer",
    "list_featurizers",
    "register_featurizer",
]


# --------------------------------------------------------------------------------------------
# Feature matrices that remember which featurizer made them
# --------------------------------------------------------------------------------------------


class FeatureMatrix(np.ndarray):
    """A float32 ``(n, d)`` array that carries the key of the featurizer that produced it.

    Feature heads compare ``featurizer_key`` with the key they were trained on and refuse
    features from another featurizer. Slicing keeps the key; ``np.asarray(x)`` gives a plain
    array (and drops the check).

    Examples
    --------
    >>> X = FeatureMatrix(np.zeros((2, 3), np.float32), "stats-0123456789")
    >>> X[:1].featurizer_key
    'stats-0123456789'
    """

    def __new__(cls, array, featurizer_key: str | None = None):
        obj = np.asarray(array).view(cls)
        obj.featurizer_key = featurizer_key
        return obj

    def __array_finalize__(self, obj):
        self.featurizer_key = getattr(obj, "featurizer_key", None)

    def __reduce__(self):  # keep the key through copy/deepcopy/multiprocessing
        return (FeatureMatrix, (np.asarray(self), self.featurizer_key))


# --------------------------------------------------------------------------------------------
# Base class and registry
# --------------------------------------------------------------------------------------------


def _config_hash(name: str, config: dict) -> str:
    blob = json.dumps({"name": name, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def _json_clean(value, where: str):
    """Round-trip a config value through JSON so the key is stable (tuples become lists)."""
    try:
        return json.loads(json.dumps(value))
    except TypeError as exc:
        raise ConfigError(f"{where} must be JSON-serialisable (str, number, bool, list, dict or "
                          f"None); got {value!r} ({exc})") from None


class Featurizer:
    """Base class: a named, configured map from (source, result, mask) batches to features.

    Subclasses set ``name``, ``defaults`` (the config keys and their default values) and
    ``runtime_options`` (keyword arguments that do not change the features), and implement
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
        ``"<name>-<10 hex chars>"``: a stable hash of name + config; one cache folder per key.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    runtime_options: ClassVar[dict] = {}

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
        return config

    @property
    def key(self) -> str:
        return f"{self.name}-{_config_hash(self.name, self.config)}"

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
    def light(self) -> bool:
        """True when the per-batch model work is negligible next to decoding (no model, or a
        tiny one): the pipeline then keeps this process to one torch thread."""
        return True

    # -- the two halves of the computation --------------------------------------------------
    def setup(self) -> None:
        """Load what the featurizer needs (model weights) before workers start. Idempotent."""

    def prepare(self, source: np.ndarray, result: np.ndarray, mask: np.ndarray):
        """Per-item work on decoded arrays (runs in DataLoader worker processes)."""
        raise NotImplementedError

    def collate(self, prepared: list):
        """Stack prepared items into one batch (runs in the workers)."""
        return np.stack(prepared)

    def embed(self, batch) -> np.ndarray:
        """Batch -> float32 ``(n, d)`` (runs in the main process)."""
        return np.asarray(batch, dtype=np.float32)

    # -- in-process convenience ---------------------------------------------------------------
    def featurize_arrays(self, sources: Sequence[np.ndarray], results: Sequence[np.ndarray],
                         masks: Sequence[np.ndarray], *, batch_size: int = 32) -> FeatureMatrix:
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
        FeatureMatrix, float32, shape (n, d)
            One row per item, in order, tagged with this featurizer's key.

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
        bs = _positive_int(batch_size, "batch_size")
        self.setup()
        out = []
        for start in range(0, len(sources), bs):
            prepared = []
            for i in range(start, min(start + bs, len(sources))):
                s, r, m = check_pair_arrays(sources[i], results[i], masks[i], item=f"item {i}")
                prepared.append(self.prepare(s, r, m))
            out.append(self.embed(self.collate(prepared)))
        feats = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return FeatureMatrix(np.ascontiguousarray(feats, dtype=np.float32), self.key)


_FEATURIZERS: dict[str, str] = {
    "stats": "rorem_data.features.featurizers:StatsFeaturizer",
    "clip": "rorem_data.features.featurizers:ClipFeaturizer",
}


def _import_target(target: str, what: str):
    import importlib

    if not isinstance(target, str) or ":" not in target:
        raise ConfigError(f"{what} must be 'package.module:ClassName'; got {target!r}")
    mod_name, _, attr = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {target!r}: cannot import module {mod_name!r} ({exc}). "
                          "Install the package that provides it or fix the path.") from None
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ConfigError(f"{what} {target!r}: module {mod_name!r} has no attribute "
                          f"{attr!r}") from None


def register_featurizer(name: str, target: str) -> None:
    """Register a featurizer class under ``name``.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"my-feats"``.
    target : str
        ``"package.module:ClassName"`` of a :class:`Featurizer` subclass; imported on use.

    Examples
    --------
    >>> register_featurizer("stats2", "rorem_data.features.featurizers:StatsFeaturizer")
    >>> "stats2" in list_featurizers()
    True
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"featurizer name must be a non-empty string; got {name!r}")
    if not isinstance(target, str) or ":" not in target:
        raise ConfigError(f"featurizer target must be 'package.module:ClassName'; got {target!r}")
    _FEATURIZERS[name] = target


def list_featurizers() -> list[str]:
    """Names of the registered featurizers, sorted.

    Examples
    --------
    >>> list_featurizers()[:2]
    ['clip', 'stats']
    """
    return sorted(_FEATURIZERS)


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
    if name not in _FEATURIZERS:
        raise ConfigError(f"Unknown featurizer {name!r}. Available: {list_featurizers()}")
    cls = _import_target(_FEATURIZERS[name], f"featurizer {name!r}")
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


# --------------------------------------------------------------------------------------------
# Input checks shared by the in-process path and the workers
# --------------------------------------------------------------------------------------------


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_pair_arrays(source, result, mask, *, item: str):
    """Validate one (source, result, mask) triple of arrays; returns them normalised.

    Returns
    -------
    source, result : ndarray, uint8, (H, W, 3), C-contiguous
    mask : ndarray, bool, (H, W)

    Raises
    ------
    ValidationError
        Naming ``item``: wrong dtype/shape, sizes that differ, or an empty mask.
    """
    def rgb(a, what):
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[2] == 4:
            a = a[..., :3]
        if a.ndim != 3 or a.shape[2] != 3:
            raise ValidationError(f"{item}: {what} must be an RGB image of shape (H, W, 3); got "
                                  f"shape {a.shape}. Convert it to RGB first.")
        if a.dtype != np.uint8:
            raise ValidationError(f"{item}: {what} must be uint8 (0..255); got {a.dtype}. "
                                  "Convert with np.clip(x, 0, 255).astype(np.uint8).")
        return np.ascontiguousarray(a)

    s = rgb(source, "source")
    r = rgb(result, "result")
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype != bool:
        from rorem_data.core.images import mask_to_binary

        m = mask_to_binary(m)
    if s.shape != r.shape:
        raise ValidationError(f"{item}: result is {r.shape[1]}x{r.shape[0]} but source is "
                              f"{s.shape[1]}x{s.shape[0]}; resize the result to the source size.")
    if m.shape != s.shape[:2]:
        raise ValidationError(f"{item}: mask is {m.shape[1]}x{m.shape[0]} but source is "
                              f"{s.shape[1]}x{s.shape[0]}; resize the mask (nearest) to the "
                              "source size.")
    if not m.any():
        raise ValidationError(f"{item}: mask is empty (no object pixels); drop the item or fix "
                              "the mask.")
    return s, r, m


def _cv2():
    try:
        import cv2
    except ImportError:
        raise DependencyError("The 'stats' featurizer needs OpenCV: pip install "
                              "'rorem-data[ml]' (opencv-python-headless).") from None
    return cv2


# --------------------------------------------------------------------------------------------
# stats: no weights
# --------------------------------------------------------------------------------------------

_STATS_NAMES = (
    "mask_area_frac",
    # colour of the fill vs the ring around the mask (result)
    "dmean_L", "dmean_a", "dmean_b", "logstd_L", "logstd_a", "logstd_b",
    "hist_bhatt_L", "hist_bhatt_ab",
    # texture / sharpness of the fill vs the ring (result)
    "log_grad_ratio", "log_lap_ratio", "log_localstd_ratio", "edge_density_diff", "log_seam_ratio",
    # colour outliers inside the mask against the ring's colour distribution
    "maha_mean", "maha_p90", "maha_frac_gt3", "maha_frac_gt6", "maha_largest_blob",
    "maha_frac_gt_ring99", "maha_blob_gt_ring99", "log_maha_p95_vs_ring",
    "src_maha_mean", "log_maha_ratio",
    # how much of the removed object is left (result vs source inside the mask)
    "change_in_mean", "residue_ratio", "residue_ncc", "residue_grad_corr",
    "closer_to_object_frac",
    # damage outside the mask (result vs source)
    "change_out_mean", "change_out_p99", "change_out_frac",
    # how distinct the object was (source): context for the other numbers
    "src_dmean_lab", "src_log_grad_ratio",
)
# A clean fill sits near 0 on these signed ratios and failures stray to either side (blur lowers
# the texture ratios, a hallucinated object raises them), so a linear head also gets |ratio|.
_STATS_ABS = ("logstd_L", "logstd_a", "logstd_b", "log_grad_ratio", "log_lap_ratio",
              "log_localstd_ratio", "edge_density_diff", "log_seam_ratio", "log_maha_ratio",
              "log_maha_p95_vs_ring")
_STATS_NAMES = _STATS_NAMES + tuple(f"abs_{k}" for k in _STATS_ABS)


def _mmean(a: np.ndarray, m: np.ndarray) -> float:
    n = int(m.sum())
    return float(a[m].mean()) if n else 0.0


def _safe_corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 0.0


def _mahalanobis(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Distance of rows of ``x`` (k, 3) from the distribution of ``ref`` (N, 3)."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    mu = ref.mean(axis=0)
    cov = np.cov(ref.T) if len(ref) > 3 else np.zeros((3, 3))
    cov = cov + np.eye(3) * 4.0  # a floor of 2 Lab units: flat rings do not blow up distances
    inv = np.linalg.inv(cov)
    d = x - mu
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv, d), 0)).astype(np.float32)


def stats_features(source: np.ndarray, result: np.ndarray, mask: np.ndarray, *,
                   size: int = 256, ring: float = 0.35) -> np.ndarray:
    """The ``stats`` feature vector of one pair (see :data:`StatsFeaturizer.feature_names`).

    Parameters
    ----------
    source, result : ndarray, uint8, (H, W, 3)
        RGB images (validated by the caller).
    mask : ndarray, bool, (H, W)
        Non-empty object mask.
    size : int
        Work at this longest side (area downscaling); 0 keeps the native size.
    ring : float
        Ring width around the mask as a fraction of ``sqrt(mask area)`` (at least 2 px).

    Returns
    -------
    ndarray, float32, shape (44,)
        Finite values; see ``StatsFeaturizer().feature_names`` for their meaning.
    """
    cv2 = _cv2()
    h, w = mask.shape
    if size and max(h, w) > size:
        sc = size / max(h, w)
        nw, nh = max(1, round(w * sc)), max(1, round(h * sc))
        source = cv2.resize(source, (nw, nh), interpolation=cv2.INTER_AREA)
        result = cv2.resize(result, (nw, nh), interpolation=cv2.INTER_AREA)
        mf = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
        mask = mf >= 0.5
        if not mask.any():
            mask = mf > 0
    area = int(mask.sum())
    rw = max(2, int(round(ring * math.sqrt(area))))
    # distance of every pixel from the mask (0 inside): the ring and the "outside" follow from it
    dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, 3)
    d_out = (np.abs(result.astype(np.int16) - source.astype(np.int16)).max(axis=2)[dist > 2.0]
             .astype(np.float32) * (1 / 255))
    # everything else only looks at the mask and its ring: crop to them (+3 px for the filters)
    region = dist <= rw + 3
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    source, result, m, dist = source[crop], result[crop], mask[crop], dist[crop]
    m8 = m.view(np.uint8)
    k3 = np.ones((3, 3), np.uint8)
    ring_m = (dist > 0) & (dist <= rw)
    if ring_m.sum() < 8:
        ring_m = ~m
    near = dist <= 2.0
    boundary = (cv2.dilate(m8, k3) > 0) & ~(cv2.erode(m8, k3) > 0)
    have_ring = bool(ring_m.any())

    sf = source.astype(np.float32) * (1 / 255)
    rf = result.astype(np.float32) * (1 / 255)
    lab_s = cv2.cvtColor(sf, cv2.COLOR_RGB2LAB)  # L 0..100, a/b about -127..127
    lab_r = cv2.cvtColor(rf, cv2.COLOR_RGB2LAB)
    L_r, L_s = lab_r[..., 0], lab_s[..., 0]

    f: dict[str, float] = {"mask_area_frac": area / mask.size}

    # colour of the fill vs ring
    in_r = lab_r[m]
    ring_r = lab_r[ring_m] if have_ring else in_r
    mu_in, mu_ring = in_r.mean(0), ring_r.mean(0)
    sd_in, sd_ring = in_r.std(0), ring_r.std(0)
    for c, ch in enumerate("Lab"):
        f[f"dmean_{ch}"] = abs(float(mu_in[c] - mu_ring[c])) / (float(sd_ring[c]) + 1.0)
        f[f"logstd_{ch}"] = math.log((float(sd_in[c]) + 1.0) / (float(sd_ring[c]) + 1.0))

    lab8 = cv2.cvtColor(result, cv2.COLOR_RGB2LAB)
    mi8, mr8 = m8, ring_m.astype(np.uint8)
    hl_in = cv2.calcHist([lab8], [0], mi8, [16], [0, 256])
    hl_ring = cv2.calcHist([lab8], [0], mr8, [16], [0, 256])
    hab_in = cv2.calcHist([lab8], [1, 2], mi8, [12, 12], [0, 256, 0, 256])
    hab_ring = cv2.calcHist([lab8], [1, 2], mr8, [12, 12], [0, 256, 0, 256])
    for a in (hl_in, hl_ring, hab_in, hab_ring):
        s = a.sum()
        if s > 0:
            a /= s
    f["hist_bhatt_L"] = float(cv2.compareHist(hl_in, hl_ring, cv2.HISTCMP_BHATTACHARYYA))
    f["hist_bhatt_ab"] = float(cv2.compareHist(hab_in, hab_ring, cv2.HISTCMP_BHATTACHARYYA))

    # texture / sharpness
    def grad_mag(L):
        gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3)
        return cv2.magnitude(gx, gy)

    g_r, g_s = grad_mag(L_r), grad_mag(L_s)
    lap_r = np.abs(cv2.Laplacian(L_r, cv2.CV_32F, ksize=3))
    mean5 = cv2.blur(L_r, (5, 5))
    lstd = np.sqrt(np.maximum(cv2.blur(L_r * L_r, (5, 5)) - mean5 * mean5, 0))
    edges = cv2.Canny(cv2.cvtColor(result, cv2.COLOR_RGB2GRAY), 50, 150) > 0
    ref = ring_m if have_ring else m

    def log_ratio(a, m_a, m_b):
        return math.log((_mmean(a, m_a) + 0.5) / (_mmean(a, m_b) + 0.5))

    f["log_grad_ratio"] = log_ratio(g_r, m, ref)
    f["log_lap_ratio"] = log_ratio(lap_r, m, ref)
    f["log_localstd_ratio"] = log_ratio(lstd, m, ref)
    f["edge_density_diff"] = _mmean(edges, m) - _mmean(edges, ref)
    f["log_seam_ratio"] = log_ratio(g_r, boundary, ref)

    # colour outliers in the fill against the ring distribution
    d_in = _mahalanobis(in_r.astype(np.float64), ring_r.astype(np.float64))
    d_src = _mahalanobis(lab_s[m].astype(np.float64), ring_r.astype(np.float64))
    f["maha_mean"] = float(d_in.mean())
    f["maha_p90"] = float(np.percentile(d_in, 90))
    f["maha_frac_gt3"] = float((d_in > 3).mean())
    f["maha_frac_gt6"] = float((d_in > 6).mean())
    out_map = np.zeros(m.shape, np.uint8)
    out_map[m] = d_in > 4
    n_lab, _, st, _ = cv2.connectedComponentsWithStats(out_map, connectivity=8)
    f["maha_largest_blob"] = (float(st[1:, cv2.CC_STAT_AREA].max()) / area) if n_lab > 1 else 0.0
    # the same, calibrated on how far the ring's own pixels stray from the ring distribution
    # (textured surroundings have wide distributions; a foreign blob still stands out)
    d_ring = _mahalanobis(ring_r.astype(np.float64), ring_r.astype(np.float64))
    thr = max(3.0, float(np.percentile(d_ring, 99)))
    out_map[:] = 0
    out_map[m] = d_in > thr
    f["maha_frac_gt_ring99"] = float((d_in > thr).mean())
    n_lab, _, st, _ = cv2.connectedComponentsWithStats(out_map, connectivity=8)
    f["maha_blob_gt_ring99"] = (float(st[1:, cv2.CC_STAT_AREA].max()) / area) if n_lab > 1 else 0.0
    f["log_maha_p95_vs_ring"] = math.log((float(np.percentile(d_in, 95)) + 1.0)
                                         / (float(np.percentile(d_ring, 95)) + 1.0))
    f["src_maha_mean"] = float(d_src.mean())
    f["log_maha_ratio"] = math.log((f["maha_mean"] + 1.0) / (f["src_maha_mean"] + 1.0))

    # residue: how close the fill stays to the removed object
    in_s = lab_s[m]
    diff_in = np.linalg.norm(in_r - in_s, axis=1)
    f["change_in_mean"] = float(diff_in.mean()) / 100.0
    contrast = float(np.linalg.norm(in_s - mu_ring, axis=1).mean())
    f["residue_ratio"] = float(diff_in.mean()) / (contrast + 1.0)
    f["residue_ncc"] = _safe_corr((in_r - mu_ring).ravel(), (in_s - mu_ring).ravel())
    f["residue_grad_corr"] = _safe_corr(g_r[near], g_s[near])
    to_obj = diff_in
    to_bg = np.linalg.norm(in_r - mu_ring, axis=1)
    f["closer_to_object_frac"] = float((to_obj < to_bg).mean())

    # damage outside the mask (computed on the whole image above)
    if d_out.size:
        f["change_out_mean"] = float(d_out.mean())
        f["change_out_p99"] = float(np.percentile(d_out, 99))
        f["change_out_frac"] = float((d_out > 0.03).mean())
    else:
        f["change_out_mean"] = f["change_out_p99"] = f["change_out_frac"] = 0.0

    # the object itself (source): how distinct it was from its surroundings
    ring_s = lab_s[ring_m] if have_ring else in_s
    f["src_dmean_lab"] = float(np.linalg.norm(in_s.mean(0) - ring_s.mean(0))) / 100.0
    f["src_log_grad_ratio"] = log_ratio(g_s, m, ref)

    for k in _STATS_ABS:
        f[f"abs_{k}"] = abs(f[k])
    vec = np.array([f[k] for k in _STATS_NAMES], dtype=np.float32)
    return np.nan_to_num(vec, nan=0.0, posinf=1e6, neginf=-1e6)


class StatsFeaturizer(Featurizer):
    """``stats``: hand-made statistics that separate a clean fill from typical failures.

    No weights, no torch. Everything is computed per item in the DataLoader workers, so the
    throughput is that of image decoding.

    Config
    ------
    size : int, default 256
        Longest side the statistics are computed at (area downscaling); 0 = native size.
    ring : float, default 0.35
        Width of the ring around the mask, as a fraction of ``sqrt(mask area)``.

    What the features capture (44 columns, see ``feature_names``):

    - fill vs ring colour and histograms (a fill that does not match its surroundings);
    - gradient, Laplacian, local-contrast and edge ratios inside vs ring (``blur`` gives low
      high-frequency energy; seams show at the mask boundary);
    - Mahalanobis distance of fill pixels from the ring's Lab distribution, the largest
      connected outlier blob (hallucinated objects), and the same for the source (reference);
    - change between source and result inside the mask relative to the object's contrast,
      correlation of the fill with the removed object and of their gradients (residue);
    - change outside the mask (the remover damaged pixels it should have kept);
    - the absolute value of the signed ratios (a clean fill sits near 0, failures stray to
      either side), so a linear head can use them.

    Examples
    --------
    >>> f = StatsFeaturizer(size=128)
    >>> f.dim == len(f.feature_names)
    True
    """

    name = "stats"
    defaults = {"size": 256, "ring": 0.35}

    def _validate_config(self, config):
        size = config["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or 0 < size < 16:
            raise ConfigError(f"stats featurizer: 'size' must be 0 (native) or an integer >= 16; "
                              f"got {size!r}")
        ring = config["ring"]
        if isinstance(ring, bool) or not isinstance(ring, (int, float)) or not 0 < ring <= 5:
            raise ConfigError(f"stats featurizer: 'ring' must be a number in (0, 5]; got {ring!r}")
        config["ring"] = float(ring)
        return config

    @property
    def dim(self) -> int:
        return len(_STATS_NAMES)

    @property
    def feature_names(self) -> list[str]:
        return list(_STATS_NAMES)

    def prepare(self, source, result, mask):
        return stats_features(source, result, mask, size=self.config["size"],
                              ring=self.config["ring"])


# --------------------------------------------------------------------------------------------
# clip: open_clip image embeddings
# --------------------------------------------------------------------------------------------

_CLIP_VIEWS = ("source", "result", "source_crop", "result_crop", "context")


def _import_open_clip():
    try:
        import open_clip
        import torch  # noqa: F401
    except ImportError:
        raise DependencyError("The 'clip' featurizer needs open_clip and torch: pip install "
                              "'rorem-data[torch]'.") from None
    return open_clip


def _hf_cached_file(repo_id: str, filename: str) -> str | None:
    """Path of ``repo_id/filename`` in the local Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return hf_hub_download(repo_id, filename, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def _area_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area (box) downscaling to ``size`` = (width, height).

    Halves exactly with OpenCV's fast 2x area path while the image is at least twice the
    target (dropping a last odd row/column), then finishes with one area resize - several times
    faster than a single large-factor area resize, same result up to rounding.
    """
    cv2 = _cv2()
    tw, th = size
    while img.shape[0] >= 2 * th and img.shape[1] >= 2 * tw:
        h2, w2 = img.shape[0] // 2, img.shape[1] // 2
        img = cv2.resize(img[:2 * h2, :2 * w2], (w2, h2), interpolation=cv2.INTER_AREA)
    if (img.shape[1], img.shape[0]) != (tw, th):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    return img


def mask_crop_box(mask: np.ndarray, margin: float, min_size: int) -> tuple[int, int, int, int]:
    """Square box ``(x0, y0, x1, y1)`` around the mask's bounding box.

    The side is ``max(bbox_w, bbox_h) * (1 + 2 * margin)`` (at least ``min_size``), centred on
    the bounding box and shifted (then clipped) to stay inside the image.
    """
    cv2 = _cv2()
    bx, by, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    x0, y0, x1, y1 = bx, by, bx + bw, by + bh
    h, w = mask.shape
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    side = min(max(side, min_size), max(h, w))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bx0 = int(round(cx - side / 2))
    by0 = int(round(cy - side / 2))
    bx0 = min(max(bx0, 0), max(w - side, 0))
    by0 = min(max(by0, 0), max(h - side, 0))
    return bx0, by0, min(bx0 + side, w), min(by0 + side, h)


class ClipFeaturizer(Featurizer):
    """``clip``: open_clip image embeddings of the pair, around the mask and in context.

    Five views per item go through the image encoder (L2-normalised embeddings, dimension
    ``D``): the full source ``s`` and result ``r``, square crops of both around the mask
    ``s_c``, ``r_c`` (bounding box plus ``crop_margin`` on each side) and a *context* view
    ``x``: the result crop with the masked pixels replaced by the preprocessing mean colour, so
    it shows only the surroundings. The feature vector (``4 * D + 4`` columns) is::

        [r_c,  r_c - s_c,  r_c * x,  r - s,
         cos(r_c, s_c), cos(r_c, x), cos(s_c, x), cos(r, s)]

    ``r_c - s_c`` says what changed in the mask, ``r_c * x`` and ``cos(r_c, x)`` whether the fill
    matches its surroundings, and ``cos(r, s)`` how much the whole image changed.

    Config
    ------
    model : str, default "ViT-B-32"
        An open_clip architecture name (``open_clip.list_models()``, or one added with
        ``open_clip.add_model_config``), ``"local-dir:<folder>"`` (a folder with
        ``open_clip_config.json`` and ``open_clip_model.safetensors``) or ``"hf-hub:org/repo"``
        (must already be in the local Hugging Face cache: nothing is downloaded).
    pretrained : str or None, default None
        For an architecture name: ``None`` (random weights: tests only), a weights file path,
        or an open_clip tag (e.g. ``"openai"``) whose file is already in the local cache.
    crop_margin : float, default 0.5
        Margin around the mask's bounding box, as a fraction of its longer side.
    min_crop : int, default 32
        Smallest crop side in pixels.
    reducing_gap : float or None, default 2.0
        Before open_clip's transform, views whose short side is at least ``2 * reducing_gap``
        times the model input are first shrunk to ``reducing_gap`` times the input with
        OpenCV's area interpolation (the idea of PIL's ``Image.resize(reducing_gap=...)``);
        open_clip's own bicubic resize, crop and normalisation then run on the smaller image.
        ``None`` runs open_clip's transform on the full image. Saves most of the resize cost
        with small models; the difference is a fraction of a grey level.
    resize : {"open_clip", "area"}, default "open_clip"
        ``"open_clip"``: open_clip's own eval transform (bicubic resize, centre crop) on each
        view. ``"area"``: OpenCV area resize of the short side to the model input and the same
        centre crop, then open_clip's normalisation - cheaper per view, for small models where
        decoding dominates (needs a "shortest"-side open_clip transform).

    Runtime options (not part of the key)
    -------------------------------------
    device : str, default "cpu"

    Raises
    ------
    ConfigError
        On first use, when the weights cannot be found locally (the message says how to get
        them); hub ids and tags are never downloaded.

    Examples
    --------
    >>> f = ClipFeaturizer(model="ViT-B-32", pretrained=None)
    >>> f.dim
    2052
    """

    name = "clip"
    defaults = {"model": "ViT-B-32", "pretrained": None, "crop_margin": 0.5, "min_crop": 32,
                "reducing_gap": 2.0, "resize": "open_clip"}
    runtime_options = {"device": "cpu"}

    def _validate_config(self, config):
        model = config["model"]
        if not isinstance(model, str) or not model:
            raise ConfigError(f"clip featurizer: 'model' must be an open_clip model name or "
                              f"'local-dir:<folder>'; got {model!r}")
        if model.startswith("local-dir:"):
            config["model"] = "local-dir:" + os.path.abspath(os.path.expanduser(model[10:]))
        pre = config["pretrained"]
        if pre is not None and not isinstance(pre, str):
            raise ConfigError(f"clip featurizer: 'pretrained' must be None, a tag or a file path; "
                              f"got {pre!r}")
        if isinstance(pre, str) and (os.sep in pre or os.path.isfile(pre)):
            config["pretrained"] = os.path.abspath(os.path.expanduser(pre))
        cm = config["crop_margin"]
        if isinstance(cm, bool) or not isinstance(cm, (int, float)) or not 0 <= cm <= 10:
            raise ConfigError(f"clip featurizer: 'crop_margin' must be a number in [0, 10]; "
                              f"got {cm!r}")
        config["crop_margin"] = float(cm)
        mc = config["min_crop"]
        if isinstance(mc, bool) or not isinstance(mc, int) or mc < 1:
            raise ConfigError(f"clip featurizer: 'min_crop' must be a positive integer; got {mc!r}")
        rg = config["reducing_gap"]
        if rg is not None and (isinstance(rg, bool) or not isinstance(rg, (int, float)) or rg < 1):
            raise ConfigError(f"clip featurizer: 'reducing_gap' must be None or a number >= 1; "
                              f"got {rg!r}")
        if rg is not None:
            config["reducing_gap"] = float(rg)
        if config["resize"] not in ("open_clip", "area"):
            raise ConfigError(f"clip featurizer: 'resize' must be 'open_clip' or 'area'; got "
                              f"{config['resize']!r}")
        return config

    # -- weights ------------------------------------------------------------------------------
    def _model_cfg(self) -> dict:
        """The architecture config (no weights are loaded)."""
        model = self.config["model"]
        if model.startswith("local-dir:"):
            folder = model[10:]
            path = os.path.join(folder, "open_clip_config.json")
            if not os.path.isfile(path):
                raise ConfigError(
                    f"clip featurizer: {folder!r} is not an open_clip model folder (no "
                    "open_clip_config.json). Save one with open_clip_config.json (containing "
                    "'model_cfg') and open_clip_model.safetensors.")
            with open(path, encoding="utf-8") as fh:
                cfg = json.load(fh)
            if "model_cfg" not in cfg:
                raise ConfigError(f"clip featurizer: {path} has no 'model_cfg' entry")
            return cfg["model_cfg"]
        if model.startswith("hf-hub:"):
            path = _hf_cached_file(model[7:], "open_clip_config.json")
            if path is None:
                raise ConfigError(
                    f"clip featurizer: {model!r} is not in the local Hugging Face cache and "
                    "rorem-data never downloads weights. On a machine with network run "
                    f"`hf download {model[7:]}` (or copy the folder here and use "
                    "'local-dir:<folder>').")
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)["model_cfg"]
        open_clip = _import_open_clip()
        cfg = open_clip.get_model_config(model)
        if cfg is None:
            raise ConfigError(f"clip featurizer: unknown open_clip model {model!r}. Available: "
                              f"{open_clip.list_models()} (add your own with "
                              "open_clip.add_model_config or use 'local-dir:<folder>')")
        return cfg

    @property
    def dim(self) -> int:
        return 4 * int(self._model_cfg()["embed_dim"]) + 4

    @property
    def feature_names(self) -> list[str]:
        d = (self.dim - 4) // 4
        names = []
        for part in ("rc", "rc_minus_sc", "rc_times_ctx", "r_minus_s"):
            names += [f"{part}_{i}" for i in range(d)]
        return names + ["cos_rc_sc", "cos_rc_ctx", "cos_sc_ctx", "cos_r_s"]

    @property
    def light(self) -> bool:
        """Tiny image towers (under 10M parameters) are light; real CLIP models are not."""
        if getattr(self, "_model", None) is None:
            return False
        n = sum(p.numel() for p in self._model.visual.parameters())
        return n < 10_000_000

    def _resolve_weights(self) -> tuple[str, str | None, dict]:
        """(model_name, pretrained_file_or_None, force_preprocess_cfg) for open_clip."""
        open_clip = _import_open_clip()
        model, pre = self.config["model"], self.config["pretrained"]
        if model.startswith("local-dir:"):
            self._model_cfg()  # clear error if the folder is not a model folder
            return model, None, {}
        if model.startswith("hf-hub:"):
            cfg_path = _hf_cached_file(model[7:], "open_clip_config.json")
            if cfg_path is None:
                self._model_cfg()  # raises the clear error
            return "local-dir:" + os.path.dirname(cfg_path), None, {}
        self._model_cfg()
        if pre is None:
            return model, None, {}
        if os.path.isfile(pre):
            return model, pre, {}
        tag_cfg = open_clip.get_pretrained_cfg(model, pre)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(model)
            raise ConfigError(f"clip featurizer: pretrained={pre!r} is neither a file nor a known "
                              f"tag of {model!r}. Known tags: {tags}; or pass a weights file path.")
        hub = tag_cfg.get("hf_hub", "")
        found = None
        if hub:
            repo, fname = os.path.split(hub)
            fname = fname or "open_clip_pytorch_model.bin"
            stem = fname.rsplit(".", 1)[0]
            for cand in (stem + ".safetensors", fname):
                found = _hf_cached_file(repo, cand)
                if found:
                    break
        if not found:
            where = f"hf-hub:{hub}" if hub else tag_cfg.get("url", "?")
            raise ConfigError(
                f"clip featurizer: the weights of {model!r} / {pre!r} ({where}) are not on this "
                "machine and rorem-data never downloads weights. Download the file on a machine "
                "with network (e.g. open_clip.create_model_and_transforms there, or `hf download`) "
                "and pass its path as pretrained=<file>.")
        keys = ("mean", "std", "interpolation", "resize_mode")
        return model, found, {k: tag_cfg[k] for k in keys if tag_cfg.get(k) is not None}

    def setup(self) -> None:
        if getattr(self, "_model", None) is not None:
            return
        open_clip = _import_open_clip()
        import torch

        name, pre, force_pp = self._resolve_weights()
        kwargs = {"force_preprocess_cfg": force_pp} if force_pp else {}
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pre, device=self.runtime["device"], **kwargs)
        except (RuntimeError, ValueError, FileNotFoundError, OSError) as exc:
            raise ConfigError(f"clip featurizer: cannot build {self.config['model']!r} "
                              f"(pretrained={self.config['pretrained']!r}): {exc}") from None
        model.eval()
        self._model = model
        self._preprocess = preprocess
        self._torch = torch
        size = model.visual.image_size
        self._input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        mean = getattr(model.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        self._fill = tuple(int(round(255 * v)) for v in mean)
        self._split_preprocess()

    def _split_preprocess(self) -> None:
        """Split open_clip's eval transform into its image stage (resize, crop; run per view in
        the workers) and its ``ToTensor`` + ``Normalize`` tail (run batched in ``embed``, the
        same arithmetic). Falls back to the whole transform per view if the shape differs."""
        from torchvision.transforms import Compose, Normalize, ToTensor

        self._image_stage, self._norm = None, None
        steps = list(getattr(self._preprocess, "transforms", []))
        if len(steps) >= 2 and isinstance(steps[-2], ToTensor) and isinstance(steps[-1], Normalize):
            self._image_stage = Compose(steps[:-2])
            self._norm = (tuple(float(v) for v in steps[-1].mean),
                          tuple(float(v) for v in steps[-1].std))
        if self.config["resize"] == "area":
            mode = getattr(self._model.visual, "preprocess_cfg", {}).get("resize_mode", "shortest")
            if self._norm is None or mode != "shortest":
                raise ConfigError(
                    "clip featurizer: resize='area' needs an open_clip transform that resizes the "
                    f"shortest side, centre-crops and normalises (this model: {self._preprocess});"
                    " use resize='open_clip'")

    def __getstate__(self):  # workers get the preprocessing, never the model
        state = dict(self.__dict__)
        state.pop("_model", None)
        state.pop("_torch", None)
        return state

    # -- per item and per batch -----------------------------------------------------------------
    def _shrink(self, view: np.ndarray) -> np.ndarray:
        """Area-shrink a view before its transform.

        ``resize="area"``: the short side to the model input (cubic when enlarging).
        ``resize="open_clip"``: to ``reducing_gap`` x the input when at least twice that large.
        """
        cv2 = _cv2()
        h, w = view.shape[:2]
        if self.config["resize"] == "area":
            S = self._input_size
            scale = S / min(h, w)
            size = (max(S, round(w * scale)), max(S, round(h * scale)))
            if size == (w, h):
                return view
            if scale >= 1:
                return cv2.resize(view, size, interpolation=cv2.INTER_CUBIC)
            return _area_resize(view, size)
        gap = self.config["reducing_gap"]
        if gap is None:
            return view
        scale = gap * self._input_size / min(h, w)
        if scale > 0.5:
            return view
        return _area_resize(view, (max(1, round(w * scale)), max(1, round(h * scale))))

    def _transform(self, view: np.ndarray):
        """open_clip's eval transform on one RGB uint8 view (its image stage only when the
        tensor tail runs batched in :meth:`embed`; only the centre crop with resize="area")."""
        from PIL import Image

        if self.config["resize"] == "area":  # already resized by _shrink: centre crop
            S = self._input_size
            h, w = view.shape[:2]
            top, left = int(round((h - S) / 2.0)), int(round((w - S) / 2.0))
            return np.ascontiguousarray(view[top:top + S, left:left + S])
        if self._image_stage is not None:  # uint8 (S, S, 3); ToTensor + Normalize in embed()
            return np.asarray(self._image_stage(Image.fromarray(view)), dtype=np.uint8)
        return self._preprocess(Image.fromarray(view))

    def prepare(self, source, result, mask):
        """Five views (source, result, their crops around the mask, context) after open_clip's
        transform: uint8 (5, S, S, 3) when its tensor tail runs in :meth:`embed`, else float32
        (5, 3, S, S)."""
        import torch

        if getattr(self, "_preprocess", None) is None:
            self.setup()
        x0, y0, x1, y1 = mask_crop_box(mask, self.config["crop_margin"], self.config["min_crop"])
        s_c = self._shrink(source[y0:y1, x0:x1])
        r_c = self._shrink(result[y0:y1, x0:x1])
        m_c = mask[y0:y1, x0:x1]
        if m_c.shape != r_c.shape[:2]:
            m_c = self._shrink(m_c.view(np.uint8) * np.uint8(255)) >= 128
        ctx = r_c.copy()
        np.copyto(ctx, np.asarray(self._fill, np.uint8), where=m_c[..., None])
        views = [self._shrink(source), self._shrink(result), s_c, r_c, ctx]
        views = [self._transform(v) for v in views]
        if self._image_stage is not None:
            return torch.from_numpy(np.stack(views))
        return torch.stack(views)

    def collate(self, prepared):
        import torch

        return torch.stack(prepared)

    def _to_model_input(self, batch):
        """(n, 5, ...) prepared batch -> float32 (n * 5, 3, S, S) normalised."""
        torch = self._torch
        n, v = batch.shape[:2]
        if batch.dtype == torch.uint8:  # open_clip's ToTensor + Normalize, batched
            x = batch.reshape(n * v, *batch.shape[2:]).to(self.runtime["device"])
            x = x.permute(0, 3, 1, 2).contiguous().float().div_(255)
            mean = torch.tensor(self._norm[0], device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self._norm[1], device=x.device).view(1, -1, 1, 1)
            return x.sub_(mean).div_(std)
        return batch.reshape(n * v, *batch.shape[2:]).to(self.runtime["device"])

    def embed(self, batch) -> np.ndarray:
        if getattr(self, "_model", None) is None:
            self.setup()
        torch = self._torch
        n, v = batch.shape[:2]
        with torch.inference_mode():
            x = self._to_model_input(batch)
            e = self._model.encode_image(x, normalize=True).float().reshape(n, v, -1).cpu()
        e = e.numpy()
        s, r, s_c, r_c, ctx = (e[:, i] for i in range(5))

        def cos(a, b):
            return (a * b).sum(axis=1, keepdims=True)

        out = np.concatenate([r_c, r_c - s_c, r_c * ctx, r - s, cos(r_c, s_c), cos(r_c, ctx),
                              cos(s_c, ctx), cos(r, s)], axis=1)
        return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# The DataLoader pipeline over files
# --------------------------------------------------------------------------------------------


def _read_rgb_pil(path: str) -> np.ndarray:
    """Decode an image file to RGB uint8 (H, W, 3) with PIL; raises ImageProblem."""
    from PIL import Image

    from rorem_data.core.images import ImageProblem

    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                im = im.convert("RGB")
            else:
                im.load()
            return np.asarray(im)
    except FileNotFoundError:
        raise ImageProblem("file does not exist") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"not a readable image ({exc})") from None


_CV2_READ = None


def _read_rgb(path: str) -> np.ndarray:
    """Decode an image file to RGB uint8 (H, W, 3); raises ImageProblem.

    Uses OpenCV's decoder when available (about 10% faster than PIL on PNG; EXIF orientation
    ignored, as PIL does), and PIL for everything OpenCV cannot read - which also gives the
    error message for missing or broken files.
    """
    global _CV2_READ
    if _CV2_READ is None:
        try:
            import cv2

            _CV2_READ = (cv2, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
        except (ImportError, AttributeError):
            _CV2_READ = False
    if _CV2_READ and os.path.isfile(path):
        cv2, flags = _CV2_READ
        arr = cv2.imread(path, flags)
        if arr is not None and arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
            return arr
    return _read_rgb_pil(path)


class _PairFiles:
    """Map-style dataset: item i -> ("ok", i, prepared) or ("error", i, message)."""

    def __init__(self, featurizer: Featurizer, items: Sequence[tuple[str, str, str]],
                 positions: Sequence[int]):
        self.featurizer = featurizer
        self.items = items
        self.positions = positions

    def __len__(self):
        return len(self.positions)

    def __getitem__(self, k):
        from rorem_data.core.images import ImageProblem, read_mask

        i = self.positions[k]
        src_p, res_p, mask_p = self.items[i]
        what = None
        try:
            what = src_p
            s = _read_rgb(src_p)
            what = res_p
            r = _read_rgb(res_p)
            what = mask_p
            m = read_mask(mask_p)
            what = None
            s, r, m = check_pair_arrays(s, r, m, item=f"item {i} ({src_p})")
            return ("ok", i, self.featurizer.prepare(s, r, m))
        except ImageProblem as exc:
            return ("error", i, f"item {i}: {what}: {exc}")
        except ValidationError as exc:
            return ("error", i, str(exc))


class _Collate:
    def __init__(self, featurizer: Featurizer):
        self.featurizer = featurizer

    def __call__(self, rows):
        errors = [(i, msg) for kind, i, msg in rows if kind == "error"]
        if errors:
            return ("error", errors)
        idx = [i for _, i, _ in rows]
        return ("ok", idx, self.featurizer.collate([p for _, _, p in rows]))


def _worker_init(_worker_id: int) -> None:
    try:
        import cv2

        cv2.setNumThreads(0)
    except ImportError:
        pass


def _check_items(items) -> list[tuple[str, str, str]]:
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, (tuple, list)) or len(it) != 3:
            raise ValidationError(f"item {i} must be (source_path, result_path, mask_path); got "
                                  f"{it!r}")
        out.append(tuple(os.fspath(p) for p in it))
    return out


def _iter_batches(featurizer, items, positions, *, batch_size, num_workers, progress_bar):
    """Yield (positions, features) per batch in order; raises ValidationError on bad items."""
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        raise DependencyError("featurize_paths needs torch (its DataLoader): pip install "
                              "'rorem-data[torch]'.") from None

    loader = DataLoader(
        _PairFiles(featurizer, items, positions), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=_Collate(featurizer),
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False, prefetch_factor=4 if num_workers else None)
    # OpenCV's thread pool does not survive fork(): a worker forked from a process whose pool is
    # running hangs on its first cv2 call. Stop the pool in this process while workers run.
    cv2 = sys.modules.get("cv2") if num_workers else None
    cv2_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(0)
    try:
        for batch in loader:
            if batch[0] == "error":
                raise ValidationError(
                    f"{len(batch[1])} item(s) could not be featurized; fix or drop them and "
                    "rerun (finished chunks are kept in the cache)",
                    problems=[msg for _, msg in batch[1]])
            _, idx, payload = batch
            feats = featurizer.embed(payload)
            progress_bar.update(len(idx))
            yield idx, feats
    finally:
        if cv2 is not None:
            cv2.setNumThreads(cv2_threads)


def featurize_paths(featurizer: Featurizer | str, items: Sequence[tuple[str, str, str]], *,
                    ids: Sequence[str] | None = None, cache=None, batch_size: int = 32,
                    num_workers: int = 2, progress: bool = True,
                    chunk_size: int | None = None,
                    num_threads: int | None = None) -> FeatureMatrix:
    """Features of (source, result, mask) image files, batched through a torch DataLoader.

    Worker processes decode the files (masks with :func:`rorem_data.core.images.read_mask`), check
    them and run the featurizer's per-item preprocessing; the main process runs the model on
    each batch. With ``cache``, only items whose id is not cached yet are computed, and every
    ``chunk_size`` rows are written to the cache as soon as they are done, so an interrupted
    run keeps its finished chunks and a rerun computes only what is missing.

    Parameters
    ----------
    featurizer : Featurizer or str
        A featurizer, or a registry name (default config).
    items : sequence of (source_path, result_path, mask_path)
        One triple of file paths per candidate.
    ids : sequence of str, optional
        One sample id per item; required with ``cache``.
    cache : FeatureCache or str, optional
        A :class:`rorem_data.features.cache.FeatureCache` for this featurizer, or a cache root
        folder (the featurizer's sub-folder is created there).
    batch_size : int
        Items per model call.
    num_workers : int
        Decoding processes (0 = decode in this process).
    progress : bool
        Show a progress bar (``ROREM_PROGRESS=0`` silences it).
    chunk_size : int, optional
        Rows per cache chunk; default ``8 * batch_size``.
    num_threads : int, optional
        torch threads of this process while the workers run. Default: 1 when the featurizer's
        model is light (``stats``; tiny CLIP models) and there are workers - the work is
        decoding, and torch's threads would only fight the workers for the cores - otherwise
        torch's current setting. Restored afterwards.

    Returns
    -------
    FeatureMatrix, float32, shape (n_items, d)
        Rows in item order, tagged with ``featurizer.key``.

    Raises
    ------
    ValidationError
        Missing/unreadable files, size mismatches or empty masks (``problems`` lists every bad
        item of the failing batch); chunks finished before are kept.
    ConfigError
        Bad parameters, ids that do not match items, or a cache made by another featurizer.

    Examples
    --------
    >>> items = [("s.png", "r.png", "m.png")]
    >>> X = featurize_paths("stats", items, progress=False)  # doctest: +SKIP
    >>> X.shape                                               # doctest: +SKIP
    (1, 44)
    """
    from rorem_data.core.progress import progress as progress_factory

    if isinstance(featurizer, str):
        featurizer = get_featurizer(featurizer)
    if not isinstance(featurizer, Featurizer):
        raise ConfigError(f"featurizer must be a Featurizer or a registry name; got "
                          f"{type(featurizer).__name__}")
    items = _check_items(items)
    bs = _positive_int(batch_size, "batch_size")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be an integer >= 0; got {num_workers!r}")
    chunk = bs * 8 if chunk_size is None else _positive_int(chunk_size, "chunk_size")
    n = len(items)

    if cache is not None:
        from rorem_data.features.cache import FeatureCache

        if ids is None:
            raise ConfigError("featurize_paths: ids are required with cache= (one sample id per "
                              "item)")
        ids = [str(x) for x in ids]
        if len(ids) != n:
            raise ConfigError(f"featurize_paths: got {len(ids)} ids for {n} items; pass one id "
                              "per item")
        if len(set(ids)) != n:
            seen, dups = set(), []
            for i in ids:
                if i in seen:
                    dups.append(i)
                seen.add(i)
            raise ConfigError(f"featurize_paths: ids must be unique; repeated: {dups[:10]}")
        if isinstance(cache, (str, os.PathLike)):
            cache = FeatureCache(os.fspath(cache), featurizer.key, featurizer.config)
        if cache.featurizer_key != featurizer.key:
            raise ConfigError(f"featurize_paths: the cache holds features of "
                              f"{cache.featurizer_key!r} but the featurizer is {featurizer.key!r};"
                              " open the cache with this featurizer's key and config")
        todo = list(np.flatnonzero(~cache.has_ids(ids)))
    else:
        todo = list(range(n))

    if todo:
        featurizer.setup()  # load weights only when something is to be computed
    out = None if cache is not None else np.zeros((n, featurizer.dim), np.float32)
    if num_threads is None and num_workers and todo and featurizer.light:
        num_threads = 1
    torch_threads = None
    if num_threads is not None and todo:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(_positive_int(num_threads, "num_threads"))
    bar = progress_factory(total=len(todo), desc=f"featurize {featurizer.key}", unit="pair",
                           disable=None if progress else True)
    pend_idx: list[int] = []
    pend_feat: list[np.ndarray] = []

    def flush():
        if cache is not None and pend_idx:
            cache.write_chunk([ids[i] for i in pend_idx], np.concatenate(pend_feat))
            pend_idx.clear()
            pend_feat.clear()

    try:
        if todo:
            for idx, feats in _iter_batches(featurizer, items, todo, batch_size=bs,
                                            num_workers=num_workers, progress_bar=bar):
                if cache is None:
                    out[idx] = feats
                    continue
                pend_idx.extend(idx)
                pend_feat.append(feats)
                if len(pend_idx) >= chunk:
                    flush()
        flush()
    except BaseException:
        flush()  # keep every finished row, then let the error (or Ctrl-C) through
        raise
    finally:
        bar.close()
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
    if cache is not None:
        out = cache.read(ids)
    return FeatureMatrix(out, featurizer.key)
