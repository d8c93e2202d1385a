"""Server-rendered SVG chart of the per-frame fake probability of a video (no chart library, no CDN).

static/js/chart.js makes it interactive: clicking a point, or anywhere on the plot, seeks the video there.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# User units. The chart is drawn 320-760 px wide (phone to desktop); static/css/site.css sets the label
# size in these units per screen width (13 on a desktop, 22 on a phone: both about 11-16 px on screen), so
# the margins leave room for the larger one and labels are placed in em.
WIDTH = 640
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 12, 76
MAX_MARKERS = 150  # individual points (with tooltips) only while they stay readable


def _format_time(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}" if minutes else f"{secs:.1f}s"


def _points(timeline: list[dict]) -> list[tuple[float, float, int]]:
    points = []
    for entry in timeline:
        try:
            points.append((float(entry["time"]), float(entry["fake_probability"]), int(entry["frame"])))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry is skipped rather than breaking the page
    return sorted(points)


def _axes(x, y, t_min: float, t_span: float, single: bool) -> list[str]:
    """Grid, tick labels and the two axis titles."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = []
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(level):.1f}" y2="{y(level):.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(level):.1f}" dy="0.35em" class="axis" text-anchor="end">'
            f"{int(level * 100)}%</text>"
        )
    ticks = 1 if single else 5
    for i in range(ticks):
        t = t_min if single else t_min + t_span * i / (ticks - 1)
        # The first and last labels hang inwards so neither is cut at the chart's edges.
        anchor = "middle" if single or 0 < i < ticks - 1 else ("start" if i == 0 else "end")
        parts.append(
            f'<text x="{x(t):.1f}" y="{TOP + plot_h}" dy="1.3em" class="axis" text-anchor="{anchor}">'
            f"{escape(_format_time(t))}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT}" dy="-0.4em" class="axis-title" text-anchor="middle">'
        "Time in the video</text>"
    )
    parts.append(
        f'<text transform="translate(0 {TOP + plot_h / 2:.1f}) rotate(-90)" dy="1em" class="axis-title" '
        'text-anchor="middle">Fake probability</text>'
    )
    return parts


def timeline_svg(timeline: list[dict], threshold: float = 0.5, clip_score: float | None = None) -> SafeString:
    """Line chart: x = time in the video, y = fake probability, with the decision threshold dashed and
    the clip's own score (what the verdict is formed from) as a solid line, so both stories are in view."""
    points = _points(timeline)
    if not points:
        return mark_safe("")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    t_min, t_max = points[0][0], points[-1][0]
    t_span = (t_max - t_min) or 1.0
    single = len(points) == 1

    def x(t: float) -> float:
        return LEFT + plot_w / 2 if single else LEFT + (t - t_min) / t_span * plot_w

    def y(p: float) -> float:
        return TOP + (1 - max(0.0, min(1.0, p))) * plot_h

    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="Fake probability per analysed frame" xmlns="http://www.w3.org/2000/svg" '
        f'data-t-min="{t_min}" data-t-max="{t_max if not single else t_min}" data-plot-left="{LEFT}" '
        f'data-plot-width="{plot_w}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>',
        *_axes(x, y, t_min, t_span, single),
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" '
        f'class="threshold"><title>decision threshold {threshold * 100:.0f}%</title></line>',
    ]
    if clip_score is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(clip_score):.1f}" y2="{y(clip_score):.1f}" '
            f'class="clip-score"><title>clip score {clip_score * 100:.1f}%</title></line>'
        )
    parts.append(
        f'<polyline points="{" ".join(f"{x(t):.1f},{y(p):.1f}" for t, p, _ in points)}" class="series"/>'
    )
    if len(points) <= MAX_MARKERS:
        for t, p, frame in points:
            css = "dot fake" if p >= threshold else "dot real"
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(p):.1f}" r="5" class="{css}" data-time="{t:.3f}" '
                'tabindex="0">'
                f"<title>frame {frame} at {escape(_format_time(t))}: {p * 100:.1f}% fake</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
