"""The CLI's media commands without the CLI: media files to records, and a Twelve Labs classify client.

``load_media`` reads a media item (a JSON file) or a folder of chunked items (``*.json``, in name order)
and checks each against the media event schema; ``classify`` posts ``/v1.2/classify`` or ``/bulk`` and
follows every page; ``table`` prints the answer. Standard library only (urllib).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.schemas.media import MediaEvent


class MediaFileError(ValueError):
    """A file that is not a media item (the message names the file and the field)."""


def load_media(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(media_id, event)`` pairs of a media file or a folder of chunk files; raises MediaFileError.

    >>> import tempfile, os
    >>> d = Path(tempfile.mkdtemp())
    >>> seg = {"start": 0, "end": 1, "text": "hi", "option": "conversation"}
    >>> for i in (1, 0):
    ...     _ = (d / f"part{i}.json").write_text(json.dumps({"media_id": "v", "kind": "video", "segments": [seg],
    ...                                                        "chunk": {"seq": i, "final": i == 1}}))
    >>> [(k, e["chunk"]["seq"]) for k, e in load_media(d)]
    [('v', 0), ('v', 1)]
    >>> _ = (d / "part2.json").write_text('{"media_id": "v"}')
    >>> load_media(d)
    Traceback (most recent call last):
    ...
    app.devtools.mediaclient.MediaFileError: ...part2.json: kind: Field required
    """
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise MediaFileError(f"{path}: no *.json media files")
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
            ev = MediaEvent.model_validate(doc)
        except (OSError, ValueError) as e:
            if isinstance(e, ValidationError):
                err = e.errors(include_url=False)[0]
                where = ".".join(str(p) for p in err["loc"])
                raise MediaFileError(f"{f}: {where}: {err['msg']}") from None
            raise MediaFileError(f"{f}: {e}") from None
        out.append((ev.media_id, doc))
    return out


def _call(url: str, key: str | None, method: str, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            doc = json.loads(e.read())
            msg = f"{doc.get('code')}: {doc.get('message')}"
        except ValueError:
            msg = e.reason
        raise MediaFileError(f"HTTP {e.code}: {msg}") from None
    except urllib.error.URLError as e:
        raise MediaFileError(f"cannot reach {url}: {e.reason}") from None


def classify(base: str, key: str | None, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every video of a classify request, following ``next_page_token`` to the last page."""
    path = "/v1.2/classify/bulk" if "index_id" in body else "/v1.2/classify"
    page = _call(base + path, key, "POST", body)
    videos = list(page["data"])
    while token := page["page_info"].get("next_page_token"):
        page = _call(f"{base}/v1.2/classify/{token}", key, "GET")
        videos += page["data"]
    return videos


def table(videos: list[dict[str, Any]]) -> str:
    """One row per (video, class), best class first.

    >>> print(table([{"video_id": "v1", "classes": [{"name": "Dance", "score": 84.0, "duration_ratio": 1.0}]},
    ...              {"video_id": "v2", "classes": []}]))
    video_id  class  score  duration_ratio
    v1        Dance  84.00  1.00
    v2        -      -      -
    """
    rows = [("video_id", "class", "score", "duration_ratio")]
    for v in videos:
        if not v["classes"]:
            rows.append((v["video_id"], "-", "-", "-"))
        for c in v["classes"]:
            rows.append((v["video_id"], c["name"], f"{c['score']:.2f}", f"{c['duration_ratio']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
