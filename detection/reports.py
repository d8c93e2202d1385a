"""Per-item reports a journalist can attach to an article: a JSON document and a one-page PDF.

Both are built from `report_data`, so they always say the same thing. The PDF is drawn with reportlab's
built-in fonts and the item's own thumbnails: nothing is fetched from the network.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from .models import Item

REPORT_VERSION = 1
# Faces shown in the PDF: two rows of four keeps the page to one sheet whatever the item holds.
PDF_MAX_FACES = 8
VERDICT_COLOURS = {
    "fake": colors.HexColor("#b3261e"),
    "real": colors.HexColor("#1e6b35"),
    "uncertain": colors.HexColor("#b45309"),
}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def report_data(item: Item) -> dict[str, Any]:
    """Everything a report states about one item, as JSON-ready values."""
    review = item.latest_review
    return {
        "report_version": REPORT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "file": {
            "id": str(item.pk),
            "name": item.original_name,
            "sha256": item.sha256,
            "kind": item.kind,
            "size": item.size,
            "width": item.width,
            "height": item.height,
            "duration": item.duration,
            "uploaded_at": _iso(item.created_at),
        },
        "analysis": {
            "status": item.status,
            "error": item.error,
            "verdict": item.verdict or None,
            "verdict_display": item.get_verdict_display() if item.verdict else None,
            "fake_probability": item.fake_probability,
            "uncertain": item.uncertain,
            "uncertain_reasons": item.uncertain_reasons,
            "threshold": item.threshold if item.result else None,
            "model_version": item.model_version or None,
            "finished_at": _iso(item.finished_at),
        },
        "faces": [
            {
                "track": face.track,
                "box": face.box,
                "frames": len(face.frames),
                "fake_probability": face.fake_probability,
            }
            for face in item.faces.all()
        ],
        "timeline": item.timeline,
        "review": None if review is None else review.as_dict(),
    }


# --- PDF --------------------------------------------------------------------------------------------------


def render_pdf(item: Item) -> bytes:
    """The one-page PDF report of `item`."""
    data = report_data(item)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"Deepfake analysis report: {item.original_name}")
    canvas.setAuthor("Deepfake detector")
    width, height = A4
    y = _draw_header(canvas, data, width, height - 50)
    y = _draw_facts(canvas, data, y - 16)
    faces = list(item.faces.all()[:PDF_MAX_FACES])
    if faces:
        y = _draw_faces(canvas, faces, len(data["faces"]), y - 18)
    if data["timeline"]:
        _draw_chart(canvas, data["timeline"], float(data["analysis"]["threshold"] or 0.5), y - 18)
    canvas.setFont("Helvetica-Oblique", 7.5)
    canvas.setFillColor(colors.grey)
    canvas.drawString(
        40, 28, "An automated estimate from a machine-learning model; weigh it with other evidence."
    )
    canvas.drawRightString(width - 40, 28, f"Generated {data['generated_at'][:19]} UTC")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def pdf_response(item: Item) -> HttpResponse:
    response = HttpResponse(render_pdf(item), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="report-{item.pk}.pdf"'
    return response


def _draw_header(canvas: Canvas, data: dict, width: float, y: float) -> float:
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(40, y, "Deepfake analysis report")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(40, y - 16, _fit(data["file"]["name"], 90))
    analysis = data["analysis"]
    colour = VERDICT_COLOURS.get(analysis["verdict"], colors.HexColor("#555555"))
    canvas.setFillColor(colour)
    canvas.roundRect(40, y - 70, width - 80, 40, 6, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont("Helvetica-Bold", 16)
    label = analysis["verdict_display"] or analysis["status"].upper()
    canvas.drawString(52, y - 56, label)
    if analysis["fake_probability"] is not None:
        score = f"{analysis['fake_probability'] * 100:.1f}% fake probability"
        if analysis["uncertain"]:
            score += " (uncertain)"
        canvas.setFont("Helvetica", 12)
        canvas.drawRightString(width - 52, y - 55, score)
    canvas.setFillColor(colors.black)
    return y - 70


def _draw_facts(canvas: Canvas, data: dict, y: float) -> float:
    file, analysis, review = data["file"], data["analysis"], data["review"]
    size = f"{file['kind']}, {file['size']:,} bytes"
    if file["width"]:
        size += f", {file['width']}x{file['height']} px"
    if file["kind"] == "video" and file["duration"]:
        size += f", {file['duration']:.1f} s"
    rows = [
        ("SHA-256", file["sha256"]),
        ("File", size),
        ("Uploaded", (file["uploaded_at"] or "")[:19]),
        ("Analysed", (analysis["finished_at"] or "not finished")[:19]),
        ("Model", analysis["model_version"] or "unknown"),
        ("Threshold", "" if analysis["threshold"] is None else f"{analysis['threshold']:.3f}"),
        (
            "Review",
            "not reviewed"
            if review is None
            else f"{review['decision_display']} ({review['created_at'][:10]})",
        ),
    ]
    if review and review["note"]:
        rows.append(("Review note", _fit(review["note"].replace("\n", " "), 95)))
    if analysis["error"]:
        rows.append(("Error", _fit(analysis["error"], 95)))
    for label, value in rows:
        canvas.setFont("Helvetica-Bold", 9)
        canvas.drawString(40, y, label)
        canvas.setFont("Courier" if label == "SHA-256" else "Helvetica", 9)
        canvas.drawString(120, y, value)
        y -= 13
    return y


def _draw_faces(canvas: Canvas, faces: list, total: int, y: float) -> float:
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(
        40, y, f"Faces ({total})" + (f", first {len(faces)} shown" if total > len(faces) else "")
    )
    tile, gap = 60, 10
    y -= 10
    for index, face in enumerate(faces):
        column, row = index % 4, index // 4
        x = 40 + column * (2 * tile + 4 + gap)
        top = y - row * (tile + 26)
        for offset, image in ((0, face.thumbnail), (tile + 4, face.heatmap)):
            path = Path(settings.MEDIA_ROOT) / image.name if image else None
            if path is not None and path.is_file():
                canvas.drawImage(ImageReader(str(path)), x + offset, top - tile, tile, tile)
            else:
                canvas.rect(x + offset, top - tile, tile, tile)
        canvas.setFont("Helvetica", 8.5)
        canvas.drawString(x, top - tile - 11, f"Face {face.track}: {face.fake_probability * 100:.1f}% fake")
    rows = (len(faces) + 3) // 4
    return y - rows * (tile + 26)


def _draw_chart(canvas: Canvas, timeline: list[dict], threshold: float, y: float) -> None:
    """Fake probability per frame against time, with the decision threshold dashed."""
    points = sorted((float(e["time"]), float(e["fake_probability"])) for e in timeline)
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(40, y, "Fake probability per frame")
    left, bottom, chart_w, chart_h = 70, y - 150, 470, 130
    canvas.setFont("Helvetica", 7.5)
    canvas.rect(left, bottom, chart_w, chart_h)
    for tick in (0.0, 0.5, 1.0):
        canvas.drawRightString(left - 4, bottom + tick * chart_h - 3, f"{tick:.1f}")
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    canvas.drawString(left, bottom - 10, f"{t0:.1f} s")
    canvas.drawRightString(left + chart_w, bottom - 10, f"{t1:.1f} s")
    canvas.setDash(3, 3)
    canvas.setStrokeColor(colors.grey)
    canvas.line(left, bottom + threshold * chart_h, left + chart_w, bottom + threshold * chart_h)
    canvas.setDash()
    canvas.setStrokeColor(VERDICT_COLOURS["fake"])
    path = canvas.beginPath()
    for index, (t, p) in enumerate(points):
        x = left + (t - t0) / span * chart_w if len(points) > 1 else left + chart_w / 2
        point = (x, bottom + max(0.0, min(1.0, p)) * chart_h)
        if index == 0:
            path.moveTo(*point)
        else:
            path.lineTo(*point)
    canvas.drawPath(path, stroke=1, fill=0)
    canvas.setStrokeColor(colors.black)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
