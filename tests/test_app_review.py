"""A real browser drives the FiftyOne App: review candidates through the plugin's keys and panel.

Headless Debian Chromium, driven by Playwright (no browser download). The App is started by the
real `rorem-data review` command in its own process group; every App process is ended by PID.
"""

import os
import sys
import time

import pytest

from helpers import add_candidates
from rorem_data.testing.app_process import CHROMIUM_ARGS, AppProcess, chromium_path, free_port, poll

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = chromium_path()


def _poll(fn, timeout=20):
    return poll(fn, timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_review_in_the_app_with_keys_and_panel(project, tmp_path):
    from playwright.sync_api import sync_playwright

    from rorem_data.rounds.review.queue import build_queue

    ids, modes = add_candidates(project, 1, ["clean", "residue", "blur", "clean"], seed=11)
    sel = build_queue(project, 1, 4, strategy="random", rng=0)
    ds = project.dataset
    coll = ds._sample_collection
    from bson import ObjectId

    def stored(sid):
        return coll.find_one({"_id": ObjectId(sid)}, {"status": 1, "decision": 1, "reviews": 1})

    port = free_port()
    env = dict(os.environ)
    app = AppProcess([sys.executable, "-m", "rorem_data.cli", "-p", project.root, "review", "--round", "1",
                      "--port", str(port), "--reviewer", "e2e"], env)
    try:
        app.wait_http(f"http://127.0.0.1:{port}/", timeout=120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pg = browser.new_page(viewport={"width": 1400, "height": 900})
            pg.add_init_script("window.IS_PLAYWRIGHT = true")
            first = sel.sample_ids[0]
            pg.goto(f"http://127.0.0.1:{port}/datasets/{ds.name}?id={first}")
            pg.wait_for_function("window.__roremReviewHotkeys__ === true", timeout=90_000)
            pg.wait_for_selector("[data-cy=modal]", timeout=60_000)
            time.sleep(1.0)
            shot = tmp_path / "review.png"
            pg.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000

            def current():
                return pg.evaluate("new URLSearchParams(window.location.search).get('id')")

            # 1) key y accepts the open candidate and the modal moves to the next one
            assert _poll(lambda: current() == first)
            pg.keyboard.press("y")
            d = _poll(lambda: (stored(first)["status"] == "accepted") and stored(first))
            assert d and d["decision"]["reviewer"] == "e2e" and d["decision"]["by"] == "human"
            # the key handler recorded when the candidate was shown: time per decision
            r = d["reviews"][-1]
            assert r["shown_at"] is not None and 0 <= (r["at"] - r["shown_at"]).total_seconds() < 120
            second = sel.sample_ids[1]
            assert _poll(lambda: current() == second)
            # 2) key 2 rejects with the reason "hallucinated_object"
            pg.keyboard.press("2")
            d = _poll(lambda: (stored(second)["status"] == "rejected") and stored(second))
            assert d and d["decision"]["reason"] == "hallucinated_object"
            third = sel.sample_ids[2]
            assert _poll(lambda: current() == third)
            # 3) the Review panel's button rejects with a reason too
            pg.locator("[data-cy=panel-tab-review_panel]").click()
            pg.get_by_role("button", name="3  Reject: Blurry or smeared fill").click()
            d = _poll(lambda: (stored(third)["status"] == "rejected") and stored(third))
            assert d and d["decision"]["reason"] == "blurry_fill"
            assert stored(sel.sample_ids[3])["status"] == "pending"
            browser.close()
    finally:
        left = app.stop()
    assert left == [], f"App processes outlived the test: {left}"
