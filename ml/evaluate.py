"""Evaluate the production pipeline on a labelled folder (`DIR/{real,fake}/`): the seeds' metrics."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ml.dataset import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_split
from ml.errors import MediaError
from ml.metrics import classification_report, write_roc_png
from ml.pipeline import Analyser


def recompress(src: Path, dst_dir: Path, quality: int) -> Path:
    """A JPEG-`quality` copy of an image, or of every frame of a video: what re-uploading does."""
    if src.suffix.lower() in IMAGE_SUFFIXES:
        dst = dst_dir / (src.stem + ".jpg")
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return dst
    dst = dst_dir / (src.stem + ".avi")
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    writer = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
            writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
        writer.write(frame)
    cap.release()
    if writer is not None:
        writer.release()
    return dst


def evaluate_folder(
    data_dir: Path,
    analyser: Analyser,
    jpeg_quality: int | None = None,
    roc_png: Path | None = None,
    log: Callable[[str], None] = print,
    exclude: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> dict:
    """Run `analyser` on every file; faces not found count as real (the product shows NO FACE, not FAKE)."""
    items = list_split(data_dir, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if exclude:
        items = [(p, y) for p, y in items if not p.name.startswith(exclude)]
    if only:
        items = [(p, y) for p, y in items if p.name.startswith(only)]
    labels, probs, rows, seconds, no_face, errors = [], [], [], [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for path, label in items:
            src = recompress(path, Path(tmp), jpeg_quality) if jpeg_quality else path
            try:
                result = analyser.analyse(src)
            except MediaError as exc:
                errors += 1
                log(f"  {path.name}: error {exc}")
                continue
            p = result["fake_probability"]
            if p is None:
                no_face += 1
                p = 0.0
            labels.append(label)
            probs.append(p)
            seconds.append(result["seconds"])
            rows.append(
                {"path": str(path), "label": label, "fake_probability": p, "seconds": result["seconds"]}
            )
    is_video = any(p.suffix.lower() in VIDEO_SUFFIXES for p, _ in items)
    card = analyser.video_card if is_video else analyser.image_card
    report = classification_report(np.array(labels), np.array(probs), threshold=card.threshold)
    report.update(
        {
            "no_face": no_face,
            "errors": errors,
            "mean_seconds": float(np.mean(seconds)) if seconds else 0.0,
            "jpeg_quality": jpeg_quality,
            "data": str(data_dir),
            "model": card.ref,
        }
    )
    if roc_png is not None and len(set(labels)) == 2:
        write_roc_png(np.array(labels), np.array(probs), roc_png, title=data_dir.name)
    report["rows"] = rows
    return report


def format_report(report: dict) -> str:
    c = report["confusion"]
    lines = [
        f"data           {report['data']}"
        + (f" (JPEG q{report['jpeg_quality']})" if report["jpeg_quality"] else ""),
        f"files          {report['n']} (no face: {report['no_face']}, errors: {report['errors']})",
        f"accuracy       {report['accuracy']:.4f}",
        f"precision      {report['precision']:.4f}",
        f"recall         {report['recall']:.4f}",
        f"f1             {report['f1']:.4f}",
        f"log_loss       {report['log_loss']:.4f}",
        f"roc_auc        {report['roc_auc']:.4f}",
        f"ece            {report['ece']:.4f}",
        "confusion      (rows: true real, true fake; columns: predicted real, fake)",
        f"               real  {c['tn']:5d} {c['fp']:5d}",
        f"               fake  {c['fn']:5d} {c['tp']:5d}",
        f"mean seconds   {report['mean_seconds']:.3f} per file",
    ]
    return "\n".join(lines)


def report_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2)
