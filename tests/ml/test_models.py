"""ml.models: every image architecture, built from its BackboneSpec (or the compact CNN's class), and the
track LSTM's handling of padding."""

from __future__ import annotations

import pytest
import torch

from ml.backbones import BACKBONES
from ml.models import IMAGE_ARCHS, TrackLSTM, build_image_model, input_size_for


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


def test_the_track_lstm_scores_a_padded_track_as_it_scores_the_track_alone():
    """Training pads a batch's tracks to the longest and passes their lengths (ml.train._pad); the pipeline
    scores each track alone, unpadded (ml.pipeline._score_tracks_lstm). Both have to give one score."""
    torch.manual_seed(0)
    model = TrackLSTM(feature_dim=8, hidden=16, layers=2).eval()  # eval: the dropout is off
    short, long = torch.randn(5, 8), torch.randn(9, 8)
    padded = torch.nn.utils.rnn.pad_sequence([short, long], batch_first=True)
    with torch.inference_mode():
        alone = torch.cat([model(short[None]), model(long[None])])
        with_lengths = model(padded, torch.tensor([5, 9]))
        without_lengths = model(padded)
    torch.testing.assert_close(with_lengths, alone)
    # The four zero steps after the short track do move the LSTM: only its length keeps them out.
    assert not torch.allclose(without_lengths[0], alone[0], atol=1e-4)
