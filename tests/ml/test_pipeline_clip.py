"""The CLIP path of the pipeline: a registry whose default includes a CLIP probe decides with it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ml.clip_encoder import CLS_DIM, fp32_status
from ml.registry import ModelCard, default_refs, find_card

pytestmark = pytest.mark.skipif(
    fp32_status() is not None, reason="CLIP tower not prepared (python -m ml prepare)"
)


@pytest.fixture(scope="module")
def analyser(clip_registry):
    from ml.pipeline import Analyser

    return Analyser(registry=clip_registry)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_photo_is_decided_by_the_clip_probe_and_its_heatmap_is_the_cnn_grad_cam(analyser, face_jpg, tmp_path):
    import cv2

    from ml.gradcam import grad_cam, overlay

    result = analyser.analyse(face_jpg, artifacts_dir=tmp_path)
    assert result["model"] == "clip-test@1"
    (face,) = result["faces"]
    crop = _crop(analyser, face_jpg, face["box"])
    crop_logit = analyser.clip.score([crop]).logits[0]
    assert face["fake_probability"] == pytest.approx(1 / (1 + np.exp(-crop_logit / 1.7)), abs=1e-3)
    assert "clip" in analyser.timings and "cnn" not in analyser.timings  # the CNN did not score it
    # the map is the one benchmarks.heatmap found to point at edited pixels: Grad-CAM of the CNN
    expected = overlay(crop, grad_cam(analyser.image_model, crop, analyser.image_card.input_size))
    written = cv2.cvtColor(cv2.imread(str(tmp_path / face["heatmap"])), cv2.COLOR_BGR2RGB)
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def _crop(analyser, path, box):
    from ml.faces import FaceBox, crop_face
    from ml.media import load_image

    x, y, w, h = box
    return crop_face(load_image(path), FaceBox(x, y, w, h, 1.0), analyser.image_card.input_size)


def test_video_score_is_the_calibrated_mean_of_the_frames_the_chart_shows(analyser, face_video):
    result = analyser.analyse(face_video)
    assert result["model"] == "clip-test@1"
    (face,) = result["faces"]
    scored = face["scored_frames"]
    assert 2 <= len(scored) <= 8 and len(face["frame_probabilities"]) == len(scored)
    assert [p["frame"] for p in result["timeline"]] == scored
    # The points are calibrated as the clip score is (the video temperature, not the photo one), so the
    # score is the calibrated mean of the points and lies among them.
    frame_logits = [_logit(p) * 0.8 for p in face["frame_probabilities"]]
    expected = 1 / (1 + np.exp(-np.mean(frame_logits) / 0.8))
    assert face["fake_probability"] == pytest.approx(expected, abs=2e-3)
    probs = face["frame_probabilities"]
    assert min(probs) - 1e-4 <= face["fake_probability"] <= max(probs) + 1e-4
    assert result["fake_probability"] == face["fake_probability"]
    assert result["video_score"] == "frame_mean"


def test_no_clip_falls_back_to_the_cnn_and_lstm(clip_registry, face_video):
    from ml.pipeline import Analyser

    result = Analyser(registry=clip_registry, use_clip=False).analyse(face_video)
    assert result["model"].startswith("video-lstm")
    assert len(result["faces"][0]["frame_probabilities"]) == len(result["faces"][0]["frames"])
    assert result["video_score"] == "sequence_model"


def test_a_face_unlike_every_reference_face_is_uncertain_and_one_like_them_is_not(
    clip_registry, face_jpg, tmp_path
):
    from ml.pipeline import Analyser
    from ml.registry import save_reference
    from ml.uncertainty import unit_rows

    registry = tmp_path / "registry"
    shutil.copytree(clip_registry, registry)
    card = find_card("clip-test@1", registry)
    card.embedding_stats = {
        "mean": [0.0] * CLS_DIM,
        "std": [1.0] * CLS_DIM,
        "max_distance": 1e6,
        "percentile": 99,
        "faces": 50,
        "neighbours": {"k": 10, "max_distance": 0.2, "quantile": 0.95, "faces": 50},
    }  # the mean and spread see nothing; only the neighbours can speak
    elsewhere = unit_rows(np.random.default_rng(3).normal(0, 1, (50, CLS_DIM)))
    save_reference(elsewhere.astype(np.float16), card, registry)
    analyser = Analyser(registry=registry)
    result = analyser.analyse(face_jpg)
    assert result["verdict"] == "uncertain"
    assert [r["code"] for r in result["uncertain_reasons"]] == ["out_of_distribution"]
    (face,) = result["faces"]
    own = analyser.clip.score([_crop(analyser, face_jpg, face["box"])]).features
    alike = unit_rows(own + 0.01 * np.random.default_rng(4).normal(0, 1, (50, CLS_DIM)))
    save_reference(alike.astype(np.float16), card, registry)
    again = Analyser(registry=registry).analyse(face_jpg)
    assert "out_of_distribution" not in [r["code"] for r in again["uncertain_reasons"]]


def _with_mix(clip_registry, directory, clip_ref: str = "clip-test@1", clip_weight: float = 0.25):
    """A copy of `clip_registry` whose default photo decider is a mix of the probe and the CNN."""
    from ml.photo_mix import MIX_ARCH
    from ml.registry import save_mix_card

    shutil.copytree(clip_registry, directory)
    image_ref = default_refs(directory)["image"]
    card = ModelCard(
        name="mix-test", version="1", task="mix", arch=MIX_ARCH, input_size=224, temperature=1.3,
        mix={"clip": clip_ref, "image": image_ref, "clip_weight": clip_weight},
    )  # fmt: skip
    save_mix_card(card, directory, set_default=True)
    return directory


def test_with_a_mix_card_a_photo_is_decided_by_the_probe_and_the_cnn_together(
    clip_registry, face_jpg, tmp_path
):
    import torch

    from ml.pipeline import Analyser

    analyser = Analyser(registry=_with_mix(clip_registry, tmp_path / "registry"))
    result = analyser.analyse(face_jpg)
    assert result["model"] == "mix-test@1"
    assert "clip" in analyser.timings and "cnn" in analyser.timings
    (face,) = result["faces"]
    crop = _crop(analyser, face_jpg, face["box"])
    clip = analyser.clip.score([crop]).logits[0] / 1.7
    views = np.stack([crop, np.ascontiguousarray(crop[:, ::-1])])
    with torch.inference_mode():
        emb = analyser._embed(list(views))
        cnn_logit = float(analyser.image_model.classify_embedding(emb).float().mean())
    cnn = cnn_logit / analyser.image_card.temperature
    expected = 1 / (1 + np.exp(-(0.25 * clip + 0.75 * cnn) / 1.3))
    assert face["fake_probability"] == pytest.approx(expected, abs=1e-3)
    # neither member's own probability: the mix moved it
    assert face["fake_probability"] != pytest.approx(1 / (1 + np.exp(-clip)), abs=1e-3)
    # each member's own calibrated reading is in the result (the page shows it) and goes to the verdict rule
    # (ml.uncertainty.members_disagree)
    members = face["member_probabilities"]
    assert members["CLIP probe"] == pytest.approx(1 / (1 + np.exp(-clip)), abs=1e-3)
    assert members["fine-tuned CNN"] == pytest.approx(1 / (1 + np.exp(-cnn)), abs=1e-3)


def test_videos_stay_with_the_probe_when_a_mix_decides_photos(clip_registry, face_video, tmp_path):
    from ml.pipeline import Analyser

    result = Analyser(registry=_with_mix(clip_registry, tmp_path / "registry")).analyse(face_video)
    assert result["model"] == "clip-test@1"


def test_a_mix_fitted_on_other_models_is_not_used_and_the_check_says_why(clip_registry, face_jpg, tmp_path):
    from ml.pipeline import Analyser
    from ml.registry import check_weights, deciding_refs

    registry = _with_mix(clip_registry, tmp_path / "registry", clip_ref="clip-other@1")
    analyser = Analyser(registry=registry)
    assert analyser.mix is None and analyser.analyse(face_jpg)["model"] == "clip-test@1"
    assert any("mix-test@1 mixes clip-other@1" in p for p in check_weights(registry))
    assert deciding_refs(registry)["image"] == "clip-test@1"


def test_the_deciding_models_by_kind_follow_the_analysers_rule(clip_registry, tmp_path):
    from ml.registry import deciding_refs

    assert deciding_refs(clip_registry) == {"image": "clip-test@1", "video": "clip-test@1"}
    mixed = _with_mix(clip_registry, tmp_path / "registry")
    assert deciding_refs(mixed) == {"image": "mix-test@1", "video": "clip-test@1"}
    refs = default_refs(clip_registry)
    without_clip = tmp_path / "cnn"
    shutil.copytree(clip_registry, without_clip)
    (without_clip / "defaults.json").write_text(json.dumps({t: refs[t] for t in ("image", "video")}))
    assert deciding_refs(without_clip) == {"image": refs["image"], "video": refs["video"]}
