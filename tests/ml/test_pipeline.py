from __future__ import annotations

import pytest

from ml.errors import MediaError
from ml.pipeline import analyse, get_analyser


def test_image_result_contract_and_artifacts(face_jpg, tmp_path):
    result = analyse(face_jpg, artifacts_dir=tmp_path)
    assert result["kind"] == "image"
    assert result["verdict"] in ("real", "fake")
    assert 0.0 <= result["fake_probability"] <= 1.0
    assert result["model"] == get_analyser().image_card.ref
    (face,) = result["faces"]
    assert face["box"][0] == pytest.approx(177, abs=15) and face["box"][1] == pytest.approx(56, abs=20)
    assert face["fake_probability"] == result["fake_probability"]
    assert (tmp_path / face["thumbnail"]).stat().st_size > 1000
    assert (tmp_path / face["heatmap"]).stat().st_size > 1000
    assert result["timeline"] == [] and result["seconds"] > 0


def test_predictions_are_deterministic(face_jpg, face_video):
    for path in (face_jpg, face_video):
        a, b = analyse(path), analyse(path)
        assert a["fake_probability"] == b["fake_probability"]
        assert [f["fake_probability"] for f in a["faces"]] == [f["fake_probability"] for f in b["faces"]]


def test_no_face_photo(noface_png):
    result = analyse(noface_png)
    assert result["verdict"] == "no_face"
    assert result["fake_probability"] is None and result["faces"] == []


def test_video_with_two_people_scores_each_track(two_face_video, tmp_path):
    stages = []
    result = analyse(two_face_video, artifacts_dir=tmp_path, progress=lambda s, f: stages.append((s, f)))
    assert result["kind"] == "video" and result["model"] == get_analyser().video_card.ref
    assert len(result["faces"]) == 2
    assert {f["track"] for f in result["faces"]} == {0, 1}
    left, right = sorted(result["faces"], key=lambda f: f["box"][0])
    assert left["box"][0] + left["box"][2] < right["box"][0]  # two different people, not one twice
    assert result["fake_probability"] == max(f["fake_probability"] for f in result["faces"])
    assert len(result["timeline"]) == 32
    assert [p["frame"] for p in result["timeline"]] == sorted(p["frame"] for p in result["timeline"])
    assert all(0 <= p["fake_probability"] <= 1 for p in result["timeline"])
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all((tmp_path / f["thumbnail"]).exists() for f in result["faces"])


def test_corrupt_inputs_raise_media_error(corrupt_files):
    for path in corrupt_files.values():
        with pytest.raises(MediaError):
            analyse(path)
