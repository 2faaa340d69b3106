"""Every console page with its recent window full: 10,000 results, in a real browser.

The window is filled the honest way: 5,521 records through the real broker and a real worker
(``console_scenario.window_fill``: comments with two results each, 10 % beyond the window so the
oldest are evicted, a review item every fifth, 20 dead letters, one video produced 40 % of the
way in), about 10 s of classification on two cores. Then each page, with content asserted: the
live page holds the newest results and its filters and stream work, the review queue counts all
1,100 open items and shows the oldest page of them (a keyboard verdict takes one off and the
page refills), dead letters, the video found in the middle of the window, models and jobs.
How fast each page loads at this size is measured, not asserted: ``make bench-console``
(``bench/console_pages.py``, bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.devtools import browser as chromium
from app.devtools import console_scenario as sc

pytestmark = pytest.mark.kafka
KEY = "console-window-key-0123456789"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WINDOW = 10_000


async def test_every_page_with_ten_thousand_results_in_the_window(stack, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    w = stack.worker(LABELSTREAM_API_KEYS=KEY, LABELSTREAM_CONSOLE_WINDOW=str(WINDOW))
    await stack.produce("training", sc.training())
    await stack.wait_ready(w, min_training=len(sc.training()))
    base = f"http://127.0.0.1:{w.web_port}/console"

    records = sc.window_fill(WINDOW)
    comments = [k for t, k, _ in records if t == "objects" and not k.startswith("fill-bad")]
    reviews = {k for k in comments if int(k.split("-")[1]) % 5 == 0}
    expected = 2 * len(comments) + 1  # two results per comment, one for the video
    assert expected > WINDOW and len(reviews) == 1_100
    async with aiohttp.ClientSession(cookies={"labelstream_console_key": KEY}) as http:
        async def api(path: str) -> dict:
            async with http.get(f"{base}/api/{path}") as r:
                assert r.status == 200, (path, r.status)
                return await r.json()

        # The console is open while the window fills (its feed tails the outputs only while it is in use;
        # opened later, it would read the last 10,000 results afresh and "seen" could not count every one).
        await api("overview")
        # In record order: objects and media are separate topics (separate lanes), so the video is sent once
        # the results of the comments before it are in, and the rest after its result: it then sits where the
        # scenario puts it, older than the newest thousand results and inside the window.
        deadline = time.monotonic() + 180
        cut = next(i for i, (t, _, _) in enumerate(records) if t == "media")

        async def seen_results(n: int) -> None:
            while (await api("overview"))["seen"].get("results", 0) < n:
                assert time.monotonic() < deadline, f"the console saw fewer than {n} results:\n{w.tail()}"
                await asyncio.sleep(0.2)

        await stack.produce("objects", [(k, v) for _, k, v in records[:cut]])
        await seen_results(2 * cut)
        await stack.produce("media", [(k, v) for _, k, v in records[cut:cut + 1]])
        await seen_results(2 * cut + 1)
        await stack.produce("objects", [(k, v) for _, k, v in records[cut + 1:]])
        while (seen := (await api("overview"))["seen"]).get("results", 0) < expected or seen.get("deadletter", 0) < 20:
            assert time.monotonic() < deadline, f"the console saw {seen}, expected {expected} results:\n{w.tail()}"
            await asyncio.sleep(0.5)
        assert seen["results"] == expected and seen["moderation"] == len(reviews)
        queue = await api("review")
    stamps = [e["source"]["timestamp"] for e in queue["queue"]]
    assert queue["open"] == len(reviews) and len(stamps) == 100 and stamps == sorted(stamps)

    wait = WebDriverWait(browser, 30, poll_frequency=0.1)

    def text(css: str) -> str:
        return chromium.text(browser, css)

    def rows() -> list[str]:
        return browser.execute_script("return [...document.querySelectorAll('#rows tr')].map(r => r.dataset.id)")

    def shot(name: str) -> None:
        browser.save_screenshot(str(SHOTS / f"window-{name}.png"))

    # Overview: the whole fill counted in and out, the dead letters by reason.
    chromium.login(browser, base, KEY, "lead")
    wait.until(lambda b: int(text("#total-out").replace(",", "") or 0) >= expected + 20)
    assert int(text("#total-in").replace(",", "")) >= len(records) + len(sc.training())
    assert "invalid_json20" in text(".cards").replace(" ", "")
    shot("overview")

    # Live: the window's newest 200 rows; the item filter typed into the form; the stream on top of a full window.
    browser.get(f"{base}/live")
    wait.until(lambda b: len(rows()) == 200)
    assert text("#count").startswith(f"{WINDOW:,} results in the recent window")
    assert all(r.startswith("fill-") and r.endswith(("/tone", "/tone-knn")) for r in rows())
    assert not {r.split("/")[0] for r in rows()} & {f"fill-{i}" for i in range(100)}, "the oldest are not the newest"
    shot("live")
    browser.find_element(By.NAME, "item").send_keys("fill-4999")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait.until(lambda b: "item=fill-4999" in b.current_url and sorted(rows()) == ["fill-4999/tone", "fill-4999/tone-knn"])
    browser.find_element(By.CSS_SELECTOR, 'tr[data-id="fill-4999/tone-knn"]').click()
    wait.until(lambda b: "kNN neighbours" in text("#detail") and "seed-calm" in text("#detail"))
    browser.get(f"{base}/live?action=review")
    wait.until(lambda b: len(rows()) == 200)
    assert {r.split("/")[0] for r in rows()} <= reviews and text("#rows .tag") == "review"
    assert {chromium.text(browser, f'tr[data-id="{r}"] .tag') for r in rows()} == {"review"}
    browser.get(f"{base}/live")
    wait.until(lambda b: len(rows()) == 200)
    await stack.produce("objects", [sc.comment("after-fill", sc.calm_vector(7))])
    wait.until(lambda b: rows()[:2] and {r.split("/")[0] for r in rows()[:2]} == {"after-fill"})
    assert len(rows()) == 200

    # Review: all 1,100 open counted, the oldest 100 shown in order; a keyboard verdict takes the first off and
    # the page refills to 100 from the rest.
    browser.get(f"{base}/review")
    wait.until(lambda b: text("#qcount") == "1,100 open")
    assert text("#qshown") == " · the oldest 100 shown"
    items = browser.execute_script("return [...document.querySelectorAll('#queue .item')].map(e => e.dataset.id)")
    assert items == [e["id"] for e in queue["queue"]]
    assert browser.find_element(By.CSS_SELECTOR, "#queue .item.sel").get_attribute("data-id") == items[0]
    shot("review")
    browser.find_element(By.TAG_NAME, "body").send_keys("c")
    wait.until(lambda b: text("#qcount") == "1,099 open")
    got = await stack.collect("feedback", 1, timeout=30)
    fb = got[0][1]
    # (the oldest items' results have left the window: the verdict is made from the hit and the classifier)
    assert (fb["item_id"], fb["result_id"], fb["classifier"], fb["taxonomy"]["name"], fb["verdict"]) == \
        (items[0].split("|")[0], items[0].split("|")[0] + "/tone", "tone", "tone", "confirm")
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#queue .item")) == 100)
    assert browser.find_element(By.CSS_SELECTOR, "#queue .item").get_attribute("data-id") == items[1]

    # Dead letters: the reason with its 20, each one listed.
    browser.get(f"{base}/dead")
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#deadlist tr.click")) == 20)
    assert "invalid_json 20" in text("#reasons")
    shot("dead")

    # Media: the video, 6,000 results before the newest, listed and its timeline drawn.
    browser.get(f"{base}/media")
    link = wait.until(lambda b: b.find_element(By.LINK_TEXT, "fill-video"))
    link.click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "svg.timeline polyline"))
    assert "fill-video/clip-tone" in text("main h2")

    # Models and jobs: unchanged by the window, drawn.
    browser.get(f"{base}/models")
    wait.until(lambda b: "tone-knn" in text("main table"))
    browser.get(f"{base}/jobs")
    wait.until(lambda b: b.find_elements(By.ID, "jobform") and b.find_elements(By.CSS_SELECTOR, "#jobs table"))
