from __future__ import annotations

import numpy as np

from ml.verdict import FaceEvidence, VerdictRule
from tests.ml import media_factory as mf

RULE = VerdictRule(threshold=0.5, uncertain_low=0.35, uncertain_high=0.65)
SHARP = mf.face_patch(224)


def face(p: float, side: int = 120, **kw) -> FaceEvidence:
    return FaceEvidence(p, side, side, SHARP, **kw)


def test_side_is_what_the_score_alone_says():
    assert RULE.side(None) == "no_face"
    assert RULE.side(0.49) == "real" and RULE.side(0.5) == "fake"


def test_clear_scores_on_judgeable_faces_are_decided():
    assert RULE.judge([face(0.9)]).verdict == "fake"
    real = RULE.judge([face(0.1)])
    assert (real.verdict, real.reasons, real.lean) == ("real", [], "real")


def test_no_face():
    judgement = RULE.judge([])
    assert (judgement.verdict, judgement.fake_probability) == ("no_face", None)


def test_a_tiny_face_is_uncertain_even_with_a_clear_score():
    # a 40x40 px face called REAL at 18 % before
    judgement = RULE.judge([face(0.18, side=40)])
    assert judgement.verdict == "uncertain" and judgement.lean == "real"
    assert [r.code for r in judgement.reasons] == ["face_too_small"]
    assert judgement.strength is None


def test_a_score_in_the_band_is_uncertain():
    judgement = RULE.judge([face(0.55)])
    assert judgement.verdict == "uncertain" and judgement.reasons[0].code == "near_threshold"


def test_one_clear_fake_face_decides_but_a_doubtful_face_blocks_real():
    assert RULE.judge([face(0.1), face(0.95)]).verdict == "fake"
    assert RULE.judge([face(0.95), face(0.1, side=30)]).verdict == "fake"
    mixed = RULE.judge([face(0.1), face(0.2, side=30)])
    assert mixed.verdict == "uncertain"
    assert mixed.reasons[0].text.startswith("Face 2:")
    assert [len(r) for r in mixed.face_reasons] == [0, 1]


def test_a_clip_whose_frames_contradict_its_track_score_is_uncertain():
    frames = list(np.linspace(0.6, 0.81, 32))
    judgement = RULE.judge([face(0.478, frame_probabilities=frames)])
    assert judgement.verdict == "uncertain"
    assert "frames_disagree_with_clip_model" in [r.code for r in judgement.reasons]


def test_a_mixed_score_whose_models_read_the_face_in_opposite_ways_is_uncertain():
    # the mix says a clear 80 %, but only because the CLIP probe's 97 % outweighs the CNN's 20 %
    judgement = RULE.judge([face(0.8, member_probabilities={"CLIP probe": 0.97, "fine-tuned CNN": 0.2})])
    assert judgement.verdict == "uncertain" and judgement.lean == "fake"
    ((code, text),) = [(r.code, r.text) for r in judgement.reasons]
    assert code == "models_disagree" and "CLIP probe 97%" in text and "fine-tuned CNN 20%" in text
    agreeing = face(0.8, member_probabilities={"CLIP probe": 0.9, "fine-tuned CNN": 0.6})
    assert RULE.judge([agreeing]).verdict == "fake"


def test_strength_separates_a_52_from_a_90_percent_fake():
    assert RULE.strength(0.9)["level"] == "strong"
    assert RULE.strength(0.8)["level"] == "moderate"
    assert RULE.strength(0.52)["level"] == "weak"
    assert RULE.strength(0.05) == {"level": "strong", "chance": 0.95}
