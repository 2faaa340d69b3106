"""Training topic in: validated records into the training table, bad ones to dead letters.

Validation (filters compiled, prompts vectorized) runs in the pool and reads the table, so a
batch is checked against what it writes itself (``app/classify/training.py``).
"""

from __future__ import annotations

from app.classify.outcome import Record
from app.classify.training import training_step
from app.service.metrics import INPUTS
from app.service.runtime import Runtime
from app.service.tables import TRAINING


def register(rt: Runtime) -> None:
    @rt.agent("training", "training")
    async def training(stream):
        read = rt.tables.reader(TRAINING)
        async for batch in stream.take_events(rt.settings.batch_size, rt.settings.batch_within):
            records = [Record.of(e.message) for e in batch]
            INPUTS.labels("training").inc(len(records))
            outcomes = await rt.run(training_step, rt.state, records, read)
            await rt.sink.emit(zip(records, outcomes))
