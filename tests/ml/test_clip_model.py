"""The CLIP detector's patch map, with a probe and block tokens made here (no tower needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.clip_encoder import CLS_DIM, LAYERS
from ml.clip_model import ClipDetector, block_of
from ml.probe import LinearProbe, feature_parts


def _probe_on(feature: str, direction: np.ndarray) -> LinearProbe:
    width = len(feature_parts(feature)) * CLS_DIM
    coef = np.tile(direction, width // CLS_DIM)
    return LinearProbe(feature, True, np.zeros(width), np.ones(width), coef, 0.0)


@pytest.mark.parametrize("feature", ["cls", "L6", "L6+cls"])
def test_patch_map_lights_the_patches_whose_tokens_the_probe_reads_as_fake(feature):
    rng = np.random.default_rng(0)
    direction = np.zeros(CLS_DIM)
    direction[:16] = 1.0
    blocks = rng.normal(0, 1, (LAYERS, 197, CLS_DIM)).astype(np.float32)
    patches = np.zeros((14, 14), bool)
    patches[2:5, 9:12] = True  # a "fake" region, top right
    for part in feature_parts(feature):
        grid = blocks[block_of(part) - 1, 1:].reshape(14, 14, CLS_DIM)
        grid[patches, :16] += 6.0
    detector = ClipDetector(_probe_on(feature, direction), encoder=object())
    heat = detector.patch_map(blocks)
    assert heat.shape == (224, 224) and heat.min() >= 0 and heat.max() <= 1
    inside = heat[2 * 16 : 5 * 16, 9 * 16 : 12 * 16].mean()
    assert inside > 0.6 and inside > 4 * heat[160:, :64].mean()


def test_patch_map_reads_the_named_block_not_the_last():
    direction = np.zeros(CLS_DIM)
    direction[:16] = 1.0
    blocks = np.random.default_rng(1).normal(0, 1, (LAYERS, 197, CLS_DIM)).astype(np.float32)
    blocks[LAYERS - 1, 1 : 1 + 14, :16] += 6.0  # the last block's first patch row only
    on_last = ClipDetector(_probe_on("cls", direction), encoder=object()).patch_map(blocks)
    on_six = ClipDetector(_probe_on("L6", direction), encoder=object()).patch_map(blocks)
    assert on_last[:16].mean() > 3 * on_last[64:].mean()
    assert on_six[:16].mean() < 2 * on_six[64:].mean()  # block 6 was left as noise


def test_a_probe_on_the_embedding_alone_has_no_map():
    probe = LinearProbe("embed", True, np.zeros(512), np.ones(512), np.ones(512), 0.0)
    assert ClipDetector(probe, encoder=object()).patch_map(np.zeros((LAYERS, 197, CLS_DIM))) is None
