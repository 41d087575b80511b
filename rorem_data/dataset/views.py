"""FiftyOne views of the project's samples, for people browsing a round with FiftyOne's API."""

from __future__ import annotations

from rorem_data.core import schema


def candidates_view(ds, *, round: int | None = None, status=None, decided_by=None,
                    queued: bool | None = None, kind: str = schema.KIND_CANDIDATE):
    """A view of candidates (or another ``kind``) filtered by round, status, decider and queue
    membership; ``status`` / ``decided_by`` may be one value or several. Sorted by key."""
    from fiftyone import ViewField as F

    def one_of(field, value):
        values = [value] if isinstance(value, str) or value is None else list(value)
        if len(values) == 1:
            return F(field) == values[0]
        return F(field).is_in(values)

    view = ds.match(F("kind") == kind)
    if round is not None:
        view = view.match(F("round") == int(round))
    if status is not None:
        view = view.match(one_of("status", status))
    if decided_by is not None:
        view = view.match(one_of("decided_by", decided_by))
    if queued is not None:
        view = view.match(F("queue_round").exists() if queued else ~F("queue_round").exists())
    return view.sort_by("key")
