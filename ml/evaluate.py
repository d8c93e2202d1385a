"""Evaluate the production pipeline on a labelled folder (`DIR/{real,fake}/`): the seeds' metrics."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ml.dataset import list_split
from ml.errors import MediaError
from ml.file_types import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS
from ml.metrics import classification_report, selective_report, write_roc_png
from ml.pipeline import Analyser


@dataclass(frozen=True)
class Reencoding:
    """How a photo is saved again: rescaled by `scale` (first), then written as jpeg, webp or png."""

    format: str = "jpeg"  # or "original": the file untouched
    quality: int = 95  # jpeg and webp
    scale: float = 1.0

    @property
    def name(self) -> str:
        saved = self.format if self.format in ("png", "original") else f"{self.format} q{self.quality}"
        return saved if self.scale == 1.0 else f"{saved} x{self.scale:g}"


# What the issue asks the verdict to survive: JPEG 50-95, WebP, PNG, and rescaling 0.5-2x (saved as PNG,
# so that only the scale changes).
REENCODE_SWEEP = (
    *(Reencoding("jpeg", q) for q in (50, 60, 70, 80, 90, 95)),
    Reencoding("webp", 80),
    Reencoding("png"),
    *(Reencoding("png", scale=f) for f in (0.5, 0.75, 1.5, 2.0)),
)
AS_IS = Reencoding("original")  # the file as it came: the sweep's reference
_WRITE_FLAGS = {"jpeg": cv2.IMWRITE_JPEG_QUALITY, "webp": cv2.IMWRITE_WEBP_QUALITY}


def reencode_image(src: Path, dst_dir: Path, how: Reencoding) -> Path:
    if how == AS_IS:
        return src
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if how.scale != 1.0:
        h, w = img.shape[:2]
        interp = cv2.INTER_AREA if how.scale < 1 else cv2.INTER_CUBIC
        img = cv2.resize(
            img, (max(1, round(w * how.scale)), max(1, round(h * how.scale))), interpolation=interp
        )
    dst = dst_dir / f"{src.stem}.{'jpg' if how.format == 'jpeg' else how.format}"
    flag = _WRITE_FLAGS.get(how.format)
    cv2.imwrite(str(dst), img, [flag, how.quality] if flag is not None else [])
    return dst


def recompress(src: Path, dst_dir: Path, quality: int) -> Path:
    """A JPEG-`quality` copy of an image, or of every frame of a video: what re-uploading does."""
    if src.suffix.lower() in IMAGE_EXTENSIONS:
        return reencode_image(src, dst_dir, Reencoding("jpeg", quality))
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


@dataclass
class _Tally:
    """What evaluating a folder collects: per analysed file its label, score, abstention, seconds and row."""

    labels: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    abstained: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    no_face: int = 0
    errors: int = 0

    def add(self, path: Path, label: int, result: dict) -> None:
        """Count `result`; no face found counts as real (the product shows NO FACE, not FAKE)."""
        p = result["fake_probability"]
        if p is None:
            self.no_face += 1
            p = 0.0
        self.labels.append(label)
        self.probs.append(p)
        self.abstained.append(result["verdict"] == "uncertain")
        self.seconds.append(result["seconds"])
        self.rows.append(
            {
                "path": str(path),
                "label": label,
                "fake_probability": p,
                "verdict": result["verdict"],
                "uncertain_reasons": [r["code"] for r in result.get("uncertain_reasons", [])],
                "seconds": result["seconds"],
            }
        )


def _labelled_files(
    data_dir: Path, photos_only: bool, exclude: tuple[str, ...], only: tuple[str, ...]
) -> list[tuple[Path, int]]:
    """(path, label) of every file under `data_dir`, less names starting with `exclude`, or only
    names starting with `only` when given."""
    items = list_split(data_dir, IMAGE_EXTENSIONS if photos_only else MEDIA_EXTENSIONS)
    if exclude:
        items = [(p, y) for p, y in items if not p.name.startswith(exclude)]
    if only:
        items = [(p, y) for p, y in items if p.name.startswith(only)]
    return items


def _as_evaluated(path: Path, scratch: Path, jpeg_quality: int | None, reencoding: Reencoding | None) -> Path:
    """The file the analyser sees: `path` saved again by `reencoding`, else recompressed as JPEG
    `jpeg_quality`, else `path` itself."""
    if reencoding is not None:
        return reencode_image(path, scratch, reencoding)
    if jpeg_quality:
        return recompress(path, scratch, jpeg_quality)
    return path


def _analyse_all(
    items: list[tuple[Path, int]],
    analyser: Analyser,
    jpeg_quality: int | None,
    reencoding: Reencoding | None,
    log: Callable[[str], None],
) -> _Tally:
    """Run `analyser` on every file (saved again first, if asked); a file it cannot read is logged and
    counted as an error."""
    tally = _Tally()
    with tempfile.TemporaryDirectory() as tmp:
        for path, label in items:
            src = _as_evaluated(path, Path(tmp), jpeg_quality, reencoding)
            try:
                result = analyser.analyse(src)
            except MediaError as exc:
                tally.errors += 1
                log(f"  {path.name}: error {exc}")
                continue
            tally.add(path, label, result)
    return tally


def evaluate_folder(
    data_dir: Path,
    analyser: Analyser,
    jpeg_quality: int | None = None,
    roc_png: Path | None = None,
    log: Callable[[str], None] = print,
    exclude: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
    reencoding: Reencoding | None = None,
) -> dict:
    """Run `analyser` on every file; faces not found count as real (the product shows NO FACE, not FAKE).

    With `reencoding`, only the photos, each saved that way first."""
    items = _labelled_files(data_dir, reencoding is not None, exclude, only)
    tally = _analyse_all(items, analyser, jpeg_quality, reencoding, log)
    card = analyser.deciding_card(any(p.suffix.lower() in VIDEO_EXTENSIONS for p, _ in items))
    labels, probs = np.array(tally.labels), np.array(tally.probs)
    report = classification_report(labels, probs, threshold=card.threshold)
    report["selective"] = selective_report(labels, probs, np.array(tally.abstained), card.threshold)
    report.update(
        {
            "no_face": tally.no_face,
            "errors": tally.errors,
            "mean_seconds": float(np.mean(tally.seconds)) if tally.seconds else 0.0,
            "jpeg_quality": jpeg_quality,
            "reencoding": reencoding.name if reencoding else None,
            "data": str(data_dir),
            "model": card.ref,
        }
    )
    if roc_png is not None and len(set(tally.labels)) == 2:
        write_roc_png(labels, probs, roc_png, title=data_dir.name)
    report["rows"] = tally.rows
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
        f"ece            {report['ece']:.4f} (a perfectly calibrated model would show "
        f"{report['ece_floor']:.4f} on {report['n']} files: sampling noise alone)",
        "confusion      (rows: true real, true fake; columns: predicted real, fake)",
        f"               real  {c['tn']:5d} {c['fp']:5d}",
        f"               fake  {c['fn']:5d} {c['tp']:5d}",
        f"mean seconds   {report['mean_seconds']:.3f} per file",
        *format_selective(report["selective"]),
    ]
    return "\n".join(lines)


def format_selective(selective: dict) -> list[str]:
    """The risk-coverage lines: what abstaining on the most uncertain files buys."""
    curve = "  ".join(f"{float(c):.0%} {a:.3f}" for c, a in selective["risk_coverage"].items())
    return [
        f"decided        {selective['decided_share']:.1%} of files (the rest UNCERTAIN), "
        f"accuracy {selective['decided_accuracy']:.4f} on them",
        f"acc @ 80% cov  {selective['accuracy_at_80']:.4f} (the 20% most uncertain files abstained)",
        f"conf. wrong    {selective['confidently_wrong']:.1%} of files (wrong and not UNCERTAIN)",
        f"risk-coverage  accuracy at coverage  {curve}",
    ]


def report_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2)


def _against(base: dict[str, dict], report: dict) -> dict:
    """One re-encoding's figures, its verdicts and probabilities compared photo by photo with `base`."""
    pairs = [(base[r["path"]], r) for r in report["rows"] if r["path"] in base]
    flips = [a["verdict"] != b["verdict"] for a, b in pairs]
    changes = [abs(a["fake_probability"] - b["fake_probability"]) for a, b in pairs]
    return {
        "variant": report["reencoding"],
        "n": report["n"],
        "roc_auc": report["roc_auc"],
        "flip_rate": float(np.mean(flips)) if pairs else 0.0,
        "mean_abs_change": float(np.mean(changes)) if pairs else 0.0,
    }


