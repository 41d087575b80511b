"""Launching the FiftyOne App on a review queue, bound to 127.0.0.1, with our plugin loaded."""

from __future__ import annotations

import os
import shutil

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


def review_view(project, round: int, *, adjudicate: bool = False):
    """The round's review queue (or adjudication view) as a FiftyOne view."""
    from rorem_data.rounds import review
    from rorem_data.core.errors import ConfigError

    ds = project.dataset
    name = review.adjudication_view_name(round) if adjudicate else review.queue_view_name(round)
    if not ds.has_saved_view(name):
        raise ConfigError(f"round {round} has no review queue yet; run `rorem-data select --round "
                          f"{round} --budget B` first")
    return ds.load_saved_view(name)


def launch_review(project, round: int, *, port: int = 5151, address: str = "127.0.0.1",
                  reviewer: str | None = None, adjudicate: bool = False, wait: bool = True):
    """Launch the App on the round's review queue.

    Parameters
    ----------
    port : int
    address : str
        Interface to bind; 127.0.0.1 by default (only this machine can connect). Use SSH port
        forwarding to review from elsewhere.
    reviewer : str, optional
        Name recorded with every judgment (default: ROREM_REVIEWER or the login name).
    adjudicate : bool
        Open the disagreements of the round; judgments made here are final.
    wait : bool
        Block until interrupted (the CLI); False returns the session.
    """
    enable_plugin()
    if reviewer:
        os.environ["ROREM_REVIEWER"] = reviewer
    os.environ["ROREM_ADJUDICATE"] = "1" if adjudicate else "0"
    import fiftyone as fo

    view = review_view(project, round, adjudicate=adjudicate)
    ds = project.dataset
    if ds.app_config.modal_media_field != "preview_path" or not ds.app_config.media_fallback:
        ds.app_config.grid_media_field = "preview_path"
        ds.app_config.modal_media_field = "preview_path"
        ds.app_config.media_fallback = True
        ds.save()
    session = fo.launch_app(view, port=port, address=address, remote=True, auto=False)
    url = f"http://{address}:{port}/datasets/{ds.name}"
    print(f"Reviewing round {round} ({view.count()} candidates) at {url}\n"
          "Open a candidate, then: y accept, n reject, 1-5 reject with a reason, u undo. Ctrl-C ends.",
          flush=True)
    if wait:
        session.wait(-1)
    return session
