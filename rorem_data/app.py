"""Launching the FiftyOne App on a review queue, bound to 127.0.0.1, with our plugin loaded.

One App server serves one reviewer: the reviewer's name lives in the server process (the plugin
records it with every judgment), so :func:`launch_review` refuses a port that another server
already holds instead of silently joining it - a second reviewer gets their own port.
"""

from __future__ import annotations

import os
import shutil
import socket

from rorem_data.core.errors import ConfigError

PLUGIN_NAME = "@rorem-data/review"


def plugins_dir() -> str:
    """The folder holding this package's FiftyOne plugins."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")


def enable_plugin() -> str:
    """Make FiftyOne find the review plugin; returns the plugins folder in use.

    Sets FIFTYONE_PLUGINS_DIR to our folder when unset; when a team already uses its own plugins
    folder, links our plugin into it. Must run before ``fiftyone`` is imported.
    """
    ours = plugins_dir()
    theirs = os.environ.get("FIFTYONE_PLUGINS_DIR")
    if not theirs or os.path.abspath(theirs) == ours:
        os.environ["FIFTYONE_PLUGINS_DIR"] = ours
        return ours
    link = os.path.join(theirs, "rorem-data-review")
    if not os.path.exists(link):
        os.makedirs(theirs, exist_ok=True)
        try:
            os.symlink(os.path.join(ours, "review"), link)
        except OSError:
            shutil.copytree(os.path.join(ours, "review"), link)
    return theirs


def port_is_free(address: str, port: int) -> bool:
    """True if nothing listens on ``address:port``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((address, port)) != 0


def launch_review(project, round: int, *, port: int = 5151, address: str = "127.0.0.1",
                  reviewer: str | None = None, adjudicate: bool = False, wait: bool = True):
    """Launch the App on the round's review queue.

    Parameters
    ----------
    port : int
        Must be free: each reviewer runs their own App server (the server records its
        reviewer's name with every judgment).
    address : str
        Interface to bind; 127.0.0.1 by default (only this machine can connect). Use SSH port
        forwarding to review from elsewhere.
    reviewer : str, optional
        Name recorded with every judgment (default: ROREM_REVIEWER or the login name).
    adjudicate : bool
        Open the disagreements of the round; judgments made here are final.
    wait : bool
        Block until interrupted (the CLI); False returns the session.

    Raises
    ------
    ConfigError
        No queue for the round, or the port is taken (by another reviewer's App, perhaps).
    """
    from rorem_data.dataset.queues import review_view

    if not port_is_free(address, port):
        raise ConfigError(f"port {port} on {address} is already in use - perhaps another reviewer's "
                          "App; their server would record your judgments under their name. Pass "
                          "another port (e.g. port=5152; --port 5152) for your own App")
    enable_plugin()
    if reviewer:
        os.environ["ROREM_REVIEWER"] = reviewer
    os.environ["ROREM_ADJUDICATE"] = "1" if adjudicate else "0"
    import fiftyone as fo

    view = review_view(project.dataset, round, adjudicate=adjudicate)
    ds = project.dataset
    if ds.app_config.modal_media_field != "preview_path" or not ds.app_config.media_fallback:
        ds.app_config.grid_media_field = "preview_path"
        ds.app_config.modal_media_field = "preview_path"
        ds.app_config.media_fallback = True
        ds.save()
    from rorem_data.core.progress import in_notebook

    # FiftyOne refuses "remote" sessions in a notebook; there a local one with auto=False
    # serves the same App on the same address without opening anything
    session = fo.launch_app(view, port=port, address=address, remote=not in_notebook(), auto=False)
    url = f"http://{address}:{port}/datasets/{ds.name}"
    print(f"Reviewing round {round} ({view.count()} candidates) as {os.environ.get('ROREM_REVIEWER') or 'you'} "
          f"at {url}\nOpen a candidate, then: y accept, n reject, 1-5 reject with a reason, u undo. "
          "Ctrl-C ends.", flush=True)
    if wait:
        session.wait(-1)
    return session


_SESSIONS: dict = {}  # (dataset, round, port) -> an App session left open (a notebook)


def review_in_app(project, round: int, *, purposes=None, reviewer_name: str | None = None,
                  port: int = 5151, address: str = "127.0.0.1", poll: float = 2.0,
                  timeout: float | None = None, block: bool = True) -> dict:
    """The ``"app"`` reviewer of :func:`rorem_data.rounds.review.reviewers.review`: open the App on the
    round's queue and wait until every open item (of ``purposes``) has a human verdict.

    Ctrl-C stops waiting (the judgments so far are stored; the round resumes where it was).
    With ``block=False`` (a notebook) the App stays open and this returns at once; a second
    call for the same round and port finds that App instead of opening another.
    Returns ``{"open": n, "url": ...}`` with what is still open when it returns.
    """
    import time

    from rorem_data.rounds.review.reviewers import open_items

    url = f"http://{address}:{port}/datasets/{project.dataset_name}"
    key = (project.dataset_name, int(round), int(port))
    if not block:
        left = open_items(project, round, purposes=purposes)
        if left and key not in _SESSIONS:
            _SESSIONS[key] = launch_review(project, round, port=port, address=address,
                                           reviewer=reviewer_name, wait=False)
        elif not left and key in _SESSIONS:
            _close(_SESSIONS.pop(key))
        return {"open": len(left), "url": url}
    session = _SESSIONS.pop(key, None) or launch_review(project, round, port=port, address=address,
                                                        reviewer=reviewer_name, wait=False)
    start = time.monotonic()
    try:
        left = open_items(project, round, purposes=purposes)
        shown = None
        while left:
            if len(left) != shown:
                print(f"  {len(left)} candidates left to judge in round {round}", flush=True)
                shown = len(left)
            if timeout is not None and time.monotonic() - start > timeout:
                break
            time.sleep(poll)
            left = open_items(project, round, purposes=purposes)
    finally:
        _close(session)
    return {"open": len(left), "url": url}


def _close(session) -> None:
    """Close an App session; a notebook session that was never shown has no cell to freeze,
    which FiftyOne reports as "Client is not connected": close its client directly."""
    session._disable_wait_warning = True
    try:
        session.close()
    except RuntimeError:
        session.__del__()
