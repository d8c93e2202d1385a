"""One tiny epoch of each trainer on generated faces, end to end: data folder -> crop cache -> model ->
calibration -> card and weights in a temporary registry, loaded back through ml.registry.

The toy "forgery" is the face painted in BGR, which any of the models can learn in a few steps, so a
trainer that stops learning (a detached loss, a mislabelled batch, an optimiser that never steps) fails.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.models import CompactCNN, TrackLSTM
from ml.registry import check_weights, load_image_model, load_video_model
from ml.train import (
    ImageTrainConfig,
    Schedule,
    VideoTrainConfig,
    _track_batches,
    evaluate,
    fit,
    train_image,
    train_one_epoch,
    train_video,
)
from tests.ml.media_factory import write_toy_clips, write_toy_photos

FRAMES = 32  # what the image trainer samples from clips (video_data), so both trainers share one crop cache


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared machine: a second intra-op thread waits on a busy core far longer than it
    saves (measured: 48 s instead of 6 s for the two loop tests beside a CLIP embedding job)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    write_toy_photos(root / "images", {"train": 6, "val": 3})
    write_toy_clips(root / "videos", {"train": 3, "val": 2})
    return root


def _quiet(_: str) -> None:
    pass


def test_one_tiny_epoch_of_each_trainer_writes_cards_whose_weights_load_back(toy_data, tmp_path):
    registry, cache = tmp_path / "registry", tmp_path / "cache"
    image_cfg = ImageTrainConfig(
        arch="compact_cnn",
        freeze="none",
        epochs=1,
        batch_size=4,
        name="toy-image",
        version="1",
        video_data=str(toy_data / "videos"),  # the photo model also learns from the clips' frames
        video_frame_step=8,  # one frame a clip: the path is exercised, the epoch stays short
    )
    image = train_image(toy_data / "images", registry, image_cfg, cache, device="cpu", log=_quiet)
    video_cfg = VideoTrainConfig(
        epochs=1, batch_size=2, hidden=16, sbi_copies=1, name="toy-video", version="1"
    )
    video = train_video(
        toy_data / "videos", registry, video_cfg, cache, FRAMES, device="cpu", log=_quiet, registry=registry
    )

    assert json.loads((registry / "defaults.json").read_text()) == {
        "image": "toy-image@1",
        "video": "toy-video@1",
    }
    assert check_weights(registry) == []  # files present, SHA-256 as the cards say
    (epoch,) = image.training["history"]
    assert math.isfinite(epoch["train_loss"]) and math.isfinite(epoch["val_loss"])
    assert image.training["train_faces"] == 12 + 6  # the photos' faces and a frame of each clip
    assert video.feature_model == "toy-image@1" and video.training["train_tracks"] == 9  # + 3 self-blended
    for card in (image, video):
        saved = json.loads((registry / f"{card.stem}.json").read_text())
        assert saved["sha256"] == card.sha256 and saved["training"]["best_epoch"] == 0
        assert card.temperature > 0 and math.isfinite(saved["metrics"]["val"]["log_loss"])

    photo_model, _ = load_image_model("toy-image@1", registry)
    track_model, _ = load_video_model("toy-video@1", registry)
    faces = torch.zeros(2, 3, CompactCNN.input_size, CompactCNN.input_size)
    with torch.inference_mode():
        assert torch.isfinite(photo_model(faces)).all()
        assert torch.isfinite(track_model(photo_model.embed(faces)[None], torch.tensor([2]))).all()


def _separable_faces(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Small noise images, the fakes brighter in the red channel."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 2).float()
    x = torch.randn(n, 3, 32, 32, generator=g)
    x[:, 0] += y[:, None, None]
    return x, y


def test_train_one_epoch_and_evaluate_learn_a_separable_photo_set_with_a_frozen_block():
    torch.manual_seed(0)
    model = CompactCNN(widths=(8, 16, 16))
    frozen, trained = model.features[0], model.features[1]
    frozen.requires_grad_(False)
    frozen_stats, trained_stats = frozen.body[1].running_mean.clone(), trained.body[1].running_mean.clone()
    x, y = _separable_faces(32, seed=0)
    batches = [(x[s : s + 8], y[s : s + 8]) for s in range(0, 32, 8)]
    val = [_separable_faces(16, seed=1)]
    cpu = torch.device("cpu")
    before = evaluate(model, val, cpu)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = [train_one_epoch(model, batches, optimiser, torch.nn.BCEWithLogitsLoss(), cpu) for _ in range(6)]
    after = evaluate(model, val, cpu)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert after["loss"] < before["loss"] and after["roc_auc"] == 1.0
    assert after["logits"].shape == (16,) and list(after["labels"]) == [0, 1] * 8
    # a frozen block keeps its batch statistics (BatchNorm in eval mode); a trained one updates them
    assert torch.equal(frozen.body[1].running_mean, frozen_stats)
    assert not torch.equal(trained.body[1].running_mean, trained_stats)


def _toy_tracks(rng: np.random.Generator) -> tuple[list[torch.Tensor], torch.Tensor]:
    """16 embedding sequences of 3-8 steps, the fakes' features shifted by 2."""
    labels = torch.tensor([0.0, 1.0] * 8)
    return [torch.randn(int(rng.integers(3, 9)), 8) + 2 * label for label in labels], labels


def _fit_tracks(val: list, epochs: int, patience: int, rng: np.random.Generator, seqs, labels):
    model = TrackLSTM(feature_dim=8, hidden=8, layers=1, dropout=0.0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser)
    before = evaluate(model, val, torch.device("cpu"))["loss"]
    best_epoch, history = fit(
        model,
        lambda _: _track_batches(seqs, labels, 4, rng),
        val,
        optimiser,
        scheduler,
        torch.nn.BCEWithLogitsLoss(),
        torch.device("cpu"),
        Schedule(epochs, patience),
        _quiet,
    )
    return model, before, best_epoch, history


def test_fit_learns_separable_tracks():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    seqs, labels = _toy_tracks(rng)
    val = [(_pad_tracks(seqs[:8]), labels[:8])]
    _, before, best_epoch, history = _fit_tracks(val, 15, 3, rng, seqs, labels)
    best = min(history, key=lambda h: h["val_loss"])
    assert best_epoch == best["epoch"] and best["val_loss"] < before / 2 and best["val_auc"] == 1.0


def test_fit_stops_early_and_restores_the_best_epoch():
    """Validation labels the other way round: the more it learns, the worse validation gets."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    seqs, labels = _toy_tracks(rng)
    val = [(_pad_tracks(seqs[:8]), 1 - labels[:8])]
    model, _, best_epoch, history = _fit_tracks(val, 15, 2, rng, seqs, labels)
    assert best_epoch == 0 and len(history) == 3  # no better epoch in the two after the first
    assert history[-1]["val_loss"] > history[0]["val_loss"]
    assert evaluate(model, val, torch.device("cpu"))["loss"] == pytest.approx(history[0]["val_loss"])


def _pad_tracks(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True), torch.tensor([len(s) for s in seqs])
