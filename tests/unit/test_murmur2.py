"""The memoized murmur2 gives aiokafka's values, so a key lands where every Kafka client puts it."""

from aiokafka.partitioner import DefaultPartitioner, murmur2 as aiokafka_murmur2
from hypothesis import given, settings, strategies as st

from app.core.murmur2 import _hash, murmur2, partition


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_the_hash_is_aiokafkas(key: bytes) -> None:
    assert _hash(key) == aiokafka_murmur2(key)
    assert murmur2(key) == aiokafka_murmur2(key)  # memoized: the same, the first time and after
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=1000))
def test_the_partition_is_the_default_partitioners(key: bytes, n: int) -> None:
    every = list(range(n))
    assert partition(key, n) == DefaultPartitioner()(key, every, every)
