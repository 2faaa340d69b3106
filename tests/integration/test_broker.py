"""The local broker itself: transactions work on it (single-node transaction-state settings)."""

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.service.admin import bootstrap


async def test_transactions_commit_and_abort(broker):
    servers, topic = bootstrap(broker), f"txn-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=servers, transactional_id=f"t-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"after")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, isolation_level="read_committed",
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        seen = []
        while len(seen) < 2:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, f"timed out with {seen}"
            seen += [r.value for recs in batch.values() for r in recs]
    finally:
        await consumer.stop()
    assert seen == [b"committed", b"after"]
