"""Server-rendered SVG chart of the per-frame fake probability of a video (no JavaScript, no CDN)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 760
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 32


def _format_time(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}" if minutes else f"{secs:.1f}s"


def timeline_svg(timeline: list[dict], threshold: float = 0.5, clip_score: float | None = None) -> SafeString:
    """Line chart: x = time in the video, y = fake probability, with the decision threshold dashed and
    the clip's own score (what the verdict is formed from) as a solid line, so both stories are in view."""
    points = []
    for entry in timeline:
        try:
            points.append((float(entry["time"]), float(entry["fake_probability"]), int(entry["frame"])))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry is skipped rather than breaking the page
    if not points:
        return mark_safe("")
    points.sort()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    t_min, t_max = points[0][0], points[-1][0]
    t_span = (t_max - t_min) or 1.0

    def x(t: float) -> float:
        return LEFT + (t - t_min) / t_span * plot_w if len(points) > 1 else LEFT + plot_w / 2

    def y(p: float) -> float:
        return TOP + (1 - max(0.0, min(1.0, p))) * plot_h

    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="Fake probability per frame" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>',
    ]
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(level):.1f}" y2="{y(level):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(level) + 4:.1f}" class="axis" text-anchor="end">'
            f"{int(level * 100)}%</text>"
        )
    ticks = 5 if len(points) > 1 else 1
    for i in range(ticks):
        t = t_min + t_span * i / max(1, ticks - 1) if len(points) > 1 else t_min
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - 10}" class="axis" text-anchor="middle">'
            f"{escape(_format_time(t))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
        f'class="threshold"><title>decision threshold {threshold * 100:.0f}%</title></line>'
    )
    if clip_score is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(clip_score):.1f}" y2="{y(clip_score):.1f}" '
            f'class="clip-score"><title>clip score {clip_score * 100:.1f}%</title></line>'
        )
    polyline = " ".join(f"{x(t):.1f},{y(p):.1f}" for t, p, _ in points)
    parts.append(f'<polyline points="{polyline}" class="series"/>')
    # Individual markers with tooltips only while they stay readable.
    if len(points) <= 150:
        for t, p, frame in points:
            css = "dot fake" if p >= threshold else "dot real"
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(p):.1f}" r="3" class="{css}">'
                f"<title>frame {frame} at {escape(_format_time(t))}: {p * 100:.1f}% fake</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
