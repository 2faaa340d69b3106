"""What every command module of the CLI shares."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit 1: operational failures never end in a traceback."""
    typer.echo(f"labelstream: {message}", err=True)
    raise typer.Exit(1)


def fail_lines(lines: list[str], summary: str, limit: int = 50) -> NoReturn:
    """Several problems (e.g. one per bad line of a file), then a summary line; exit 1."""
    for line in lines[:limit]:
        typer.echo(line, err=True)
    if len(lines) > limit:
        typer.echo(f"... and {len(lines) - limit} more", err=True)
    fail(summary)
