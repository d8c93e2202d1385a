"""`ml evaluate --reencode-sweep`: how much the verdict depends on the way a photo was saved."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from ml.evaluate import REENCODE_SWEEP, Reencoding, reencode_image, reencode_sweep
from tests.ml import media_factory as mf


class _FormatSensitive:
    """A stand-in whose score depends on how the file was saved (WebP looks fake to it): the sweep's
    arithmetic must find exactly those flips."""

    image_card = video_card = SimpleNamespace(threshold=0.5, ref="format-sensitive@1")

    def deciding_card(self, video: bool):
        return self.image_card

    def analyse(self, path):
        p = 0.3 if "real" in Path(path).stem else 0.7
        if Path(path).suffix == ".webp":
            p = 0.9
        return {"fake_probability": p, "verdict": "fake" if p >= 0.5 else "real", "seconds": 0.0}


def _folder(root: Path) -> Path:
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for k in range(2):
            mf.write_image(root / label / f"{label}{k}.jpg", mf.face_patch(120 + 10 * k))
    return root


def test_reencodings_write_the_format_and_size_they_name(tmp_path):
    src = mf.write_image(tmp_path / "a.jpg", mf.face_patch(100))
    out = tmp_path / "out"
    out.mkdir()
    assert reencode_image(src, out, Reencoding("original")) == src
    webp = reencode_image(src, out, Reencoding("webp", 80))
    assert webp.suffix == ".webp" and cv2.imread(str(webp)).shape == (100, 100, 3)
    half = reencode_image(src, out, Reencoding("png", scale=0.5))
    assert half.suffix == ".png" and cv2.imread(str(half)).shape == (50, 50, 3)
    (out / "q50").mkdir()
    (out / "q95").mkdir()
    low = reencode_image(src, out / "q50", Reencoding("jpeg", 50))
    high = reencode_image(src, out / "q95", Reencoding("jpeg", 95))
    assert low.stat().st_size < high.stat().st_size
    names = [r.name for r in REENCODE_SWEEP]
    assert len(set(names)) == len(names) and {
        "jpeg q50",
        "jpeg q95",
        "webp q80",
        "png",
        "png x0.5",
        "png x2",
    } <= set(names)


def test_sweep_reports_auc_and_the_share_of_flipped_verdicts(tmp_path):
    data = _folder(tmp_path / "data")
    variants = (Reencoding("jpeg", 70), Reencoding("webp", 80), Reencoding("png", scale=2.0))
    sweep = reencode_sweep(data, _FormatSensitive(), variants, log=lambda _: None)
    by_name = {r["variant"]: r for r in sweep["variants"]}
    assert list(by_name) == ["original", "jpeg q70", "webp q80", "png x2"]
    assert by_name["original"]["roc_auc"] == 1.0 and by_name["jpeg q70"]["flip_rate"] == 0.0
    assert by_name["webp q80"]["flip_rate"] == 0.5  # both reals turn fake, the fakes stay fake
    assert by_name["webp q80"]["roc_auc"] == 0.5
    assert sweep["largest_flip_rate"] == 0.5 and sweep["largest_flip_variant"] == "webp q80"


def test_cli_sweep_with_the_shipped_model(tmp_path):
    from ml.__main__ import main

    data = _folder(tmp_path / "data")
    out = tmp_path / "sweep.json"
    assert main(["evaluate", "--data", str(data), "--reencode-sweep", "--json-out", str(out)]) == 0
    sweep = json.loads(out.read_text())
    assert [r["variant"] for r in sweep["variants"]] == ["original", *(r.name for r in REENCODE_SWEEP)]
    assert all(r["n"] == 4 for r in sweep["variants"])
    assert sweep["largest_flip_rate"] == max(r["flip_rate"] for r in sweep["variants"])
    assert np.isclose(sweep["variants"][0]["flip_rate"], 0.0)
