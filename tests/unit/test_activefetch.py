"""app.service.activefetch (faustfix fix 5): a fetch hands out only active partitions, and records
fetched for a partition no longer active are fetched again (the real-broker case:
tests/integration/test_uncommitted_training_restart.py)."""

import asyncio
from collections import namedtuple
from types import SimpleNamespace

from app.service import activefetch

TP = namedtuple("TP", "topic partition")
R = namedtuple("R", "offset")


def test_the_fetch_sees_the_live_active_set_and_an_empty_one_as_no_partition():
    seen = []

    async def getmany(self, active, timeout):
        seen.append(active)
        return {"fetched": True}

    viewing = activefetch._viewing_active(getmany)
    live = {TP("objects", 0)}
    assert asyncio.run(viewing(None, live, 1.0)) == {"fetched": True}
    view = seen[-1]
    assert view and TP("objects", 0) in view
    live.clear()  # Faust pauses it while the consumer thread waits: aiokafka must hand out nothing
    assert view and TP("objects", 0) not in view  # a plain empty set would be falsy: "every partition"
    live.add(TP("training", 0))  # resumed meanwhile: handed out in the same fetch
    assert TP("training", 0) in view
    asyncio.run(viewing(None, None, 1.0))
    assert seen[-1] is None  # a client-only app: no filter, as before


class FakeConsumer:
    def __init__(self, records, active, *, settled=False, flow_active=True):
        self.records, self.active = records, active
        self.flow_active, self.should_stop = flow_active, False
        self._buffered_partitions = set()
        self.app = SimpleNamespace(consumer_generation_id=7, flow_control=SimpleNamespace())
        self._labelstream_settled = 7 if settled else 6
        self.sought = []
        self.revoked = set()

    async def wait_next_records(self, timeout):
        return self.records, self.active

    def assignment(self):
        return set(self.records) - self.revoked

    def _is_changelog_tp(self, tp):
        return tp.topic.endswith("-changelog")

    async def seek(self, tp, offset):
        self.sought.append((tp, offset))


def run(consumer):
    wrapped = activefetch._refetching_dropped(FakeConsumer.wait_next_records)
    return asyncio.run(wrapped(consumer, 1.0))


TRAINING, OBJECTS, CHANGELOG = TP("training", 0), TP("objects", 1), TP("t-training-changelog", 0)


def test_records_of_a_paused_partition_are_taken_out_and_noted_for_the_seek_after_recovery():
    c = FakeConsumer({TRAINING: [R(0), R(1)], OBJECTS: [R(5)], CHANGELOG: [R(3)]}, active={OBJECTS})
    records, active = run(c)
    assert records == {OBJECTS: [R(5)]} and active == {OBJECTS}
    # fix 4's seek (faustfix._seek_fresh_partitions) reads these: the partition goes back to offset 0
    assert c.app.flow_control._labelstream_cleared == {TRAINING: (7, 0)}
    assert c.sought == []
    assert c._labelstream_fetched_past[(TRAINING, "not active")] == 2
    assert (CHANGELOG, "not active") not in c._labelstream_fetched_past  # Faust's recovery seeks changelogs itself


def test_once_the_generation_has_settled_the_partition_is_sought_back_at_once():
    c = FakeConsumer({TRAINING: [R(40), R(41)], OBJECTS: [R(5)]}, active={OBJECTS}, settled=True)
    records, _ = run(c)
    assert records == {OBJECTS: [R(5)]}
    assert c.sought == [(TRAINING, 40)]  # no seek after recovery is coming in this generation
    assert getattr(c.app.flow_control, "_labelstream_cleared", {}) == {}


def test_a_partition_revoked_meanwhile_is_noted_not_sought():
    c = FakeConsumer({TRAINING: [R(40)], OBJECTS: [R(5)]}, active={OBJECTS}, settled=True)
    c.revoked = {TRAINING}  # seeking it would raise in the consumer thread
    records, _ = run(c)
    assert records == {OBJECTS: [R(5)]}
    assert c.sought == [] and c.app.flow_control._labelstream_cleared == {TRAINING: (7, 40)}


def test_records_fetched_while_the_flow_is_stopped_are_all_fetched_again():
    for settled in (False, True):  # Faust's getmany seeks next: noted, never sought here
        c = FakeConsumer({TRAINING: [R(3)], OBJECTS: [R(5), R(6)]}, active={TRAINING, OBJECTS},
                         flow_active=False, settled=settled)
        records, _ = run(c)
        assert records == {}
        assert c.app.flow_control._labelstream_cleared == {TRAINING: (7, 3), OBJECTS: (7, 5)}
        assert c.sought == []


def test_nothing_changes_when_every_partition_is_active_or_buffered():
    recs = {TRAINING: [R(0)], OBJECTS: [R(5)]}
    c = FakeConsumer(recs, active={TRAINING})
    c._buffered_partitions = {OBJECTS}
    assert run(c) == (recs, {TRAINING})
    assert not hasattr(c.app.flow_control, "_labelstream_cleared") and c.sought == []
