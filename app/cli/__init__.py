"""The ``labelstream`` command: worker, local Kafka, topic catalog, demo, produce, push, tail and jobs.

Commands live here (operations) and in ``publish.py`` (files to topics), ``jobs.py``
(classification jobs over HTTP) and ``media.py`` (media items, Twelve Labs classify); ``common.py`` holds what they share.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Optional

# Batches already run in a thread pool; BLAS threads on top oversubscribe small machines
# (measured: a MiniLM encode 0.54 s with one BLAS thread, 2.6 s with the default on 2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from app.cli import jobs, media, publish, raw_media
from app.cli.common import fail
from app.devtools import localcluster, localkafka

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Labelstream: real-time classification on Kafka. Every command has --help with an example.")
topics_cli = typer.Typer(no_args_is_help=True, help="The topic catalog in topics/.")
cli.add_typer(topics_cli, name="topics")


@cli.command()
def worker(loglevel: str = typer.Option(None, "--loglevel", "-l", help="debug|info|warning")) -> None:
    """Run a Faust worker (same as faust -A app.service.worker worker), creating catalog topics first.

    Example:

        LABELSTREAM_API_KEYS=$(openssl rand -hex 24) labelstream worker -l info
    """
    from app.service.admin import BrokerUnavailable, ensure_topics
    from app.service.httpguard import WebConfigError, check_web
    from app.settings import get_settings

    settings = get_settings()
    try:
        check_web(settings)  # before the broker: a refused configuration fails at once, clearly
    except WebConfigError as e:
        fail(str(e))
    try:
        asyncio.run(ensure_topics(settings))
    except BrokerUnavailable as e:
        fail(str(e))
    from app.service.faustfix import UnsupportedVersion

    try:
        from app.service.worker import app, runtime
    except UnsupportedVersion as e:
        fail(str(e))

    sys.argv = ["labelstream", "worker", "-l", loglevel or settings.log_level]
    try:
        app.main()
    finally:
        if runtime.sink.failure is not None:  # stopped because outputs could not be delivered
            raise SystemExit(3)


@cli.command(context_settings={"allow_extra_args": True})
def kafka(action: str = typer.Argument("status", help="start | stop | status | wait | logs | env | fetch")) -> None:
    """Manage the local single-node Kafka broker (jars from Maven Central, data under var/kafka).

    Example:

        labelstream kafka start
    """
    raise typer.Exit(localcluster.cli([action]))


@topics_cli.command("export")
def topics_export() -> None:
    """Regenerate topics/*.json from the pydantic models.

    Example:

        labelstream topics export
    """
    from app.topics import export

    for path in export():
        typer.echo(f"wrote {path.relative_to(path.parent.parent)}")


@topics_cli.command("create")
def topics_create() -> None:
    """Create every catalog topic that does not exist yet.

    Example:

        LABELSTREAM_BROKER=kafka://10.0.0.5:9092 labelstream topics create
    """
    from app.service.admin import BrokerUnavailable, ensure_topics
    from app.settings import get_settings

    try:
        created = asyncio.run(ensure_topics(get_settings()))
    except BrokerUnavailable as e:
        fail(str(e))
    typer.echo(f"created: {', '.join(created) or 'nothing (all exist)'}")


@cli.command()
def demo(
    objects: int = typer.Option(12, help="sample objects to publish"),
    timeout: float = typer.Option(90.0, help="give up after this many seconds"),
) -> None:
    """Run the whole flow on the embedded default and print results as they arrive.

    Starts the local broker unless LABELSTREAM_BROKER is set, starts a worker, publishes
    sample training data and objects, prints each result, then shuts everything down.

    Example:

        labelstream demo --objects 20
    """
    from app.devtools.demo import run_demo

    try:
        code = run_demo(n_objects=objects, timeout=timeout, broker=os.environ.get("LABELSTREAM_BROKER"))
    except localkafka.KafkaError as e:
        fail(str(e))
    raise typer.Exit(code)


@cli.command()
def tail(
    topic: str = typer.Argument("results", help="catalog name (results, deadletter, moderation, ...)"),
    limit: Optional[int] = typer.Option(None, help="stop after this many records"),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
) -> None:
    """Print records of a topic as JSON lines ({"key": ..., "value": ...}).

    Example:

        labelstream tail deadletter --from-beginning --limit 10
    """
    from app.devtools.clients import tail_topic

    asyncio.run(tail_topic(topic, limit=limit, from_beginning=from_beginning))


publish.register(cli)  # after the commands above: --help lists operations first
jobs.register(cli)
media.register(cli)
raw_media.register(cli)  # bank push (raw images and videos hashed with PDQ)


def main() -> None:
    cli()
