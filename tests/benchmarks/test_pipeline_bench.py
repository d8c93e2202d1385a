"""Smoke test of the pipeline benchmark: its inputs and one tiny case end to end (no timing asserted)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import pipeline as bench
from ml.models import TrackLSTM, build_image_model
from ml.registry import ModelCard, save_model
from ml.synthetic_inputs import SPECS, InputSpec, build_input

HEADLINE = re.compile(r"^video_seconds_per_second=(\d+\.\d+) speedup_vs_naive=(\d+\.\d+) peak_rss_mb=(\d+)$")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """Untrained models in a throw-away registry: the benchmark measures speed, not accuracy."""
    directory = tmp_path_factory.mktemp("registry")
    image = build_image_model("mobilenet_v2", pretrained=False)
    save_model(
        image,
        ModelCard("bench-image", "0", "image", "mobilenet_v2", 224, backbone="mobilenet_v2"),
        directory,
        set_default=True,
    )
    lstm_options = {"feature_dim": image.feature_dim, "hidden": 64, "layers": 1}
    save_model(
        TrackLSTM(**lstm_options),
        ModelCard("bench-video", "0", "video", "lstm", 224, feature_model="bench-image@0", lstm=lstm_options),
        directory,
        set_default=True,
    )
    return directory


def test_peak_rss_sees_an_allocation():
    peak = bench.PeakRss()
    with peak.measure():
        block = np.ones(40_000_000 // 8)  # 40 MB
        del block
    assert peak.peak_mb > 30


def test_benchmark_runs_one_tiny_case(registry, tmp_path, capsys):
    assert SPECS["360p-2s"].seconds == 2
    code = bench.main(
        [
            "--cases",
            "360p-2s",
            "--frames",
            "4",
            "--rounds",
            "1",
            "--registry",
            str(registry),
            "--workdir",
            str(tmp_path),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    for pipeline in ("production", "naive", "production-first"):
        row = next(line for line in lines if line.split()[:2] == ["360p-2s", pipeline])
        wall, per_second = (float(v) for v in row.split()[2:4])
        assert wall > 0 and per_second > 0
    match = HEADLINE.match(lines[-1])
    assert match, lines[-1]
    assert all(float(v) > 0 for v in match.groups())


def test_the_benchmark_measures_sampling_with_a_single_keyframe(tmp_path):
    spec = InputSpec("tiny", 320, 240, 2.0, fps=30)
    path = build_input(spec, tmp_path)
    line = bench.one_keyframe_sampling(path, 8, tmp_path / "scratch")
    assert re.match(
        r"^# sampling tiny: 8 frames in \d+\.\d\d s as encoded, 8 frames in \d+\.\d\d s with one keyframe",
        line,
    ), line
    assert not list((tmp_path / "scratch").iterdir())
