"""``labelstream media push`` (media items to the media topic) and ``labelstream classify videos|index``
(Twelve Labs classify v1.2 against a worker, every page, printed as a table).

The server is ``--url`` (``LABELSTREAM_URL``, else the local worker), the key ``--api-key``
(``LABELSTREAM_API_KEY``, else one of the local worker's keys), as for ``jobs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from app.cli.common import fail

media_cli = typer.Typer(no_args_is_help=True, help="Media items (the media topic).")
classify_cli = typer.Typer(no_args_is_help=True, help="Twelve Labs classify v1.2 over the stored media.")

URL = typer.Option(None, "--url", help="worker URL (default: LABELSTREAM_URL, else the local worker)")
KEY = typer.Option(None, "--api-key", help="API key (default: LABELSTREAM_API_KEY, else a key of the local worker)")
CLASSES = typer.Option(..., "--classes", help='JSON file: [{"name", "prompts", "options"?, "conversation_option"?}]')
OPTIONS = typer.Option("visual,conversation", "--options", help="comma-separated: visual, conversation, text_in_video")
AS_JSON = typer.Option(False, "--json", help="print the videos as JSON instead of a table")


def register(cli: typer.Typer) -> None:
    cli.add_typer(media_cli, name="media")
    cli.add_typer(classify_cli, name="classify")


@media_cli.command("push")
def push(path: Path = typer.Argument(..., help="a media item (JSON file) or a folder of its chunks (*.json)")) -> None:
    """Publish a media item, or every chunk in a folder (name order), keyed by media_id; all checked first.

    Example:

        labelstream media push video-42/      # chunk-000.json ... chunk-009.json
    """
    from app.cli.publish import _send
    from app.devtools.mediaclient import MediaFileError, load_media

    try:
        pairs = load_media(path)
    except MediaFileError as e:
        fail(str(e))
    _send("media", pairs, "media records")


def _run(body: dict[str, Any], classes: Path, options: str, url: Optional[str], key: Optional[str],
         as_json: bool, **extra: Any) -> None:
    from app.devtools.jobsclient import default_key, default_url
    from app.devtools.mediaclient import MediaFileError, classify, table
    from app.settings import get_settings

    try:
        body["classes"] = json.loads(classes.read_text())
    except (OSError, ValueError) as e:
        fail(f"{classes}: {e}")
    body["options"] = [o.strip() for o in options.split(",") if o.strip()]
    body.update({k: v for k, v in extra.items() if v is not None})
    try:
        videos = classify((url or default_url(get_settings())).rstrip("/"), key or default_key(), body)
    except MediaFileError as e:
        fail(str(e))
    typer.echo(json.dumps(videos, indent=2) if as_json else table(videos))


@classify_cli.command("videos")
def videos(video_ids: list[str] = typer.Argument(..., help="video (media) ids"), classes: Path = CLASSES,
           options: str = OPTIONS, threshold: Optional[float] = typer.Option(None, help="min_clip_score"),
           url: Optional[str] = URL, api_key: Optional[str] = KEY, as_json: bool = AS_JSON) -> None:
    """Classify stored videos by id (POST /v1.2/classify).

    Example:

        labelstream classify videos vid-1 vid-2 --classes classes.json --options visual,conversation
    """
    _run({"video_ids": video_ids}, classes, options, url, api_key, as_json,
         threshold=None if threshold is None else {"min_clip_score": threshold})


@classify_cli.command("index")
def index(index_id: str = typer.Argument(..., help="the index"), classes: Path = CLASSES, options: str = OPTIONS,
          threshold: Optional[float] = typer.Option(None, help="min_clip_score"), url: Optional[str] = URL,
          api_key: Optional[str] = KEY, as_json: bool = AS_JSON) -> None:
    """Classify every stored video of an index (POST /v1.2/classify/bulk), all pages.

    Example:

        labelstream classify index shows --classes classes.json --options conversation,text_in_video
    """
    _run({"index_id": index_id}, classes, options, url, api_key, as_json,
         threshold=None if threshold is None else {"min_clip_score": threshold})
