"""``@holds_round(step)``: a step function runs under its round's lease
(:mod:`rorem_data.dataset.leases`), whether the driver or a person calls it."""

from __future__ import annotations

import functools


def holds_round(step: str):
    """Decorate ``fn(project, round, ...)`` so it holds the round's lease while it runs; a
    second process gets :class:`~rorem_data.core.errors.RoundBusy` naming the holder."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(project, round, *args, **kwargs):
            from rorem_data.dataset.leases import lease_wait, round_lease

            with round_lease(project.dataset_name, round, step=step, wait=lease_wait()):
                return fn(project, round, *args, **kwargs)

        return wrapper

    return decorate
