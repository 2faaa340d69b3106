"""The console's feed tails the output topics only while the console is in use."""

from __future__ import annotations

import asyncio

from app.service.console_feed import ConsoleFeed
from app.settings import Settings


async def _publish(topic: str, key: bytes, value: bytes) -> None:
    raise AssertionError("not used")


def test_unwatched_until_a_view_reads_the_window_then_idle_again(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("app.service.console_feed.time.monotonic", lambda: clock[0])
    feed = ConsoleFeed(Settings(console_idle_seconds=300), _publish)
    assert not feed.watched() and not feed._watched.is_set(), "nobody has opened the console"
    feed._window.add_dead({"reason": "invalid_json"})  # the feed's own writes do not count as use
    assert not feed.watched()
    assert feed.window.dead_reasons["invalid_json"] == 1  # a view reads it ...
    assert feed.watched() and feed._watched.is_set()  # ... which starts the tail
    clock[0] += 299
    assert feed.watched()
    clock[0] += 2
    assert not feed.watched(), "idle for longer than console_idle_seconds"
    feed.subscribers.add(asyncio.Queue())
    assert feed.watched(), "an open live stream keeps it watched"


def test_idle_zero_means_always():
    assert ConsoleFeed(Settings(console_idle_seconds=0), _publish).watched()
