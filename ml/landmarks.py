"""68-point facial landmarks from dlib's shape predictor (shipped by face-recognition-models)."""

from __future__ import annotations

from functools import cache

import numpy as np

from ml.faces import FaceBox, face_model_path


@cache
def _predictor():
    import dlib

    return dlib.shape_predictor(str(face_model_path("shape_predictor_68_face_landmarks.dat")))


def landmarks_68(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """(68, 2) float32 landmark coordinates of the face in `box`."""
    import dlib

    rect = dlib.rectangle(int(box.x), int(box.y), int(box.x + box.w), int(box.y + box.h))
    shape = _predictor()(np.ascontiguousarray(rgb), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def landmarks_in_crop(crop: np.ndarray, margin: float = 1.3) -> np.ndarray:
    """Landmarks of the face a `crop_face` crop was cut around: its central 1/margin square."""
    side = crop.shape[0] / margin
    o = (crop.shape[0] - side) / 2
    return landmarks_68(crop, FaceBox(round(o), round(o), round(side), round(side)))
