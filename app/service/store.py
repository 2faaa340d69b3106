"""The RocksDB table store (``LABELSTREAM_STORE=rocksdb://``, the ``[rocksdb]`` extra), fixed for
tables written with ``use_partitioner``.

faust-streaming 0.15.3's RocksDB store files a written key under the partition of
``current_event()``. Our tables are written by the sink after a ``take_events`` batch (no
current event: the write fails with a bare ``AssertionError``, and the agent crashes) and by
the sweeper's timer (no event at all); and a batch spans partitions, so the current event's
partition is not the key's anyway. The key's partition is the one the changelog producer
picks for it, murmur2 of the raw key bytes (``app/service/tables.py``): this store files it
there, so the local database, the changelog and changelog recovery agree.
"""

from __future__ import annotations

from collections.abc import Callable

from faust.stores import STORES
from faust.stores.rocksdb import Store as FaustRocksDB
from yarl import URL

from app.classify.assembly import partition_of

SCHEME = "labelstream-rocksdb"


class RocksDBStore(FaustRocksDB):
    def _set(self, key: bytes, value: bytes | None) -> None:
        assert self.table.partitions is not None  # app/service/tables.py always sets them
        partition = partition_of(key, self.table.partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)

    def key_counter(self) -> Callable[[], int]:
        """Taken on the event loop: a count of the keys of this worker's active partitions, to run
        in a thread (it walks every key: RocksDB keeps no count). Only the databases are touched
        there: Faust's store and table bind their event loop when first used, and a thread using
        them bound a table's task to no running loop (its stop then waited forever)."""
        dbs = list(self._dbs_for_actives())
        return lambda: sum(sum(1 for _ in self._visible_keys(db)) for db in dbs)


def table_store(url: str) -> str | None:
    """The store URL for our tables: ``rocksdb://...`` becomes this module's store, others stay Faust's.

    >>> table_store("rocksdb://"), table_store("memory://")
    ('labelstream-rocksdb://', None)
    """
    if URL(url).scheme != "rocksdb":
        return None
    STORES.aliases.setdefault(SCHEME, f"{__name__}:RocksDBStore")
    return SCHEME + url[len("rocksdb"):]
