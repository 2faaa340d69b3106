"""bench/RESULTS.md is shared by every benchmark: each one replaces only its own section.

    write_section("## kNN accuracy", "| path | accuracy |\\n|---|---|")
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(section: str, body: str, path: Path = RESULTS) -> None:
    # Re-read right before writing: other sections belong to other benchmarks.
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{section}\n\n{body}\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + block
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".RESULTS.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_section(section: str, path: Path = RESULTS) -> str | None:
    """The body of ``section`` (without its heading), or None."""
    text = path.read_text() if path.exists() else ""
    m = re.search(rf"^{re.escape(section)}\n\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return m.group(1).rstrip("\n") if m else None


def merge_rows(body: str | None, header: str, rows: list[str], note: str) -> str:
    """A section of one table that grows run by run: ``header`` (text ending in the table's
    heading lines), the earlier rows whose first cell no new row has, the new rows, then one
    note per first cell (a note starts with ``- <first cell> ``).

    >>> b = merge_rows(None, "| n | s |\\n|---|---|", ["| 1 | a |", "| 1 | b |"], "- 1 x: one")
    >>> b = merge_rows(b, "| n | s |\\n|---|---|", ["| 2 | c |"], "- 2 x: two")
    >>> print(merge_rows(b, "| n | s |\\n|---|---|", ["| 1 | d |"], "- 1 x: again"))
    | n | s |
    |---|---|
    | 2 | c |
    | 1 | d |
    <BLANKLINE>
    - 2 x: two
    - 1 x: again
    """
    first = {r.split("|")[1].strip() for r in rows}
    old_rows, old_notes = [], []
    if body is not None:
        for line in body.splitlines():
            if line.startswith("| ") and not line.startswith("|---") and line not in header:
                if line.split("|")[1].strip() not in first:
                    old_rows.append(line)
            elif line.startswith("- ") and line[2:].split(" ")[0] not in first:
                old_notes.append(line)
    return "\n".join([header, *old_rows, *rows, "", *old_notes, note])


def add_rows(section: str, header: str, rows: list[str], note: str, path: Path = RESULTS) -> None:
    write_section(section, merge_rows(read_section(section, path), header, rows, note), path)
