"""Raw media files to topics: ``media push`` of image/video files (media events with ``content``)
and ``bank push`` (hash-bank entries: images or videos hashed here with PDQ, or files of hashes).

Every file is decoded here first, with the service's own decoder and limits
(``app/core/decode_media.py``): a file the worker would dead-letter is reported
(``FILE: reason: detail``) and nothing is published.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer

from app.cli.common import fail, fail_lines

bank_cli = typer.Typer(no_args_is_help=True, help="Hash banks of known content (the training topic).")
#: raw bytes per chunk: base64 makes 4/3 of it, within the 8 MiB payload limit with room for the rest
CHUNK_BYTES = 4 * 1024 * 1024
HASH_FILES = (".txt", ".pdq", ".hashes")


def register(cli: typer.Typer) -> None:
    """``bank push``; raw files go through ``media push`` (``app/cli/media.py``), which hands them to ``push_files``."""
    cli.add_typer(bank_cli, name="bank")
    bank_cli.command("push")(bank_push)


def _limits():
    from app.classify.banks import media_limits
    from app.settings import get_settings

    return media_limits(get_settings())


def _check(path: Path, data: bytes) -> Any:
    """The decoded media, or a ``FILE: reason: detail`` line."""
    from app.core.decode_media import DecodeError, decode_media

    kind = "video" if (mimetypes.guess_type(path.name)[0] or "").startswith("video/") else "image"
    try:
        return decode_media(data, kind, _limits())
    except DecodeError as e:
        return f"{path}: {e.reason}: {e.detail}"


def _read(paths: list[Path], problems: list[str]) -> Iterator[tuple[Path, bytes]]:
    """Each readable file's bytes; an unreadable one becomes a ``FILE: cannot read`` problem."""
    for path in paths:
        try:
            yield path, path.read_bytes()
        except OSError as e:
            problems.append(f"{path}: cannot read: {e.strerror}")


def media_records(paths: list[Path], index_id: str, classifier: str | None = None,
                  chunk_bytes: int = CHUNK_BYTES) -> tuple[list[tuple[str, dict]], list[str]]:
    """``(key, media event)`` pairs for the files (several chunks for a large one) and the problems found."""
    pairs: list[tuple[str, dict]] = []
    problems: list[str] = []
    for path, data in _read(paths, problems):
        m = _check(path, data)
        if isinstance(m, str):
            problems.append(m)
            continue
        mid = f"{path.stem}-{hashlib.sha256(data).hexdigest()[:12]}"  # the same file: the same id (and cache)
        base: dict[str, Any] = {"media_id": mid, "index_id": index_id, "kind": m.kind,
                                "mimetype": mimetypes.guess_type(path.name)[0], "width": m.width, "height": m.height,
                                "duration": m.duration}
        if classifier:
            base["classifier"] = classifier
        pieces = [data[i:i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]
        if len(pieces) == 1:
            pairs.append((mid, {**base, "content": base64.b64encode(data).decode()}))
            continue
        for seq, piece in enumerate(pieces):
            pairs.append((mid, {**base, "content": base64.b64encode(piece).decode(),
                                "chunk": {"seq": seq, "final": seq == len(pieces) - 1, "total": len(pieces)}}))
    return pairs, problems


def bank_records(paths: list[Path], bank: str, label: str | None, min_quality: int
                 ) -> tuple[list[tuple[str, dict]], list[str]]:
    """``(key, bank_entry)`` pairs: media files hashed here (frames under ``min_quality`` left out),
    files of hashes (one 64-hex-digit PDQ hash per line, ``#`` comments) one entry per line."""
    from app.core.pdq import hash_hex, parse_hex, pdq_hash

    pairs: list[tuple[str, dict]] = []
    problems: list[str] = []
    for path, data in _read(paths, problems):
        entry = {"record": "bank_entry", "bank": bank, "label": label or path.stem,
                 "provenance": {"file": path.name}}
        if path.suffix.lower() in HASH_FILES:
            for n, line in enumerate(data.decode(errors="replace").splitlines(), 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                try:
                    hexed = hash_hex(parse_hex(text.lower()))
                except ValueError as e:
                    problems.append(f"{path}:{n}: {e}")
                    continue
                eid = f"{bank}/{hexed[:16]}"
                pairs.append((f"bank_entry:{eid}", {**entry, "id": eid, "hashes": [hexed],
                                                    "provenance": {"file": path.name, "line": n}}))
            continue
        m = _check(path, data)
        if isinstance(m, str):
            problems.append(m)
            continue
        hashes = []
        for f in m.frames:
            h, q = pdq_hash(f.rgb)
            if q >= min_quality and hash_hex(h) not in hashes:
                hashes.append(hash_hex(h))
        if not hashes:
            problems.append(f"{path}: no frame reaches PDQ quality {min_quality}: nothing to match against")
            continue
        eid = f"{bank}/{path.stem}-{hashlib.sha256(data).hexdigest()[:12]}"
        pairs.append((f"bank_entry:{eid}", {**entry, "id": eid, "hashes": hashes}))
    return pairs, problems


def _send(topic: str, pairs: list, what: str) -> None:
    from app.cli.publish import _send as send

    send(topic, pairs, what)


def push_files(files: list[Path], index_id: str, classifier: Optional[str], chunk_bytes: int = CHUNK_BYTES) -> None:
    """Publish images and videos as media events carrying their content (base64), keyed by media_id.

    Each file is decoded here first with the worker's limits (LABELSTREAM_MAX_MEDIA_*); if one
    would be dead-lettered, nothing is published. The media_id is the file name plus a content hash.
    """
    pairs, problems = media_records(files, index_id, classifier, chunk_bytes)
    if problems:
        fail_lines(problems, f"nothing published ({len(problems)} problem(s))")
    _send("media", pairs, f"media records ({len(files)} files)")


def bank_push(
    files: list[Path] = typer.Argument(..., help="images/videos to hash, or .txt files of PDQ hashes (64 hex digits)"),
    bank: str = typer.Option(..., "--bank", help="the bank the entries go to"),
    label: Optional[str] = typer.Option(None, help="label of every entry (default: the file name)"),
    create: bool = typer.Option(False, "--create", help="also (re)declare the bank with --threshold and --action"),
    threshold: int = typer.Option(31, help="with --create: the match threshold in bits (PDQ: 31)"),
    action: str = typer.Option("block", help="with --create: block | review | allow"),
) -> None:
    """Publish hash-bank entries: media files are PDQ-hashed here (a video: one hash per sampled frame).

    Example:

        labelstream bank push known/*.jpg --bank known-bad --create --action block
    """
    from app.schemas.banks import BankRecord
    from app.settings import get_settings

    pairs, problems = bank_records(files, bank, label, get_settings().pdq_min_quality)
    if problems:
        fail_lines(problems, f"nothing published ({len(problems)} problem(s))")
    if create:
        try:
            spec = BankRecord.model_validate({"name": bank, "threshold": threshold, "action": action})
        except ValueError as e:
            fail(f"invalid bank: {e}")
        pairs.insert(0, (f"bank:{bank}", spec.model_dump(mode="json", exclude={"op"})))
    _send("training", pairs, "bank records")
