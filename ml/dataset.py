"""Training data: face crops cut once from a `split/{real,fake}/` folder tree and cached on disk.

Each face is cached as a *context crop* (a square 1.8× the face box, 310 px) with its 68 landmarks,
so training can build self-blended fakes and geometric augmentations from more than the final
1.3× crop, then cut the same 1.3× / 224 px crop that inference uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ml.faces import FaceBox, FaceDetector, crop_face, get_detector
from ml.file_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ml.landmarks import landmarks_68
from ml.media import DEFAULT_FRAMES, load_image, probe, sample_frames
from ml.synth import Face, synthesise
from ml.tracking import build_tracks
from ml.transforms import CONTEXT_MARGIN, FaceEvalPreset, FaceTrainPreset, inner_crop  # noqa: F401 - re-exported

CONTEXT_SIZE = 310  # 310 * 1.3 / 1.8 ≈ 224: the inference crop sits inside at native scale
LABELS = {"real": 0, "fake": 1}


def list_split(split_dir: Path, suffixes: Collection[str]) -> list[tuple[Path, int]]:
    """(file, label) pairs under split_dir/real and split_dir/fake, sorted for reproducibility."""
    items = []
    for name, label in LABELS.items():
        folder = split_dir / name
        if folder.is_dir():
            items += [(p, label) for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes]
    if not items:
        raise FileNotFoundError(f"no media under {split_dir}/real or {split_dir}/fake")
    return items


def context_crop(rgb: np.ndarray, box: FaceBox) -> tuple[np.ndarray, np.ndarray]:
    """The cached crop around a face, and the face's 68 landmarks in that crop's pixels."""
    crop = crop_face(rgb, box, size=CONTEXT_SIZE, margin=CONTEXT_MARGIN)
    side = max(box.w, box.h) * CONTEXT_MARGIN
    cx, cy = box.center
    scale = CONTEXT_SIZE / side
    lm = landmarks_68(rgb, box)
    lm_crop = (lm - np.array([cx - side / 2, cy - side / 2], dtype=np.float32)) * scale
    return crop, lm_crop.astype(np.float32)


def largest_face(boxes: list[FaceBox]) -> FaceBox | None:
    return max(boxes, key=lambda b: b.area * b.score) if boxes else None


@dataclass
class CropSet:
    """Cached faces of one split. For videos, `crops` is (N, T, S, S, 3) with `lengths` valid steps."""

    crops: np.ndarray
    landmarks: np.ndarray
    labels: np.ndarray
    paths: list[str]
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _cache_path(cache_dir: Path, split_dir: Path, kind: str, extra: str) -> Path:
    key = hashlib.sha256(f"{split_dir.resolve()}|{kind}|{extra}|{CONTEXT_SIZE}|v1".encode()).hexdigest()[:16]
    return cache_dir / f"{kind}-{split_dir.parent.name}-{split_dir.name}-{key}.npz"


def _save(path: Path, cs: CropSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    arrays = {
        "crops": cs.crops,
        "landmarks": cs.landmarks,
        "labels": cs.labels,
        "paths": np.array(json.dumps(cs.paths)),
    }
    if cs.lengths is not None:
        arrays["lengths"] = cs.lengths
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load(path: Path) -> CropSet:
    with np.load(path) as z:
        return CropSet(
            crops=z["crops"],
            landmarks=z["landmarks"],
            labels=z["labels"],
            paths=json.loads(str(z["paths"])),
            lengths=z["lengths"] if "lengths" in z else None,
        )


def photo_face(file: Path, det: FaceDetector) -> tuple[np.ndarray, np.ndarray] | None:
    """Context crop and landmarks of a photo's largest face; None when there is no face."""
    rgb = load_image(file)
    box = largest_face(det.detect(rgb))
    return None if box is None else context_crop(rgb, box)


def image_crops(split_dir: Path, cache_dir: Path, detector: str = "retinaface", log=print) -> CropSet:
    """Largest face of every image in the split (images without a face are skipped and counted)."""
    path = _cache_path(cache_dir, split_dir, "image", detector)
    if path.exists():
        return _load(path)
    det = get_detector(detector)
    crops, lms, labels, paths, skipped = [], [], [], [], 0
    for i, (file, label) in enumerate(list_split(split_dir, IMAGE_EXTENSIONS)):
        found = photo_face(file, det)
        if found is None:
            skipped += 1
            continue
        crop, lm = found
        crops.append(crop)
        lms.append(lm)
        labels.append(label)
        paths.append(str(file))
        if i % 200 == 0:
            log(f"  {split_dir}: {i} images")
    log(f"  {split_dir}: {len(labels)} faces, {skipped} images without a face skipped")
    cs = CropSet(np.stack(crops), np.stack(lms), np.array(labels, dtype=np.int64), paths)
    _save(path, cs)
    return cs


