"""Training topic in: validated records into the training table, bad ones to dead letters."""

from __future__ import annotations

from app import tables
from app.agents import emit
from app.codec import Rejected
from app.engine.training import validate
from app.live import state
from app.main import app, settings, topics
from app.metrics import INPUTS


@app.agent(topics["training"])
async def training(stream):
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        INPUTS.labels("training").inc(len(batch))
        for event in batch:
            msg = event.message
            try:
                key, value = validate(msg.key, msg.value, state, state.taxonomy_doc)
            except Rejected as r:
                await emit.rejected(msg, r)
                continue
            k = key.encode()
            if value is not None:
                tables.training[k] = value
            elif k in tables.training:
                del tables.training[k]
