"""``labelstream media push`` / ``bank push``: files checked and turned into records (nothing sent here;
publishing is the same path as ``produce``, tested against the real broker in tests/integration)."""

from __future__ import annotations

import base64

from typer.testing import CliRunner

from app.cli import cli
from app.cli.raw_media import bank_records, media_records
from app.core.pdq import pdq_hash
from tests.mediafiles import encode, sample, video


def test_media_records_images_videos_chunks_and_problems(tmp_path):
    jpg = tmp_path / "astro.jpg"
    jpg.write_bytes(encode(sample("astronaut"), "JPEG"))
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(video([(sample("rocket"), 2.0)]))
    pairs, problems = media_records([jpg, mp4], "uploads", chunk_bytes=4096)
    assert problems == []
    img = [v for k, v in pairs if k.startswith("astro-")]
    vid = [v for k, v in pairs if k.startswith("clip-")]
    assert img[0]["kind"] == "image" and img[0]["width"] == 512 and "chunk" in img[0]  # 4 KB chunks
    assert b"".join(base64.b64decode(v["content"]) for v in img) == jpg.read_bytes()
    assert vid[0]["kind"] == "video" and vid[-1]["chunk"]["final"] and vid[0]["duration"] == 2.0
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"hello")
    _, problems = media_records([bad], "uploads")
    assert problems == [f"{bad}: content_undecodable: not a decodable media container: " + problems[0].split(": ", 3)[3]]


def test_bank_records_hash_media_here_and_read_hash_files(tmp_path):
    png = tmp_path / "camera.png"
    png.write_bytes(encode(sample("camera"), "PNG"))
    h = pdq_hash(sample("camera"))[0].tobytes().hex()
    txt = tmp_path / "list.txt"
    txt.write_text(f"# known\n{h}\nnot-a-hash\n")
    pairs, problems = bank_records([png, txt], "known", None, 50)
    assert problems == [f"{txt}:3: a PDQ hash is 64 hex digits, got 10 characters"]
    (k1, e1), (k2, e2) = pairs
    assert k1 == f"bank_entry:{e1['id']}" and e1["label"] == "camera" and len(e1["hashes"]) == 1
    assert e2["hashes"] == [h] and e2["provenance"] == {"file": "list.txt", "line": 2}


def test_cli_refuses_a_bad_file_and_publishes_nothing(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(encode(sample("camera"), "PNG")[:300])
    r = CliRunner().invoke(cli, ["media", "push", str(bad), "--index-id", "u"])
    assert r.exit_code == 1 and "content_undecodable" in r.output and "nothing published" in r.output
