"""Browse a round with FiftyOne's own API: :func:`candidates` gives a view."""

from __future__ import annotations

from rorem_data.core import checks, schema


def candidates(project, round: int | None = None, *, status=None, decided_by=None,
               queued: bool | None = None):
    """The round's candidates as a FiftyOne view, to browse, filter, tag or open in the App.

    Parameters
    ----------
    project : Project or str
    round : int, optional
        Only this round's candidates (default: every round).
    status : str or list of str, optional
        ``"accepted"``, ``"rejected"``, ``"pending"``.
    decided_by : str or list of str, optional
        ``"human"`` or ``"discriminator"``.
    queued : bool, optional
        Only candidates in (True) or out of (False) a review queue.

    Returns
    -------
    fiftyone.core.view.DatasetView
        Sorted by key; every FiftyOne method works on it (``count_values("status")``,
        ``values("scores")``, ``fo.launch_app(view)``, ...).

    Raises
    ------
    ConfigError
        An unknown status or decider.

    Examples
    --------
    >>> view = rorem_data.candidates(project, 2, status="accepted", decided_by="discriminator")  # doctest: +SKIP
    >>> view.count()                                                                           # doctest: +SKIP
    412
    """
    from rorem_data.dataset.views import candidates_view
    from rorem_data.rounds.project import as_project

    project = as_project(project)
    if round is not None:
        round = checks.round_number(round, "round")
    for name, value, allowed in (("status", status, schema.STATUSES),
                                 ("decided_by", decided_by, (schema.BY_HUMAN, schema.BY_DISCRIMINATOR))):
        if value is None:
            continue
        for v in [value] if isinstance(value, str) else list(value):
            checks.choice(v, name, allowed)
    return candidates_view(project.dataset, round=round, status=status, decided_by=decided_by,
                           queued=queued)
