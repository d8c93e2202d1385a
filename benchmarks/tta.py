"""What the test-time choices buy: views per face (photos) and how frames make a track's score (videos).

    python -m benchmarks.tta [--data ../shared/data] [--split test] [--jpeg-quality 50]
                             [--registry DIR] [--image-model REF] [--video-model REF] [--skip-videos]

Photos (DATA/images/SPLIT): every face is detected once by the production detector, then scored under
several view sets: the 1.3x crop alone; with its mirror image (what the product ships); with the mirror
and two more margins (1.2x, 1.45x). Logits are averaged over the views, the photo's score is its most
suspicious face, as in the product. The same is repeated on a JPEG copy of every photo (the re-encoding
`ml evaluate --jpeg-quality` does), because re-uploads are what users bring.

Videos (DATA/videos/SPLIT): the production pipeline runs once per clip; from each track's per-frame
probabilities and its LSTM probability the clip score is formed several ways: the LSTM (shipped), the
mean, the median, the mean of the most suspicious quarter of frames, and a confidence-weighted mean
(frames far from 0.5 weigh more, as the DFDC winners did). Only the LSTM is temperature-scaled at the
track level, so compare ROC AUC first; ECE is printed for what it is.

Needs the research media in ../shared/data (not shipped with the project).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ml.dataset import list_split
from ml.evaluate import recompress
from ml.faces import crop_face
from ml.file_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ml.media import load_image
from ml.metrics import classification_report, sigmoid
from ml.pipeline import Analyser

VIEW_SETS: dict[str, tuple[tuple[float, bool], ...]] = {
    "crop 1.3x": ((1.3, False),),
    "crop + mirror (shipped)": ((1.3, False), (1.3, True)),
    "3 margins x mirror": tuple((m, flip) for m in (1.3, 1.2, 1.45) for flip in (False, True)),
}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _confidence_weighted(p: np.ndarray) -> float:
    weight = np.abs(p - 0.5) + 1e-3
    return float((p * weight).sum() / weight.sum())


FRAME_AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean of frames": lambda p: float(sigmoid(_logit(p).mean())),
    "median of frames": lambda p: float(np.median(p)),
    "top quarter of frames": lambda p: float(np.sort(p)[-max(1, len(p) // 4) :].mean()),
    "confidence-weighted": _confidence_weighted,
}


def photo_scores(analyser: Analyser, files: list[Path]) -> tuple[dict[str, list[float]], list[bool]]:
    """Per view set, each photo's score (None-free: photos without a face are flagged and dropped)."""
    size = analyser.image_card.input_size
    scores: dict[str, list[float]] = {name: [] for name in VIEW_SETS}
    has_face = []
    views = sorted({v for vs in VIEW_SETS.values() for v in vs})
    for path in files:
        rgb = load_image(path)
        boxes = analyser.detector.detect(rgb)
        has_face.append(bool(boxes))
        if not boxes:
            continue
        crops = []
        for margin, flip in views:
            for box in boxes:
                crop = crop_face(rgb, box, size, margin)
                crops.append(np.ascontiguousarray(crop[:, ::-1]) if flip else crop)
        with torch.inference_mode():
            emb = analyser._embed(crops)
            logits = analyser.image_model.classify_embedding(emb).float().view(len(views), len(boxes)).numpy()
        for name, view_set in VIEW_SETS.items():
            rows = [views.index(v) for v in view_set]
            per_face = logits[rows].mean(0)
            scores[name].append(float(analyser.image_card.calibrated(torch.tensor(per_face)).max()))
    return scores, has_face


def video_scores(analyser: Analyser, files: list[Path]) -> tuple[dict[str, list[float]], list[bool]]:
    scores: dict[str, list[float]] = {"LSTM (shipped)": [], **{name: [] for name in FRAME_AGGREGATES}}
    has_face = []
    for path in files:
        result = analyser.analyse(path)
        faces = result["faces"]
        has_face.append(bool(faces))
        if not faces:
            continue
        scores["LSTM (shipped)"].append(max(f["fake_probability"] for f in faces))
        for name, aggregate in FRAME_AGGREGATES.items():
            scores[name].append(max(aggregate(np.array(f["frame_probabilities"])) for f in faces))
    return scores, has_face


def print_table(title: str, labels: np.ndarray, scores: dict[str, list[float]]) -> None:
    print(f"\n{title} ({len(labels)} files, {int(labels.sum())} fake)")
    print(f"{'':<28} {'roc_auc':>7} {'log_loss':>8} {'ece':>6} {'accuracy':>8}")
    for name, values in scores.items():
        r = classification_report(labels, np.array(values))
        print(f"{name:<28} {r['roc_auc']:>7.3f} {r['log_loss']:>8.3f} {r['ece']:>6.3f} {r['accuracy']:>8.3f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", default="test")
    ap.add_argument("--jpeg-quality", type=int, default=50)
    ap.add_argument("--registry")
    ap.add_argument("--image-model")
    ap.add_argument("--video-model")
    ap.add_argument("--skip-videos", action="store_true")
    args = ap.parse_args(argv)
    analyser = Analyser(
        image_model=args.image_model,
        video_model=args.video_model,
        heatmaps=False,
        registry=Path(args.registry) if args.registry else None,
        use_clip=False,  # the views measured here are the fine-tuned CNN's
    )
    print(f"models: {analyser.image_card.ref}, {analyser.video_card.ref if analyser.video_card else '-'}")
    data = Path(args.data)
    items = list_split(data / "images" / args.split, IMAGE_EXTENSIONS)
    files = [p for p, _ in items]
    scores, has_face = photo_scores(analyser, files)
    labels = np.array([y for (_, y), ok in zip(items, has_face, strict=True) if ok])
    print_table(f"photos, {args.split}", labels, scores)
    with tempfile.TemporaryDirectory() as tmp:
        jpeg_files = [recompress(p, Path(tmp), args.jpeg_quality) for p in files]
        scores, has_face = photo_scores(analyser, jpeg_files)
    labels = np.array([y for (_, y), ok in zip(items, has_face, strict=True) if ok])
    print_table(f"photos, {args.split}, JPEG q{args.jpeg_quality}", labels, scores)
    if args.skip_videos:
        return
    items = list_split(data / "videos" / args.split, VIDEO_EXTENSIONS)
    scores, has_face = video_scores(analyser, [p for p, _ in items])
    labels = np.array([y for (_, y), ok in zip(items, has_face, strict=True) if ok])
    print_table(f"videos, {args.split}", labels, scores)


if __name__ == "__main__":
    main()
