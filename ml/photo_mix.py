"""A photo's score from two models: the frozen CLIP probe and the fine-tuned CNN, mixed.

Held out of training, the two fail on different sources (README, "The CLIP probe with this CNN"): the CNN
finds generated faces the probe calls real, the mix of both holds best on the DFDC crops. Each model's logit
is divided by its own card's temperature, the two are mixed as w * clip + (1 - w) * cnn, and the mix is
calibrated by a temperature of its own, fitted on the val photos.

A mix card (task "mix") names its two members and holds no weights of its own: the members' cards hold
theirs, with their SHA-256. Videos are still scored by the probe alone (no video row has been measured with
the CNN in the mix).

Fitted by `ml.train_mix` (python -m ml mix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.metrics import sigmoid
from ml.registry import ModelCard

MIX_ARCH = "clip_cnn_logit_mix"


@dataclass(frozen=True)
class PhotoMix:
    clip_weight: float  # w: the CLIP probe's share of the mixed logit
    temperature: float  # calibrates the mixed logit

    def logits(self, clip: np.ndarray, cnn: np.ndarray) -> np.ndarray:
        """The mixed logit, before the mix's temperature; `clip` and `cnn` each over their own."""
        return mixed_logit(clip, cnn, self.clip_weight)

    def probabilities(self, clip: np.ndarray, cnn: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(clip, cnn) / self.temperature)

    @classmethod
    def of_card(cls, card: ModelCard) -> PhotoMix:
        return cls(float(card.mix["clip_weight"]), card.temperature)


def mixed_logit(clip: np.ndarray, cnn: np.ndarray, clip_weight: float) -> np.ndarray:
    return clip_weight * np.asarray(clip) + (1 - clip_weight) * np.asarray(cnn)
