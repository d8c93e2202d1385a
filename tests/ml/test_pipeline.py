from __future__ import annotations

import pytest

from ml.errors import MediaError
from ml.pipeline import analyse, get_analyser


def test_image_result_contract_and_artifacts(face_jpg, tmp_path):
    result = analyse(face_jpg, artifacts_dir=tmp_path)
    assert result["kind"] == "image"
    assert result["verdict"] in ("real", "fake")
    assert 0.0 <= result["fake_probability"] <= 1.0
    assert result["model"] == get_analyser().deciding_card(video=False).ref
    (face,) = result["faces"]
    assert face["box"][0] == pytest.approx(177, abs=15) and face["box"][1] == pytest.approx(56, abs=20)
    assert face["fake_probability"] == result["fake_probability"]
    assert (tmp_path / face["thumbnail"]).stat().st_size > 1000
    assert (tmp_path / face["heatmap"]).stat().st_size > 1000
    assert result["timeline"] == [] and result["seconds"] > 0


def test_a_tiny_face_is_uncertain_because_it_is_too_small(tiny_face_jpg):
    result = analyse(tiny_face_jpg)
    assert result["verdict"] == "uncertain" and result["strength"] is None
    codes = [r["code"] for r in result["uncertain_reasons"]]
    # a 40 px face blown up to the model's input may also be unlike any training face, read in opposite ways
    # by the two models of the photo mix (CLIP probe 96 %, CNN 5 %) and score near the threshold (56 %);
    # being too small is the first reason given
    assert codes[0] == "face_too_small"
    assert set(codes) <= {"face_too_small", "out_of_distribution", "models_disagree", "near_threshold"}
    assert result["lean"] == ("fake" if result["fake_probability"] >= result["threshold"] else "real")


def test_a_clear_photo_is_decided_with_a_strength(face_jpg):
    result = analyse(face_jpg)
    assert result["verdict"] in ("real", "fake") and result["uncertain_reasons"] == []
    assert result["strength"]["level"] in ("weak", "moderate", "strong")
    assert result["faces"][0]["uncertain_reasons"] == []


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
    assert result["kind"] == "video" and result["model"] == get_analyser().deciding_card(video=True).ref
    assert len(result["faces"]) == 2
    assert {f["track"] for f in result["faces"]} == {0, 1}
    left, right = sorted(result["faces"], key=lambda f: f["box"][0])
    assert left["box"][0] + left["box"][2] < right["box"][0]  # two different people, not one twice
    assert result["fake_probability"] == max(f["fake_probability"] for f in result["faces"])
    # the timeline holds every frame a face was scored on (all 32 on the CNN path, a few per track on CLIP's)
    scored = {f for face in result["faces"] for f in face.get("scored_frames", face["frames"])}
    assert [p["frame"] for p in result["timeline"]] == sorted(scored) and len(scored) >= 4
    assert [p["frame"] for p in result["timeline"]] == sorted(p["frame"] for p in result["timeline"])
    assert all(0 <= p["fake_probability"] <= 1 for p in result["timeline"])
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all((tmp_path / f["thumbnail"]).exists() for f in result["faces"])


def test_corrupt_inputs_raise_media_error(corrupt_files):
    for path in corrupt_files.values():
        with pytest.raises(MediaError):
            analyse(path)


def test_onnx_runtime_and_pytorch_give_the_same_scores(face_jpg, two_face_video):
    from ml.pipeline import Analyser

    onnx, eager = Analyser(runtime="onnxruntime", heatmaps=False), Analyser(runtime="torch", heatmaps=False)
    assert (onnx.runtime, eager.runtime) == ("onnxruntime", "torch")
    for path in (face_jpg, two_face_video):
        a, b = onnx.analyse(path), eager.analyse(path)
        assert a["verdict"] == b["verdict"]
        assert a["fake_probability"] == pytest.approx(b["fake_probability"], abs=1e-3)
        for fa, fb in zip(a["faces"], b["faces"], strict=True):
            assert fa["fake_probability"] == pytest.approx(fb["fake_probability"], abs=1e-3)
            assert fa.get("frame_probabilities") == pytest.approx(fb.get("frame_probabilities"), abs=1e-3)


@pytest.mark.parametrize(
    ("use_clip", "tolerance"),
    # The CLIP probe reads 8 frames per track, not 32, and moves more with the interpolated boxes: 0.107
    # apart on this clip when measured (the CNN + LSTM path: under 0.05).
    [(False, 0.05), (True, 0.15)],
)
def test_sparse_detection_keeps_every_frame_and_the_verdict(two_face_video, use_clip, tolerance):
    from ml.pipeline import Analyser

    sparse = Analyser(detect_stride=4, heatmaps=False, use_clip=use_clip)
    dense = Analyser(detect_stride=1, heatmaps=False, use_clip=use_clip)
    a, b = sparse.analyse(two_face_video), dense.analyse(two_face_video)
    assert sparse.detector_runs < dense.detector_runs == dense.frames
    assert [f["frames"] for f in a["faces"]] == [f["frames"] for f in b["faces"]]
    assert a["verdict"] == b["verdict"]
    assert a["fake_probability"] == pytest.approx(b["fake_probability"], abs=tolerance)


def test_a_full_disk_raises_enospc_instead_of_leaving_a_truncated_thumbnail(tmp_path):
    import errno

    import numpy as np

    from ml.pipeline import write_image

    full = tmp_path / "face_0.jpg"
    full.symlink_to("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
    with pytest.raises(OSError) as raised:  # before: cv2.imwrite returned False and the job went on
        write_image(full, np.zeros((32, 32, 3), np.uint8), [])
    assert raised.value.errno == errno.ENOSPC
    write_image(tmp_path / "ok.png", np.zeros((32, 32, 3), np.uint8))
    assert (tmp_path / "ok.png").read_bytes().startswith(b"\x89PNG")
