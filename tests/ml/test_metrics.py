from __future__ import annotations

import numpy as np
import pytest

from ml.metrics import classification_report, expected_calibration_error, fit_temperature, write_roc_png
from ml.verdict import VerdictRule


def test_report_on_a_known_confusion():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.7, 0.8, 0.9, 0.4])
    r = classification_report(labels, probs)
    assert r["confusion"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["roc_auc"] == pytest.approx(8 / 9)


def test_temperature_scaling_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 20_000)
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    overconfident = true_logits * 3
    t = fit_temperature(overconfident, labels)
    assert t == pytest.approx(3, rel=0.1)
    before = expected_calibration_error(labels, 1 / (1 + np.exp(-overconfident)))
    after = expected_calibration_error(labels, 1 / (1 + np.exp(-overconfident / t)))
    assert after < before / 3 and after < 0.02


def test_roc_png_is_written(tmp_path):
    write_roc_png(np.array([0, 1, 0, 1]), np.array([0.2, 0.8, 0.4, 0.6]), tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 1000


def test_verdict_rule():
    rule = VerdictRule(threshold=0.5, uncertain_low=0.35, uncertain_high=0.65)
    assert rule.verdict(None) == "no_face"
    assert rule.verdict(0.49) == "real" and rule.verdict(0.5) == "fake"
    assert rule.is_uncertain(0.4) and not rule.is_uncertain(0.9) and not rule.is_uncertain(None)
