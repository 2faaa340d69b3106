"""Training topic in: validated records into the training table, bad ones to dead letters.

Validation (filters compiled, prompts vectorized) runs in the pool and reads the table, so a
batch is checked against what it writes itself (``app/classify/training.py``).

Records arrive in fetched batches on a lane, as objects do (``app/service/lean.py``).
A batch is validated and emitted in chunks of about ``emit_every`` seconds of work
(``app/service/pacing.py``): the classify pool is shared with the objects agent, and a batch of
1,024 training examples validated as one work item (~0.3 s) holds a classify thread that long,
with objects queued behind it. Each chunk's writes are in the table before the next chunk is
validated, so the result is the same as one batch.
"""

from __future__ import annotations

from app.classify.outcome import Record
from app.classify.training import training_step
from app.service.metrics import INPUTS
from app.service.pacing import Pacer, paced
from app.service.runtime import Runtime
from app.service.tables import TRAINING


#: A first guess of the seconds per training record (a 384-d example ~0.3 ms), refined as it goes.
PER_RECORD = 0.0005


def register(rt: Runtime) -> None:
    pacer = Pacer(rt.settings.emit_every, per_record=PER_RECORD)

    read = rt.tables.reader(TRAINING)

    # A lane, as objects (app/service/lean.py): Faust's per-event stream cost ~0.6 ms of event-loop
    # time per record, so a burst of 2,000 examples took over a second from the objects' results.
    @rt.hot("training", "training")
    async def training(records: list[Record]) -> None:
        INPUTS.labels("training").inc(len(records))
        await paced(pacer, records, work, rt.sink.outcomes)

    async def work(chunk):
        return await rt.run(training_step, rt.state, chunk, read)
