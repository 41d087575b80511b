"""A simulated reviewer for demos and tests - clearly not a human.

It judges a candidate against the known object-free truth of a synthetic scene: success when the
result matches the truth inside the mask (mean absolute error at most ``tol_in`` grey levels, 14 by default)
and leaves the rest of the image alone (at most ``tol_out`` outside), with a failure reason
guessed from how it failed, and a share ``noise`` of judgments flipped, as tired humans do.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from rorem_data.core import schema
from rorem_data.core.images import read_mask


def truth_path_for(mask_path: str) -> str | None:
    """Object-free truth of a synthetic item: ``truth/`` beside the ``masks/`` of a pool written
    by :func:`rorem_data.testing.synthetic.write_pool_folder`, or ``GT/`` beside the ``mask/`` of
    a seed set (gold items are made from seeds)."""
    for a, b in (("masks", "truth"), ("mask", "GT")):
        p = mask_path.replace(f"{os.sep}{a}{os.sep}", f"{os.sep}{b}{os.sep}")
        if p != mask_path and os.path.exists(p):
            return p
    return None


def judge(source: np.ndarray, result: np.ndarray, truth: np.ndarray, mask: np.ndarray, *,
          tol_in: float = 14.0, tol_out: float = 3.0) -> tuple[str, str | None]:
    """(status, reason) of one result against its truth."""
    s, r, t = (a.astype(np.float32) for a in (source, result, truth))
    m = mask.astype(bool)
    err_in = float(np.abs(r - t)[m].mean())
    err_out = float(np.abs(r - t)[~m].mean()) if (~m).any() else 0.0
    if err_in <= tol_in and err_out <= tol_out:
        return schema.ACCEPTED, None
    if err_out > tol_out:
        return schema.REJECTED, "artifacts_outside_mask"
    to_src = float(np.abs(r - s)[m].mean())
    if to_src < err_in:
        return schema.REJECTED, "object_visible"
    var_r = float(r[m].std())
    var_t = float(t[m].std())
    if var_r < 0.6 * var_t:
        return schema.REJECTED, "blurry_fill"
    return schema.REJECTED, "hallucinated_object"


class SimulatedReviewer:
    """Labels queued candidates of synthetic pools, in bulk.

    Parameters
    ----------
    name : str
        Recorded as the reviewer (default ``"simulated"``; reports show it).
    noise : float
        Share of judgments flipped at random.
    tol_in, tol_out : float
        Error tolerances (mean absolute grey levels) inside and outside the mask.
    rng : int
    batch : int
        Judgments stored at a time.
    """

    def __init__(self, name: str = "simulated", *, noise: float = 0.03, tol_in: float = 14.0,
                 tol_out: float = 3.0, rng: int = 0, batch: int = 10):
        self.name = name
        self.batch = int(batch)
        self.noise = noise
        self.tol_in = tol_in
        self.tol_out = tol_out
        self._rng = np.random.default_rng(rng)

    def truth(self, source_path, result_path, mask_path) -> tuple[str, str | None]:
        """Noise-free judgment of one candidate from its files."""
        tp = truth_path_for(mask_path)
        if tp is None:
            raise FileNotFoundError(f"no synthetic truth for {mask_path}; the simulated reviewer only "
                                    "judges pools written by rorem_data.testing.synthetic.write_pool_folder")
        src = np.asarray(Image.open(source_path).convert("RGB"))
        res = np.asarray(Image.open(result_path).convert("RGB"))
        tru = np.asarray(Image.open(tp).convert("RGB"))
        return judge(src, res, tru, read_mask(mask_path), tol_in=self.tol_in, tol_out=self.tol_out)

    def decide(self, source_path, result_path, mask_path) -> tuple[str, str | None, bool]:
        """(status, reason, flipped): the judgment with this reviewer's deliberate mistakes."""
        status, reason = self.truth(source_path, result_path, mask_path)
        if self._rng.random() < self.noise:
            status = schema.REJECTED if status == schema.ACCEPTED else schema.ACCEPTED
            return status, ("other" if status == schema.REJECTED else None), True
        return status, reason, False

    def review_round(self, project, round: int, *, purposes=None, limit: int | None = None,
                     double_only: bool = False) -> dict:
        """Judge every queued candidate of ``round`` this reviewer has not judged yet (only the
        double-review share with ``double_only``: a second opinion)."""
        from rorem_data.rounds.review import apply_reviews

        from rorem_data.dataset import queries

        docs = queries.queue_members(project.dataset, round, ["filepath", "target_path", "mask.mask_path"],
                                     purpose=list(purposes) if purposes else None,
                                     min_quota=2 if double_only else None, not_reviewed_by=self.name)
        if limit is not None:
            docs = docs[:limit]
        rows, flips, n, accepted = [], 0, 0, 0
        for d in docs:  # stored every `batch` judgments, as a person's would be
            status, reason, flipped = self.decide(d["filepath"], d["target_path"], d["mask"]["mask_path"])
            flips += flipped
            rows.append((d["id"], status, self.name, reason))
            accepted += status == schema.ACCEPTED
            if len(rows) >= self.batch:
                n += apply_reviews(project.dataset, rows, round=round)
                rows = []
        if rows:
            n += apply_reviews(project.dataset, rows, round=round)
        return {"judged": n, "accepted": accepted, "flipped": flips}
