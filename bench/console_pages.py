"""Console page load times in headless Chromium with the recent window full (10,000 results).

A fresh deployment (its own topics on ``LABELSTREAM_BROKER``, else the local broker, started and
stopped here), one worker with an API key, the console scenario's classifiers
(``app/devtools/console_scenario.py``), then ``window_fill``: comments through the real broker and
worker until the console's window holds ``--results`` results (10 % more are produced, so the
window is full and evicting), a review item every fifth comment, dead letters and one video.

Per page, ``--runs`` navigations in one logged-in headless Chromium (Debian's, ``make browser``),
from the browser's navigation timing: ``responseEnd`` (the HTML), ``domContentLoaded`` and
``load`` (the shell and its script), and the console's own marks: ``rendered`` (the page's data
fetched and drawn: ``console:rendered``) and, on the live page, the first result row
(``console:first-row``). Also each page's JSON endpoint timed from a plain HTTP client, and the
latency of a result produced while the live page is open (send → its row on the page).

    .venv/bin/python bench/console_pages.py --write          # make bench-console
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import aiohttp  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from app.devtools import browser as chromium  # noqa: E402
from app.devtools import console_scenario as sc  # noqa: E402
from app.devtools import localkafka  # noqa: E402
from app.devtools.stack import deployment  # noqa: E402
from results import write_section  # noqa: E402

SECTION = "## Console pages with a full window (issue 13)"
KEY = "bench-console-key-0123456789"
# (page, its URL under /console, the JSON endpoint it loads first)
PAGES = [
    ("overview", "", "api/overview"),
    ("live", "/live", "api/results"),
    ("live, action=review", "/live?action=review", "api/results?action=review"),
    ("live, item=fill-4999", "/live?item=fill-4999", "api/results?item=fill-4999"),
    ("review", "/review", "api/review?actions=review"),
    ("dead letters", "/dead", "api/dead"),
    ("models", "/models", "api/models"),
    ("media (recent)", "/media", "api/media"),
    ("media (a video)", "/media?id=fill-video/clip-tone", "api/media?id=fill-video/clip-tone"),
    ("jobs", "/jobs", "api/jobs"),
]


async def fill(stack: Any, base: str, results: int) -> dict[str, Any]:
    records = sc.window_fill(results)
    t0 = time.monotonic()
    for topic in ("objects", "media"):
        await stack.produce(topic, [(k, v) for t, k, v in records if t == topic])
    expected = 2 * sum(1 for t, k, _ in records if t == "objects" and not k.startswith("fill-bad")) + 1
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        while True:
            async with http.get(f"{base}/api/overview") as r:
                seen = (await r.json())["seen"]
            if seen.get("results", 0) >= expected and seen.get("deadletter", 0) >= 20:
                break
            if time.monotonic() - t0 > 900:
                raise TimeoutError(f"the console saw {seen}, expected {expected} results")
            await asyncio.sleep(0.5)
        async with http.get(f"{base}/api/results?limit=1") as r:
            window = (await r.json())["window"]
    return {"records": len(records), "results": expected, "window": window, "fill_s": time.monotonic() - t0}


async def api_times(base: str, runs: int) -> dict[str, float]:
    out = {}
    async with aiohttp.ClientSession(cookies={"labelstream_console_key": KEY}) as http:  # as the page calls them
        for name, _, path in PAGES:
            ms = []
            for _ in range(runs):
                t = time.perf_counter()
                async with http.get(f"{base}/{path}") as r:
                    await r.read()
                    assert r.status == 200, (path, r.status)
                ms.append((time.perf_counter() - t) * 1000)
            out[name] = statistics.median(ms)
    return out


def page_times(driver: Any, base: str, runs: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for name, url, _ in PAGES:
        runs_of: dict[str, list[float]] = {}
        for _ in range(runs):
            driver.get(f"{base}{url}")
            need = ("console:rendered", "console:first-row") if name == "live" else ("console:rendered",)
            WebDriverWait(driver, 30, poll_frequency=0.02).until(lambda d: all(d.execute_script(
                "return performance.getEntriesByName(arguments[0]).length", m) for m in need))
            for k, v in chromium.navigation_timing(driver).items():
                if v is not None:
                    runs_of.setdefault(k, []).append(float(v))
        out[name] = runs_of
    return out


async def streamed_row(stack: Any, driver: Any, base: str, n: int = 5) -> list[float]:
    """Send → row on the open live page, for results produced one at a time."""
    driver.get(f"{base}/live")
    await asyncio.to_thread(WebDriverWait(driver, 30).until, lambda d: d.execute_script(
        "return performance.getEntriesByName('console:rendered').length"))
    out = []
    for i in range(n):
        rid = f"stream-{i}/tone"
        t = time.perf_counter()
        await stack.produce("objects", [sc.comment(f"stream-{i}", sc.calm_vector(i))])
        while not driver.execute_script("return !!document.querySelector(`tr[data-id='${arguments[0]}']`)", rid):
            if time.perf_counter() - t > 30:
                raise TimeoutError(f"{rid} never appeared on the live page")
            await asyncio.sleep(0.01)
        out.append((time.perf_counter() - t) * 1000)
    return out


def fmt(xs: list[float] | None) -> str:
    return f"{statistics.median(xs):,.0f} / {max(xs):,.0f}" if xs else "-"


async def run(broker: str, a: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        async with deployment(broker, Path(tmp), partitions=8, name="bench-console") as stack:
            await stack.produce("training", sc.training())
            w = stack.worker("w", LABELSTREAM_API_KEYS=KEY, LABELSTREAM_CONSOLE_WINDOW=str(a.results))
            await stack.wait_ready(w, min_training=len(sc.training()))
            base = f"http://127.0.0.1:{w.web_port}/console"
            info = await fill(stack, base, a.results)
            print(f"window: {info['window']:,} results ({info['results']:,} produced in {info['fill_s']:.0f} s)",
                  flush=True)
            info["load"] = os.getloadavg()[0]
            api = await api_times(base, a.runs)
            with chromium.chromium() as driver:
                chromium.login(driver, base, KEY, "bench")
                pages = await asyncio.to_thread(page_times, driver, base, a.runs)
                info["streamed"] = await streamed_row(stack, driver, base)
            info["load_end"] = os.getloadavg()[0]
    rows = []
    for name, _, path in PAGES:
        p = pages[name]
        rows.append(f"| {name} | {api[name]:,.0f} | {fmt(p.get('response_end'))} | {fmt(p.get('dom_content_loaded'))} "
                    f"| {fmt(p.get('load'))} | {fmt(p.get('rendered'))} | {fmt(p.get('first_row'))} |")
    return rows, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=10_000, help="the console window (LABELSTREAM_CONSOLE_WINDOW)")
    ap.add_argument("--runs", type=int, default=5, help="navigations per page")
    ap.add_argument("--write", action="store_true", help="write the table to bench/RESULTS.md")
    a = ap.parse_args()
    if not chromium.available():
        print(chromium.MISSING, file=sys.stderr)
        return 2
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        rows, info = asyncio.run(run(broker, a))
    header = ("| page | JSON endpoint ms | responseEnd ms | DOMContentLoaded ms | load ms | rendered ms | "
              "first live row ms |\n|---|---:|---:|---:|---:|---:|---:|")
    s = info["streamed"]
    body = "\n".join([
        f"Window: {info['window']:,} results in the console's recent window ({info['results']:,} results produced "
        f"through the broker and one worker: {info['records']:,} records, a review item every fifth comment, 20 dead "
        f"letters, one video). Headless Chromium (Debian's), {a.runs} navigations per page, logged in, "
        "median / max, ms from the navigation's start: responseEnd = the HTML shell; DOMContentLoaded and load = "
        "the shell and its one script; rendered = the page's JSON fetched and drawn (the console's "
        "`console:rendered` mark); first live row = `console:first-row`. JSON endpoint = the page's first API "
        f"call from a plain HTTP client (median). Load average {info['load']:.1f} at the start, "
        f"{info['load_end']:.1f} at the end (2 CPUs shared).",
        "", header, *rows, "",
        f"A result produced while the live page is open, send → its row on the page (server-sent events): "
        f"median {statistics.median(s):,.0f} ms, max {max(s):,.0f} ms over {len(s)}.",
        "", f"Command: `make bench-console` (`.venv/bin/python bench/console_pages.py --write`)."])
    print(body)
    if a.write:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
