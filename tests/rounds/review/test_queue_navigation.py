"""The App's "next candidate" after a judgment: queue order, any queue size, any view."""

from helpers import add_candidates


def _queue(project, n, seed=5):
    from rorem_data.rounds.review.queue import build_queue

    add_candidates(project, 1, ["clean", "residue", "blur", "hallucination"] * (n // 4), seed=seed)
    return build_queue(project, 1, n, strategy="random", rng=0, previews=False)


def test_next_follows_the_saved_queue_order_to_its_end(project):
    from rorem_data.dataset import queries
    from rorem_data.dataset.queues import queue_view_name

    sel = _queue(project, 8)
    view = project.dataset.load_saved_view(queue_view_name(1))
    assert queries._ordered_by_queue_rank(view)  # the indexed path, not the listing
    order = view.values("id")
    assert order == list(sel.sample_ids)
    assert [queries.next_in_view(view, sid) for sid in order] == order[1:] + [None]


def test_next_after_a_decision_in_a_view_of_pending_items(project):
    # the reviewer filters to pending items: the judged one leaves the view, the next stays
    from fiftyone import ViewField as F

    from rorem_data.dataset import queries
    from rorem_data.dataset.queues import queue_view_name
    from rorem_data.rounds import review

    sel = _queue(project, 8)
    ids = list(sel.sample_ids)
    pending = project.dataset.load_saved_view(queue_view_name(1)).match(F("status") == "pending")
    review.apply_review(project.dataset, ids[1], "accept", reviewer="ana")
    assert queries.next_in_view(pending, ids[0]) == ids[2]
    review.apply_review(project.dataset, ids[2], "reject", reviewer="ana")
    assert queries.next_in_view(pending, ids[2]) == ids[3]  # itself decided: still moves on


def test_other_orders_and_bad_ids_fall_back_to_the_listing(project):
    from rorem_data.dataset import queries
    from rorem_data.dataset.queues import queue_view_name

    sel = _queue(project, 8)
    queue = project.dataset.load_saved_view(queue_view_name(1))
    backwards = queue.sort_by("queue_rank", reverse=True)
    limited = queue.limit(3)
    assert not queries._ordered_by_queue_rank(backwards)
    assert not queries._ordered_by_queue_rank(limited)
    ids = list(sel.sample_ids)
    assert queries.next_in_view(backwards, ids[5]) == ids[4]
    assert queries.next_in_view(limited, ids[2]) is None
    assert queries.next_in_view(queue, "not-an-id") is None
    assert queries.next_in_view(queue, "0" * 24) is None
