from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml import uncertainty as u
from tests.ml import media_factory as mf


def test_a_40_px_face_is_too_small_and_a_100_px_face_is_not():
    reason = u.face_too_small(40, 40)
    assert reason.code == "face_too_small" and "40 pixels" in reason.text
    assert u.face_too_small(100, 120) is None
    assert u.face_too_small(200, 50) is not None  # the shorter side counts


def test_sharpness_falls_with_blur_and_flags_only_the_blurred_face():
    face = mf.face_patch(224)
    sharp = u.sharpness(face)
    blurred = u.sharpness(cv2.GaussianBlur(face, (0, 0), 8))
    assert blurred < sharp / 4
    assert u.face_too_blurred(sharp) is None
    assert u.face_too_blurred(blurred).code == "face_blurred"


def test_sharpness_does_not_depend_on_the_crop_size():
    face = mf.face_patch(448)
    small = cv2.resize(face, (224, 224), interpolation=cv2.INTER_AREA)
    assert u.sharpness(small) == pytest.approx(u.sharpness(face), rel=0.15)


def test_near_threshold_is_the_band_half_open():
    assert u.near_threshold(0.35, 0.35, 0.65).code == "near_threshold"
    assert u.near_threshold(0.64, 0.35, 0.65) is not None
    assert u.near_threshold(0.65, 0.35, 0.65) is None and u.near_threshold(0.2, 0.35, 0.65) is None


def test_frames_that_agree_are_fine_and_a_split_track_is_not():
    assert u.frames_disagree([0.8, 0.82, 0.79, 0.85, 0.81], 0.5) is None
    split = u.frames_disagree([0.1, 0.15, 0.9, 0.85, 0.2, 0.88], 0.5)
    assert split.code == "frames_disagree"
    assert u.frames_disagree([0.1, 0.9], 0.5) is None  # too few frames to speak of a spread


def test_a_track_score_against_its_frames_is_flagged():
    # the case from the issue: 32 frames at 60-81 %, the LSTM says 47.8 %
    frames = list(np.linspace(0.6, 0.81, 32))
    reason = u.track_disagrees_with_frames(0.478, frames, 0.5)
    assert reason.code == "frames_disagree_with_clip_model" and "32 frames" in reason.text
    assert u.track_disagrees_with_frames(0.445, [0.536], 0.5) is not None  # the one-frame clip
    assert u.track_disagrees_with_frames(0.7, frames, 0.5) is None


def test_views_disagree_on_a_large_gap_only():
    assert u.views_disagree([0.2, 0.7]).code == "views_disagree"
    assert u.views_disagree([0.2, 0.3]) is None and u.views_disagree([0.9]) is None


def test_models_disagree_only_on_opposite_sides_of_the_threshold_and_far_apart():
    assert u.members_disagree({"a": 0.9, "b": 0.3}, 0.5).code == "models_disagree"
    assert u.members_disagree({"a": 0.6, "b": 0.4}, 0.5) is None  # opposite, but only 0.2 apart
    assert u.members_disagree({"a": 0.6, "b": 0.4}, 0.5, min_gap=0.0) is not None
    assert u.members_disagree({"a": 0.99, "b": 0.55}, 0.5, min_gap=0.0) is None  # one side
    assert u.members_disagree({"a": 0.99}, 0.5) is None and u.members_disagree({}, 0.5) is None


def test_out_of_distribution_against_card_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (500, 16))
    mean, std = train.mean(0), train.std(0)
    distances = [u.embedding_distance(e, mean, std) for e in train]
    stats = {"mean": mean.tolist(), "std": std.tolist(), "max_distance": float(np.percentile(distances, 99))}
    assert u.out_of_distribution(rng.normal(0, 1, 16), stats) is None
    assert u.out_of_distribution(rng.normal(6, 1, 16), stats).code == "out_of_distribution"
    # several rows (frames of a track): the median distance counts, so one odd frame does not flag it
    frames = rng.normal(0, 1, (9, 16))
    frames[0] += 10
    assert u.out_of_distribution(frames, stats) is None


def test_out_of_distribution_says_nothing_without_comparable_statistics():
    assert u.out_of_distribution(np.zeros(16), {}) is None
    assert u.out_of_distribution(np.zeros(16), None) is None
    other_model = {"mean": [0.0] * 8, "std": [1.0] * 8, "max_distance": 1.0}
    assert u.out_of_distribution(np.full(16, 50.0), other_model) is None


def test_neighbour_distance_is_small_near_the_reference_faces_and_large_away_from_them():
    rng = np.random.default_rng(0)
    centre = rng.normal(0, 1, 64)
    reference = u.unit_rows(centre + 0.1 * rng.normal(0, 1, (50, 64)))
    near = u.neighbour_distance(centre + 0.1 * rng.normal(0, 1, 64), reference, k=5)
    far = u.neighbour_distance(rng.normal(0, 1, (2, 64)), reference, k=5)  # two frames, both elsewhere
    assert 0 <= near < 0.1 < 0.5 < far <= 2
    assert u.neighbour_distance(centre, reference[:3], k=10) >= 0  # fewer faces than k: all of them


def test_a_face_far_from_every_reference_face_is_out_of_distribution_even_near_the_mean():
    rng = np.random.default_rng(1)
    faces = rng.normal(0, 1, (400, 16))
    faces[:, 0] += np.where(np.arange(400) % 2, 5.0, -5.0)  # two kinds of face, either way along one axis
    stats = u.training_stats(faces)
    reference = u.unit_rows(faces[:200])
    stats["neighbours"] = u.neighbour_stats(reference, [f[None] for f in faces[200:300]], k=5)
    assert stats["neighbours"]["quantile"] == 0.95 and stats["neighbours"]["faces"] == 200
    familiar = faces[300]
    odd = np.zeros(16)
    odd[1] = 1.5  # between the two kinds: near the mean by z-score, but no training face points that way
    assert u.out_of_distribution(odd, stats) is None  # the mean and spread alone see nothing
    assert u.out_of_distribution(odd, stats, reference).code == "out_of_distribution"
    assert u.out_of_distribution(familiar, stats, reference) is None
    assert u.out_of_distribution(odd, stats, reference[:, :8]) is None  # another model's reference
