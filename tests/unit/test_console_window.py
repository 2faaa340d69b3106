"""The console's window at its full size (10,000 recent results): bounded, and every page's question
answered right at that size (how fast: ``bench/console_pages.py``, in a browser, bench/RESULTS.md)."""

from __future__ import annotations

from app.console.window import Window


def result(i: int, kind: str = "object") -> dict:
    return {"result_id": f"c{i}/tone", "item_id": f"c{i}", "item_kind": kind, "class": "Comment", "classifier": "tone",
            "method": "media" if kind == "media" else "zeroshot",
            "labels": {"tone": "toxic" if i % 10 == 0 else "calm"}, "confidence": {"tone": 0.6},
            "taxonomies": [{"name": "tone", "version": 1}],
            "detail": {"zeroshot": {"tone": {"class": "toxic", "prompt": "an insult"}},
                       "policy": {"tone": {"action": "review" if i % 10 == 0 else "allow"}}}}


def full_window() -> Window:
    w = Window(max_results=10_000)
    for i in range(12_000):
        w.add_result(result(i, "media" if i == 5_000 else "object"))
        if i % 10 == 0:
            w.add_hit({"item_id": f"c{i}", "action": "review", "rule": "r", "class_name": "toxic", "score": 0.6,
                       "scores": {"toxic": 0.6, "calm": 0.4}, "taxonomy": {"name": "tone", "version": 1},
                       "source": {"timestamp": i}})
    return w


def test_ten_thousand_results_stay_bounded_and_every_question_is_answered_at_that_size():
    w = full_window()
    assert len(w) == 10_000 and w.result("c1999/tone") is None and w.result("c2000/tone") and w.result("c11999/tone")
    live = w.results({})
    assert len(live) == 200 and live[0]["result_id"] == "c11999/tone" and live[-1]["result_id"] == "c11800/tone"
    assert [s["item_id"] for s in w.results({"item": "c1199"})] == [f"c1199{d}" for d in range(9, -1, -1)]  # c1199: gone
    review = w.results({"action": "review"}, 1000)
    assert len(review) == 1000 and all(s["action"] == "review" for s in review)  # every tenth of the window
    assert w.results({"label": "nope"}) == []
    # the one media result is 7,000 results old: still listed
    assert [s["result_id"] for s in w.recent_media()] == ["c5000/tone"]


def test_the_review_queue_counts_every_open_item_and_decodes_one_page():
    w = full_window()
    total, page = w.queue(("review",), 100)
    assert total == 1_200  # every hit (the oldest results are gone from the window, the hits are not)
    assert len(page) == 100 and page[0]["item_id"] == "c0" and page[0]["result_id"] == "c0/?"  # oldest first
    assert page[-1]["item_id"] == "c990"
    w.add_feedback({"item_id": "c11990", "result_id": "c11990/tone"})
    assert w.queue(("review",), 1)[0] == 1_199
    # a verdict on an item whose result has left the window: judged by item and taxonomy, it leaves the queue
    w.add_feedback({"item_id": "c0", "result_id": "c0/tone", "taxonomy": {"name": "tone", "version": 1}})
    total, page = w.queue(("review",), 1)
    assert total == 1_198 and page[0]["item_id"] == "c10"
    w.add_feedback({"op": "retract", "item_id": "c0", "result_id": "c0/tone", "taxonomy": {"name": "tone", "version": 1}})
    assert w.queue(("review",), 1)[1][0]["item_id"] == "c0"
