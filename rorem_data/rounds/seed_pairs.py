"""Training examples made from seed pairs: what the discriminator can learn before people judge.

A seed triplet's object-free target is a known success; the same seed with the object pasted
back, the fill blurred away, a patch from elsewhere or another seed's object pasted into the
mask is a known failure (the gold-item generators, :func:`rorem_data.rounds.review.gold.make_result`).
RORem trained its discriminator on such pairs too. :func:`seed_pair_examples` makes them as
features, in memory (nothing is written to the dataset): half successes, half failures spread
over the failure kinds, from seeds drawn by a fixed seed.

They join the human labels in training only (never the held-out part, which calibrates and
certifies), and give way as human labels arrive: a version trained on ``n`` human labels gets
``max(0, seed_pairs - n)`` of them (:func:`rorem_data.rounds.discriminator.train`).
"""

from __future__ import annotations

import numpy as np

from rorem_data.core import schema
from rorem_data.core.images import ImageProblem, read_mask, read_rgb
from rorem_data.dataset import queries

FAILURE_KINDS = ("pasted_back", "blurred", "patch", "foreign_object")


def seed_pair_examples(project, featurizer, n: int, *, rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of up to ``n`` examples made from the project's seeds (fewer when it
    has few seeds or a seed file cannot be read); empty arrays when it has none."""
    from rorem_data.rounds.review.gold import _clearly_wrong, make_result

    empty = np.zeros((0, featurizer.dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
    if n <= 0:
        return empty
    seeds = queries.find(project.dataset, {"kind": schema.KIND_SEED, "status": schema.ACCEPTED},
                         ["key", "filepath", "target_path", "mask.mask_path"])
    seeds = sorted((s for s in seeds if s.get("target_path")), key=lambda s: s["key"])
    if not seeds:
        return empty
    gen = np.random.default_rng([int(rng), 0x5EED])
    order = gen.permutation(len(seeds))
    src_l, res_l, mask_l, y = [], [], [], []
    for j in range(n):
        seed = seeds[int(order[(j // 2) % len(seeds)])]
        good = j % 2 == 0
        try:
            src, tgt = read_rgb(seed["filepath"]), read_rgb(seed["target_path"])
            mask = read_mask(seed["mask"]["mask_path"]).astype(bool)
            other = None
            kind = "good" if good else FAILURE_KINDS[(j // 2) % len(FAILURE_KINDS)]
            if kind == "foreign_object":
                o = seeds[int(order[(j // 2 + 1) % len(seeds)])]
                other = (read_rgb(o["filepath"]), read_mask(o["mask"]["mask_path"]))
        except ImageProblem:
            continue
        if not mask.any() or mask.shape != src.shape[:2] or tgt.shape != src.shape:
            continue
        result = make_result(kind, src, tgt, mask, other, gen)
        if not good and not _clearly_wrong(result, tgt, mask):
            result = make_result("pasted_back", src, tgt, mask, None, gen)
            if not _clearly_wrong(result, tgt, mask):
                continue
        src_l.append(src)
        res_l.append(result)
        mask_l.append(mask)
        y.append(int(good))
    if not y:
        return empty
    X = featurizer.featurize_arrays(src_l, res_l, mask_l)
    return X, np.asarray(y, dtype=np.int64)
