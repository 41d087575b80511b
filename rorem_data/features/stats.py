"""The ``stats`` featurizer: weight-free statistics that separate a clean fill from failures.

Colour, texture, gradient and edge statistics inside the mask against a ring around it, the
change between source and result inside and outside the mask, how much of the removed object
is left (residue), high-frequency energy (blur) and colour outliers against the ring's
distribution (hallucinated objects), and how hard the hole is to fill (the surroundings'
texture, the hole's depth): 51 columns, see :data:`STATS_NAMES`.

Pure numpy + OpenCV (imported on first use, through :func:`rorem_data.core.deps.require`).
"""

from __future__ import annotations

import math

import numpy as np

from rorem_data.core.checks import bad, fraction, is_int
from rorem_data.core.deps import require
from rorem_data.features.base import Featurizer

__all__ = ["STATS_NAMES", "StatsFeaturizer", "stats_features"]


def _cv2():
    return require("cv2", purpose="the 'stats' featurizer")


_SIGNAL_NAMES = (
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
# How hard the hole is to fill, whatever fills it (source and mask only): the texture of the
# surroundings a fill must continue, and how far the hole's pixels lie from them. A clean fill
# of a deep hole in busy texture is rare, so these rank the other numbers' evidence
# (``docs/label-efficiency.md``: cross-validated AUC of the default head +0.03 to +0.04).
_DIFFICULTY_NAMES = ("ring_log_grad", "ring_log_lap", "ring_log_std_L", "ring_log_std_ab",
                     "hole_log_depth_mean", "hole_log_depth_max", "hole_log_area")
# A clean fill sits near 0 on these signed ratios and failures stray to either side (blur lowers
# the texture ratios, a hallucinated object raises them), so a linear head also gets |ratio|.
_STATS_ABS = ("logstd_L", "logstd_a", "logstd_b", "log_grad_ratio", "log_lap_ratio",
              "log_localstd_ratio", "edge_density_diff", "log_seam_ratio", "log_maha_ratio",
              "log_maha_p95_vs_ring")
#: The 44 column names of the ``stats`` features of earlier releases (``difficulty=False``).
STATS_NAMES_V1 = _SIGNAL_NAMES + tuple(f"abs_{k}" for k in _STATS_ABS)
#: The 51 column names of the ``stats`` features, in order.
STATS_NAMES = STATS_NAMES_V1 + _DIFFICULTY_NAMES


# Reductions run in float64: numpy's float32 sums take SIMD paths that depend on where an array
# happens to sit in memory, so the same item could get features differing in the last bit from
# one call to the next; in float64 those differences vanish when the feature is stored as float32.


def _mmean(a: np.ndarray, m: np.ndarray) -> float:
    n = int(m.sum())
    return float(a[m].mean(dtype=np.float64)) if n else 0.0


def _safe_corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3:
        return 0.0
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 0.0


def _mahalanobis(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Distance of rows of ``x`` (k, 3) from the distribution of ``ref`` (N, 3)."""
    if len(x) == 0:
        return np.zeros(0, np.float64)
    mu = ref.mean(axis=0)
    cov = np.cov(ref.T) if len(ref) > 3 else np.zeros((3, 3))
    cov = cov + np.eye(3) * 4.0  # a floor of 2 Lab units: flat rings do not blow up distances
    inv = np.linalg.inv(cov)
    d = x - mu
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv, d), 0))


def stats_features(source: np.ndarray, result: np.ndarray, mask: np.ndarray, *,
                   size: int = 256, ring: float = 0.35, difficulty: bool = True) -> np.ndarray:
    """The ``stats`` feature vector of one pair (see :data:`STATS_NAMES`).

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
    difficulty : bool
        Append the 7 columns of how hard the hole is to fill (``ring_*``, ``hole_*``); False
        gives the 44 columns of earlier releases.

    Returns
    -------
    ndarray, float32, shape (51,) (44 with ``difficulty=False``)
        Finite values; see ``StatsFeaturizer().feature_names`` for their meaning.
    """
    from rorem_data.features.pairs import to_work_size

    cv2 = _cv2()
    source, result, mask = to_work_size(source, result, mask, size)
    area = int(mask.sum())
    rw = max(2, int(round(ring * math.sqrt(area))))
    # distance of every pixel from the mask (0 inside): the ring and the "outside" follow from it
    dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, 3)
    d_out = (np.abs(result.astype(np.int16) - source.astype(np.int16)).max(axis=2)[dist > 2.0]
             .astype(np.float64) * (1 / 255))
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

    # colour of the fill vs ring (pixel lists in float64, see _mmean)
    in_r = lab_r[m].astype(np.float64)
    ring_r = lab_r[ring_m].astype(np.float64) if have_ring else in_r
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

    # texture / sharpness, filtered in float64: a float32 gradient could differ in its last bit
    # from one call to the next (OpenCV's vector and scalar paths), which reached the features
    L_r, L_s = (np.ascontiguousarray(x, dtype=np.float64) for x in (L_r, L_s))

    def grad_mag(L):
        gx = cv2.Sobel(L, cv2.CV_64F, 1, 0, ksize=3)
        gy = cv2.Sobel(L, cv2.CV_64F, 0, 1, ksize=3)
        return np.sqrt(gx * gx + gy * gy)

    g_r, g_s = grad_mag(L_r), grad_mag(L_s)
    lap_r = np.abs(cv2.Laplacian(L_r, cv2.CV_64F, ksize=3))
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
    d_in = _mahalanobis(in_r, ring_r)
    d_src = _mahalanobis(lab_s[m].astype(np.float64), ring_r)
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
    d_ring = _mahalanobis(ring_r, ring_r)
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
    in_s = lab_s[m].astype(np.float64)
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
    ring_s = lab_s[ring_m].astype(np.float64) if have_ring else in_s
    f["src_dmean_lab"] = float(np.linalg.norm(in_s.mean(0) - ring_s.mean(0))) / 100.0
    f["src_log_grad_ratio"] = log_ratio(g_s, m, ref)

    for k in _STATS_ABS:
        f[f"abs_{k}"] = abs(f[k])
    names = STATS_NAMES_V1
    if difficulty:
        names = STATS_NAMES
        lap_s = np.abs(cv2.Laplacian(L_s, cv2.CV_64F, ksize=3))
        sd_s = ring_s.std(0)
        f["ring_log_grad"] = math.log1p(_mmean(g_s, ref))
        f["ring_log_lap"] = math.log1p(_mmean(lap_s, ref))
        f["ring_log_std_L"] = math.log1p(float(sd_s[0]))
        f["ring_log_std_ab"] = math.log1p(float(sd_s[1] + sd_s[2]))
        # distance of each hole pixel to the nearest pixel outside it (the image edge is not a
        # source of context, so it does not count)
        depth = cv2.distanceTransform(m8, cv2.DIST_L2, 3)[m].astype(np.float64)
        # a hole covering the whole image has no edge (OpenCV gives FLT_MAX): as deep as it is wide
        depth = np.minimum(depth, float(max(m.shape)))
        f["hole_log_depth_mean"] = math.log1p(float(depth.mean()))
        f["hole_log_depth_max"] = math.log1p(float(depth.max()))
        f["hole_log_area"] = math.log(area)
    vec = np.array([f[k] for k in names], dtype=np.float32)
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
    difficulty : bool, default True
        The 7 columns of how hard the hole is to fill. False: the 44 columns (and the cache
        key) of earlier releases, for discriminator versions trained on them.

    What the features capture (51 columns, see ``feature_names``):

    - fill vs ring colour and histograms (a fill that does not match its surroundings);
    - gradient, Laplacian, local-contrast and edge ratios inside vs ring (``blur`` gives low
      high-frequency energy; seams show at the mask boundary);
    - Mahalanobis distance of fill pixels from the ring's Lab distribution, the largest
      connected outlier blob (hallucinated objects), and the same for the source (reference);
    - change between source and result inside the mask relative to the object's contrast,
      correlation of the fill with the removed object and of their gradients (residue);
    - change outside the mask (the remover damaged pixels it should have kept);
    - the absolute value of the signed ratios (a clean fill sits near 0, failures stray to
      either side), so a linear head can use them;
    - how hard the hole is to fill: the texture of the source around it (gradient, Laplacian,
      colour spread) and its depth (mean and largest distance of its pixels from its edge) and
      area - a fill of a deep hole in busy texture seldom matches.

    Examples
    --------
    >>> f = StatsFeaturizer(size=128)
    >>> f.dim == len(f.feature_names)
    True
    """

    name = "stats"
    # "decode": JPEGs decoded scaled down in the DCT to the working size (part of the cache key:
    # features made that way are not mixed with features of full decodes)
    defaults = {"size": 256, "ring": 0.35, "decode": "reduced", "difficulty": True}
    # difficulty=False is what earlier releases computed: the same key, so their caches and
    # trained versions still match
    key_omit = {"difficulty": False}

    def _validate_config(self, config):
        size = config["size"]
        if not is_int(size) or size < 0 or 0 < size < 16:
            raise bad("stats featurizer: 'size'", "0 (native) or an integer >= 16", size)
        if config["decode"] not in ("reduced", "full"):
            raise bad("stats featurizer: 'decode'", "'reduced' or 'full'", config["decode"])
        config["ring"] = fraction(config["ring"], "stats featurizer: 'ring'", high=5.0,
                                  open_low=True)
        if not isinstance(config["difficulty"], bool):
            raise bad("stats featurizer: 'difficulty'", "true or false", config["difficulty"])
        return config

    @property
    def work_size(self) -> int | None:
        """Longest side the files are read at (None: native)."""
        return (self.config["size"] or None) if self.config["decode"] == "reduced" else None

    @property
    def _names(self) -> tuple:
        return STATS_NAMES if self.config["difficulty"] else STATS_NAMES_V1

    @property
    def dim(self) -> int:
        return len(self._names)

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    def prepare(self, source, result, mask):
        return stats_features(source, result, mask, size=self.config["size"],
                              ring=self.config["ring"],
                              difficulty=self.config["difficulty"])
