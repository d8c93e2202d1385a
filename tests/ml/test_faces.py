from __future__ import annotations

import numpy as np
import pytest

from ml.faces import FaceBox, crop_face, get_detector, iou
from tests.ml.media_factory import ASTRONAUT_FACE, astronaut


@pytest.mark.parametrize("name", ["retinaface", "hog", "haar"])
def test_detectors_find_the_astronaut(name):
    boxes = get_detector(name).detect(astronaut())
    assert len(boxes) == 1
    assert iou(boxes[0], FaceBox(*ASTRONAUT_FACE)) > 0.5


def test_retinaface_gives_five_landmarks_inside_the_box():
    (box,) = get_detector("retinaface").detect(astronaut())
    assert len(box.landmarks) == 5
    for x, y in box.landmarks:
        assert box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h


def test_detection_on_a_downscaled_frame_maps_back_to_full_size():
    big = np.kron(astronaut(), np.ones((3, 3, 1), np.uint8))  # 1536 px: detected at 640, mapped back
    (box,) = get_detector("retinaface").detect(big)
    x, y, w, h = ASTRONAUT_FACE
    assert iou(box, FaceBox(3 * x, 3 * y, 3 * w, 3 * h)) > 0.5


def test_no_face_in_noise():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
    assert get_detector("retinaface").detect(noise) == []


def test_crop_face_is_square_and_padded_at_edges():
    img = astronaut()
    crop = crop_face(img, FaceBox(*ASTRONAUT_FACE), size=224)
    assert crop.shape == (224, 224, 3)
    corner = crop_face(img, FaceBox(0, 0, 100, 100), size=128)  # box at the border: margin padded
    assert corner.shape == (128, 128, 3)


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown face detector"):
        get_detector("yolo")
