"""The review App at scale: a real browser on a round's queue, timed.

``rorem-data review`` runs in its own process group (as ``tests/test_app_review.py`` does);
Debian's Chromium is driven headless by Playwright's Python package (``executable_path``, no
browser download). Measured, after the server answers HTTP:

* **first modal**: from ``page.goto(<dataset URL>?id=<first queued candidate>)`` - the link a
  reviewer opens for the queue's first item - until the sample modal (``[data-cy=modal]``) is
  visible with its media drawn, and until the review plugin's keys are live
  (``window.__roremReviewHotkeys__``);
* **grid**: the same URL without ``?id``: until the first grid tile is visible (what a reviewer
  sees first when opening the printed URL);
* **judgments**: for each of ``judgments`` candidates, from the ``y``/``n`` key press until the
  database shows the judgment (the sample's review history holds this reviewer's new entry;
  polled every 10 ms through ``rorem_data.dataset.queries.review_state``), and until the App
  has opened the next candidate (the ``id`` in the URL changed).

The queue's items already carry the simulated reviewer's verdicts, so the App's reviewer
(``paper-app``) presses the key that agrees with each item's current status: a second human
judgment that leaves every status, and the exported set, as they were. Every App process is
ended by PID at the end.
"""

from __future__ import annotations

import os
import sys
import time

from rorem_data.testing.app_process import CHROMIUM_ARGS, AppProcess, chromium_path, free_port, poll

APP_REVIEWER = "paper-app"


# a modal "with its media drawn": the looker's canvas (or an <img>) inside the modal has a size
_MODAL_DRAWN = """() => {
  const m = document.querySelector('[data-cy=modal]');
  if (!m) return false;
  const c = m.querySelector('canvas, img');
  return !!c && c.getBoundingClientRect().width > 50;
}"""


def measure_review_app(project_root: str, *, round: int = 1, judgments: int = 10,
                       timeout: float = 120) -> dict:
    """Open ``round``'s review queue in headless Chromium and time the first modal and
    ``judgments`` key-press judgments. Returns the figures (seconds) and what was measured."""
    from playwright.sync_api import sync_playwright

    import rorem_data
    from rorem_data.dataset import queries

    chromium = chromium_path()
    if chromium is None:
        return {"status": "not run: Debian's chromium is not installed (apt-get install chromium)"}
    project = rorem_data.open_project(project_root)
    ds = project.dataset
    queue = queries.queue_members(ds, round, ["status"])
    if len(queue) < judgments + 1:
        return {"status": f"not run: round {round}'s queue has {len(queue)} items"}
    ids = [d["id"] for d in queue]
    position = {sid: i for i, sid in enumerate(ids)}
    status_of = {d["id"]: d.get("status") for d in queue}

    port = free_port()
    env = dict(os.environ, FIFTYONE_DO_NOT_TRACK="true")
    t_launch = time.monotonic()
    app = AppProcess([sys.executable, "-m", "rorem_data.cli", "-p", project.root, "review",
                      "--round", str(round), "--port", str(port), "--reviewer", APP_REVIEWER], env)
    base = f"http://127.0.0.1:{port}"
    out: dict = {"status": "ok", "queue_size": len(ids), "dataset_samples": ds.count(),
                 "port": port}
    try:
        app.wait_http(base + "/", timeout=180)
        out["http_seconds"] = time.monotonic() - t_launch
        with sync_playwright() as p:
            t = time.monotonic()
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            out["browser_launch_seconds"] = time.monotonic() - t
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.add_init_script("window.IS_PLAYWRIGHT = true")

            # grid: the printed URL, until the first tile shows
            t = time.monotonic()
            page.goto(f"{base}/datasets/{ds.name}")
            page.wait_for_selector("[data-cy=looker], [data-cy=flashlight-section]",
                                   timeout=timeout * 1000, state="visible")
            out["grid_first_tile_seconds"] = time.monotonic() - t

            # first modal: the queue's first candidate, by link
            t = time.monotonic()
            page.goto(f"{base}/datasets/{ds.name}?id={ids[0]}")
            page.wait_for_selector("[data-cy=modal]", timeout=timeout * 1000, state="visible")
            out["first_modal_visible_seconds"] = time.monotonic() - t
            page.wait_for_function(_MODAL_DRAWN, timeout=timeout * 1000)
            out["first_modal_drawn_seconds"] = time.monotonic() - t
            page.wait_for_function("window.__roremReviewHotkeys__ === true", timeout=timeout * 1000)
            out["first_modal_keys_ready_seconds"] = time.monotonic() - t

            def current():
                return page.evaluate("new URLSearchParams(window.location.search).get('id')")

            def app_reviews(sid):
                d = queries.review_state(ds, sid) or {}
                return sum(1 for r in d.get("reviews") or [] if r and r.get("reviewer") == APP_REVIEWER)

            rows = []
            for _ in range(judgments):
                sid = poll(current, timeout, every=0.01)
                if sid not in position:
                    raise RuntimeError(f"the App shows {sid!r}, not a candidate of round {round}'s queue")
                key = "y" if status_of[sid] == "accepted" else "n"
                before = app_reviews(sid)
                t = time.monotonic()
                page.keyboard.press(key)
                if not poll(lambda: app_reviews(sid) > before, timeout, every=0.01):
                    raise RuntimeError(f"key {key!r} on {sid}: no judgment stored within {timeout} s")
                stored = time.monotonic() - t
                nxt = poll(lambda: current() != sid and current(), timeout, every=0.01)
                advanced = time.monotonic() - t
                state = queries.review_state(ds, sid) or {}
                rows.append({"sample_id": sid, "queue_position": position[sid], "key": key,
                             "stored_seconds": stored, "next_opened_seconds": advanced,
                             "status_after": state.get("status"), "next_id": nxt})
            out["judgments"] = rows
            shot = os.path.join(project.root, "app-review.png")
            page.screenshot(path=shot)
            out["screenshot"] = shot
            browser.close()
    finally:
        left = app.stop()
        out["app_pids"] = sorted(app.pids)
        out["app_pids_alive_after_stop"] = left
    st = [r["stored_seconds"] for r in out.get("judgments", [])]
    if st:
        out["stored_max_seconds"] = max(st)
        out["stored_median_seconds"] = sorted(st)[len(st) // 2]
    return out
