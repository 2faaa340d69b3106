"""The RocksDB table store (``LABELSTREAM_STORE=rocksdb://``, the ``[rocksdb]`` extra), fixed for
tables written with ``use_partitioner``.

faust-streaming 0.15.3's RocksDB store files a written key under the partition of
``current_event()``. Our tables are written by the sink after a ``take_events`` batch (no
current event: the write fails with a bare ``AssertionError``, and the agent crashes) and by
the sweeper's timer (no event at all); and a batch spans partitions, so the current event's
partition is not the key's anyway. The key's partition is the one the changelog producer
picks for it, murmur2 of the raw key bytes (``app/service/tables.py``): this store files it
there, so the local database, the changelog and changelog recovery agree.

**Memory.** Faust opens one database per table partition (9 tables x 8 partitions here), each with
its own 2 GiB block cache and up to three 64 MiB memtables: a cold start with 1M stored objects
peaked at 4.7 GiB, 0.8 GiB after a warm restart (bench/RESULTS.md, "Worker start-up"); shared, 1.8 and 0.7 GiB. Every
database of a worker here shares one block cache and one write buffer manager instead
(``LABELSTREAM_ROCKSDB_BLOCK_CACHE_MB``, ``LABELSTREAM_ROCKSDB_WRITE_BUFFERS_MB``), so RocksDB's
memory has one bound per worker, whatever the partition count.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as FaustRocksDB
from yarl import URL

from app.classify.assembly import partition_of

SCHEME = "labelstream-rocksdb"
MIB = 1024 * 1024
#: (block cache, write buffers) in MiB for every database of this process: set by ``table_store``.
_budget = (256, 256)


@lru_cache(maxsize=None)
def shared_memory(block_cache_mb: int, write_buffers_mb: int) -> tuple[Any, Any]:
    """The block cache and write buffer manager every database of this process shares."""
    import rocksdict  # the [rocksdb] extra

    return rocksdict.Cache(block_cache_mb * MIB), rocksdict.WriteBufferManager(write_buffers_mb * MIB, False)


def shared_options(o: RocksDBOptions) -> Any:
    """Faust's options for a database (``RocksDBOptions.as_options``, rocksdict), with the process's
    shared block cache and write buffer manager instead of a cache of its own."""
    import rocksdict

    cache, buffers = shared_memory(*_budget)
    opts = RocksDBOptions.as_options(o)  # Faust's, then its table factory replaced: same bloom filter and index
    opts.set_write_buffer_manager(buffers)
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(o.bloom_filter_size, True)
    table.set_block_cache(cache)
    table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
    opts.set_block_based_table_factory(table)
    return opts


class RocksDBStore(FaustRocksDB):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.use_rocksdict:  # Faust's open() asks its options object for the rocksdict Options
            self.rocksdb_options.as_options = partial(shared_options, self.rocksdb_options)  # type: ignore[method-assign]

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


def table_store(url: str, block_cache_mb: int = 256, write_buffers_mb: int = 256) -> str | None:
    """The store URL for our tables: ``rocksdb://...`` becomes this module's store, others stay Faust's.
    Also sets the RocksDB memory every database of this process shares.

    >>> table_store("rocksdb://"), table_store("memory://")
    ('labelstream-rocksdb://', None)
    """
    if URL(url).scheme != "rocksdb":
        return None
    global _budget
    _budget = (block_cache_mb, write_buffers_mb)
    STORES.aliases.setdefault(SCHEME, f"{__name__}:RocksDBStore")
    return SCHEME + url[len("rocksdb"):]
