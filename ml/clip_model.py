"""The CLIP detector: frozen CLIP ViT-B/16 image features of each face crop and a linear probe on them.

Chosen by leave-one-source-out (see the card and `python -m benchmarks.loso`): a frozen representation
trained on 400M image-text pairs carries fewer traces of any one generator or face-swap tool than a CNN
fine-tuned on a few thousand faces. The probe's weights are the registry's `<name>-<version>.npz`.

Where it looked: the probe is linear on the last layer's CLS token, and the patch tokens live in the same
space, so the probe applied to each of the 14x14 patch tokens gives a map of which patches read as fake.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ml.clip_encoder import ROW_DIM, ClipEncoder
from ml.probe import FEATURE_SLICES, LinearProbe, select

PATCH_GRID = 14


@dataclass
class ClipScores:
    logits: np.ndarray  # one raw probe logit per crop
    maps: list[np.ndarray | None]  # a [0, 1] patch map per crop when asked for
    features: np.ndarray  # what the probe read (for the out-of-distribution check against the card)


class ClipDetector:
    """Encoder + probe; `score` gives raw logits (the card's temperatures calibrate them)."""

    def __init__(self, probe: LinearProbe, encoder: ClipEncoder | None = None):
        self.probe = probe
        self.encoder = encoder or ClipEncoder()

    def score(self, crops: list[np.ndarray], with_maps: bool = False) -> ClipScores:
        outputs = self.encoder.run(crops)
        rows = outputs.rows()
        maps = [self.patch_map(t) if with_maps else None for t in outputs.tokens]
        features = select(rows, self.probe.feature, self.probe.l2).astype(np.float32)
        return ClipScores(self.probe.logits(rows), maps, features)

    def patch_map(self, tokens: np.ndarray) -> np.ndarray | None:
        """A (224, 224) map in [0, 1] of the probe's logit on each patch token; None for non-CLS probes."""
        if self.probe.feature != "cls":
            return None
        patches = tokens[1:]
        rows = np.zeros((len(patches), ROW_DIM), np.float32)
        rows[:, FEATURE_SLICES["cls"]] = patches
        grid = self.probe.logits(rows).reshape(PATCH_GRID, PATCH_GRID)
        grid = grid - grid.min()
        if grid.max() > 0:
            grid = grid / grid.max()
        return cv2.resize(grid.astype(np.float32), (224, 224), interpolation=cv2.INTER_CUBIC).clip(0, 1)
