"""ml.models: every image architecture, built from its BackboneSpec (or the compact CNN's class)."""

from __future__ import annotations

import pytest
import torch

from ml.backbones import BACKBONES
from ml.models import IMAGE_ARCHS, build_image_model, input_size_for


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_every_image_arch_builds_and_scores_a_crop_of_its_input_size(arch):
    model = build_image_model(arch, pretrained=False).eval()
    size = input_size_for(arch)
    with torch.inference_mode():
        embedding = model.embed(torch.zeros(2, 3, size, size))
        logits = model.classify_embedding(embedding)
    assert embedding.shape == (2, model.feature_dim) and logits.shape == (2,)
    if arch in BACKBONES:
        assert (size, model.feature_dim) == (BACKBONES[arch].input_size, BACKBONES[arch].feature_dim)


def test_an_unknown_arch_is_refused_by_name():
    for ask in (build_image_model, input_size_for):
        with pytest.raises(ValueError, match="unknown image architecture 'resnet9000'"):
            ask("resnet9000")
