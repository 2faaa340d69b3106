"""Twelve Labs classify v1.2 on a real worker (real broker), driven by the official SDK 0.3.x.

50 videos stream in as chunks (visual segments with 16-d precomputed embeddings, transcripts and
on-screen text as text segments without vectors), then are classified through the API with
prompts that never appeared on the training topic (MiniLM for conversation and text_in_video).
Expected results are computed here with the pure core (``app.core.media.classify_media``) on the
same inputs: the API's answer must be equal, not close.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from app.core.media import MediaClass, classify_media
from app.core.segments import SegmentArrays, merge_chunks
from app.core.vectorizers import get_vectorizer
from app.schemas.vectors import encode_vector
from tests.integration import jobs_helpers

twelvelabs = pytest.importorskip("twelvelabs")  # the `test` extra pins it
pytestmark = pytest.mark.kafka

KEY, ERR_KEY, RATE_KEY = "tl-main-key-0123456789", "tl-error-key-0123456789", "tl-rate-key-0123456789"
RATE, TTL, DIM, N = 40, 6, 16, 50
TOPICS = {
    "Cooking": ["we chop the onions and fry them in a hot pan", "stir the sauce and add some salt"],
    "Football": ["the striker scores a goal in the last minute", "the referee shows a red card to the defender"],
    "Finance": ["the stock market fell sharply today", "interest rates were raised by the central bank"],
}
INDEX = {"record": "index", "id": "shows", "options": {"visual": {"vectorizer": "precomputed", "dim": DIM},
                                                          "conversation": {"vectorizer": "minilm"},
                                                          "text_in_video": {"vectorizer": "minilm"}}}
CLASSES = [{"name": "Cooking", "prompts": ["cooking food in a kitchen", "a recipe"]},
           {"name": "Sports", "prompts": ["a football match", "soccer players"]},
           {"name": "Money", "prompts": ["economy and markets"], "options": ["conversation"]}]


def videos(rng, visual: dict[str, np.ndarray]) -> list[dict]:
    names = list(TOPICS)
    out = []
    for n in range(N):
        topic = names[n % 3]
        segs = []
        for t in range(0, 20, 2):
            v = visual[topic] + rng.normal(0, 0.6, DIM)
            segs.append({"start": float(t), "end": float(t + 2), "option": "visual", "vector": v.astype(np.float32)})
        for i, t in enumerate(range(0, 20, 4)):
            segs.append({"start": float(t), "end": float(t + 4), "option": "conversation",
                         "text": TOPICS[names[(n + i // 4) % 3]][i % 2]})
        segs.append({"start": 5.0, "end": 7.0, "option": "text_in_video", "text": f"{topic} tonight"})
        out.append({"media_id": f"vid-{n:02d}", "index_id": "shows", "kind": "video", "duration": 20,
                    "segments": segs})
    return out


def chunks(video: dict) -> list[tuple[str, dict]]:
    segs = video["segments"]
    halves = [[s for s in segs if s["start"] < 10], [s for s in segs if s["start"] >= 10]]
    return [(video["media_id"], {**video, "chunk": {"seq": i, "final": i == 1},
                                 "segments": [{**s, "vector": encode_vector(s["vector"])} if "vector" in s else s
                                              for s in part]})
            for i, part in enumerate(halves)]


@functools.lru_cache(maxsize=None)
def embed(text: str) -> np.ndarray:
    return get_vectorizer("minilm").encode([text])[0]  # one at a time: a text's vector depends on it alone


def minilm(texts: list[str]) -> np.ndarray:
    return np.stack([embed(t) for t in texts])


def expected(video: dict, classes: list[dict], options: list[str], prompt_visual: dict, **kw) -> dict:
    """The pure core on this video: visual in its 16-d space, text in MiniLM's, side by side when a
    request needs both (a cosine across the blocks is 0: each segment meets prompts of its own space)."""
    segs = merge_chunks([{"segments": video["segments"]}])
    with_visual = "visual" in options or any("visual" in (c.get("options") or []) for c in classes)
    width = (DIM if with_visual else 0) + 384
    text_off = DIM if with_visual else 0

    def place(v, off):
        out = np.zeros(width, np.float32)
        out[off:off + v.size] = v
        return out

    rows = []
    for s in segs:
        v = None
        if s["option"] == "visual" and with_visual:
            v = place(np.asarray(s["vector"], np.float32), 0)
        elif s["option"] != "visual":
            v = place(minilm([s["text"]])[0], text_off)
        rows.append({**s, "vector": v})
    mclasses = []
    for c in classes:
        opts = c.get("options") or options
        spaces = (["visual"] if "visual" in opts else []) + (["text"] if set(opts) - {"visual"} else [])
        prompts, pv = [], []
        for p in c["prompts"]:
            for sp in spaces:
                prompts.append(p)
                pv.append(place(prompt_visual[p], 0) if sp == "visual" else place(minilm([p])[0], text_off))
        mclasses.append(MediaClass(c["name"], prompts, np.stack(pv),
                                   options=tuple(c["options"]) if c.get("options") else None))
    return classify_media(SegmentArrays.from_segments(rows, dim=width), 20.0, mclasses, video_id=video["media_id"],
                          options=options, **kw)


def drop_none(x):
    """The SDK's models hold an absent optional field and a null alike (thumbnail_url): compare without them."""
    if isinstance(x, dict):
        return {k: drop_none(v) for k, v in x.items() if v is not None}
    return [drop_none(v) for v in x] if isinstance(x, list) else x


