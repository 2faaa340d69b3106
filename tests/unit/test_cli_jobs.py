"""``labelstream jobs ...`` against a small HTTP peer that speaks Weaviate's documented shapes.

The peer (an aiohttp app in a thread) follows ../shared/reference/weaviate-classifications-api.md:
201 with the job and its ``id`` on start, ``running`` with ``meta.completed`` at Weaviate's zero
time, counts as the job advances, ``countFailed`` omitted when 0, 404 for an unknown id, errors
as ``{"error": [{"message": ...}]}``, 401 without the key. The end-to-end test against the real
jobs endpoints comes with them.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
from aiohttp import web
from typer.testing import CliRunner

from app.cli import cli
from app.devtools.jobsclient import ZERO_TIME, ApiError, JobsClient

KEY = "jobs-test-key-0123456789"
TOTAL = 5


class Peer:
    """A Weaviate-shaped classifications API: every GET of a running job advances it by 2 items."""

    def __init__(self, key: str | None):
        self.key, self.jobs, self.seen_keys = key, {}, []
        self.app = web.Application()
        self.app.router.add_post("/v1/classifications", self.start)
        self.app.router.add_get("/v1/classifications", self.list)
        self.app.router.add_get("/v1/classifications/{id}", self.get)

    def _auth(self, request: web.Request) -> web.Response | None:
        self.seen_keys.append(request.headers.get("Authorization"))
        if self.key and request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": [{"message": "invalid API key"}]}, status=401)
        return None

    async def start(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await request.json()
        if not body.get("class"):
            return web.json_response({"error": [{"message": "invalid classification: class must be set"}]}, status=400)
        job = {**body, "id": str(uuid.uuid4()), "status": "running",
               "meta": {"started": "2026-12-02T15:00:00.000Z", "completed": ZERO_TIME}}
        self.jobs[job["id"]] = job
        return web.json_response(job, status=201)

    async def get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404)
        if job["status"] == "running":
            meta = job["meta"]
            if job["class"] == "Broken":
                job.update(status="failed", error="classification failed: no objects of class Broken match")
            else:
                done = min(TOTAL, meta.get("countSucceeded", 0) + 2)
                meta.update(count=TOTAL, countSucceeded=done)
                if done == TOTAL:
                    job["status"], meta["completed"] = "completed", "2026-12-02T15:00:01.000Z"
        return web.json_response(job)

    async def list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return web.json_response(list(self.jobs.values()))


def serve(peer: Peer) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(peer.app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def keyed() -> Iterator[tuple[Peer, str]]:
    peer = Peer(KEY)
    for url in serve(peer):
        yield peer, url


@pytest.fixture
def open_peer() -> Iterator[tuple[Peer, str]]:
    peer = Peer(None)
    for url in serve(peer):
        yield peer, url


def run(*args: str, env: dict[str, str] | None = None):
    env = {"LABELSTREAM_API_KEY": "", "LABELSTREAM_API_KEYS": "", **(env or {})}
    return CliRunner().invoke(cli, list(args), env=env)


def test_start_sends_weaviates_body_and_the_key_and_prints_the_job(keyed):
    peer, url = keyed
    out = run("jobs", "start", "--class", "Article", "--classify", "topic", "--based-on", "summary", "--k", "5",
              "--scope", "all", "--url", url, "--api-key", KEY)
    assert out.exit_code == 0, out.output
    (job,) = peer.jobs.values()
    assert {k: job[k] for k in ("type", "class", "classifyProperties", "basedOnProperties", "settings", "scope")} == {
        "type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["summary"],
        "settings": {"k": 5}, "scope": "all"}
    assert f'"id": "{job["id"]}"' in out.output and peer.seen_keys == [f"Bearer {KEY}"]


def test_the_key_comes_from_the_environment(keyed):
    peer, url = keyed
    assert run("jobs", "list", "--url", url, env={"LABELSTREAM_API_KEY": KEY}).exit_code == 0
    # no client key: one of the local worker's own keys (its settings) is used
    assert run("jobs", "list", "--url", url, env={"LABELSTREAM_API_KEYS": KEY}).exit_code == 0
    assert peer.seen_keys == [f"Bearer {KEY}"] * 2


def test_missing_or_wrong_key_is_one_line_with_the_servers_message(keyed):
    peer, url = keyed
    for extra in ([], ["--api-key", "wrong-key-wrong-key"]):
        out = run("jobs", "status", "x", "--url", url, *extra)
        assert out.exit_code == 1 and out.output.strip() == "labelstream: invalid API key (HTTP 401)"
    assert peer.seen_keys == [None, "Bearer wrong-key-wrong-key"]


def test_refusals_show_weaviates_message(open_peer, tmp_path):
    peer, url = open_peer
    bad = tmp_path / "job.json"
    bad.write_text('{"class": ')
    out = run("jobs", "start", "--body", str(bad), "--url", url)
    assert out.exit_code == 1 and out.output.startswith(f"labelstream: {bad}: not valid JSON: ")
    bad.write_text('{"type": "knn", "classifyProperties": ["topic"]}')
    out = run("jobs", "start", "--body", str(bad), "--url", url)
    assert out.exit_code == 1
    assert out.output.strip() == "labelstream: invalid classification: class must be set (HTTP 400)"
    assert peer.jobs == {}
    client = JobsClient(url)
    with pytest.raises(ApiError) as e:
        client.start({"type": "knn", "classifyProperties": ["topic"]})
    assert (e.value.status, e.value.message) == (400, "invalid classification: class must be set")
    out = run("jobs", "status", "no-such-job", "--url", url)
    assert out.exit_code == 1 and out.output.strip() == "labelstream: not found (HTTP 404)"


def test_start_checks_its_options_before_any_request(open_peer):
    peer, url = open_peer
    assert "--class is required" in run("jobs", "start", "--classify", "t", "--url", url).output
    assert "--classify is required" in run("jobs", "start", "--class", "A", "--url", url).output
    assert "--type must be knn or zeroshot" in run("jobs", "start", "--class", "A", "--classify", "t",
                                                   "--type", "svm", "--url", url).output
    assert peer.seen_keys == []


def test_body_file_is_sent_as_is(open_peer, tmp_path):
    peer, url = open_peer
    f = tmp_path / "job.json"
    f.write_text('{"type": "zeroshot", "class": "Article", "classifyProperties": ["topic"], '
                 '"settings": {"taxonomies": ["news"]}, "filters": {"sourceWhere": {"path": ["lang"], '
                 '"operator": "Equal", "valueText": "en"}}}')
    assert run("jobs", "start", "--body", str(f), "--url", url).exit_code == 0
    (job,) = peer.jobs.values()
    assert job["filters"]["sourceWhere"]["valueText"] == "en" and job["settings"] == {"taxonomies": ["news"]}


def test_status_and_list(open_peer):
    _, url = open_peer
    client = JobsClient(url)
    job = client.start({"type": "knn", "class": "Article", "classifyProperties": ["topic"]})
    assert run("jobs", "status", job["id"], "--url", url).exit_code == 0
    out = run("jobs", "list", "--url", url)
    assert out.exit_code == 0 and out.output.strip() == (
        f"{job['id']}  running  knn  Article  2/5  started 2026-12-02T15:00:00.000Z")
    assert run("jobs", "list", "--url", url, "--json").output.startswith("[")


def test_watch_polls_until_completed_and_reports_counts(open_peer):
    peer, url = open_peer
    job = JobsClient(url).start({"type": "knn", "class": "Article", "classifyProperties": ["topic"]})
    out = run("jobs", "watch", job["id"], "--interval", "0.01", "--url", url)
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[-1] == "completed: count=5, countSucceeded=5"
    assert "5/5" in out.output  # the bar's last state


def test_watch_sees_every_state_and_ends_on_failure(open_peer):
    peer, url = open_peer
    client = JobsClient(url)
    job = client.start({"type": "knn", "class": "Article", "classifyProperties": ["topic"]})
    seen = []
    final = client.watch(job["id"], lambda j: seen.append((j["status"], j["meta"].get("countSucceeded"))),
                         interval=0, sleep=lambda s: None)
    assert seen == [("running", 2), ("running", 4), ("completed", 5)] and final["status"] == "completed"

    broken = client.start({"type": "knn", "class": "Broken", "classifyProperties": ["topic"]})
    out = run("jobs", "watch", broken["id"], "--interval", "0.01", "--url", url)
    assert out.exit_code == 1
    assert out.output.strip().splitlines()[-1] == (
        "failed: no counts; error: classification failed: no objects of class Broken match")


def test_unreachable_server_is_one_line():
    out = run("jobs", "list", "--url", "http://127.0.0.1:1")
    assert out.exit_code == 1
    assert out.output.strip().startswith("labelstream: cannot reach http://127.0.0.1:1: ")
