"""Face detectors on real video frames: how often each finds the face, and how fast.

    python -m benchmarks.detectors [--data ../shared/data/videos] [--splits val test] [--frames 8]
    python -m benchmarks.detectors --sparse [--frames 32] [--stride 4]

For every clip under DATA/{split}/{real,fake}/ it samples FRAMES frames evenly (the production sampler),
then runs each detector configuration on every frame and prints, per configuration: the share of frames
with at least one face (every clip here shows a face in every frame, so this is recall per frame), the
mean IoU of its largest box against RetinaFace at full resolution (does the downscale move the box?),
and milliseconds per frame. Needs the research media in ../shared/data (not shipped with the project).

--sparse checks ml.tracking.detect_sparse (the detector on a subset of the sampled frames, boxes
interpolated between agreeing detections) against the default detector on every sampled frame: the share
of frames the detector still runs on, frames whose face count differs, and the IoU of the boxes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from ml.faces import DETECTORS, VIDEO_DETECT_MAX_SIDE, FaceBox, RetinaFaceDetector, get_detector, iou
from ml.file_types import VIDEO_EXTENSIONS
from ml.media import sample_frames
from ml.tracking import DETECT_STRIDE, detect_sparse, match_boxes


def configurations() -> dict[str, object]:
    configs: dict[str, object] = {
        f"retinaface@{side or 'full'}": RetinaFaceDetector(max_side=side) for side in (0, 640, 480, 384, 320)
    }
    for name in ("hog", "haar"):
        if name in DETECTORS:
            configs[f"{name}@640"] = DETECTORS[name]()
    return configs


def largest(boxes: list[FaceBox]) -> FaceBox | None:
    return max(boxes, key=lambda b: b.area) if boxes else None


def collect_frames(data: Path, splits: list[str], per_clip: int) -> list[np.ndarray]:
    return [frame.rgb for path in videos(data, splits) for frame in sample_frames(path, per_clip)]


def videos(data: Path, splits: list[str]) -> list[Path]:
    found = (p for split in splits for p in sorted((data / split).glob("*/*")))
    return [p for p in found if p.suffix.lower() in VIDEO_EXTENSIONS]


def compare_sparse(data: Path, splits: list[str], frames: int, stride: int) -> None:
    detector = get_detector(max_side=VIDEO_DETECT_MAX_SIDE)  # what the pipeline uses on video frames
    columns = f"{'frames':>6} {'detector_runs':>13} {'count_differs':>13} {'min_iou':>7} {'mean':>6}"
    print(f"{'clip':<48} {columns}")
    totals = {"frames": 0, "runs": 0, "differs": 0}
    overlaps: list[float] = []
    for path in videos(data, splits):
        sampled = list(sample_frames(path, frames))
        dense = [detector.detect(f.rgb) for f in sampled]
        sparse_out = list(detect_sparse(sampled, detector, stride))
        sparse = [boxes for _, boxes, _ in sparse_out]
        runs = sum(ran for _, _, ran in sparse_out)
        clip_ious, differs = [], 0
        for d, s in zip(dense, sparse, strict=True):
            pairs = match_boxes(d, s, min_iou=0.0)
            if pairs is None:
                differs += 1
                continue
            clip_ious.extend(iou(d[i], s[j]) for i, j in pairs)
        overlaps.extend(clip_ious)
        totals["frames"] += len(sampled)
        totals["runs"] += runs
        totals["differs"] += differs
        low = min(clip_ious, default=1.0)
        mean = statistics.fmean(clip_ious) if clip_ious else 1.0
        row = f"{len(sampled):>6} {runs:>13} {differs:>13} {low:>7.3f} {mean:>6.3f}"
        print(f"{path.name[:48]:<48} {row}")
    print(
        f"# stride {stride}: detector on {totals['runs']}/{totals['frames']} frames "
        f"({totals['runs'] / max(1, totals['frames']):.2f}), "
        f"face count differs on {totals['differs']} frames, "
        f"box IoU vs dense mean {statistics.fmean(overlaps):.3f}, 5th percentile "
        f"{np.percentile(overlaps, 5):.3f}, min {min(overlaps):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/videos"))
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--frames", type=int, default=None, help="frames sampled per clip (8; --sparse 32)")
    parser.add_argument("--sparse", action="store_true", help="sparse vs dense detection instead")
    parser.add_argument("--stride", type=int, default=DETECT_STRIDE, help="--sparse: detector stride")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    if args.sparse:
        compare_sparse(args.data, args.splits, args.frames or 32, args.stride)
        return 0
    args.frames = args.frames or 8
    frames = collect_frames(args.data, args.splits, args.frames)
    print(f"# {len(frames)} frames from {args.data} {'/'.join(args.splits)}, {args.frames} per clip")
    reference: list[FaceBox | None] = []
    print(f"{'detector':<16} {'frames_with_face':>16} {'iou_vs_full':>11} {'ms_per_frame':>12}")
    for name, detector in configurations().items():
        found, overlaps, seconds = 0, [], []
        for i, rgb in enumerate(frames):
            t = time.perf_counter()
            box = largest(detector.detect(rgb))
            seconds.append(time.perf_counter() - t)
            if name == "retinaface@full":
                reference.append(box)
            found += box is not None
            if box is not None and reference[i] is not None:
                overlaps.append(iou(box, reference[i]))
        share = found / max(1, len(frames))
        mean_iou = statistics.fmean(overlaps) if overlaps else 0.0
        print(f"{name:<16} {share:>16.3f} {mean_iou:>11.3f} {1e3 * statistics.median(seconds):>12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
