from __future__ import annotations

from ml.faces import FaceBox, get_detector
from ml.media import sample_frames
from ml.tracking import build_tracks


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
