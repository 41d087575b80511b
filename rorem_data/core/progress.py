"""Progress bars (tqdm), shown on terminals and silenced elsewhere unless forced."""

from __future__ import annotations

import os


def progress(*, total: int | None, desc: str, unit: str = "it", disable: bool | None = None):
    """A tqdm progress bar; ``ROREM_PROGRESS=1`` forces it on, ``=0`` off."""
    from tqdm.auto import tqdm

    env = os.environ.get("ROREM_PROGRESS")
    if disable is None and env is not None:
        disable = env in ("0", "false", "no")
    elif disable is None:
        disable = None  # tqdm: off when not a terminal
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.5)
