"""Training pairs: read from RORem-layout exports, checked, and served as tensors.

An export holds ``meta.json`` = a list of ``{"source", "mask", "GT"}`` paths relative to it
(what ``rorem-data export --format rorem`` writes). Every entry is checked before training
starts (unsafe paths, missing files; with ``on_size_mismatch="error"`` the image sizes), and
all problems are reported at once.

>>> from rorem_data.finetune.data import PairDataset, read_pairs
>>> pairs = read_pairs(["exports/round-3"])                        # doctest: +SKIP
>>> PairDataset(pairs, 512)[0]["masked_source"].shape               # doctest: +SKIP
torch.Size([3, 512, 512])
"""

from __future__ import annotations

import os

from rorem_data.core import jsonfile
from rorem_data.core.errors import ConfigError, ValidationError

PAIR_KEYS = ("source", "mask", "GT")


def read_pairs(data: list[str]) -> list[tuple[str, str, str]]:
    """(source, mask, GT) absolute paths from export folders / ``meta.json`` files.

    Raises
    ------
    ConfigError
        A missing or malformed ``meta.json``, or no pairs at all.
    ValidationError
        Entries with unsafe paths or missing files (every one listed).
    """
    from rorem_data.core.paths import UnsafePath, safe_join
    from rorem_data.core.validate import Problem

    pairs, problems = [], []
    for d in data:
        meta = d if d.endswith(".json") else os.path.join(d, "meta.json")
        root = os.path.dirname(os.path.abspath(meta))
        if not os.path.isfile(meta):
            raise ConfigError(f"training data {d} has no meta.json ({meta}); pass a folder made by "
                              "rorem_data.export(project, N, DIR) (rorem-data export --format rorem)")
        entries = jsonfile.load(meta, fix="re-export the round")
        if not isinstance(entries, list):
            raise ConfigError(f"{meta} must be a JSON list of {{source, mask, GT}}; got "
                              f"{type(entries).__name__}")
        for i, e in enumerate(entries):
            item = f"{meta} entry {i}"
            if not isinstance(e, dict) or not all(k in e for k in PAIR_KEYS):
                problems.append(Problem(item, meta, "entry lacks source, mask or GT",
                                        "give each entry {source, mask, GT} paths"))
                continue
            try:
                paths = tuple(safe_join(root, e[k]) for k in PAIR_KEYS)
            except UnsafePath as exc:
                problems.append(Problem(item, meta, str(exc), "use paths relative to meta.json"))
                continue
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                problems.append(Problem(item, missing[0], "file does not exist",
                                        "restore it or re-export the round"))
                continue
            pairs.append(paths)
    if problems:
        raise ValidationError(f"{len(problems)} training pair(s) are unusable", problems)
    if not pairs:
        raise ConfigError(f"the training data {', '.join(data)} holds no pairs (empty meta.json); "
                          "accept some candidates first or export a later round")
    return pairs


def check_sizes(pairs, resolution: int) -> None:
    """``on_size_mismatch="error"``: every image must already be ``resolution`` square.

    Raises
    ------
    ValidationError
        Listing every image of another size (or that cannot be opened).
    """
    from rorem_data.core.images import ImageProblem, open_image
    from rorem_data.core.validate import Problem

    problems = []
    for i, triplet in enumerate(pairs):
        for what, p in zip(PAIR_KEYS, triplet):
            try:
                with open_image(p) as im:
                    size = im.size
            except ImageProblem as exc:
                problems.append(Problem(f"pair {i} {what}", p, str(exc), "re-export the round"))
                continue
            if size != (resolution, resolution):
                problems.append(Problem(f"pair {i} {what}", p,
                                        f"is {size[0]}x{size[1]}, not {resolution}x{resolution}",
                                        "pass on_size_mismatch='resize' (--on-size-mismatch resize), or resize the export"))
    if problems:
        raise ValidationError(f"{len(problems)} training image(s) are not "
                              f"{resolution}x{resolution}", problems)


class PairDataset:
    """Training pairs as tensors (a map-style ``torch.utils.data.Dataset``).

    Each item is a dict of float32 tensors: ``target`` (3, R, R) in [-1, 1], ``masked_source``
    (3, R, R) in [-1, 1] with object pixels set to 0 (RORem's ``x_s * (1 - m)``), ``mask``
    (1, R, R) in {0, 1}. Images are resized to ``R`` x ``R`` (bilinear; masks nearest). Items
    involve no randomness: the random flip is :func:`random_flip`, applied to each batch by the
    training loop when it uses the batch (so that prefetching a batch draws nothing from the RNG
    and a resumed run draws what an uninterrupted one does).

    Parameters
    ----------
    pairs : list of (source, mask, GT) paths
    resolution : int
    """

    def __init__(self, pairs, resolution: int):
        self.pairs = list(pairs)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int, flip: bool = False) -> dict:
        """Item ``i`` (also with ``source``, for validation strips)."""
        import numpy as np
        import torch
        from PIL import Image

        from rorem_data.core.images import ImageProblem, read_mask, read_rgb

        src_p, mask_p, gt_p = self.pairs[i]
        r = self.resolution

        def rgb(p):
            try:
                a = read_rgb(p)
            except ImageProblem as exc:
                raise ConfigError(f"training image {p} (pair {i}): {exc}; re-export the round") from None
            if a.shape[:2] != (r, r):
                a = np.asarray(Image.fromarray(a).resize((r, r), Image.BILINEAR))
            return a.astype(np.float32) / 127.5 - 1.0

        try:
            m = read_mask(mask_p)
        except ImageProblem as exc:
            raise ConfigError(f"training mask {mask_p} (pair {i}): {exc}; re-export the round") from None
        if m.shape != (r, r):
            m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((r, r), Image.NEAREST)) >= 128
        src, gt = rgb(src_p), rgb(gt_p)
        if flip:
            src, gt, m = src[:, ::-1], gt[:, ::-1], m[:, ::-1]
        m = m.astype(np.float32)
        masked = src * (1.0 - m[..., None])

        def chw(a):
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

        return {"target": chw(gt), "masked_source": chw(masked),
                "mask": torch.from_numpy(np.ascontiguousarray(m))[None], "source": chw(src)}

    def __getitem__(self, i: int) -> dict:
        item = self.load(i)
        del item["source"]
        return item


def random_flip(batch: dict, generator=None) -> dict:
    """Flip each item of a batch horizontally with probability 1/2 (the same flip for its
    ``target``, ``masked_source`` and ``mask``), drawing from ``generator`` (default: torch's).

    Parameters
    ----------
    batch : dict of tensors (B, C, H, W)

    Returns
    -------
    dict
        A new batch; the input is not changed.
    """
    import torch

    some = next(iter(batch.values()))
    flips = torch.rand(some.shape[0], generator=generator) < 0.5
    if not flips.any():
        return dict(batch)
    out = {}
    for key, t in batch.items():
        f = flips.to(t.device).view(-1, *([1] * (t.dim() - 1)))
        out[key] = torch.where(f, t.flip(-1), t)
    return out


__all__ = ["PairDataset", "check_sizes", "random_flip", "read_pairs"]