def reencode_sweep(
    data_dir: Path,
    analyser: Analyser,
    variants: Sequence[Reencoding] = REENCODE_SWEEP,
    log: Callable[[str], None] = print,
    exclude: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> dict:
    """The photos' ROC AUC as they came and saved again each way, and each way's verdict flip rate: the
    share of photos whose verdict (real, fake, no face) differs from the one on the file as it came."""
    reports = {}
    for how in (AS_IS, *variants):
        log(f"-- {how.name}")
        reports[how.name] = evaluate_folder(
            data_dir, analyser, log=log, exclude=exclude, only=only, reencoding=how
        )
    base = {r["path"]: r for r in reports[AS_IS.name]["rows"]}
    rows = [_against(base, report) for report in reports.values()]
    worst = max(rows[1:], key=lambda r: r["flip_rate"])
    return {
        "data": str(data_dir),
        "model": reports[AS_IS.name]["model"],
        "variants": rows,
        "largest_flip_rate": worst["flip_rate"],
        "largest_flip_variant": worst["variant"],
    }


def format_sweep(sweep: dict) -> str:
    lines = [
        f"data {sweep['data']}, model {sweep['model']}",
        f"{'saved as':16s} {'photos':>6s} {'roc_auc':>8s} {'flip_rate':>9s} {'mean |dp|':>9s}",
    ]
    for r in sweep["variants"]:
        figures = f"{r['roc_auc']:8.4f} {r['flip_rate']:9.4f} {r['mean_abs_change']:9.4f}"
        lines.append(f"{r['variant']:16s} {r['n']:6d} {figures}")
    lines.append(
        f"largest_flip_rate={sweep['largest_flip_rate']:.4f} variant={sweep['largest_flip_variant']!r}"
    )
    return "\n".join(lines)
