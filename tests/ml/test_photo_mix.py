"""The photo mix's arithmetic (ml.photo_mix): what the pipeline and benchmarks.ensemble both compute."""

from __future__ import annotations

import numpy as np
import pytest

from ml.photo_mix import PhotoMix, mixed_logit
from ml.registry import ModelCard, mix_problems


def test_the_weight_is_the_clip_share():
    clip, cnn = np.array([1.0, 3.0]), np.array([-1.0, 1.0])
    assert np.allclose(mixed_logit(clip, cnn, 1.0), clip) and np.allclose(mixed_logit(clip, cnn, 0.0), cnn)
    assert np.allclose(mixed_logit(clip, cnn, 0.75), [0.5, 2.5])


def test_the_mix_is_calibrated_by_its_own_temperature():
    mix = PhotoMix(clip_weight=0.5, temperature=2.0)
    p = mix.probabilities(np.array([2.0, -4.0]), np.array([0.0, 0.0]))
    assert p == pytest.approx(1 / (1 + np.exp(-np.array([0.5, -1.0]))))
    # a cooler temperature makes the same evidence surer, never flips it
    sharper = PhotoMix(0.5, 0.5).probabilities(np.array([2.0, -4.0]), np.array([0.0, 0.0]))
    assert sharper[0] > p[0] > 0.5 > p[1] > sharper[1]


def _card(name: str, task: str, **fields) -> ModelCard:
    return ModelCard(name=name, version="1", task=task, arch="x", input_size=224, **fields)


def test_a_mix_applies_only_to_the_two_models_it_was_fitted_on():
    mix = _card("m", "mix", mix={"clip": "c@1", "image": "i@1", "clip_weight": 0.5}, temperature=1.2)
    assert mix_problems(mix, {"clip": "c@1", "image": "i@1"}) == []
    (problem,) = mix_problems(mix, {"clip": "c@1", "image": "j@1"})
    assert "i@1" in problem and "j@1" in problem
    assert PhotoMix.of_card(mix) == PhotoMix(0.5, 1.2)
