from __future__ import annotations

import numpy as np

from ml.transforms import jpeg, reencode_at_scale
from tests.ml.media_factory import astronaut


def test_reencoding_at_scale_keeps_the_crop_shape_and_hides_the_source_jpeg_quality():
    face = astronaut()[:310, 100:410]
    # the same face saved at two qualities, as the LFW reals (~90) and fakes (~95) were
    q90, q95 = jpeg(face, 90), jpeg(face, 95)
    before = np.abs(q90.astype(int) - q95).mean()
    for seed in range(3):
        a = reencode_at_scale(q90, np.random.default_rng(seed))
        b = reencode_at_scale(q95, np.random.default_rng(seed))
        assert a.shape == face.shape and a.dtype == np.uint8
        assert np.abs(a.astype(int) - q90).mean() > before  # a real change, not a copy
        assert np.abs(a.astype(int) - b).mean() < 0.8 * before  # the two sources end up closer