def main_track(file: Path, det: FaceDetector, frames: int) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """Context crops and landmarks of a clip's main face track (most detections, then largest), zero-padded
    to `frames`; with its length and the number of tracks found. None when no face is tracked."""
    rgbs, detections = {}, []
    for frame in sample_frames(file, frames, info=probe(file)):
        rgbs[frame.index] = frame.rgb
        detections.append((frame.index, det.detect(frame.rgb)))
    tracks = build_tracks(detections)
    if not tracks:
        return None
    track = max(tracks, key=lambda t: (len(t), np.mean([b.area for b in t.boxes])))
    seq = np.zeros((frames, CONTEXT_SIZE, CONTEXT_SIZE, 3), np.uint8)
    seq_lm = np.zeros((frames, 68, 2), np.float32)
    for t, (idx, box) in enumerate(zip(track.frame_indices, track.boxes, strict=True)):
        seq[t], seq_lm[t] = context_crop(rgbs[idx], box)
    return seq, seq_lm, len(track), len(tracks)


def video_crops(
    split_dir: Path, cache_dir: Path, frames: int = DEFAULT_FRAMES, detector: str = "retinaface", log=print
) -> CropSet:
    """The main face track (most detections, then largest) of each clip, `frames` sampled evenly."""
    path = _cache_path(cache_dir, split_dir, "video", f"{detector}|{frames}")
    if path.exists():
        return _load(path)
    det = get_detector(detector)
    seqs, lms, labels, paths, lengths = [], [], [], [], []
    for file, label in list_split(split_dir, VIDEO_EXTENSIONS):
        found = main_track(file, det, frames)
        if found is None:
            log(f"  {file.name}: no face track, skipped")
            continue
        seq, seq_lm, length, n_tracks = found
        seqs.append(seq)
        lms.append(seq_lm)
        labels.append(label)
        paths.append(str(file))
        lengths.append(length)
        log(f"  {file.name}: {length} frames in main track of {n_tracks}")
    cs = CropSet(
        np.stack(seqs),
        np.stack(lms),
        np.array(labels, dtype=np.int64),
        paths,
        np.array(lengths, dtype=np.int64),
    )
    _save(path, cs)
    return cs


# ---------------------------------------------------------------- training views of crop sets


def exclude_sources(cs: CropSet, prefixes: list[str]) -> CropSet:
    """The crop set less the files whose names start with any of the prefixes (leave-one-source-out)."""
    if not prefixes:
        return cs
    keep = np.array([not any(Path(p).name.startswith(x) for x in prefixes) for p in cs.paths])
    return CropSet(
        cs.crops[keep],
        cs.landmarks[keep],
        cs.labels[keep],
        [p for p, k in zip(cs.paths, keep, strict=True) if k],
        None if cs.lengths is None else cs.lengths[keep],
    )


def video_frames_as_faces(cs: CropSet, step: int) -> CropSet:
    """Every `step`-th frame of each cached track as a standalone face, labelled by its clip."""
    crops, lms, labels, paths = [], [], [], []
    for i in range(len(cs)):
        for t in range(0, int(cs.lengths[i]), step):
            crops.append(cs.crops[i, t])
            lms.append(cs.landmarks[i, t])
            labels.append(cs.labels[i])
            paths.append(cs.paths[i])
    return CropSet(np.stack(crops), np.stack(lms), np.array(labels, dtype=np.int64), paths)


def concat(a: CropSet, b: CropSet) -> CropSet:
    """Two crop sets of single faces as one."""
    return CropSet(
        np.concatenate([a.crops, b.crops]),
        np.concatenate([a.landmarks, b.landmarks]),
        np.concatenate([a.labels, b.labels]),
        a.paths + b.paths,
    )


class ImageEpoch(torch.utils.data.Dataset):
    """One epoch's samples: every cached face plus freshly drawn forgeries of real faces (ml.synth)."""

    donor_candidates = 4  # other real faces offered per forgery; the closest in pose gives its face

    def __init__(
        self, cs: CropSet, size: int, mix: dict[str, float], seed: int, reencode_fraction: float = 0.0
    ):
        self.cs, self.transform = cs, FaceTrainPreset(size, reencode_fraction)
        rng = np.random.default_rng(seed)
        self.reals = np.flatnonzero(cs.labels == 0)
        self.items: list[tuple[int, str | None]] = [(i, None) for i in range(len(cs))]
        for family, fraction in mix.items():
            n = int(round(fraction * len(self.reals)))
            self.items += [(int(i), family) for i in rng.choice(self.reals, n)]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        i, family = self.items[k]
        rng = np.random.default_rng((self.seed, k))
        context = self.cs.crops[i]
        label = int(self.cs.labels[i])
        if family is not None:
            context, _ = synthesise(self._face(i), self._donors(i, k), family, rng)
            label = 1
        return self.transform(context, rng), torch.tensor(float(label))

    def _face(self, i: int) -> Face:
        return Face(self.cs.crops[i], self.cs.landmarks[i])

    def _donors(self, i: int, k: int) -> list[Face]:
        # a stream of its own, so the forgery's own draws (and self-blends) do not depend on it
        picks = np.random.default_rng((self.seed, k, 1)).choice(self.reals, self.donor_candidates)
        return [self._face(int(j)) for j in picks if j != i]


class FaceSet(torch.utils.data.Dataset):
    """Cached faces as evaluation sees them (ml.transforms.FaceEvalPreset), with their labels."""

    def __init__(self, cs: CropSet, size: int):
        self.cs, self.transform = cs, FaceEvalPreset(size)

    def __len__(self) -> int:
        return len(self.cs)

    def __getitem__(self, k: int):
        return self.transform(self.cs.crops[k]), torch.tensor(float(self.cs.labels[k]))
