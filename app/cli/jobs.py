"""``labelstream jobs ...``: classification jobs through the worker's Weaviate-compatible REST API.

Thin HTTP clients (``app/devtools/jobsclient.py``) of ``/v1/classifications``: the server is
``--url`` (``LABELSTREAM_URL``, else the local worker), the key ``--api-key``
(``LABELSTREAM_API_KEY``, else one of the local worker's own keys) when keys are configured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer

from app.cli.common import fail

jobs_cli = typer.Typer(no_args_is_help=True, help="Classification jobs over HTTP (Weaviate's /v1/classifications).")

URL = typer.Option(None, "--url", help="worker URL (default: LABELSTREAM_URL, else the local worker)")
KEY = typer.Option(None, "--api-key", help="API key (default: LABELSTREAM_API_KEY, else a key of the local worker)")


def register(cli: typer.Typer) -> None:
    cli.add_typer(jobs_cli, name="jobs")


def _client(url: Optional[str], key: Optional[str]) -> Any:
    from app.devtools.jobsclient import JobsClient, default_key, default_url
    from app.settings import get_settings

    return JobsClient((url or default_url(get_settings())).rstrip("/"), key or default_key())


def _refused(e: Any) -> NoReturn:
    fail(f"{e.message} (HTTP {e.status})" if e.status else e.message)


def _print(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, sort_keys=True))


@jobs_cli.command("start")
def start(
    class_: Optional[str] = typer.Option(None, "--class", "-c", help="class of the stored objects to classify"),
    type_: str = typer.Option("knn", "--type", help="knn | zeroshot"),
    classify: list[str] = typer.Option([], "--classify", help="a property to classify (repeat for more)"),
    based_on: list[str] = typer.Option([], "--based-on", help="a text property the classification is based on"),
    k: Optional[int] = typer.Option(None, "--k", help="kNN: neighbours to vote (server default 3)"),
    taxonomy: list[str] = typer.Option([], "--taxonomy", help="zero-shot: a taxonomy to use (repeat for more)"),
    scope: Optional[str] = typer.Option(None, "--scope", help="unlabeled (default: objects without a value) | all"),
    filters: Optional[Path] = typer.Option(None, "--filters", help="JSON file: {sourceWhere, trainingSetWhere, targetWhere}"),
    body: Optional[Path] = typer.Option(None, "--body", help="JSON file with the whole request body (other options ignored)"),
    watch_: bool = typer.Option(False, "--watch", help="then show its progress until it ends"),
    url: Optional[str] = URL,
    api_key: Optional[str] = KEY,
) -> None:
    """Start a classification job (POST /v1/classifications) and print it, with its id.

    Example:

        labelstream jobs start --class Article --classify topic --based-on summary --k 5 --watch
    """
    from app.devtools.jobsclient import ApiError, job_body

    if body is not None:
        doc = _json_file(body)
    else:
        if not class_:
            fail("--class is required (or --body FILE)")
        if not classify:
            fail("--classify is required: the property to classify (repeat for more)")
        if type_ not in ("knn", "zeroshot"):
            fail(f"--type must be knn or zeroshot, got {type_!r}")
        if scope not in (None, "unlabeled", "all"):
            fail(f"--scope must be unlabeled or all, got {scope!r}")
        doc = job_body(type_, class_, classify, based_on, k=k, taxonomies=taxonomy, scope=scope,
                       filters=_json_file(filters) if filters else None)
    client = _client(url, api_key)
    try:
        job = client.start(doc)
    except ApiError as e:
        _refused(e)
    _print(job)
    if watch_:
        _watch(client, str(job.get("id")), 0.5, None)


@jobs_cli.command("status")
def status(job_id: str = typer.Argument(..., help="the job's id"), url: Optional[str] = URL,
           api_key: Optional[str] = KEY) -> None:
    """Print a job (GET /v1/classifications/{id}): status, meta counts, error.

    Example:

        labelstream jobs status ee722219-b8ec-4db1-8f8d-5150bb1a9e0c
    """
    from app.devtools.jobsclient import ApiError

    try:
        _print(_client(url, api_key).status(job_id))
    except ApiError as e:
        _refused(e)


@jobs_cli.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="print the jobs as JSON"),
          url: Optional[str] = URL, api_key: Optional[str] = KEY) -> None:
    """List the jobs the service keeps (GET /v1/classifications), one line each.

    Example:

        labelstream jobs list --url http://10.0.0.7:6066
    """
    from app.devtools.jobsclient import ApiError, summary

    try:
        jobs = _client(url, api_key).list()
    except ApiError as e:
        _refused(e)
    if as_json:
        _print(jobs)
        return
    for job in jobs:
        typer.echo(summary(job))
    if not jobs:
        typer.echo("no jobs")


@jobs_cli.command("watch")
def watch(job_id: str = typer.Argument(..., help="the job's id"),
          interval: float = typer.Option(0.5, help="seconds between two polls"),
          timeout: Optional[float] = typer.Option(None, help="give up after this many seconds"),
          url: Optional[str] = URL, api_key: Optional[str] = KEY) -> None:
    """Show a job's progress live until it completes or fails (exit code 1 when it fails).

    Example:

        labelstream jobs watch ee722219-b8ec-4db1-8f8d-5150bb1a9e0c --interval 1
    """
    _watch(_client(url, api_key), job_id, interval, timeout)


def _watch(client: Any, job_id: str, interval: float, timeout: Optional[float]) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.devtools.jobsclient import ApiError, progress

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        task = bar.add_task(f"job {job_id}", total=None)

        def update(job: dict) -> None:
            done, total = progress(job)
            bar.update(task, completed=done, total=total, description=f"job {job_id} {job.get('status')}")

        try:
            job = client.watch(job_id, update, interval=interval, timeout=timeout)
        except ApiError as e:
            bar.stop()
            _refused(e)
    meta = job.get("meta") or {}
    counts = ", ".join(f"{k}={meta[k]}" for k in ("count", "countSucceeded", "countFailed") if k in meta)
    typer.echo(f"{job.get('status')}: {counts or 'no counts'}" + (f"; error: {job['error']}" if job.get("error") else ""))
    if job.get("status") != "completed":
        raise typer.Exit(1)


def _json_file(path: Path) -> Any:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    except ValueError as e:
        fail(f"{path}: not valid JSON: {e}")
    if not isinstance(doc, dict):
        fail(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc
