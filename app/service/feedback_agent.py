"""Feedback topic in: each item's verdicts kept, and learned as training examples where a kNN
classifier opts in (``app/classify/feedback.py``). The same shape as every agent: decode and
decide in the pool, the sink writes the tables (verdicts; learned examples into the training
table, whose changelog every worker's training replica tails, so the example counts at once).
"""

from __future__ import annotations

from app.classify.feedback import feedback_step
from app.classify.outcome import Record
from app.service.metrics import INPUTS
from app.service.runtime import Runtime
from app.service.tables import FEEDBACK_VERDICTS, STORED_OBJECTS


def register(rt: Runtime) -> None:
    read_verdicts, read_stored = rt.tables.reader(FEEDBACK_VERDICTS), rt.tables.reader(STORED_OBJECTS)

    @rt.agent("feedback", "feedback")
    async def feedback(stream):
        await rt.replica.caught_up.wait()  # the opt-in rules are on the classifiers
        async for batch in stream.take_events(rt.settings.batch_size, rt.settings.batch_within):
            records = [Record.of(e.message) for e in batch]
            INPUTS.labels("feedback").inc(len(records))
            outcomes = await rt.run(feedback_step, rt.state, records, read_verdicts, read_stored)
            await rt.sink.emit(zip(records, outcomes))
