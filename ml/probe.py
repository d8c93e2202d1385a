"""A linear probe on frozen features: the head the CLIP models use.

Features are L2-normalised, then standardised with the training mean and spread, then a logistic
regression gives the fake logit. Everything the probe needs at inference is a few arrays, saved in the
registry beside the card; no sklearn object is pickled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.clip_encoder import CLS_DIM, EMBED_DIM, LAYERS

# Which slice of a stored feature row (`ml.clip_encoder.ClipOutputs.rows`) each named part is.
FEATURE_SLICES = {
    "embed": slice(0, EMBED_DIM),
    "cls": slice(EMBED_DIM, EMBED_DIM + CLS_DIM),
    **{
        f"L{k}": slice(EMBED_DIM + k * CLS_DIM, EMBED_DIM + (k + 1) * CLS_DIM)  # block k's CLS, k = 1..12
        for k in range(1, LAYERS + 1)
    },
}
ALIASES = {"both": "embed+cls"}


def feature_parts(feature: str) -> list[str]:
    """The parts a probe's feature name joins: "cls", "L8", "L6+L9+cls" ..."""
    parts = ALIASES.get(feature, feature).split("+")
    unknown = [p for p in parts if p not in FEATURE_SLICES]
    if unknown:
        raise ValueError(f"unknown feature part(s) {unknown}; known: {sorted(FEATURE_SLICES)}")
    return parts


def select(features: np.ndarray, feature: str, l2: bool = True) -> np.ndarray:
    """The probe's input: the named parts side by side, each L2-normalised on its own when `l2`."""
    out = []
    for part in feature_parts(feature):
        x = features[:, FEATURE_SLICES[part]].astype(np.float64)
        if l2:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out.append(x)
    return np.concatenate(out, axis=1)


@dataclass
class LinearProbe:
    feature: str
    l2: bool
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (select(features, self.feature, self.l2) - self.mean) / self.scale
        return x @ self.coef + self.intercept

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": np.array([self.intercept]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], feature: str, l2: bool) -> LinearProbe:
        return cls(
            feature,
            l2,
            np.asarray(arrays["mean"], np.float64),
            np.asarray(arrays["scale"], np.float64),
            np.asarray(arrays["coef"], np.float64),
            float(np.asarray(arrays["intercept"]).ravel()[0]),
        )


def fit_probe(
    features: np.ndarray,
    labels: np.ndarray,
    feature: str = "cls",
    l2: bool = True,
    c: float = 0.5,
    sample_weight: np.ndarray | None = None,
) -> LinearProbe:
    """Logistic regression with balanced classes on standardised features."""
    from sklearn.linear_model import LogisticRegression

    x = select(features, feature, l2)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit((x - mean) / scale, labels, sample_weight=sample_weight)
    return LinearProbe(feature, l2, mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))