def http(port: int, method: str, path: str, body: bytes | None = None, key: str | None = ERR_KEY,
         headers: dict | None = None) -> tuple[int, Any]:
    return jobs_helpers.http(port, method, path, body, key, headers)


async def wait_for(cond, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(cond)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_classify_stored_videos_through_the_official_sdk(stack, monkeypatch, tmp_path):
    rng = np.random.default_rng(5)
    visual = {t: rng.normal(size=DIM) for t in TOPICS}
    prompt_visual = {"cooking food in a kitchen": visual["Cooking"], "a recipe": visual["Cooking"] * 0.5 + rng.normal(size=DIM),
                     "a football match": visual["Football"], "soccer players": visual["Football"] + rng.normal(size=DIM)}
    w = stack.worker(LABELSTREAM_API_KEYS=f"{KEY},{ERR_KEY},{RATE_KEY}", LABELSTREAM_CLASSIFY_PAGE_TTL=str(TTL),
                     LABELSTREAM_CLASSIFY_RATE_LIMIT=str(RATE), LABELSTREAM_MAX_PROMPTS="12",
                     LABELSTREAM_MAX_REQUEST_BYTES="65536")
    training = [("index:shows", INDEX)] + [
        (f'prompt:{json.dumps(["shows", "visual", p], separators=(",", ":"))}',
         {"record": "prompt_vector", "index_id": "shows", "option": "visual", "prompt": p, "vector": v.tolist()})
        for p, v in prompt_visual.items()]
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))
    vids = videos(rng, visual)
    await stack.produce("media", [c for v in vids for c in chunks(v)])
    await wait_for(lambda: (w.health() or {}).get("tables", {}).get("media-store") == N, what="50 stored videos")
    port = w.web_port

    monkeypatch.setenv("TWELVELABS_BASE_URL", f"http://127.0.0.1:{port}")
    client = twelvelabs.TwelveLabs(api_key=KEY)  # the SDK sends it as x-api-key

    # 1. the whole index, text options only (MiniLM), paged 15 at a time: 4 pages through the SDK iterator
    text_opts = ["conversation", "text_in_video"]
    first = await asyncio.to_thread(client.classify.index, index_id="shows", options=text_opts, classes=CLASSES,
                                    page_limit=15, include_clips=True, show_detailed_score=True)
    pages = [list(first.data)]
    info = first.page_info
    assert (info.limit_per_page, info.total_results, info.prev_page_token) == (15, N, None)
    token = info.next_page_token
    while (page := await asyncio.to_thread(next, first, None)) is not None:  # the SDK's iterator protocol
        pages.append(list(page))
    assert [len(p) for p in pages] == [15, 15, 15, 5] and first.page_info.next_page_token is None
    # by_page_token (within the token's TTL): any page again, both tokens present in the middle
    middle = await asyncio.to_thread(client.classify.by_page_token, token)
    assert middle.page_info.prev_page_token and middle.page_info.next_page_token
    assert [v.video_id for v in middle.data] == [v.video_id for v in pages[1]]

    got = {v.video_id: v.model_dump(exclude_none=True) for p in pages for v in p}
    assert sorted(got) == [v["media_id"] for v in vids]
    for v in vids:
        want = expected(v, CLASSES, text_opts, prompt_visual, include_clips=True, show_detailed_score=True)
        assert got[v["media_id"]] == drop_none(want), v["media_id"]
    assert any(c["name"] == "Money" for v in got.values() for c in v["classes"])

    # 2. chosen videos, visual (precomputed) and conversation (MiniLM) in one request: two spaces side by side
    ids = ["vid-07", "vid-03", "vid-41"]
    res = await asyncio.to_thread(client.classify.videos, video_ids=ids, options=["visual", "conversation"],
                                  classes=CLASSES[:2], threshold={"min_clip_score": 15})
    assert [v.video_id for v in res.data] == ids and res.page_info.next_page_token is None
    for v in res.data:
        want = expected(vids[int(v.video_id[-2:])], CLASSES[:2], ["visual", "conversation"], prompt_visual,
                        threshold={"min_clip_score": 15})
        assert v.model_dump(exclude_none=True) == drop_none(want)

    # 3. a prompt with no vector in a space it is needed in: refused, naming prompt, index and option
    with pytest.raises(twelvelabs.BadRequestError) as e:
        await asyncio.to_thread(client.classify.videos, video_ids=ids, options=["visual"],
                                classes=[{"name": "Cats", "prompts": ["a cat on a sofa"]}])
    assert e.value.body == {"code": "parameter_invalid", "message": (
        "prompt 'a cat on a sofa' (class 'Cats') has no vector in the visual space of index 'shows': the index's "
        "visual prompts are precomputed and no prompt_vector record was published for it")}

    # 4. error paths, each in Twelve Labs' shape
    good = {"video_ids": ["vid-01"], "options": ["visual"], "classes": CLASSES[:1]}
    cases = [
        (b'{"video_ids": [', 400, "parameter_invalid"),
        (json.dumps({**good, "video_ids": ["nope"]}).encode(), 404, "resource_not_exist"),
        (json.dumps({k: v for k, v in good.items() if k != "classes"}).encode(), 400, "parameter_not_provided"),
        (json.dumps({**good, "options": ["smell"]}).encode(), 400, "parameter_invalid"),
        (json.dumps({**good, "colour": "red"}).encode(), 400, "parameter_unknown"),
        (json.dumps({**good, "threshold": {"loud": 3}}).encode(), 400, "parameter_invalid"),
        (json.dumps({**good, "classes": [{"name": "X", "prompts": [f"p{i}" for i in range(13)]}]}).encode(), 400,
         "parameter_invalid"),
    ]
    for body, status, code in cases:
        got_status, doc = http(port, "POST", "/v1.2/classify", body)
        assert (got_status, doc["code"]) == (status, code), (body[:60], doc)
        assert set(doc) == {"code", "message"} and doc["message"]
    assert http(port, "POST", "/v1.2/classify/bulk", json.dumps(
        {**{k: v for k, v in good.items() if k != "video_ids"}, "index_id": "nope"}).encode()) == (
        404, {"code": "resource_not_exist", "message": "The index nope does not exist."})
    assert "12" in http(port, "POST", "/v1.2/classify", cases[-1][0])[1]["message"]  # names the limit
    assert http(port, "POST", "/v1.2/classify", json.dumps(good).encode(), key=None)[1]["code"] == "api_key_invalid"
    assert http(port, "POST", "/v1.2/classify", json.dumps(good).encode(), key="wrong-key-0123456789") == (
        401, {"code": "api_key_invalid", "message": "invalid API key"})
    assert http(port, "POST", "/v1.2/classify", b"{" + b" " * 70000 + b"}")[0] == 413
    assert http(port, "GET", "/v1.2/classify/not-a-token")[0] == 400
    assert http(port, "GET", "/v1.2/classify/bulk") == (405, {"code": "method_not_allowed",
                                                           "message": "Method GET is not allowed on /v1.2/classify/bulk."})
    with pytest.raises(twelvelabs.AuthenticationError):
        await asyncio.to_thread(twelvelabs.TwelveLabs(api_key="wrong-key-0123456789").classify.by_page_token, token)
    with pytest.raises(twelvelabs.NotFoundError):
        await asyncio.to_thread(client.classify.videos, video_ids=["vid-01", "ghost"], options=["visual"],
                                classes=CLASSES[:1])

    # 5. the rate limit is per key: RATE_KEY runs out, the others do not
    codes = [http(port, "GET", "/v1.2/classify/x-1", key=RATE_KEY) for _ in range(RATE + 1)]
    assert [c for c, _ in codes[:RATE]] == [400] * RATE
    assert codes[RATE] == (429, {"code": "too_many_requests",
                                 "message": "You have exceeded the rate limit. Please try again later."})
    assert http(port, "GET", "/v1.2/classify/x-1", key=ERR_KEY)[0] == 400

    # 6. a tombstone removes a video from the store; the index answers without it
    await stack.produce("media", [("vid-03", None)])
    await wait_for(lambda: (w.health() or {}).get("tables", {}).get("media-store") == N - 1, what="the deletion")
    with pytest.raises(twelvelabs.NotFoundError):
        await asyncio.to_thread(client.classify.videos, video_ids=["vid-03"], options=["visual"], classes=CLASSES[:1])

    # 7. the CLI: media push (a folder of chunks), then classify videos printing a table
    folder = tmp_path / "vid-new"
    folder.mkdir()
    for i, (_, doc) in enumerate(chunks({**vids[0], "media_id": "vid-new"})):
        (folder / f"chunk-{i}.json").write_text(json.dumps(doc))
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    env = {**os.environ, **stack.env}
    cli = [sys.executable, "-m", "app.cli"]
    push = await asyncio.to_thread(subprocess.run, [*cli, "media", "push", str(folder)], env=env,
                                   capture_output=True, text=True, timeout=60)
    assert push.returncode == 0 and "published 2 media records" in push.stdout, push.stderr
    await wait_for(lambda: (w.health() or {}).get("tables", {}).get("media-store") == N, what="the pushed video")
    out = await asyncio.to_thread(subprocess.run, [
        *cli, "classify", "videos", "vid-new", "vid-00", "--classes", str(tmp_path / "classes.json"),
        "--options", "conversation,text_in_video", "--url", f"http://127.0.0.1:{port}", "--api-key", KEY],
        env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["video_id", "class", "score", "duration_ratio"]
    want = expected(vids[0], CLASSES, text_opts, prompt_visual)["classes"]
    assert [ln.split() for ln in lines[1:]] == [
        [vid, c["name"], f"{c['score']:.2f}", f"{c['duration_ratio']:.2f}"] for vid in ("vid-new", "vid-00")
        for c in want]

    # 8. page tokens expire (LABELSTREAM_CLASSIFY_PAGE_TTL): the same token, later, is a 400
    expired_at = middle.page_info.page_expired_at
    await wait_for(lambda: http(port, "GET", f"/v1.2/classify/{token}", key=ERR_KEY)[0] == 400, timeout=3 * TTL,
                   what="the token to expire")
    with pytest.raises(twelvelabs.BadRequestError) as e:
        await asyncio.to_thread(client.classify.by_page_token, token)
    assert e.value.body == {"code": "parameter_invalid", "message": (
        f"The page token {token} has expired (at {expired_at}): send the classify request again.")}
