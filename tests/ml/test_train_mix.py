"""Fitting the photo mix (ml.train_mix, `python -m ml mix`) end to end on generated photos: data folder ->
crop cache -> both members' logits (the CLIP features embedded and stored) -> a temperature fitted on val
-> a mix card that the registry and the analyser take as the photo decider."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ml.clip_encoder import fp32_status
from ml.metrics import sigmoid
from ml.registry import default_refs, mix_problems
from ml.train_mix import MixMembers, fit_mix_card, split_logits
from tests.ml.media_factory import write_toy_photos

pytestmark = pytest.mark.skipif(
    fp32_status() is not None, reason="CLIP tower not prepared (python -m ml prepare)"
)


def _nll(labels: np.ndarray, logits: np.ndarray) -> float:
    p = np.clip(sigmoid(logits), 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def test_ml_mix_fits_its_temperature_on_val_and_becomes_the_default_photo_decider(clip_registry, tmp_path):
    from ml.pipeline import Analyser

    data, cache, registry = tmp_path / "data", tmp_path / "cache", tmp_path / "registry"
    write_toy_photos(data / "images", {"val": 3, "test": 3})
    shutil.copytree(clip_registry, registry)

    card = fit_mix_card(data, cache, 0.5, "1", registry=registry, log=lambda _: None)

    refs = default_refs(registry)
    assert refs["mix"] == card.ref == "photo-mix@1" and mix_problems(card, refs) == []
    assert card.mix == {"clip": refs["clip"], "image": refs["image"], "clip_weight": 0.5}
    assert card.metrics["val_photos"]["n"] == card.metrics["test_photos"]["n"] == 6
    # the temperature is the val log-loss minimum of the mixed logit, read from the same cached features
    labels, clip, cnn = split_logits(MixMembers.load_defaults(registry), data, cache, "val")
    mixed = 0.5 * clip + 0.5 * cnn
    best = _nll(labels, mixed / card.temperature)
    assert all(best <= _nll(labels, mixed / t) for t in (card.temperature * 2, card.temperature / 2, 1.0))
    assert Analyser(registry=registry).mix is not None
