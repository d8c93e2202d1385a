"""benchmarks.patch_tokens: the patch means join the stored rows as probe parts P3, P6, ..."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.patch_tokens import BLOCKS, with_patch_parts
from ml import probe
from ml.clip_encoder import CLS_DIM, ROW_DIM
from ml.train_clip import Features


def test_patch_means_are_appended_and_readable_as_probe_parts(monkeypatch):
    monkeypatch.setattr(probe, "FEATURE_SLICES", dict(probe.FEATURE_SLICES))  # the benchmark adds to it
    rng = np.random.default_rng(0)
    width = 4
    base = {"train_photos": Features(rng.normal(size=(3, ROW_DIM)), np.array([0, 1, 0]), ["a", "b", "c"])}
    patch_x = np.concatenate([np.full((3, width), float(b)) for b in BLOCKS], axis=1)
    patches = {"train_photos": Features(patch_x, np.array([0, 1, 0]), ["a", "b", "c"])}
    joined = with_patch_parts(base, patches)["train_photos"]
    assert joined.x.shape == (3, ROW_DIM + width * len(BLOCKS))
    assert np.array_equal(joined.x[:, :ROW_DIM], base["train_photos"].x)
    # Each part reads its own block's means (unnormalised, to see the values).
    for b in BLOCKS:
        assert np.all(probe.select(joined.x, f"P{b}", l2=False) == b)
    assert probe.select(joined.x, "cls+P6", l2=False).shape == (3, CLS_DIM + width)


def test_rows_of_different_crops_are_refused(monkeypatch):
    monkeypatch.setattr(probe, "FEATURE_SLICES", dict(probe.FEATURE_SLICES))
    base = {"train_photos": Features(np.zeros((2, ROW_DIM)), np.array([0, 1]), ["a", "b"])}
    patches = {"train_photos": Features(np.zeros((2, len(BLOCKS))), np.array([0, 1]), ["a", "x"])}
    with pytest.raises(AssertionError, match="different crops"):
        with_patch_parts(base, patches)
