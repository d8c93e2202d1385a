from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    # a 40 px face blown up to the model's input may also be unlike any training face, read in opposite ways
    # by the two models of the photo mix (CLIP probe 96 %, CNN 5 %) and score near the threshold (56 %);
    # being too small is the first reason given
    assert codes[0] == "face_too_small"
    assert set(codes) <= {"face_too_small", "out_of_distribution", "models_disagree", "near_threshold"}
    assert result["lean"] in ("real", "fake") and 0 <= result["fake_probability"] <= 1
    assert result["faces"][0]["uncertain_reasons"] == result["uncertain_reasons"]
    from ml.registry import deciding_refs, find_card

    deciding = find_card(deciding_refs()["image"])
    assert result["model"] == deciding.ref and result["uncertain_band"] == list(deciding.uncertain_band)
    assert result["known_limits"] == deciding.known_limits and result["known_limits"]
    text = _run("predict", str(tiny_face_jpg)).stdout
    assert "UNCERTAIN" in text and "face_too_small" in text


def test_no_mix_decides_a_photo_with_the_clip_probe_alone(face_jpg):
    from ml.registry import default_ref

    proc = _run("predict", "--json", "--no-mix", str(face_jpg))
    (result,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert result["model"] == default_ref("clip"), proc.stderr


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


def _listed(stdout: str) -> dict[str, tuple[str, bool]]:
    """`ml models` rows read back, by name: {ref: (task, marked as a default)}."""
    rows = [line for line in stdout.splitlines() if line[:2] in ("* ", "  ")]
    return {line[2:].split()[0]: (line[2:].split()[1], line[0] == "*") for line in rows}


def test_models_lists_the_defaults():
    proc = _run("models")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from ml.registry import default_refs

    marked = {ref: task for ref, (task, default) in _listed(proc.stdout).items() if default}
    assert marked == {ref: task for task, ref in default_refs().items()}
    assert {"image", "video", "clip"} <= set(marked.values())


def test_models_marks_the_model_defaults_json_names_not_another_version(tmp_path):
    """The test picks the defaults (each task's first card, so an older version where there are two) and
    checks every row by name: a mark by name alone, or on the newest version, would fail here."""
    from ml.registry import WEIGHTS_DIR, list_cards

    registry = shutil.copytree(WEIGHTS_DIR, tmp_path / "registry")
    cards = list_cards(registry)
    chosen: dict[str, str] = {}
    for card in cards:
        if card.task != "mix":  # a mix is fitted on its two members: with older defaults it is refused
            chosen.setdefault(card.task, card.ref)
    assert len(cards) > len(chosen), "needs a card that is not a default, to tell the rows apart"
    (registry / "defaults.json").write_text(json.dumps(chosen))

    proc = _run("models", "--registry", str(registry))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _listed(proc.stdout) == {card.ref: (card.task, card.ref in chosen.values()) for card in cards}


def test_train_starts_from_the_task_preset_and_puts_the_flags_on_top():
    from ml.__main__ import CONFIG_DIR, build_parser, train_config
    from ml.train import ImageTrainConfig, VideoTrainConfig

    def config(*flags: str):
        return train_config(build_parser().parse_args(["train", "--data", "d", "--out", "o", *flags]))

    preset = json.loads((CONFIG_DIR / "image_default.json").read_text())
    assert config("--task", "image") == ImageTrainConfig(**preset)
    image = config(
        "--task", "image", "--arch", "compact_cnn", "--exclude", "lfw_", "dfdc", "--max-minutes", "5",
        "--sbi-fraction", "0.2", "--epochs", "2", "--seed", "3",
    )  # fmt: skip
    assert image.arch == "compact_cnn" and image.name == "image-compact_cnn"
    assert image.exclude_sources == ["lfw_", "dfdc"] and image.max_minutes == 5 and image.epochs == 2
    assert image.sbi_fraction == 0.2 and image.seed == 3
    assert config("--task", "image", "--synth-families", "swap=0.5").synth_families == {"swap": 0.5}
    assert image.video_data == preset["video_data"] and image.lr == ImageTrainConfig().lr  # the rest: default

    preset = json.loads((CONFIG_DIR / "video_default.json").read_text())
    assert config("--task", "video") == VideoTrainConfig(**preset)
    video = config(
        "--task", "video", "--image-model", "image-x@1", "--track-families", "frozen=1", "drift=2",
        "--sbi-copies", "3", "--exclude", "dfdc", "--config", "video_default.json", "--name", "v",
    )  # fmt: skip
    assert video.image_model == "image-x@1" and video.track_families == {"frozen": 1, "drift": 2}
    assert video.sbi_copies == 3 and video.exclude_sources == ["dfdc"] and video.name == "v"
    assert video.hidden == VideoTrainConfig().hidden


# ---------------------------------------------------------------- flags that do not apply are refused

TRAIN = ["train", "--data", "d", "--out", "o"]


@pytest.fixture
def trainers(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """The three trainers replaced by recorders: what a command line would have trained, without training."""
    import ml.train
    import ml.train_clip

    calls: list[tuple[str, tuple, dict]] = []
    for module, name in ((ml.train, "train_image"), (ml.train, "train_video"), (ml.train_clip, "train_clip")):
        monkeypatch.setattr(module, name, lambda *a, _name=name, **kw: calls.append((_name, a, kw)))
    return calls


def _refusal(capsys, argv: list[str]) -> str:
    from ml.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("task", "flags", "flag", "reader"),
    [
        ("image", ["--sbi-copies", "3"], "--sbi-copies", "video"),
        ("image", ["--track-families", "frozen=1"], "--track-families", "video"),
        ("image", ["--image-model", "image-x@1"], "--image-model", "video"),
        ("image", ["--registry", "runs/reg"], "--registry", "video"),
        ("image", ["--frames", "16"], "--frames", "video"),
        ("video", ["--arch", "compact_cnn"], "--arch", "image"),
        ("video", ["--freeze", "none"], "--freeze", "image"),
        ("video", ["--sbi-fraction", "0.2"], "--sbi-fraction", "image"),
        ("video", ["--synth-families", "swap=0.5"], "--synth-families", "image"),
        ("video", ["--reencode-fraction", "0.5"], "--reencode-fraction", "image"),
        ("video", ["--max-minutes", "5"], "--max-minutes", "image"),
        ("clip", ["--epochs", "2"], "--epochs", "image and video"),
        ("clip", ["--device", "cpu"], "--device", "image and video"),
        ("clip", ["--arch", "compact_cnn"], "--arch", "image"),
        ("clip", ["--sbi-copies", "1"], "--sbi-copies", "video"),
    ],
)
def test_train_refuses_a_flag_the_task_does_not_read(trainers, capsys, task, flags, flag, reader):
    err = _refusal(capsys, [*TRAIN, "--task", task, *flags])
    assert f"{flag} does not apply to --task {task} (only to --task {reader})" in err
    assert "usage: python -m ml train" in err
    assert trainers == []


def test_train_names_every_flag_it_refuses(trainers, capsys):
    err = _refusal(capsys, [*TRAIN, "--task", "image", "--sbi-copies", "3", "--track-families"])
    assert "--sbi-copies does not apply" in err and "--track-families does not apply" in err


@pytest.mark.parametrize("given", [["--synth-families", "swap=0.5"], ["--config", "image_synth.json"]])
def test_train_refuses_an_sbi_fraction_that_synth_families_replace(trainers, given):
    from ml.__main__ import main

    with pytest.raises(SystemExit, match="--sbi-fraction does not apply when synth families are set"):
        main([*TRAIN, "--task", "image", "--sbi-fraction", "0.2", *given])
    assert trainers == []


def test_train_refuses_an_unknown_arch_before_loading_data(trainers, capsys):
    from ml.models import IMAGE_ARCHS

    err = _refusal(capsys, [*TRAIN, "--task", "image", "--arch", "resnet9000"])
    assert "invalid choice: 'resnet9000'" in err and all(arch in err for arch in IMAGE_ARCHS)


def test_train_hands_each_trainer_what_it_read(trainers):
    from ml.__main__ import main
    from ml.media import DEFAULT_FRAMES

    assert main([*TRAIN, "--task", "image", "--device", "cpu", "--cache", "c"]) == 0
    assert main([*TRAIN, "--task", "video", "--registry", "r"]) == 0
    assert main([*TRAIN, "--task", "video", "--frames", "8"]) == 0
    assert main([*TRAIN, "--task", "clip"]) == 0
    (image, video, video8, clip) = trainers
    assert (
        image[0] == "train_image"
        and image[1][::3] == (Path("d"), Path("c"))
        and image[2] == {"device": "cpu"}
    )
    assert video[0] == "train_video" and video[2]["frames"] == DEFAULT_FRAMES
    assert video[2]["registry"] == Path("r") and video[2]["device"] is None
    assert video8[2]["frames"] == 8 and video8[2]["registry"] is None
    assert clip[0] == "train_clip" and clip[1][-1] == Path("cache/crops")


def test_evaluate_refuses_what_the_reencode_sweep_ignores_before_loading_models(monkeypatch, capsys):
    import ml.pipeline

    def no_models(*_args, **_kwargs):
        raise AssertionError("the models were loaded")

    monkeypatch.setattr(ml.pipeline, "Analyser", no_models)
    err = _refusal(capsys, ["evaluate", "--data", "d", "--reencode-sweep", "--roc", "r.png", "--record", "t"])
    assert "--reencode-sweep does not take --roc, --record" in err and "usage: python -m ml evaluate" in err


def test_predict_refuses_heatmaps_without_a_folder_to_write_them(capsys):
    err = _refusal(capsys, ["predict", "photo.jpg", "--heatmaps"])
    assert "--heatmaps needs --artifacts" in err


def test_a_clip_model_and_no_clip_are_refused_together(capsys):
    err = _refusal(capsys, ["predict", "photo.jpg", "--no-clip", "--clip-model", "clip-probe@1"])
    assert "argument --clip-model: not allowed with argument --no-clip" in err


def test_detector_and_frames_come_from_the_ml_constants():
    from ml.__main__ import build_parser
    from ml.faces import DEFAULT_DETECTOR, DETECTORS
    from ml.media import DEFAULT_FRAMES

    args = build_parser().parse_args(["evaluate", "--data", "d"])
    assert args.detector == DEFAULT_DETECTOR and args.frames == DEFAULT_FRAMES
    for name in DETECTORS:
        assert build_parser().parse_args(["predict", "f.jpg", "--detector", name]).detector == name


@pytest.mark.parametrize(
    ("preset", "config_class"),
    [("image_default.json", "ImageTrainConfig"), ("video_default.json", "VideoTrainConfig"),
     ("image_synth.json", "ImageTrainConfig"), ("clip_default.json", "ClipTrainConfig"),
     ("clip_dfdc_unthinned.json", "ClipTrainConfig")],
)  # fmt: skip
def test_a_preset_names_only_where_it_departs_from_the_dataclass_defaults(preset, config_class):
    # one place for each default: a value written again in the preset could drift from the dataclass's
    import ml.train
    import ml.train_clip
    from ml.__main__ import CONFIG_DIR

    defaults = getattr(ml.train_clip if config_class.startswith("Clip") else ml.train, config_class)()
    written = json.loads((CONFIG_DIR / preset).read_text())
    assert {key for key, value in written.items() if getattr(defaults, key) == value} == set()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--quantile", "1.5"], "--quantile must lie between 0 and 1, not 1.5"),
        (["--band", "0.6", "0.8"], "--band LOW HIGH must hold the threshold 0.5"),
    ],
)
def test_neighbours_refuses_an_operating_point_that_cannot_be(capsys, flags, said):
    err = _refusal(capsys, ["neighbours", *flags])
    assert said in err and "usage: python -m ml neighbours" in err
