"""The pure parts of benchmarks.heatmap: which pixels a forgery changed, and how a map is scored on them."""

from __future__ import annotations

import numpy as np

from benchmarks.heatmap import edited_region, model_view
from ml.dataset import CONTEXT_MARGIN


def test_edited_region_is_exactly_the_changed_block_and_ignores_tiny_noise():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    fake = real.copy()
    fake[20:50, 30:70] = 255 - fake[20:50, 30:70]  # an edit
    noisy = np.clip(fake.astype(int) + rng.integers(-3, 4, fake.shape), 0, 255).astype(np.uint8)
    region = edited_region(real, noisy)
    assert region[25:45, 35:65].all()  # inside the edit
    assert region[:15].sum() == 0 and region[60:].sum() == 0  # JPEG-like noise of 3 levels is not an edit
    # the block's own pixels whose inverse is within the threshold (values near 128) are closed over
    assert abs(region.sum() - 30 * 40) < 0.05 * 30 * 40


def test_model_view_cuts_the_mask_as_the_model_input_is_cut():
    size = 300
    mask = np.zeros((size, size), np.float32)
    mask[size // 2 :, :] = 1  # the lower half of the context crop
    view = model_view(mask)
    assert view.shape == (224, 224)
    assert abs(view.mean() - 0.5) < 0.02  # the inner crop is centred, so half stays half
    corner = np.zeros((size, size), np.float32)
    corner[:20, :20] = 1  # outside the 1.3x face crop of a context crop (margin > 1.3)
    assert CONTEXT_MARGIN > 1.3 and model_view(corner).sum() == 0
