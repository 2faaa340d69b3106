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
