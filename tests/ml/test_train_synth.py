"""Training mixes in ml.synth forgeries: fractions per family for photos, forged track copies for videos."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ml.dataset import CropSet, ImageEpoch, context_crop
from ml.faces import FaceBox
from ml.train import ImageTrainConfig, forged_track, synth_mix, track_faces
from tests.ml.media_factory import ASTRONAUT_FACE, astronaut


def _crops() -> CropSet:
    crop, lm = context_crop(astronaut(), FaceBox(*ASTRONAUT_FACE))
    crops = np.stack([crop, crop[:, :, ::-1], crop // 2 + 60, crop])  # three "people" and one fake
    return CropSet(crops, np.stack([lm] * 4), np.array([0, 0, 0, 1]), ["a", "b", "c", "d"])


def test_without_families_the_epoch_self_blends_at_sbi_fraction():
    assert synth_mix(ImageTrainConfig(sbi_fraction=0.3)) == {"sbi": 0.3}
    assert synth_mix(ImageTrainConfig(synth_families={"swap": 1.0})) == {"swap": 1.0}
    with pytest.raises(ValueError, match="unknown forgery families"):
        synth_mix(ImageTrainConfig(synth_families={"gan": 1.0}))


def test_epoch_adds_forgeries_of_real_faces_per_family():
    cs = _crops()
    ds = ImageEpoch(cs, 224, {"swap": 1.0, "resynth": 0.5}, seed=0)
    assert Counter(family for _, family in ds.items) == {None: 4, "swap": 3, "resynth": 2}
    assert all(cs.labels[i] == 0 for i, family in ds.items if family)  # made from real faces only
    for k, (_, family) in enumerate(ds.items):
        x, y = ds[k]
        assert x.shape == (3, 224, 224)
        assert float(y) == (1.0 if family else float(cs.labels[ds.items[k][0]]))
    k = next(k for k, (_, family) in enumerate(ds.items) if family == "swap")
    assert np.array_equal(ds[k][0].numpy(), ds[k][0].numpy())  # each sample repeats from its seed


@pytest.mark.parametrize("family", ["frozen", "flicker", "drift"])
def test_forged_tracks_keep_their_length_and_differ_from_the_real_one(family):
    crop, lm = context_crop(astronaut(), FaceBox(*ASTRONAUT_FACE))
    frames = np.stack([np.roll(crop, t, axis=1) for t in range(5)])  # the head pans right a pixel a frame
    lms = np.stack([lm + (t, 0) for t in range(5)])
    other = (frames.astype(np.int16) + (40, -20, -20)).clip(0, 255).astype(np.uint8)
    cs = CropSet(
        np.stack([frames, other]), np.stack([lms, lms]), np.array([0, 0]), ["a", "b"], np.array([5, 4])
    )
    real = track_faces(cs, 0, 128)
    forged = forged_track(cs, 0, 128, family, np.random.default_rng(0))
    assert forged.shape == real.shape == (5, 128, 128, 3)
    assert np.abs(forged.astype(int) - real).mean() > 0.3
