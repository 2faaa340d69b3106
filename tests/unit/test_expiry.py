"""What expires, decided with a fake clock: media assemblies (incomplete items, done markers,
orphaned chunks), cache entries and stored objects. The sweeper (``app/service/sweeper.py``)
only applies these decisions; ``tests/integration/test_bounded_state.py`` runs it for real.
"""

from __future__ import annotations

import orjson

from app.classify import assembly
from app.classify.expiry import expire_plain, stamp, stamped
from app.classify.outcome import TableWrite
from app.schemas.deadletter import Source
from app.schemas.media import MediaEvent

P = 8  # partitions
MIN = 60_000
T0 = 1_700_000_000_000
TOPIC = "t.media"


def chunk(media_id: str, seq: int, final: bool = False, total: int | None = None) -> MediaEvent:
    return MediaEvent.model_validate({
        "media_id": media_id, "kind": "video", "duration": 3,
        "chunk": {"seq": seq, "final": final, **({"total": total} if total else {})},
        "segments": [{"start": seq, "end": seq + 1, "option": "visual", "vector": [1.0, 0.0]}]})


class Table:
    """The media-assembly table as a dict; the sink's part (apply writes) done inline."""

    def __init__(self):
        self.data: dict[bytes, bytes] = {}
        self.first_seen: dict[bytes, int] = {}

    def apply(self, writes: list[TableWrite]) -> None:
        for w in writes:
            if w.value is None:
                self.data.pop(w.key, None)
            else:
                self.data[w.key] = w.value

    def add(self, ev: MediaEvent, offset: int, now: int, partition: int = 3):
        src = Source(topic=TOPIC, partition=partition, offset=offset)
        step = assembly.add_chunk(ev, ev.media_id.encode(), src, self.data.get, partitions=P, max_bytes=1 << 30,
                                  now=now)
        self.apply(step.writes)
        if step.complete is not None:
            self.apply(step.complete.close())
        return step

    def sweep(self, now: int, incomplete: int = 10 * MIN, done: int = 60 * MIN):
        """One full pass, as the sweeper does it: every key, deciding on the table as it is."""
        dead = []
        for key in list(self.data):
            if key not in self.data:
                continue
            exp = assembly.expire(key, self.data[key], self.data.get, now=now, incomplete_ttl=incomplete,
                                  done_ttl=done, first_seen=self.first_seen, partitions=P, topic=TOPIC)
            if exp is not None:
                self.apply(exp.writes)
                if exp.dead_letter is not None:
                    dead.append(exp.dead_letter)
        return dead

    def index(self, media_id: str, partition: int = 3) -> dict | None:
        v = self.data.get(assembly.colocated([media_id], partition, P))
        return orjson.loads(v) if v is not None else None


def test_an_incomplete_item_expires_ttl_after_its_last_chunk_with_one_dead_letter():
    t = Table()
    t.add(chunk("m1", 0, total=3), offset=10, now=T0)
    t.add(chunk("m1", 1, total=3), offset=11, now=T0 + 8 * MIN)  # the clock restarts with each chunk
    assert t.index("m1")["at"] == T0 + 8 * MIN and t.index("m1")["offsets"] == {"0": 10, "1": 11}
    assert t.sweep(now=T0 + 17 * MIN) == [] and len(t.data) == 3, "9 minutes after the last chunk: kept"

    [(record, why)] = t.sweep(now=T0 + 18 * MIN)
    assert t.data == {}, "index and both chunks dropped"
    assert why.reason == "media_incomplete" and record.key == b"m1" and record.value is None
    assert record.source == Source(topic=TOPIC, partition=3, offset=11, timestamp=T0 + 8 * MIN)
    assert "[0, 1]" in why.detail and "'0': 10" in why.detail
    assert t.sweep(now=T0 + 99 * MIN) == [], "nothing left to report twice"


def test_done_markers_expire_after_their_own_ttl_and_a_new_assembly_keeps_its_marker():
    t = Table()
    t.add(chunk("m2", 0), offset=5, now=T0)
    assert t.add(chunk("m2", 1, final=True), offset=6, now=T0 + MIN).complete is not None
    assert list(t.data.values()) == [stamped(T0 + MIN, {"done": 6})]
    # Sent again, partially: a new assembly that still remembers the marker (replays of <= 6 are dropped).
    t.add(chunk("m2", 0), offset=20, now=T0 + 2 * MIN)
    [(_, why)] = t.sweep(now=T0 + 12 * MIN)
    assert why.reason == "media_incomplete"
    assert list(t.data.values()) == [stamped(T0 + 2 * MIN, {"done": 6})], "the marker stays, its chunks go"
    assert t.add(chunk("m2", 0), offset=6, now=T0 + 13 * MIN).writes == [], "a replay is still recognised"
    assert t.sweep(now=T0 + 61 * MIN) == [] and len(t.data) == 1
    assert t.sweep(now=T0 + 62 * MIN) == [] and t.data == {}, "done TTL after the marker's last write"


def test_orphaned_chunks_go_at_once_listed_ones_stay():
    t = Table()
    t.add(chunk("m3", 0, total=2), offset=1, now=T0)
    orphan = assembly.colocated(["m3", 7], 3, P)  # a chunk no index lists (crash after a done marker)
    t.data[orphan] = b"{}"
    t.sweep(now=T0 + 1)
    assert orphan not in t.data and len(t.data) == 2


def test_ttl_zero_keeps_forever_and_legacy_entries_count_from_first_sight():
    t = Table()
    t.add(chunk("m4", 0, total=2), offset=1, now=T0)
    assert t.sweep(now=T0 + 10**12, incomplete=0, done=0) == [] and len(t.data) == 2
    # A value written before stamps: no "at", no "offsets".
    key = assembly.colocated(["m4"], 3, P)
    t.data[key] = orjson.dumps({"chunks": {"0": [False, 2]}, "bytes": 10})
    assert t.sweep(now=T0 + 100 * MIN) == [], "first sight: its clock starts now"
    assert t.sweep(now=T0 + 109 * MIN) == []
    [(record, _)] = t.sweep(now=T0 + 110 * MIN)
    assert record.source.offset == -1 and t.data == {}


def test_plain_tables_expire_by_stamp_with_retention_zero_forever():
    seen: dict[bytes, int] = {}
    v = stamped(T0, {"object": {"id": "a"}, "results": {}})
    assert stamp(v) == T0 and orjson.loads(v)["object"] == {"id": "a"}
    assert expire_plain("stored-objects", b"a", v, now=T0 + MIN - 1, ttl=MIN, first_seen=seen) == []
    assert expire_plain("stored-objects", b"a", v, now=T0 + MIN, ttl=MIN, first_seen=seen) == [
        TableWrite("stored-objects", b"a", None)]
    assert expire_plain("stored-objects", b"a", v, now=T0 + 10**12, ttl=0, first_seen=seen) == []
    assert seen == {}, "stamped values need no memory"
