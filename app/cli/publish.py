"""Files to topics: ``produce`` (any catalog topic), ``examples push`` and ``taxonomy push`` (training).

Each reads the whole file and checks it first (``app/devtools/pushfile.py``); on any problem
it prints one line per bad record (``FILE:LINE: ...``) and publishes nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from app.cli.common import fail, fail_lines

examples_cli = typer.Typer(no_args_is_help=True, help="Training examples (the training topic).")
taxonomy_cli = typer.Typer(no_args_is_help=True, help="Zero-shot taxonomies (the training topic).")


def register(cli: typer.Typer) -> None:
    cli.command()(produce)
    cli.add_typer(examples_cli, name="examples")
    cli.add_typer(taxonomy_cli, name="taxonomy")
    examples_cli.command("push")(examples_push)
    taxonomy_cli.command("push")(taxonomy_push)


def _send(topic: str, pairs: list, what: str) -> None:
    from app.devtools.clients import produce as send
    from app.settings import get_settings

    settings = get_settings()
    try:
        n = asyncio.run(asyncio.wait_for(send(topic, pairs, settings), 120))
    except Exception as e:  # noqa: BLE001 - aiokafka's errors share no useful base: one line, never a traceback
        fail(f"could not publish to {settings.broker}: {type(e).__name__}: {e}")
    typer.echo(f"published {n} {what} to {settings.topic(topic)}")


def produce(
    file: Path = typer.Argument(..., help="JSON lines: one record (a JSON object) per line"),
    topic: str = typer.Option(..., "--topic", "-t", help="catalog topic: objects, media, training, ..."),
    key_field: str = typer.Option("id", help="the field whose value becomes the Kafka key"),
    no_key: bool = typer.Option(False, "--no-key", help="send records without keys"),
) -> None:
    """Publish every record of a JSON-lines file to a catalog topic, keyed by a field.

    The whole file is checked first (JSON objects, a key in each); nothing is sent if a line is bad.

    Example:

        labelstream produce objects.jsonl --topic objects --key-field id
    """
    from app.devtools.pushfile import FileErrors, keyed, parse_items, read_file
    from app.topics import CATALOG

    if topic not in CATALOG:
        fail(f"unknown topic {topic!r}: one of {', '.join(sorted(CATALOG))} (the prefix is added)")
    try:
        pairs = keyed(parse_items(str(file), read_file(file)), None if no_key else key_field)
    except FileErrors as e:
        fail_lines(e.lines, f"{file}: nothing published ({len(e.lines)} problem(s))")
    _send(topic, pairs, "records")


def _push(file: Path, kind: str, what: str) -> None:
    from app.devtools.pushfile import FileErrors, parse_items, read_file, training_records
    from app.settings import get_settings

    try:
        items = parse_items(str(file), read_file(file), allow_document=True)
        pairs = training_records(items, kind, get_settings())
    except FileErrors as e:
        fail_lines(e.lines, f"{file}: nothing published ({len(e.lines)} problem(s))")
    _send("training", pairs, what)


def examples_push(
    file: Path = typer.Argument(..., help="JSON lines of examples: {id, class, vector|text, labels, properties}"),
) -> None:
    """Validate training examples like the training agent does, then publish them (keyed by id).

    Checks each example (schema, labels, vector dimensions within the file and per class, text
    vectorized with the configured vectorizer); on any error nothing is published. "record":
    "example" may be left out.

    Example:

        labelstream examples push examples.jsonl
    """
    _push(file, "example", "examples")


def taxonomy_push(
    file: Path = typer.Argument(..., help="a taxonomy as JSON (one object or a list) or JSON lines"),
) -> None:
    """Validate zero-shot taxonomies like the training agent does, then publish them.

    Checks each taxonomy (schema, class tree without cycles, heads, prompts vectorized, limits)
    and publishes it keyed taxonomy:<name>; on any error nothing is published. "record":
    "taxonomy" may be left out. Bump "version" to replace a published taxonomy.

    Example:

        labelstream taxonomy push news-taxonomy.json
    """
    _push(file, "taxonomy", "taxonomies")

