from __future__ import annotations

import numpy as np
import pytest

from benchmarks.tta import FRAME_AGGREGATES, VIEW_SETS, photo_scores
from ml.pipeline import Analyser
from tests.ml import media_factory as mf


def test_confidence_weighting_leans_towards_confident_frames():
    frames = np.array([0.5, 0.55, 0.45, 0.98])
    assert FRAME_AGGREGATES["confidence-weighted"](frames) > frames.mean() + 0.1
    assert FRAME_AGGREGATES["top quarter of frames"](frames) == pytest.approx(0.98)
    assert FRAME_AGGREGATES["median of frames"](frames) == pytest.approx(0.525)


def test_the_shipped_view_set_scores_a_photo_exactly_as_the_product_does(tmp_path):
    face = mf.write_image(tmp_path / "face.jpg", mf.astronaut())
    sky = mf.write_image(tmp_path / "sky.png", np.full((200, 300, 3), 140, np.uint8))
    analyser = Analyser(heatmaps=False, runtime="torch", use_clip=False)  # the CNN's views
    scores, has_face = photo_scores(analyser, [face, sky])
    assert has_face == [True, False]
    assert set(scores) == set(VIEW_SETS) and all(len(v) == 1 for v in scores.values())
    product = analyser.analyse(face)["fake_probability"]
    assert scores["crop + mirror (shipped)"][0] == pytest.approx(product, abs=1e-3)
    assert len({round(v[0], 6) for v in scores.values()}) > 1  # the view sets do differ
