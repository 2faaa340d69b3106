"""Tiny SVG charts drawn here (no chart library, no CDN): a sparkline and a media timeline.

    >>> sparkline([0, 5, 10], width=100, height=20)
    '<svg class="spark" viewBox="0 0 100 20" width="100" height="20"><polyline fill="none" stroke="currentColor" points="0.0,19.0 50.0,10.0 100.0,1.0"/></svg>'
    >>> sparkline([], width=10, height=5)
    '<svg class="spark" viewBox="0 0 10 5" width="10" height="5"></svg>'
"""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563")


def _points(values: Sequence[float], xs: Sequence[float], width: float, height: float, top: float) -> str:
    pad = 1.0
    span = (top or 1.0)
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    dx = (x1 - x0) or 1.0
    return " ".join(f"{(x - x0) / dx * width:.1f},{height - pad - (v / span) * (height - 2 * pad):.1f}"
                    for x, v in zip(xs, values))


def sparkline(values: Sequence[float], width: int = 240, height: int = 40) -> str:
    head = f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    if not values:
        return head + "</svg>"
    pts = _points(values, list(range(len(values))), width, height, max(values))
    return head + f'<polyline fill="none" stroke="currentColor" points="{pts}"/></svg>'


def timeline(frames: Sequence[dict[str, Any]], clips: Sequence[dict[str, Any]], duration: float,
             width: int = 720, height: int = 180) -> str:
    """Per-class scores over time (Hive frames) as lines, the clips (Twelve Labs) as bands.

    >>> svg = timeline([{"time": 0, "classes": [{"class": "a", "score": 0.2}]},
    ...                 {"time": 10, "classes": [{"class": "a", "score": 0.8}]}],
    ...                [{"class": "a", "start": 2, "end": 6}], duration=10, width=100, height=50)
    >>> '<rect x="20.0" y="0" width="40.0" height="50"' in svg, 'points="0.0,39.6 100.0,11.4"' in svg
    (True, True)
    """
    plot_h = height
    dur = duration or max((f.get("time", 0) for f in frames), default=0) or 1.0
    names = sorted({c["class"] for f in frames for c in f.get("classes", [])} | {c.get("class", "") for c in clips} - {""})
    color = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for c in clips:
        x = float(c.get("start", 0)) / dur * width
        w = max(1.0, (float(c.get("end", 0)) - float(c.get("start", 0))) / dur * width)
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{plot_h}" fill="{color.get(c.get("class", ""), "#999")}" '
                     f'opacity="0.15"><title>{escape(str(c.get("class")))} {c.get("start")}-{c.get("end")}s</title></rect>')
    for n in names:
        xs = [float(f.get("time", 0)) for f in frames]
        vs = [next((float(c["score"]) for c in f.get("classes", []) if c["class"] == n), 0.0) for f in frames]
        if xs:
            pts = " ".join(f"{x / dur * width:.1f},{plot_h - 1 - v * (plot_h - 2) * 0.98:.1f}" for x, v in zip(xs, vs))
            parts.append(f'<polyline fill="none" stroke="{color[n]}" stroke-width="1.5" points="{pts}">'
                         f'<title>{escape(n)}</title></polyline>')
    return "".join(parts) + "</svg>"
