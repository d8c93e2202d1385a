from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_predict_json_one_line_per_file_and_goes_on_after_a_bad_file(face_jpg, corrupt_files, face_video):
    proc = _run("predict", "--json", str(corrupt_files["pdf_as_mp4"]), str(face_jpg), str(face_video))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3, proc.stderr
    bad, image, video = lines
    assert bad["path"].endswith("report.mp4") and "not a supported" in bad["error"]
    assert image["kind"] == "image" and image["verdict"] in ("real", "fake")
    assert set(image) >= {"path", "kind", "verdict", "fake_probability", "model", "faces", "seconds"}
    assert set(image["faces"][0]) >= {"box", "frames", "fake_probability"}
    assert video["kind"] == "video" and len(video["faces"]) == 1
    assert proc.returncode == 1  # a file failed: scripts can tell


def test_predict_json_says_uncertain_with_reasons_for_a_tiny_face(tiny_face_jpg):
    proc = _run("predict", "--json", str(tiny_face_jpg))
    (result,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert result["verdict"] == "uncertain", result
    codes = [r["code"] for r in result["uncertain_reasons"]]
    # a 40 px face blown up to the model's input may also be unlike any training face; never near_threshold
    assert codes[0] == "face_too_small" and set(codes) <= {"face_too_small", "out_of_distribution"}
    assert result["lean"] in ("real", "fake") and 0 <= result["fake_probability"] <= 1
    assert result["faces"][0]["uncertain_reasons"] == result["uncertain_reasons"]
    assert result["uncertain_band"] == [0.35, 0.65] and result["known_limits"]
    text = _run("predict", str(tiny_face_jpg)).stdout
    assert "UNCERTAIN" in text and "face_too_small" in text


def test_evaluate_prints_the_seeds_metrics(tmp_path, face_jpg, noface_png):
    for label, src in (("real", face_jpg), ("fake", noface_png)):
        (tmp_path / label).mkdir()
        (tmp_path / label / src.name).write_bytes(src.read_bytes())
    proc = _run("evaluate", "--data", str(tmp_path), "--roc", str(tmp_path / "roc.png"))
    assert proc.returncode == 0, proc.stderr
    for metric in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc", "confusion"):
        assert metric in proc.stdout
    assert "no face: 1" in proc.stdout
    assert "acc @ 80% cov" in proc.stdout and "risk-coverage" in proc.stdout and "conf. wrong" in proc.stdout
    assert (tmp_path / "roc.png").exists()


def test_models_lists_the_defaults():
    proc = _run("models")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from ml.registry import default_refs

    starred = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("*")}
    assert starred == set(default_refs().values()) and {"image", "video", "clip"} <= set(default_refs())


def test_train_starts_from_the_task_preset_and_puts_the_flags_on_top():
    from ml.__main__ import CONFIG_DIR, build_parser, train_config
    from ml.train import ImageTrainConfig, VideoTrainConfig

    def config(*flags: str):
        return train_config(build_parser().parse_args(["train", "--data", "d", "--out", "o", *flags]))

    preset = json.loads((CONFIG_DIR / "image_default.json").read_text())
    assert config("--task", "image") == ImageTrainConfig(**preset)
    image = config(
        "--task", "image", "--arch", "compact_cnn", "--exclude", "lfw_", "dfdc", "--max-minutes", "5",
        "--sbi-fraction", "0.2", "--synth-families", "swap=0.5", "--epochs", "2", "--seed", "3",
    )  # fmt: skip
    assert image.arch == "compact_cnn" and image.name == "image-compact_cnn"
    assert image.exclude_sources == ["lfw_", "dfdc"] and image.max_minutes == 5 and image.epochs == 2
    assert image.sbi_fraction == 0.2 and image.synth_families == {"swap": 0.5} and image.seed == 3
    assert image.video_data == preset["video_data"] and image.lr == preset["lr"]  # the rest: the preset's

    preset = json.loads((CONFIG_DIR / "video_default.json").read_text())
    assert config("--task", "video") == VideoTrainConfig(**preset)
    video = config(
        "--task", "video", "--image-model", "image-x@1", "--track-families", "frozen=1", "drift=2",
        "--sbi-copies", "3", "--exclude", "dfdc", "--config", "video_default.json", "--name", "v",
    )  # fmt: skip
    assert video.image_model == "image-x@1" and video.track_families == {"frozen": 1, "drift": 2}
    assert video.sbi_copies == 3 and video.exclude_sources == ["dfdc"] and video.name == "v"
    assert video.hidden == preset["hidden"]
