"""Review through FiftyOne's annotation backends (CVAT, Label Studio, Labelbox, ...).

For teams that already run an annotation server: the round's queue is sent as a classification
task ("accept" / "reject" / "reject: <reason>") with FiftyOne's own ``view.annotate``, and the
labels that come back are applied with :func:`rorem_data.rounds.review.apply_reviews` - checked as a
whole first, exactly like the App and label files. Annotators see the side-by-side previews.
"""

from __future__ import annotations

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError

LABEL_FIELD = "review_label"
ACCEPT = "accept"


def label_classes() -> list[str]:
    """Classes offered to annotators: accept, plain reject, and reject with each reason."""
    return [ACCEPT, "reject"] + [f"reject: {r}" for r in schema.FAILURE_REASONS]


def parse_label(label: str) -> tuple[str, str | None]:
    """``"reject: blurry_fill"`` -> (``"rejected"``, ``"blurry_fill"``)."""
    if label == ACCEPT:
        return schema.ACCEPTED, None
    if label == "reject":
        return schema.REJECTED, None
    if label.startswith("reject: ") and label[8:] in schema.FAILURE_REASONS:
        return schema.REJECTED, label[8:]
    raise ConfigError(f"annotation label {label!r} is not one of {label_classes()}")


def send_queue(project, round: int, anno_key: str, *, backend: str = "cvat", **kwargs):
    """Upload the round's review queue to an annotation backend (``view.annotate``).

    ``kwargs`` go to FiftyOne (url, username, project name, ...). The previews are the media.
    """
    from rorem_data.dataset.queues import review_view

    view = review_view(project.dataset, round)
    return view.annotate(anno_key, backend=backend, media_field="preview_path",
                         label_schema={LABEL_FIELD: {"type": "classification", "classes": label_classes()}},
                         **kwargs)


def labels_to_reviews(sample_ids, labels, *, reviewer: str) -> list[tuple]:
    """(sample_id, status, reviewer, reason) rows for the labelled samples (None = unlabelled)."""
    rows = []
    for sid, lab in zip(sample_ids, labels):
        if lab is None:
            continue
        status, reason = parse_label(lab if isinstance(lab, str) else getattr(lab, "label", str(lab)))
        rows.append((sid, status, reviewer, reason))
    return rows


def apply_annotations(project, round: int, anno_key: str | None = None, *, reviewer: str) -> int:
    """Load an annotation run's results (if ``anno_key``) and apply them as human reviews.

    Returns the number of judgments recorded; raises ValidationError (nothing applied) if any
    label is unknown or any sample is not in the round's queue.
    """
    from rorem_data.dataset.queues import review_view
    from rorem_data.rounds.review import apply_reviews

    ds = project.dataset
    if anno_key is not None:
        ds.load_annotations(anno_key)
    view = review_view(ds, round)
    if LABEL_FIELD not in ds.get_field_schema():
        raise ConfigError(f"no {LABEL_FIELD!r} labels in the dataset yet; finish the annotation task first")
    ids = view.values("id")
    labels = view.values(f"{LABEL_FIELD}.label")
    return apply_reviews(ds, labels_to_reviews(ids, labels, reviewer=reviewer), round=round)
