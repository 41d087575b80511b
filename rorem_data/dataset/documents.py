"""Raw sample documents in the exact form FiftyOne writes (see :mod:`rorem_data.core.schema`).

The ``_id``, ``_dataset_id`` and label ids are filled in here and by :mod:`rorem_data.dataset.store`.
"""

from __future__ import annotations

import random
from datetime import datetime

from bson import ObjectId

from rorem_data.core.schema import (
    KIND_CANDIDATE, KIND_POOL, KIND_SEED, KINDS, MASK_FIELD, TARGET_FIELD, UNKNOWN_LICENSE, utcnow,
)

__all__ = ["apply_decision_to_doc", "sample_doc", "KIND_CANDIDATE", "KIND_POOL", "KIND_SEED"]


def sample_doc(
    *,
    key: str,
    kind: str,
    filepath: str,
    width: int,
    height: int,
    mask_path: str,
    mask_area: float,
    origin: str,
    target_path: str | None = None,
    category: str | None = None,
    round: int | None = None,
    import_ref: str | None = None,
    pool_item_id: str | None = None,
    candidate_index: int | None = None,
    generator: dict | None = None,
    decision: dict | None = None,
    license: str | None = None,
    license_url: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> dict:
    """Raw MongoDB document of one sample, in the exact form FiftyOne writes.

    The ``_id``, ``_dataset_id`` and label ids are filled in by :mod:`rorem_data.dataset.store`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    now = now or utcnow()
    doc = {
        "_id": ObjectId(),
        "filepath": filepath,
        "tags": [],
        "metadata": {"_cls": "ImageMetadata", "width": int(width), "height": int(height)},
        "created_at": now,
        "last_modified_at": now,
        "_media_type": "image",
        "_rand": (rng or random).random(),
        "key": key,
        "kind": kind,
        "origin": origin,
        "category": category,
        "round": round,
        MASK_FIELD: {"_id": ObjectId(), "_cls": "Segmentation", "tags": [], "mask_path": mask_path},
        "mask_area": float(mask_area),
        TARGET_FIELD: target_path,
        "import_ref": import_ref,
        "pool_item_id": pool_item_id,
        "candidate_index": candidate_index,
        "generator": generator,
        "status": None,
        "decided_by": None,
        "decided_round": None,
        "decision": None,
        "decisions": [],
        "license": license or UNKNOWN_LICENSE,
        "license_url": license_url,
    }
    if decision is not None:
        apply_decision_to_doc(doc, decision)
    return doc


def apply_decision_to_doc(doc: dict, decision: dict) -> None:
    """Set the current decision of a raw document and append it to its history."""
    doc["status"] = decision["status"]
    doc["decided_by"] = decision["by"]
    doc["decided_round"] = decision["round"]
    doc["decision"] = decision
    doc.setdefault("decisions", []).append(decision)
