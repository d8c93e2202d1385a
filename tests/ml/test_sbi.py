from __future__ import annotations

import numpy as np

from ml.dataset import context_crop
from ml.faces import FaceBox
from ml.sbi import draw_params, face_mask, self_blend
from tests.ml.media_factory import ASTRONAUT_FACE, astronaut


def _face():
    return context_crop(astronaut(), FaceBox(*ASTRONAUT_FACE))


def test_landmarks_fall_inside_the_context_crop():
    crop, lm = _face()
    assert crop.shape == (310, 310, 3) and lm.shape == (68, 2)
    assert (lm > 0).all() and (lm < 310).all()
    # the face sits in the middle of the context crop
    assert 100 < lm[:, 0].mean() < 210 and 100 < lm[:, 1].mean() < 230


def test_self_blend_changes_the_face_not_the_background():
    crop, lm = _face()
    rng = np.random.default_rng(3)
    params = draw_params(rng, 310)
    params = params.__class__(**{**params.__dict__, "color": (25.0, -25.0, 25.0), "ratio": 1.0})
    fake = self_blend(crop, lm, params)
    mask = face_mask(lm, crop.shape[:2], params)
    diff = np.abs(fake.astype(int) - crop.astype(int)).mean(axis=2)
    assert diff[mask > 0.9].mean() > 10  # the blended region changed
    assert diff[mask < 0.01].mean() < 1  # outside the mask nothing moved


def test_blend_is_reproducible_from_its_parameters():
    crop, lm = _face()
    params = draw_params(np.random.default_rng(7), 310)
    assert np.array_equal(self_blend(crop, lm, params), self_blend(crop, lm, params))
