"""app.service.faustfix refuses to patch a faust-streaming (or aiokafka) it was not written against."""

import asyncio
import importlib.metadata
from collections import defaultdict
from types import SimpleNamespace

import pytest

from app.service import faustfix


def test_the_installed_versions_are_the_patched_ones():
    assert faustfix.installed_versions() == faustfix.PATCHED_FOR
    faustfix.check_versions()  # no exception


@pytest.mark.parametrize("found", [{"faust-streaming": "0.16.0", "aiokafka": "0.14.0"},
                                   {"faust-streaming": "0.15.2", "aiokafka": "0.14.0"}])
def test_another_faust_is_refused_in_one_line_that_says_what_to_do(found):
    with pytest.raises(faustfix.UnsupportedVersion) as e:
        faustfix.check_versions(found)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"faust-streaming {found['faust-streaming']} is installed, but ")
    assert "faust-streaming 0.15.3" in msg and "faust-streaming==0.15.3" in msg
    assert "LABELSTREAM_FAUSTFIX=0" in msg
    assert "aiokafka 0.14.0 is" not in msg  # only what is wrong is named as wrong


def test_both_wrong_are_both_named():
    with pytest.raises(faustfix.UnsupportedVersion, match=r"^faust-streaming 1\.0 and aiokafka 0\.13\.0 are installed"):
        faustfix.check_versions({"faust-streaming": "1.0", "aiokafka": "0.13.0"})


def test_apply_refuses_before_patching_anything(monkeypatch):
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.16.0" if name == "faust-streaming" else real(name))
    monkeypatch.setattr(faustfix, "_applied", False)
    from faust.transport.consumer import Consumer

    init = Consumer.__init__
    with pytest.raises(faustfix.UnsupportedVersion, match="faust-streaming 0.16.0 is installed"):
        faustfix.apply()
    assert Consumer.__init__ is init and faustfix._applied is False


def test_the_escape_hatch_skips_the_check(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    monkeypatch.setenv("LABELSTREAM_FAUSTFIX", "0")
    faustfix.apply()  # no exception, nothing patched


def test_holes_are_the_offsets_of_the_range_that_no_record_has():
    assert faustfix.holes(0, 42, [0, 4, 8, 41]) == [(1, 3), (5, 7), (9, 40)]
    assert faustfix.holes(7, 8, [7]) == []
    assert faustfix.holes(3, 3, []) == []


def fresh_consumer(generation, committed, assigned):
    """What ``_seek_fresh_partitions`` reads of a Faust consumer, with its seeks recorded."""
    seeks = []

    async def seek(tp, offset):
        seeks.append((tp, offset))

    flow = SimpleNamespace(_labelstream_cleared={})
    c = SimpleNamespace(app=SimpleNamespace(flow_control=flow, consumer_generation_id=generation),
                        _committed_offset=defaultdict(lambda: None, committed), assignment=lambda: set(assigned),
                        _is_changelog_tp=lambda tp: tp.endswith("-changelog"), seek=seek)
    return c, flow._labelstream_cleared, seeks


def test_only_this_generations_clears_move_a_never_committed_partition():
    c, cleared, seeks = fresh_consumer(5, {"committed": 40}, ["fresh", "stale", "committed", "t-changelog"])
    faustfix.note_cleared(cleared, "fresh", 12, 5)
    faustfix.note_cleared(cleared, "fresh", 9, 5)
    faustfix.note_cleared(cleared, "stale", 300, 4)  # a revocation's clear: the reassignment reset its position
    faustfix.note_cleared(cleared, "committed", 50, 5)  # the seek to the committed offset covers it
    faustfix.note_cleared(cleared, "t-changelog", 1, 5)
    asyncio.run(faustfix._seek_fresh_partitions(c))
    assert seeks == [("fresh", 9)]
    assert cleared == {}, "every note is used up by the seek"
    asyncio.run(faustfix._seek_fresh_partitions(c))
    assert seeks == [("fresh", 9)]


def test_a_clear_notes_what_a_lane_task_holds_as_well_as_what_is_queued():
    # The lane's task takes chunks before the recovery's seek is settled, then drops them (stale mark):
    # a seek to the lowest *queued* offset would skip the held ones for good.
    from mode.utils.queues import FlowControlEvent

    from app.service import lean

    lane = lean.Lane()
    r = [SimpleNamespace(offset=o) for o in range(6)]
    lane.chunks.extend([lean.Chunk(2, "p", r[:3]), lean.Chunk(2, "p", r[3:])])
    asyncio.run(lane.take(3))  # held by the task, waiting for the seek to settle
    flow = FlowControlEvent()
    flow.manage_queue(lane)
    faustfix._noting_cleared(FlowControlEvent.clear)(flow)  # what apply() installs as FlowControlEvent.clear
    assert flow._labelstream_cleared == {"p": (2, 0)}
    lane.release()
    assert lane.labelstream_pending() == []
