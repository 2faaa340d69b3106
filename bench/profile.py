"""Where a worker's time goes: sum py-spy's collapsed stacks (``--format raw``) by frame.

``bench/throughput.py --profile FILE`` samples the worker from its first result to the N-th;
this prints, per thread and overall, the frames with the most samples *inclusive* (the
frame is anywhere on the stack: its whole subtree) and *self* (the frame is on top).

    .venv/bin/python bench/profile.py var/profile-before.txt --top 25

    >>> stacks = parse(["thread (7): MainThread;a (m.py:1);b (m.py:2) 3", "thread (7): MainThread;a (m.py:1) 1"])
    >>> inclusive(stacks)["a (m.py:1)"], selftime(stacks)["b (m.py:2)"]
    (4, 3)
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable

Stack = tuple[str, list[str], int]  # thread, frames (outermost first), samples

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def parse(lines: Iterable[str]) -> list[Stack]:
    out = []
    for line in lines:
        line = line.rstrip("\n")
        if not line or " " not in line:
            continue
        body, n = line.rsplit(" ", 1)
        parts = [p for p in body.split(";") if not p.startswith("process ")]
        thread = next((p for p in parts if p.startswith("thread ")), "thread ?")
        frames = [short(p) for p in parts if not p.startswith("thread ")]
        out.append((thread.split(":", 1)[-1].strip(' "'), frames, int(n)))
    return out


def short(frame: str) -> str:
    """``fn (/long/site-packages/faust/x.py:12)`` -> ``fn (faust/x.py:12)``.

    >>> short("send (/w/.venv/lib/python3.11/site-packages/faust/topics.py:437)")
    'send (faust/topics.py:437)'
    """
    for root in (r"site-packages/", r"lib/python3\.\d+/", r"/work/[^/]+/"):
        frame, n = re.subn(r"\(/.*" + root, "(", frame)
        if n:
            break
    return frame


def _no_line(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def inclusive(stacks: list[Stack]) -> Counter:
    c: Counter = Counter()
    for _, frames, n in stacks:
        for f in set(frames):
            c[f] += n
    return c


def selftime(stacks: list[Stack]) -> Counter:
    c: Counter = Counter()
    for _, frames, n in stacks:
        if frames:
            c[frames[-1]] += n
    return c


def report(stacks: list[Stack], top: int) -> str:
    stacks = [(t, [_no_line(f) for f in fr], n) for t, fr, n in stacks]
    total = sum(n for _, _, n in stacks) or 1
    lines = [f"{total} samples"]
    threads: Counter = Counter()
    for t, _, n in stacks:
        threads[t] += n
    lines += [f"  thread {t}: {n / total:.1%}" for t, n in threads.most_common()]
    for title, counter in (("inclusive", inclusive(stacks)), ("self", selftime(stacks))):
        lines.append(f"top {top} {title}:")
        lines += [f"  {n / total:6.1%}  {f}" for f, n in counter.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--thread", help="only this thread name (e.g. MainThread)")
    a = ap.parse_args()
    with open(a.file) as f:
        stacks = parse(f)
    if a.thread:
        stacks = [s for s in stacks if s[0] == a.thread]
    print(report(stacks, a.top))


if __name__ == "__main__":
    main()
