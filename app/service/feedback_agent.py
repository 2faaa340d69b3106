"""Feedback topic in: each item's verdicts kept, and learned as training examples where a kNN
classifier opts in (``app/classify/feedback.py``). Decided in the pool; the sink writes the
verdicts table and publishes each learned example (or its deletion) to the **training topic**,
keyed by the example id, where the training agent writes it into the partition that owns that
key: the feedback worker owns the item's partition, not necessarily the example's.
"""

from __future__ import annotations

from app.classify.feedback import feedback_step
from app.classify.outcome import Record, TableWrite
from app.classify.training import TRAINING
from app.service.metrics import INPUTS
from app.service.runtime import Runtime
from app.service.tables import FEEDBACK_VERDICTS, STORED_OBJECTS


def register(rt: Runtime) -> None:
    read_verdicts, read_stored = rt.tables.reader(FEEDBACK_VERDICTS), rt.tables.reader(STORED_OBJECTS)
    training_topic = rt.topics["training"].get_topic_name()

    @rt.agent("feedback", "feedback")
    async def feedback(stream):
        await rt.replica.caught_up.wait()  # the opt-in rules are on the classifiers
        async for batch in stream.take_events(rt.settings.batch_size, rt.settings.batch_within):
            records = [Record.of(e.message) for e in batch]
            INPUTS.labels("feedback").inc(len(records))
            outcomes = await rt.run(feedback_step, rt.state, records, read_verdicts, read_stored)
            learned: list[TableWrite] = []
            for out in outcomes:
                learned += [w for w in out.writes if w.table == TRAINING]
                out.writes = [w for w in out.writes if w.table != TRAINING]
            # Learned examples (a None value, a tombstone, deletes one) leave with the batch's outputs: flushed
            # before its offsets are committed, and a refusal stops the worker (the sink's delivery rule)
            # instead of crashing the agent into a loop over a record the broker will never take.
            await rt.sink.emit(zip(records, outcomes), also=[(training_topic, w.key, w.value) for w in learned])
