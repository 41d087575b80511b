"""The project's dataset schema: one FiftyOne sample per seed pair, pool item or candidate.

This module is pure Python (no FiftyOne import): it names the fields, their meaning, and builds
the decision documents; :mod:`rorem_data.dataset.documents` builds the sample documents.

Every sample has
    ``filepath``        the source image (the photo with the object), shown in the App
    ``mask``            ``fo.Segmentation`` whose ``mask_path`` is the canonical object mask
                        (8-bit PNG, 0 = background, 255 = object), drawn as an overlay
    ``target_path``     the object-free image: the ground truth of a seed pair, or the remover's
                        result for a candidate (a second media field in the App); None for pool items
    ``key``             unique, deterministic identity; re-importing or re-generating the same
                        thing finds the same key, so nothing is added twice
    ``kind``            ``"seed"``, ``"pool"`` or ``"candidate"``
    ``origin``          where the data came from (``"RORD"``, ``"openimages"``, ...)
    ``category``        object category when known (COCO imports), else None
    ``round``           0 for seed pairs; the generation round for candidates; None for pool items
    ``mask_area``       object area as a fraction of the image, in [0, 1]
    ``import_ref``      the input file and entry the sample was imported from
    ``pool_item_id``    candidates: id of the pool item they were generated from
    ``candidate_index`` candidates: 0..K-1 among the K candidates of one pool item
    ``generator``       candidates: remover provenance (spec, checkpoint hash, sampler, steps,
                        seed, mask dilation, ...)
    ``scores``          candidates: one float per discriminator version (higher = better removal)
    ``status``          ``"accepted"``, ``"rejected"`` or ``"pending"`` (None for pool items)
    ``decided_by``      ``"import"``, ``"human"`` or ``"discriminator"`` for the current status
    ``decided_round``   round of the decision that set the current status
    ``decision``        the current decision (see :func:`decision_doc`)
    ``decisions``       every decision ever made on the sample, oldest first: the provenance that
                        lets any past round be re-exported as it stood
    ``reviews``         every human judgment (reviewer, time, accept/reject, reason), which the
                        final human decision is derived from (two reviewers, adjudication)
    ``queue_round``     round whose review queue holds the candidate (None if not queued)
    ``queue_rank``      position in that queue (0 = first shown)
    ``review_quota``    1, or 2 for items that two reviewers judge independently
    ``needs_adjudication``  True when two reviewers disagreed and nobody adjudicated yet
    ``queue_purpose``   ``active`` (query strategy), ``estimate`` (uniform sample) or ``audit``
    ``estimate_sample`` True for candidates in the round's uniform estimation sample
    ``preview_path``    side-by-side review image (source + mask outline, result, zoomed crops)
    ``license``         the data's license (SPDX id or free text; ``unknown`` when not given);
                        a candidate carries its pool item's
    ``inclusion_probability``  the probability a candidate was drawn into an active-inference
                        sample with (inverse-probability weights)
    ``gold_truth``      gold items (``kind == "gold"``): the known answer; ``gold_kind`` how it
                        was made from a seed pair (see :mod:`rorem_data.rounds.review.gold`)
    ``ledger_rev``      revision counter of the decision ledger (compare-and-swap)
    ``original_path``   the file a source was decoded from, when its decoded pixels differ from
                        the file (``filepath`` is then the stored decoded PNG; see
                        :mod:`rorem_data.core.decode`); ``original_target_path`` likewise
    ``conversions``     the decoding rules applied to the sample's files (e.g. ``"EXIF
                        orientation 6 (rotated 90° clockwise)"``, ``"16-bit to 8-bit"``)
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

KIND_SEED = "seed"
KIND_POOL = "pool"
KIND_CANDIDATE = "candidate"
KIND_GOLD = "gold"  # a judgment with a known answer, mixed into queues to measure reviewers
KINDS = (KIND_SEED, KIND_POOL, KIND_CANDIDATE, KIND_GOLD)

ACCEPTED = "accepted"
REJECTED = "rejected"
PENDING = "pending"
STATUSES = (ACCEPTED, REJECTED, PENDING)

BY_IMPORT = "import"
BY_HUMAN = "human"
BY_DISCRIMINATOR = "discriminator"
DECIDERS = (BY_IMPORT, BY_HUMAN, BY_DISCRIMINATOR)

PHASE_SEED = "seed"
PHASE_HUMAN = "human"
PHASE_AUTO = "auto"
PHASES = (PHASE_SEED, PHASE_HUMAN, PHASE_AUTO)

MASK_FIELD = "mask"
TARGET_FIELD = "target_path"
MASK_LABEL = "object"

# name -> FiftyOne field type name (resolved in store.py), for flat top-level fields
SCALAR_FIELDS = {
    "key": "StringField",
    "kind": "StringField",
    "origin": "StringField",
    "category": "StringField",
    "round": "IntField",
    "mask_area": "FloatField",
    "target_path": "StringField",
    "import_ref": "StringField",
    "pool_item_id": "StringField",
    "candidate_index": "IntField",
    "status": "StringField",
    "decided_by": "StringField",
    "decided_round": "IntField",
    "preview_path": "StringField",
    "queue_round": "IntField",
    "queue_rank": "IntField",
    "review_quota": "IntField",
    "needs_adjudication": "BooleanField",
    "queue_purpose": "StringField",
    "estimate_sample": "BooleanField",
    "license": "StringField",
    "license_url": "StringField",
    "ledger_rev": "IntField",
    "inclusion_probability": "FloatField",
    "gold_truth": "StringField",
    "gold_kind": "StringField",
    "gold_seed": "StringField",
    "original_path": "StringField",
    "original_target_path": "StringField",
}

# list-of-strings fields
LIST_FIELDS = ("conversions",)

QUEUE_GOLD = "gold"  # gold items mixed into a human queue
# fields the review view hides: what would tell a gold item from a candidate
HIDDEN_IN_REVIEW = ("mask", "kind", "origin", "gold_truth", "gold_kind", "gold_seed",
                    "queue_purpose", "estimate_sample", "inclusion_probability", "scores")

UNKNOWN_LICENSE = "unknown"

QUEUE_ACTIVE = "active"      # chosen by a query strategy to teach the discriminator
QUEUE_ESTIMATE = "estimate"  # a uniform random sample: unbiased success-rate estimates
QUEUE_AUDIT = "audit"        # automatic decisions re-judged by humans: measured precision
DICT_FIELDS = ("generator",)

# sub-fields of one human review (an fo.DynamicEmbeddedDocument in the ``reviews`` list)
REVIEW_FIELDS = {
    "reviewer": "StringField",
    "at": "DateTimeField",
    "status": "StringField",
    "reason": "StringField",
    "round": "IntField",
    "adjudication": "BooleanField",
    "shown_at": "DateTimeField",
    "op": "StringField",
}

# sub-fields of a decision (an fo.DynamicEmbeddedDocument)
DECISION_FIELDS = {
    "round": "IntField",
    "phase": "StringField",
    "status": "StringField",
    "by": "StringField",
    "reviewer": "StringField",
    "at": "DateTimeField",
    "reason": "StringField",
    "discriminator": "StringField",
    "threshold": "FloatField",
    "score": "FloatField",
    "op": "StringField",
}

FAILURE_REASONS = (
    "object_visible",
    "hallucinated_object",
    "blurry_fill",
    "artifacts_outside_mask",
    "bad_mask",
    "other",
)

# what the review App shows for each reason; keys 1-5 follow this order
FAILURE_REASON_LABELS = {
    "object_visible": "Object still visible",
    "hallucinated_object": "New object hallucinated",
    "blurry_fill": "Blurry or smeared fill",
    "artifacts_outside_mask": "Artifacts outside the mask",
    "bad_mask": "Bad mask",
}


def utcnow() -> datetime:
    """Naive UTC now with millisecond precision (what MongoDB stores)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def make_key(kind: str, *parts: str) -> str:
    """Deterministic 24-hex-digit key from a kind and identifying strings."""
    h = hashlib.sha1(kind.encode())
    for p in parts:
        h.update(b"\x00")
        h.update(str(p).encode("utf-8", "surrogatepass"))
    return f"{kind[0]}{h.hexdigest()[:23]}"


def decision_doc(
    *,
    round: int,
    phase: str,
    status: str,
    by: str,
    at: datetime | None = None,
    reviewer: str | None = None,
    reason: str | None = None,
    discriminator: str | None = None,
    threshold: float | None = None,
    score: float | None = None,
) -> dict:
    """Raw document of one decision (an ``fo.DynamicEmbeddedDocument``)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    if by not in DECIDERS:
        raise ValueError(f"decided-by must be one of {DECIDERS}, got {by!r}")
    return {
        "_cls": "DynamicEmbeddedDocument",
        "round": int(round),
        "phase": phase,
        "status": status,
        "by": by,
        "reviewer": reviewer,
        "at": at or utcnow(),
        "reason": reason,
        "discriminator": discriminator,
        "threshold": None if threshold is None else float(threshold),
        "score": None if score is None else float(score),
    }


def status_as_of(decisions: list[dict] | None, round: int) -> str | None:
    """Status of a sample as it stood at the end of ``round``: its last decision made in a
    round <= ``round`` (None if it had none then)."""
    status = None
    for d in decisions or ():
        if d is not None and d.get("round") is not None and d["round"] <= round:
            status = d.get("status")
    return status
