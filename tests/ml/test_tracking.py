from __future__ import annotations

import numpy as np

from ml.faces import FaceBox, get_detector
from ml.media import Frame, sample_frames
from ml.tracking import build_tracks, detect_sparse, interpolate_box, match_boxes


class ScriptedDetector:
    """Returns the boxes a script gives for each frame (the frame's pixels carry its index)."""

    def __init__(self, boxes_at):
        self.boxes_at = boxes_at
        self.calls: list[int] = []

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        index = int(rgb[0, 0, 0])
        self.calls.append(index)
        return self.boxes_at(index)


def frames(n: int) -> list[Frame]:
    return [Frame(i, i / 10, np.full((4, 4, 3), i, np.uint8)) for i in range(n)]


def test_two_people_moving_become_two_tracks():
    left = [FaceBox(100 + 5 * t, 100, 80, 80) for t in range(10)]
    right = [FaceBox(500 - 5 * t, 120, 90, 90) for t in range(10)]
    detections = [(t, [right[t], left[t]] if t % 2 else [left[t], right[t]]) for t in range(10)]
    tracks = build_tracks(detections)
    assert len(tracks) == 2
    for track in tracks:
        assert track.frame_indices == list(range(10))
        xs = [b.x for b in track.boxes]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True)  # never swaps identity


def test_a_one_off_false_detection_is_dropped():
    detections = [(t, [FaceBox(100, 100, 80, 80)]) for t in range(12)]
    detections[5] = (5, [FaceBox(100, 100, 80, 80), FaceBox(600, 400, 30, 30)])
    tracks = build_tracks(detections)
    assert len(tracks) == 1 and len(tracks[0]) == 12


def test_tracks_on_a_generated_two_face_video(two_face_video):
    det = get_detector("retinaface")
    detections = [(f.index, det.detect(f.rgb)) for f in sample_frames(two_face_video, 8)]
    assert all(len(boxes) == 2 for _, boxes in detections)
    tracks = build_tracks(detections)
    assert len(tracks) == 2
    assert all(len(t) == 8 for t in tracks)
    assert {t.track_id for t in tracks} == {0, 1}


def test_no_detections_no_tracks():
    assert build_tracks([(0, []), (1, [])]) == []


def test_sparse_detection_interpolates_a_steadily_moving_face():
    detector = ScriptedDetector(lambda i: [FaceBox(100 + 4 * i, 50, 80, 80, 0.9)])
    out = list(detect_sparse(frames(9), detector, stride=4))
    assert detector.calls == [0, 4, 8]
    assert [f.index for f, _, _ in out] == list(range(9))
    assert [ran for _, _, ran in out] == [i % 4 == 0 for i in range(9)]
    assert [boxes[0].x for _, boxes, _ in out] == [100 + 4 * i for i in range(9)]


def test_sparse_detection_bisects_where_a_face_appears():
    detector = ScriptedDetector(lambda i: [FaceBox(200, 80, 60, 60)] if i >= 5 else [])
    out = {f.index: boxes for f, boxes, _ in detect_sparse(frames(9), detector, stride=4)}
    assert sorted(detector.calls) == [0, 4, 5, 6, 8]  # the gap 4..8 disagreed: its middle, then 5
    assert [len(out[i]) for i in range(9)] == [0] * 5 + [1] * 4


def test_sparse_detection_detects_every_frame_of_a_fast_face():
    detector = ScriptedDetector(lambda i: [FaceBox(100 * i, 50, 60, 60)])  # jumps a face width each frame
    out = list(detect_sparse(frames(7), detector, stride=4))
    assert sorted(detector.calls) == list(range(7))
    assert all(ran for _, _, ran in out)


def test_sparse_detection_with_stride_one_is_dense_and_keeps_a_short_tail():
    detector = ScriptedDetector(lambda i: [FaceBox(10, 10, 50, 50)])
    assert [ran for _, _, ran in detect_sparse(frames(3), detector, stride=1)] == [True, True, True]
    detector = ScriptedDetector(lambda i: [FaceBox(10, 10, 50, 50)])
    out = list(detect_sparse(frames(6), detector, stride=4))  # 0, 4, then the tail ends at 5
    assert detector.calls == [0, 4, 5] and len(out) == 6


def test_match_and_interpolate_two_faces():
    a = [FaceBox(0, 0, 50, 50, 0.9, ((10.0, 10.0),)), FaceBox(300, 0, 50, 50, 0.8)]
    b = [FaceBox(310, 0, 50, 50, 0.7), FaceBox(10, 0, 50, 50, 0.9, ((20.0, 10.0),))]
    assert match_boxes(a, b) == [(0, 1), (1, 0)]
    mid = interpolate_box(a[0], b[1], 0.5)
    assert (mid.x, mid.w, mid.landmarks) == (5, 50, ((15.0, 10.0),))
    assert match_boxes(a, b[:1]) is None
    assert match_boxes(a[:1], [FaceBox(200, 200, 50, 50)]) is None


def test_sparse_detection_interpolates_single_frames_of_a_fast_steady_pan():
    # 14 px a frame with a 60 px face: two frames apart the boxes overlap at IoU 0.36 only, but the motion
    # is steady, so only every other frame needs the detector.
    detector = ScriptedDetector(lambda i: [FaceBox(100 + 14 * i, 50, 60, 60)])
    out = list(detect_sparse(frames(9), detector, stride=4))
    assert sorted(detector.calls) == [0, 2, 4, 6, 8]
    assert [boxes[0].x for _, boxes, _ in out] == [100 + 14 * i for i in range(9)]
