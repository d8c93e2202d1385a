from __future__ import annotations

import numpy as np
import pytest

from ml.metrics import (
    accuracy_at_coverage,
    classification_report,
    confidently_wrong_share,
    ece_floor,
    expected_calibration_error,
    fit_temperature,
    risk_coverage,
    selective_report,
    verdict_confidence,
    write_roc_png,
)


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


def test_risk_coverage_keeps_the_most_confident_first():
    labels = np.array([1, 0, 1, 0])
    probs = np.array([0.95, 0.1, 0.45, 0.6])  # the two near the threshold are wrong
    confidence = np.abs(probs - 0.5)
    coverage, accuracy = risk_coverage(labels, probs, confidence)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert accuracy.tolist() == [1.0, 1.0, pytest.approx(2 / 3), 0.5]
    assert accuracy_at_coverage(labels, probs, confidence, 0.5) == 1.0
    assert accuracy_at_coverage(labels, probs, confidence, 1.0) == 0.5


def test_uncertain_items_are_abstained_first_and_not_counted_as_confidently_wrong():
    labels = np.array([1, 1, 0, 0, 1])
    probs = np.array([0.99, 0.9, 0.05, 0.97, 0.2])  # item 3 confidently wrong; item 4 wrong but doubted
    abstained = np.array([False, False, False, False, True])
    confidence = verdict_confidence(probs, 0.5, abstained)
    assert int(np.argmin(confidence)) == 4
    assert confidently_wrong_share(labels, probs, abstained) == pytest.approx(1 / 5)
    report = selective_report(labels, probs, abstained)
    assert report["decided_share"] == pytest.approx(0.8)
    assert report["decided_accuracy"] == pytest.approx(3 / 4)
    assert report["accuracy_at_80"] == pytest.approx(3 / 4)
    assert report["risk_coverage"]["1.0"] == pytest.approx(3 / 5)


def test_map_mass_share_and_pointing_game():
    from ml.metrics import map_mass_share, map_peak_inside

    region = np.zeros((10, 10), np.float32)
    region[:5] = 1
    uniform = np.ones((10, 10))
    assert map_mass_share(uniform, region) == 0.5  # a map that ignores the region gets its area
    peaked = np.zeros((10, 10))
    peaked[2, 3], peaked[8, 8] = 3.0, 1.0
    assert map_mass_share(peaked, region) == 0.75 and map_peak_inside(peaked, region)
    assert not map_peak_inside(peaked, 1 - region)
    assert map_mass_share(np.zeros((10, 10)), region) == 0.0


def test_the_ece_floor_is_what_a_perfectly_calibrated_model_shows_on_that_many_items():
    rng = np.random.default_rng(3)
    probs = rng.random(37)
    floor = ece_floor(probs)
    # Labels drawn from the probabilities: calibrated by construction, yet the ECE of 37 items is large.
    measured = [expected_calibration_error(rng.random(37) < probs, probs) for _ in range(400)]
    assert abs(floor - np.mean(measured)) < 0.02
    assert floor > 0.08
    # It falls with the number of items (about 1/sqrt(n)), and is the same on every call.
    many = rng.random(3700)
    assert ece_floor(many) < floor / 5
    assert ece_floor(probs) == floor
    assert np.isnan(ece_floor(np.array([])))


def test_the_report_carries_the_ece_floor_beside_the_ece():
    probs = np.array([0.1, 0.2, 0.8, 0.9])
    report = classification_report(np.array([0, 0, 1, 1]), probs)
    assert report["ece_floor"] == ece_floor(probs)
