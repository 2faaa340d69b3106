"""The console in a real browser (headless Chromium via Selenium) against a real worker and broker.

One worker, one browser, one scenario (app/devtools/console_scenario.py), in order: the login
refuses a bad key; the overview shows live numbers; a produced object's result appears on the
live page; a reviewer clears 50 review items with the keyboard alone; the overview's online
accuracy equals the one computed directly from the feedback topic; a trusted reviewer's confirm
becomes a training example that changes the kNN label of the next near-identical object, and
retracting it changes it back; a dead letter is inspected, a bad correction is refused on the
page, a good one re-published. Screenshots of each page go to var/screenshots/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from app.classify.accuracy import Accuracy
from app.devtools import console_scenario as sc
from app.schemas.feedback import Feedback

pytestmark = pytest.mark.kafka
KEY = "console-test-key-0123456789"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


async def knn_label(stack, item_id: str) -> tuple[str | None, list[str]]:
    got = await stack.collect("results", 1, timeout=30,
                              where=lambda k, v: v.get("result_id") == f"{item_id}/tone-knn")
    assert got, f"no kNN result for {item_id}"
    r = got[0][1]
    return r["labels"]["tone"], [n["id"] for n in r["detail"]["knn"]["tone"]["neighbours"]]


async def test_console_in_a_browser(stack, browser):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    SHOTS.mkdir(parents=True, exist_ok=True)
    w = stack.worker(LABELSTREAM_API_KEYS=KEY)
    await stack.produce("training", sc.training())
    await stack.wait_ready(w, min_training=len(sc.training()))
    base = f"http://127.0.0.1:{w.web_port}/console"
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)

    def text(css: str) -> str:
        # one script call: pages re-render (no stale element between find and read); textContent: not CSS-transformed
        return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", css)

    def shot(name: str) -> None:
        browser.save_screenshot(str(SHOTS / f"{name}.png"))

    # Nothing without a key: pages go to the login, the API answers 401.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/overview") as r:
            assert r.status == 401
        async with http.get(base, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/console/login"
        async with http.post(f"{base}/login", data={"key": "wrong-key-0123456789", "reviewer": "lead"}) as r:
            assert r.status == 401 and "not valid" in await r.text()

    browser.get(base)
    assert browser.current_url.endswith("/console/login")
    browser.find_element(By.NAME, "key").send_keys("wrong-key-0123456789")
    browser.find_element(By.NAME, "reviewer").send_keys("lead")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "not valid" in wait.until(lambda b: b.find_element(By.ID, "msg")).text
    browser.find_element(By.NAME, "key").send_keys(KEY)
    browser.find_element(By.NAME, "reviewer").send_keys("lead")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: b.find_element(By.ID, "rate-in"))

    # Overview: live numbers (every input record counts in, every result out).
    await stack.produce("objects", [sc.comment("near-before", sc.review_vector(1) + 1e-4)])
    await stack.produce("objects", [sc.comment(f"calm{i}", sc.calm_vector(i)) for i in range(30)])
    wait.until(lambda b: int(text("#total-in").replace(",", "")) >= 35 and int(text("#total-out").replace(",", "")) >= 62)
    assert text("#restarts") == "0"
    shot("overview")
    label, _ = await knn_label(stack, "near-before")
    assert label == "calm", "before any verdict, the near-identical object is calm (the only example)"

    # Live results: an object produced now appears through the stream; a click shows its full result.
    browser.get(f"{base}/live?classifier=tone")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#rows tr"))
    await stack.produce("objects", [sc.comment("live-1", sc.calm_vector(99))])
    row = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, 'tr[data-id="live-1/tone"]'))
    row.click()
    wait.until(lambda b: "live-1/tone" in text("#detail h3"))
    browser.find_element(By.CSS_SELECTOR, "#detail form.verdict button[type=submit]").click()  # relabel, no label
    wait.until(lambda b: "needs 'label'" in text("#msg"))
    shot("live")

    # Review queue: 51 items, cleared with the keyboard alone (a reject of the oldest, 50 confirms), oldest first.
    await stack.produce("objects", [sc.comment(f"r{i}", sc.review_vector(i)) for i in range(50)])
    browser.get(f"{base}/review")
    wait.until(lambda b: text("#qcount") == "51 open")  # near-before is a review item too
    first = browser.find_element(By.CSS_SELECTOR, "#queue .item.sel").get_attribute("data-id")
    assert first == "near-before|tone", "oldest first"
    shot("review")
    body = browser.find_element(By.TAG_NAME, "body")
    started = time.monotonic()
    body.send_keys("x" + "c" * 50)  # as fast as a person holding the key: each press takes the next item
    WebDriverWait(browser, 30, poll_frequency=0.1).until(lambda b: text("#qcount") == "0 open")
    cleared = time.monotonic() - started

    feedback = await stack.collect("feedback", 51, timeout=30)
    assert len(feedback) == 51
    verdicts = [Feedback.model_validate(v) for _, v in feedback]
    assert sorted(f.verdict for f in verdicts).count("reject") == 1 and {f.reviewer for f in verdicts} == {"lead"}
    assert {f.item_id for f in verdicts} == {f"r{i}" for i in range(50)} | {"near-before"}
    assert [f.item_id for f in verdicts if f.verdict == "reject"] == ["near-before"]
    assert all(f.taxonomy is not None and f.taxonomy.version == 1 and f.decision.action == "review" for f in verdicts)

    # Online accuracy on the overview == the fold over the feedback topic, read directly.
    direct = Accuracy()
    for f in verdicts:
        direct.add(f)
    expected = direct.precision()[("tone", "tone@1")]["review"]
    assert expected == {"judged": 51, "confirmed": 50, "precision": round(50 / 51, 4)}
    browser.get(base)
    cell = '#accuracy tr[data-classifier="tone"][data-version="tone@1"][data-action="review"]'
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, cell) and text(cell + " .judged") == "51")
    assert (text(cell + " .confirmed"), text(cell + " .precision")) == ("50", f"{expected['precision']:.4f}")
    shot("overview-accuracy")

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.get(f"http://127.0.0.1:{w.web_port}/metrics") as r:
            metrics = await r.text()
    assert ('labelstream_feedback_precision{action="review",classifier="tone",version="tone@1"} '
            f'{expected["precision"]}') in metrics

    # The trusted reviewer's confirm of r1 is a training example: the next near-identical object is toxic,
    # its nearest neighbour the learned example (traceable by id); a retraction removes it again.
    async def probe(name: str) -> tuple[str | None, list[str]]:
        await stack.produce("objects", [sc.comment(name, sc.review_vector(1) + 1e-4)])
        return await knn_label(stack, name)

    # the examples travel feedback -> agent -> training topic -> training table -> every replica
    deadline = time.monotonic() + 20
    while (found := await probe(f"near-after-{time.monotonic_ns()}"))[1] != ["feedback/r1/tone"] \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert found == ("toxic", ["feedback/r1/tone"])
    async with aiohttp.ClientSession(cookies={"labelstream_console_key": KEY}) as http:
        async with http.post(f"{base}/api/retract", json={"result_id": "r1/tone", "property": "tone"}) as r:
            assert r.status == 200, await r.text()
    deadline = time.monotonic() + 20
    while (found := await probe(f"near-retracted-{time.monotonic_ns()}"))[1] == ["feedback/r1/tone"] \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    label, neighbours = found
    # r1's example is gone; the nearest is now r8's (the same vector but for a 0.007 offset), also confirmed
    assert (label, neighbours) == ("toxic", ["feedback/r8/tone"])

    # Dead letters: inspect one, a bad correction is refused on the page, a good one is re-published.
    await stack.produce("objects", [("bad-1", b'{"id": "bad-1", "class": "Comment"')])
    browser.get(f"{base}/dead")

    def inspect_first(b) -> bool:  # the list refreshes every 2 s: a row found may be replaced before the click
        try:
            b.find_element(By.CSS_SELECTOR, "#deadlist tr.click").click()
            return bool(b.find_elements(By.NAME, "value"))
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    wait.until(inspect_first)
    area = wait.until(lambda b: b.find_element(By.NAME, "value"))
    area.send_keys("}}")
    browser.find_element(By.CSS_SELECTOR, "#detail button[type=submit]").click()
    wait.until(lambda b: "not valid JSON" in text("#msg"))
    area.clear()
    area.send_keys('{"id": "bad-1", "class": "Comment", "vector": [1, 0.1, 0, 0]}')
    browser.find_element(By.CSS_SELECTOR, "#detail button[type=submit]").click()
    wait.until(lambda b: "re-published to objects" in text("#msg"))
    shot("deadletters")
    fixed = await stack.collect("results", 1, timeout=30, where=lambda k, v: v.get("result_id") == "bad-1/tone")
    assert fixed and fixed[0][1]["labels"]["tone"] == "calm"

    # A new taxonomy version: both versions are on the training topic, the models page diffs them.
    v2 = {**sc.TAXONOMY, "version": 2, "classes": [sc.TAXONOMY["classes"][0],
                                                   {**sc.TAXONOMY["classes"][1], "prompts": ["an insult", "a slur"],
                                                    "prompt_vectors": [[0, 1, 0, 0], [0, 1, 0, 0]]}]}
    await stack.produce("training", [("taxonomy:tone", v2)])
    async with aiohttp.ClientSession(cookies={"labelstream_console_key": KEY}) as http:
        deadline = time.monotonic() + 20
        while True:
            async with http.get(f"{base}/api/models") as r:
                tone = (await r.json())["taxonomies"]["tone"]
                if (tone["versions"], tone["current"]) == ([1, 2], 2) or time.monotonic() > deadline:
                    break
            await asyncio.sleep(0.2)
        async with http.get(f"{base}/api/diff?name=tone&from=1&to=2") as r:
            d = await r.json()
    assert d["changed"] == {"toxic": {"prompts": {"added": ["a slur"], "removed": []}}} and d["added"] == []
    browser.get(f"{base}/models")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "form.inline select[name=from] option"))
    browser.find_element(By.CSS_SELECTOR, "form.inline button").click()
    wait.until(lambda b: "a slur" in text("main pre"))

    # Media result: a video's per-class scores over time with its clip marked, and the per-frame table.
    await stack.produce("media", [sc.video("v1")])
    assert await stack.collect("results", 1, timeout=30, where=lambda k, v: v.get("result_id") == "v1/clip-tone")
    browser.get(f"{base}/media?id=v1/clip-tone")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "svg.timeline polyline"))
    clips = browser.execute_script("return [...document.querySelectorAll('main table')[0].querySelectorAll('tbody tr')]"
                                   ".map(r => [...r.cells].slice(0, 3).map(c => c.textContent))")
    assert sorted(clips) == [["calm", "0", "8"], ["calm", "16", "20"], ["toxic", "8", "16"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline rect")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline polyline")) == 2  # one line per class
    assert len(browser.find_elements(By.CSS_SELECTOR, "main table")[1].find_elements(By.CSS_SELECTOR, "tbody tr")) == 10
    shot("media")

    # Jobs: started from the form (Weaviate's POST /v1/classifications), listed with its status; bad input refused.
    browser.get(f"{base}/jobs")
    form = wait.until(lambda b: b.find_element(By.ID, "jobform"))
    for name, value in (("class", "Comment"), ("classifyProperties", "tone"), ("basedOnProperties", "text")):
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    job_id = wait.until(lambda b: (m := text("#msg")).startswith("job ") and m.split()[1])
    wait.until(lambda b: job_id in text("#jobs tbody"))
    k = form.find_element(By.NAME, "k")
    k.clear()
    k.send_keys("0")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: "'settings.k' must be an integer" in text("#msg"))
    shot("jobs")

    # Every page draws (how fast, with a full window: make bench-console), and bad input is refused with a 4xx
    # and a message.
    for page in ("models", "media", "jobs", "", "live", "review", "dead"):  # screenshots: var/screenshots/
        browser.get(f"{base}/{page}".rstrip("/"))
        wait.until(lambda b: b.execute_script("return performance.getEntriesByName('console:rendered').length"))
        shot(f"page-{page or 'overview'}")
    async with aiohttp.ClientSession(cookies={"labelstream_console_key": KEY}) as http:
        for path, body, status, words in [
            ("verdict", {"hit_id": "r2|tone", "verdict": "relabel"}, 400, "needs 'label'"),
            ("verdict", {"hit_id": "nope|tone", "verdict": "confirm"}, 404, "no moderation hit"),
            ("verdict", [1], 400, "JSON object"),
            ("republish", {"topic": "results", "value": "{}"}, 400, "topic must be one of"),
            ("jobs", {"class": "Comment", "classifyProperties": [], "type": "knn"}, 400, "classifyProperties"),
        ]:
            async with http.post(f"{base}/api/{path}", json=body) as r:
                got = await r.json()
                assert r.status == status and words in got["message"], (path, r.status, got)
        async with http.get(f"{base}/api/results?action=maybe") as r:
            assert r.status == 400 and "action" in (await r.json())["message"]
        async with http.get(f"{base}/api/diff?name=tone&from=1&to=x") as r:
            assert r.status == 400
    print(f"\n51 review items cleared with the keyboard in {cleared:.1f} s")
