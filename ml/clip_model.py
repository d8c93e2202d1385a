"""The CLIP detector: frozen CLIP ViT-B/16 image features of each face crop and a small probe on them.

Chosen by leave-one-source-out (see the card and `python -m benchmarks.loso`): a frozen representation
trained on 400M image-text pairs carries fewer traces of any one generator or face-swap tool than a CNN
fine-tuned on a few thousand faces. The probe's weights are the registry's `<name>-<version>.npz`.

Where it looked: the probe reads CLS tokens, and each block's patch tokens live in the same space as its
CLS token, so the probe applied to each of the 14x14 patch tokens gives a map of which patches read as fake
(measured, and not shown: README, "Where the heatmap points").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ml.clip_encoder import LAYERS, ROW_DIM, ClipEncoder
from ml.probe import FEATURE_SLICES, Probe, feature_parts, select

PATCH_GRID = 14


@dataclass
class ClipScores:
    logits: np.ndarray  # one raw probe logit per crop
    maps: list[np.ndarray | None]  # a [0, 1] patch map per crop when asked for
    features: np.ndarray  # what the probe read (for the out-of-distribution check against the card)


class ClipDetector:
    """Encoder + probe; `score` gives raw logits (the card's temperatures calibrate them)."""

    def __init__(self, probe: Probe, encoder: ClipEncoder | None = None, reference: np.ndarray | None = None):
        self.probe = probe
        self.encoder = encoder or ClipEncoder()
        self.reference = reference  # training faces the out-of-distribution check compares a face with

    def score(self, crops: list[np.ndarray], with_maps: bool = False) -> ClipScores:
        outputs = self.encoder.run(crops)
        rows = outputs.rows()
        maps = [self.patch_map(b) if with_maps else None for b in outputs.blocks]
        features = select(rows, self.probe.feature, self.probe.l2).astype(np.float32)
        return ClipScores(self.probe.logits(rows), maps, features)

    def patch_map(self, blocks: np.ndarray) -> np.ndarray | None:
        """A (224, 224) map in [0, 1] of the probe's logit on each patch: the probe reads, in place of each
        block's CLS token, that block's token of the patch. None for a probe on the embedding alone."""
        parts = [p for p in feature_parts(self.probe.feature) if p != "embed"]
        if not parts:
            return None
        rows = np.zeros((PATCH_GRID * PATCH_GRID, ROW_DIM), np.float32)
        for part in parts:  # the embedding part stays zero: the same offset on every patch
            rows[:, FEATURE_SLICES[part]] = blocks[block_of(part) - 1, 1:]
        grid = self.probe.logits(rows).reshape(PATCH_GRID, PATCH_GRID)
        grid = grid - grid.min()
        if grid.max() > 0:
            grid = grid / grid.max()
        return cv2.resize(grid.astype(np.float32), (224, 224), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def block_of(part: str) -> int:
    """The transformer block (1-12) whose tokens a probe part reads: "cls" is the last one, "L8" block 8."""
    return LAYERS if part == "cls" else int(part[1:])
