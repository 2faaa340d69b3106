"""Headless Chromium for the console's browser tests and page benchmark (Selenium, pinned in the
``test`` extra), pointed at Debian's ``chromium`` and ``chromium-driver`` (``make browser``
installs them): nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = "the console's browser tests need Debian's chromium and chromium-driver: 'make browser' installs them"


def available() -> bool:
    return bool(shutil.which("chromedriver") and shutil.which("chromium"))


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium driven by Selenium, quit on exit."""
    from selenium import webdriver  # noqa: PLC0415 - a test/bench dependency, not the worker's
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    if not available():
        raise RuntimeError(MISSING)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def text(driver: Any, css: str) -> str:
    """The text of the first element matching ``css`` ('' if none), read in one script call (pages
    re-render: no stale element between find and read); textContent, not CSS-transformed."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", css))


def login(driver: Any, base: str, key: str, reviewer: str, timeout: float = 20) -> None:
    """Log in to the console at ``base`` (``http://host:port/console``) through its form."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.NAME, "reviewer").send_keys(reviewer)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.find_elements(By.ID, "rate-in"))


def navigation_timing(driver: Any) -> dict[str, float]:
    """The current page's navigation timing (ms from the navigation's start) and the console's own
    marks: ``console:rendered`` (the page's first content drawn), ``console:first-row`` (the live
    page's first result row)."""
    return dict(driver.execute_script("""
        const t = performance.getEntriesByType('navigation')[0];
        const mark = (n) => { const m = performance.getEntriesByName(n); return m.length ? m[0].startTime : null; };
        return {response_end: t.responseEnd - t.startTime, dom_content_loaded: t.domContentLoadedEventEnd - t.startTime,
                load: t.loadEventEnd - t.startTime, rendered: mark('console:rendered'),
                first_row: mark('console:first-row')};"""))
