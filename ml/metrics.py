"""The seeds' evaluation metrics, plus calibration error, computed from labels and fake probabilities."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score, roc_curve


def classification_report(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, precision, recall, F1, log-loss, ROC AUC, ECE and the confusion matrix."""
    labels = np.asarray(labels).astype(int)
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    pred = (probs >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both = len(set(labels.tolist())) == 2
    return {
        "n": int(len(labels)),
        "accuracy": float((tp + tn) / len(labels)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "log_loss": float(log_loss(labels, probs, labels=[0, 1])),
        "roc_auc": float(roc_auc_score(labels, probs)) if both else float("nan"),
        "ece": expected_calibration_error(labels, probs),
        "ece_floor": ece_floor(probs),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "threshold": float(threshold),
    }


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width probability bins, weighted by bin size."""
    labels = np.asarray(labels).astype(float)
    probs = np.asarray(probs, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (probs >= lo) & ((probs < hi) if hi < 1 else (probs <= hi))
        if in_bin.any():
            ece += in_bin.mean() * abs(labels[in_bin].mean() - probs[in_bin].mean())
    return float(ece)


def ece_floor(probs: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these probabilities would show on this many items: the
    mean of `calibrated_eces`.

    ECE on few items is mostly sampling noise: on 37 clips a perfect model averages about 0.12, so a
    measured ECE below this floor says calibration is as good as the split can show, not that it is bad."""
    return float(calibrated_eces(probs, bins, draws, seed).mean()) if np.size(probs) else float("nan")


def calibrated_eces(probs: np.ndarray, bins: int = 10, draws: int = 1000, seed: int = 0) -> np.ndarray:
    """The ECE of each of `draws` label sets drawn from the probabilities themselves (labels a perfectly
    calibrated model would meet), binned as expected_calibration_error bins."""
    probs = np.asarray(probs, dtype=float)
    labels = np.random.default_rng(seed).random((draws, probs.size)) < probs
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, bins - 1)
    eces = np.zeros(draws)
    for b in np.unique(which):
        in_bin = which == b
        eces += in_bin.mean() * np.abs(labels[:, in_bin].mean(axis=1) - probs[in_bin].mean())
    return eces


def verdict_confidence(probs: np.ndarray, threshold: float, abstained: np.ndarray) -> np.ndarray:
    """How sure each verdict is, for ranking: the distance of the score from the threshold, with every
    abstained (UNCERTAIN) item ranked below every decided one."""
    probs = np.asarray(probs, dtype=float)
    return np.abs(probs - threshold) - np.asarray(abstained, dtype=float)


def risk_coverage(
    labels: np.ndarray, probs: np.ndarray, confidence: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, accuracy): keeping the k most confident items for k = 1..n, the share kept and the
    accuracy on them (El-Yaniv and Wiener, 2010). Ties keep their input order."""
    labels = np.asarray(labels).astype(int)
    correct = (np.asarray(probs, dtype=float) >= threshold).astype(int) == labels
    order = np.argsort(-np.asarray(confidence, dtype=float), kind="stable")
    kept = np.arange(1, len(labels) + 1)
    return kept / len(labels), np.cumsum(correct[order]) / kept


def accuracy_at_coverage(
    labels: np.ndarray, probs: np.ndarray, confidence: np.ndarray, coverage: float, threshold: float = 0.5
) -> float:
    """Accuracy on the most confident `coverage` share of the items (at least one item)."""
    covered, accuracy = risk_coverage(labels, probs, confidence, threshold)
    k = max(1, int(np.ceil(coverage * len(covered) - 1e-9)))
    return float(accuracy[k - 1])


def confidently_wrong_share(
    labels: np.ndarray, probs: np.ndarray, abstained: np.ndarray, threshold: float = 0.5
) -> float:
    """Share of all items whose verdict is wrong although it was not UNCERTAIN."""
    labels = np.asarray(labels).astype(int)
    wrong = (np.asarray(probs, dtype=float) >= threshold).astype(int) != labels
    return float(np.mean(wrong & ~np.asarray(abstained, dtype=bool))) if len(labels) else 0.0


def selective_report(
    labels: np.ndarray, probs: np.ndarray, abstained: np.ndarray, threshold: float = 0.5
) -> dict:
    """What the UNCERTAIN verdict buys: accuracy on the decided items, accuracy at 80 % coverage, the
    share of confidently wrong verdicts and the risk-coverage curve at every tenth."""
    labels, probs = np.asarray(labels).astype(int), np.asarray(probs, dtype=float)
    abstained = np.asarray(abstained, dtype=bool)
    confidence = verdict_confidence(probs, threshold, abstained)
    decided = ~abstained
    correct = (probs >= threshold).astype(int) == labels
    levels = [round(c / 10, 1) for c in range(1, 11)]
    return {
        "decided_share": float(decided.mean()) if len(labels) else 0.0,
        "decided_accuracy": float(correct[decided].mean()) if decided.any() else float("nan"),
        "accuracy_at_80": accuracy_at_coverage(labels, probs, confidence, 0.8, threshold),
        "confidently_wrong": confidently_wrong_share(labels, probs, abstained, threshold),
        "risk_coverage": {
            str(c): accuracy_at_coverage(labels, probs, confidence, c, threshold) for c in levels
        },
    }


def map_mass_share(heatmap: np.ndarray, region: np.ndarray) -> float:
    """The share of a heatmap's weight that falls inside a {0, 1} region of the same shape (0 if empty)."""
    total = float(heatmap.sum())
    return float((heatmap * region).sum()) / total if total > 0 else 0.0


def map_peak_inside(heatmap: np.ndarray, region: np.ndarray) -> bool:
    """Whether the heatmap's peak lies inside the region (the pointing game, Zhang et al., 2016)."""
    return bool(region.flat[int(np.argmax(heatmap))] > 0.5)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise, in the logits' own float type."""
    return 1 / (1 + np.exp(-logits))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T minimising validation log-loss of sigmoid(logit / T) (Guo et al., 2017)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)

    def nll(t: float) -> float:
        p = np.clip(sigmoid(logits / t), 1e-7, 1 - 1e-7)
        return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))
    best = min(grid, key=nll)
    # refine around the best grid point
    fine = np.linspace(best * 0.9, best * 1.1, 101)
    return float(min(fine, key=nll))


def write_roc_png(labels: np.ndarray, probs: np.ndarray, path: Path, title: str = "ROC") -> None:
    """A plain ROC curve image (drawn with OpenCV: no plotting stack needed)."""
    fpr, tpr, _ = roc_curve(labels, probs)
    size, pad = 480, 50
    img = np.full((size + 2 * pad, size + 2 * pad, 3), 255, np.uint8)
    cv2.rectangle(img, (pad, pad), (pad + size, pad + size), (0, 0, 0), 1)
    cv2.line(img, (pad, pad + size), (pad + size, pad), (180, 180, 180), 1)
    pts = np.stack([pad + fpr * size, pad + size - tpr * size], axis=1).astype(np.int32)
    cv2.polylines(img, [pts], False, (200, 60, 0), 2)
    auc = roc_auc_score(labels, probs)
    cv2.putText(img, f"{title}  AUC={auc:.3f}", (pad, pad - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    cv2.putText(
        img,
        "false positive rate",
        (pad + size // 2 - 80, pad + size + 35),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
    )
    cv2.putText(img, "TPR", (5, pad + size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
