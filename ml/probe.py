"""The probes on frozen features: the heads the CLIP models use.

Features are L2-normalised, then standardised with the training mean and spread, then a head gives the
fake logit: a logistic regression (`linear`) or one hidden ReLU layer (`mlp`). Everything a probe needs at
inference is a few arrays, saved in the registry beside the card; no sklearn object is pickled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

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


class Probe(Protocol):
    """What the detector, the trainer and the benchmarks need of a head on frozen features."""

    @property
    def feature(self) -> str: ...

    @property
    def l2(self) -> bool: ...

    def logits(self, features: np.ndarray) -> np.ndarray: ...

    def to_arrays(self) -> dict[str, np.ndarray]: ...


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


@dataclass
class MlpProbe:
    """One hidden ReLU layer on the standardised features, then the fake logit."""

    feature: str
    l2: bool
    mean: np.ndarray
    scale: np.ndarray
    hidden_weight: np.ndarray  # (inputs, hidden)
    hidden_bias: np.ndarray  # (hidden,)
    out_weight: np.ndarray  # (hidden,)
    out_bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (select(features, self.feature, self.l2) - self.mean) / self.scale
        hidden = np.maximum(x @ self.hidden_weight + self.hidden_bias, 0.0)
        return hidden @ self.out_weight + self.out_bias

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "hidden_weight": self.hidden_weight,
            "hidden_bias": self.hidden_bias,
            "out_weight": self.out_weight,
            "out_bias": np.array([self.out_bias]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], feature: str, l2: bool) -> MlpProbe:
        def f64(name: str) -> np.ndarray:
            return np.asarray(arrays[name], np.float64)

        out_bias = float(f64("out_bias").ravel()[0])
        return cls(feature, l2, f64("mean"), f64("scale"), f64("hidden_weight"), f64("hidden_bias"),
                   f64("out_weight"), out_bias)  # fmt: skip


@dataclass
class EnsembleProbe:
    """Several heads of one kind on the same input, fitted with different seeds; their logits averaged."""

    members: list[Probe]

    @property
    def feature(self) -> str:
        return self.members[0].feature

    @property
    def l2(self) -> bool:
        return self.members[0].l2

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.mean([m.logits(features) for m in self.members], axis=0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"m{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.to_arrays().items()}


def probe_from_arrays(arrays: dict[str, np.ndarray], settings: dict) -> Probe:
    """The probe a card's `probe` settings describe (cards before the MLP head name none: linear; cards
    before ensembles name no `members`: one head, its arrays unprefixed)."""
    load = head_kind(settings.get("head", "linear")).load
    members = int(settings.get("members", 1))
    if members == 1:
        return load(arrays, settings["feature"], settings["l2"])
    parts = [
        {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"m{i}.")} for i in range(members)
    ]
    return EnsembleProbe([load(a, settings["feature"], settings["l2"]) for a in parts])


def _standardised(features: np.ndarray, feature: str, l2: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = select(features, feature, l2)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    return (x - mean) / scale, mean, scale


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

    x, mean, scale = _standardised(features, feature, l2)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit(x, labels, sample_weight=sample_weight)
    return LinearProbe(feature, l2, mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))


def fit_mlp_probe(
    features: np.ndarray,
    labels: np.ndarray,
    feature: str = "cls",
    l2: bool = True,
    hidden: int = 256,
    alpha: float = 1.0,
    iterations: int = 60,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> MlpProbe:
    """One hidden layer trained with Adam for a fixed number of passes, L2 penalty `alpha`.

    The pass count is a budget chosen by leave-one-source-out, not a convergence criterion: training to
    convergence fits the training sources more closely, which is not what the held-out rows reward.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, mean, scale = _standardised(features, feature, l2)
    model = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=iterations, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # float32: half the time of float64 on this machine, and half the registry's bytes
        model.fit(x.astype(np.float32), labels, sample_weight=sample_weight)
    (w1, w2), (b1, b2) = model.coefs_, model.intercepts_
    return MlpProbe(feature, l2, mean, scale, w1.copy(), b1.copy(), w2[:, 0].copy(), float(b2[0]))


class HeadConfig(Protocol):
    """What `fit_head` reads of a training recipe (`ml.train_clip.ClipTrainConfig` is one)."""

    feature: str
    l2: bool
    head: str
    c: float
    hidden: int
    alpha: float
    iterations: int
    members: int
    head_seed: int


class HeadKind(NamedTuple):
    load: Callable[[dict[str, np.ndarray], str, bool], Probe]
    fit: Callable[[np.ndarray, np.ndarray, HeadConfig, int, np.ndarray | None], Probe]
    seeded: bool  # whether the fit depends on a seed (an ensemble of a seed-free head is one head)


HEADS: dict[str, HeadKind] = {
    "linear": HeadKind(
        LinearProbe.from_arrays,
        lambda x, y, cfg, seed, w: fit_probe(x, y, cfg.feature, cfg.l2, cfg.c, w),
        seeded=False,
    ),
    "mlp": HeadKind(
        MlpProbe.from_arrays,
        lambda x, y, cfg, seed, w: fit_mlp_probe(
            x, y, cfg.feature, cfg.l2, cfg.hidden, cfg.alpha, cfg.iterations, seed, w
        ),
        seeded=True,
    ),
}


def head_kind(head: str) -> HeadKind:
    if head not in HEADS:
        raise ValueError(f"unknown probe head {head!r}; known: {sorted(HEADS)}")
    return HEADS[head]


def fit_head(
    features: np.ndarray, labels: np.ndarray, cfg: HeadConfig, sample_weight: np.ndarray | None = None
) -> Probe:
    """The one place a recipe's head is fitted: `cfg.members` heads of kind `cfg.head` (seeds
    `cfg.head_seed` on), one probe when `members` is 1 or the head does not depend on a seed."""
    kind = head_kind(cfg.head)
    fit_one, seed = kind.fit, cfg.head_seed
    if cfg.members == 1 or not kind.seeded:
        return fit_one(features, labels, cfg, seed, sample_weight)
    return EnsembleProbe(
        [fit_one(features, labels, cfg, seed + i, sample_weight) for i in range(cfg.members)]
    )


def member_logits(probe: Probe, features: np.ndarray) -> np.ndarray:
    """Each head's logits, one row per head (a single head gives one row): how far the heads of an
    ensemble disagree is a sign the input lies where training did not pin the boundary down."""
    if isinstance(probe, EnsembleProbe):
        return np.stack([m.logits(features) for m in probe.members])
    return np.asarray(probe.logits(features))[None]


def member_count(probe: Probe) -> int:
    """How many heads a probe averages: what its card's `members` says, so the arrays load back."""
    return len(probe.members) if isinstance(probe, EnsembleProbe) else 1
