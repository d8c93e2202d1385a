"""How well the CLIP recipe's calibration can be measured on the val split, and which calibration to use.

    python -m benchmarks.calibration            # needs ../shared/data and the cached CLIP features

For val photos and val clips (a clip's score is its mean frame logit, as in the product) it prints the ECE
after temperature scaling fitted on that split (what the card reports), the ECE a perfectly calibrated
model with the same probabilities would show on that many items (`ml.metrics.calibrated_eces`, mean and
5-95 % over 2000 label draws), and the out-of-sample ECE of two calibrations, each fitted on every item
but one and applied to that one: the temperature (what ships) and Platt scaling (a scale and a bias).
The probe is the recipe's (`ml/configs/clip_default.json`), fitted on the cached training features.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmarks.loso import CONFIGS, clip_features
from ml.metrics import calibrated_eces, expected_calibration_error, fit_temperature, sigmoid
from ml.train_clip import ClipTrainConfig, fit, track_logits

Calibrator = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def temperature(logits: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    t = fit_temperature(logits, labels)
    return lambda z: sigmoid(z / t)


def platt(logits: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    model = LogisticRegression(C=1e4).fit(logits[:, None], labels)
    return lambda z: model.predict_proba(np.asarray(z, float)[:, None])[:, 1]


def leave_one_out_ece(logits: np.ndarray, labels: np.ndarray, calibrator: Calibrator) -> float:
    probs = np.empty(len(labels))
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        probs[i] = calibrator(logits[others], labels[others])(logits[i : i + 1])[0]
    return expected_calibration_error(labels, probs)


def report(name: str, logits: np.ndarray, labels: np.ndarray) -> str:
    shipped = temperature(logits, labels)(logits)
    perfect = calibrated_eces(shipped, draws=2000)
    low, high = np.percentile(perfect, [5, 95])
    return (
        f"{name:12s} n={len(labels):4d} ece={expected_calibration_error(labels, shipped):.3f} "
        f"perfect_model_ece={perfect.mean():.3f} ({low:.3f}-{high:.3f}) "
        f"loo_ece_temperature={leave_one_out_ece(logits, labels, temperature):.3f} "
        f"loo_ece_platt={leave_one_out_ece(logits, labels, platt):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"), help="face-crop cache, shared")
    parser.add_argument("--config", type=Path, default=CONFIGS / "clip_default.json")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    cfg = ClipTrainConfig.from_file(args.config)
    features = clip_features(args.data, args.cache, cfg, splits=("train", "val"))
    probe = fit(features, cfg)
    photos = features["val_photos"]
    print(report("val photos", probe.logits(photos.x), photos.y))
    print(report("val clips", *track_logits(probe, features["val_frames"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
