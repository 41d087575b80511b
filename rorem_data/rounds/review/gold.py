"""Gold items: judgments with a known answer, mixed into human queues to measure reviewers.

Made from the project's seed triplets (whose object-free target is known):

* ``good`` - the seed's own target shown as the result (a known success);
* ``pasted_back`` - the object pasted back inside the mask (a known failure: object visible);
* ``blurred`` - the fill inside the mask blurred away (blurry fill);
* ``patch`` - a patch from elsewhere in the image pasted into the mask (a visible seam);
* ``foreign_object`` - another seed's object pasted into the mask (a new object).

Gold items are samples of their own kind (``gold``): the queue shows them like any candidate
(same preview, same fields - ``kind`` and the answer are hidden from the review view), and
they never enter training, estimates or exports, which read seeds and candidates only.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.core.images import ImageProblem, read_mask, read_rgb, write_bytes_atomic
from rorem_data.dataset import documents, queries, store
from rorem_data.rounds.seed_pairs import KINDS, _clearly_wrong, make_result

GOLD_KINDS = KINDS


def add_gold(project, round: int, n: int, *, rng: int = 0, kinds=GOLD_KINDS,
             good_share: float = 0.5) -> list[str]:
    """Create ``n`` gold items for ``round`` from random seed pairs; returns their sample ids
    (not yet queued: :func:`rorem_data.dataset.queues.mix_in` puts them among the queue).

    About ``good_share`` of them are known-good, the rest spread over the failure kinds.

    Raises
    ------
    ConfigError
        The project has no seed pairs to make gold items from.
    """
    if n <= 0:
        return []
    ds = project.dataset
    seeds = queries.find(ds, {"kind": schema.KIND_SEED, "status": schema.ACCEPTED},
                         ["key", "filepath", "target_path", "mask.mask_path", "metadata.width",
                          "metadata.height", "mask_area", "origin", "license", "license_url"])
    seeds = [s for s in seeds if s.get("target_path")]
    if not seeds:
        raise ConfigError("gold items are made from seed pairs; import seeds first "
                          "(rorem_data.import_seeds), or set gold_rate to 0")
    gen = np.random.default_rng([int(rng), int(round), 0x601D])
    bad_kinds = [k for k in kinds if k != "good"]
    out_dir = project.media_path("candidates", f"round-{int(round)}")
    docs = []
    for j in range(int(n)):
        seed = seeds[int(gen.integers(len(seeds)))]
        kind = "good" if (gen.random() < good_share or not bad_kinds) else bad_kinds[int(gen.integers(len(bad_kinds)))]
        try:
            src, tgt = read_rgb(seed["filepath"]), read_rgb(seed["target_path"])
            mask = read_mask(seed["mask"]["mask_path"])
            other = None
            if kind == "foreign_object":
                o = seeds[int(gen.integers(len(seeds)))]
                other = (read_rgb(o["filepath"]), read_mask(o["mask"]["mask_path"]))
        except ImageProblem:
            continue  # a seed file went missing: make the gold item from another one
        if not mask.any() or mask.shape != src.shape[:2] or tgt.shape != src.shape:
            continue
        result = make_result(kind, src, tgt, mask, other, gen)
        if kind != "good" and not _clearly_wrong(result, tgt, mask):
            kind = "pasted_back"  # a failure a careful reviewer might pass is no gold answer
            result = make_result(kind, src, tgt, mask, other, gen)
            if not _clearly_wrong(result, tgt, mask):
                continue
        key = schema.make_key(schema.KIND_CANDIDATE, "gold", seed["key"], kind, str(round), str(j), str(rng))
        path = os.path.join(out_dir, f"{key}.png")
        buf = io.BytesIO()
        Image.fromarray(result).save(buf, format="PNG", compress_level=3)
        write_bytes_atomic(path, buf.getvalue())
        doc = documents.sample_doc(
            key=key, kind=schema.KIND_GOLD, filepath=seed["filepath"],
            width=seed["metadata"]["width"], height=seed["metadata"]["height"],
            mask_path=seed["mask"]["mask_path"], mask_area=float(seed.get("mask_area") or 0.0),
            origin=seed.get("origin") or "", target_path=path, round=int(round),
            license=seed.get("license"), license_url=seed.get("license_url"))
        doc.update({"status": schema.PENDING, "gold_truth": schema.ACCEPTED if kind == "good" else schema.REJECTED,
                    "gold_kind": kind, "gold_seed": seed["id"]})
        docs.append(doc)
    store.insert_documents(ds, docs)  # keys are fixed by (seed, kind, round, j, rng): a rerun adds nothing
    have = queries.ids_by_key(ds, [d["key"] for d in docs])
    return [have[d["key"]] for d in docs if d["key"] in have]
