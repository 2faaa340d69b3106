"""This worker process's live model state, and the replica task that keeps it current."""

from __future__ import annotations

import atexit

from app.admin import bootstrap
from app.main import app, settings
from app.replica import ChangelogReplica
from app.state import ModelState
from app import tables

state = ModelState(settings)
replica = ChangelogReplica(bootstrap(settings.broker), tables.changelog_name(tables.training), state.apply)


@app.task
async def run_training_replica() -> None:
    await replica.run()


atexit.register(state.close)  # joins index build threads
