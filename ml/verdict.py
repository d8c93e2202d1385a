"""The verdict rule: the one place that turns calibrated fake probabilities, and the reasons to doubt them,
into what users read: `real`, `fake`, `uncertain` or `no_face`.

A face is *decided* when nothing in `ml.uncertainty` speaks against its score. The item is
- `fake` when some decided face scores at or above the threshold (one clearly manipulated face is enough),
- `real` when every face is decided and below the threshold,
- `uncertain` otherwise, with the undecided faces' reasons,
- `no_face` when no face was found.
The threshold and the uncertain band come from the model card, where they were chosen on validation data;
nothing else in the project holds a band or a threshold of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml import uncertainty as u
from ml.results import Strength, VerdictFields

VERDICTS = ("real", "fake", "uncertain", "no_face")

# How sure a decided verdict is, from the calibrated chance that it is right (p for FAKE, 1 - p for REAL):
# below the first bound a verdict is "weak" (it is inside or just outside the uncertain band).
STRENGTH_LEVELS = ((0.9, "strong"), (0.75, "moderate"), (0.0, "weak"))


@dataclass
class FaceEvidence:
    """What the pipeline knows about one face (photo) or face track (video), model-independent."""

    fake_probability: float
    width: float  # box size in pixels of the original photo or frame
    height: float
    crop: np.ndarray | None = None  # the model's input crop (RGB)
    frame_probabilities: Sequence[float] = ()  # video: per-frame image-model scores of the track
    view_probabilities: Sequence[float] = ()  # test-time views (original, mirror)
    embeddings: np.ndarray | None = None  # one row per view or frame, for the out-of-distribution check
    member_probabilities: Mapping[str, float] = field(default_factory=dict)  # the mixed models', by name


@dataclass
class Judgement:
    verdict: str
    lean: str | None  # the side of the threshold the score alone is on ("fake" / "real")
    fake_probability: float | None
    reasons: list[u.Reason] = field(default_factory=list)
    face_reasons: list[list[u.Reason]] = field(default_factory=list)
    strength: Strength | None = None

    def as_result(self) -> VerdictFields:
        return {
            "verdict": self.verdict,
            "uncertain": self.verdict == "uncertain",  # kept from the first JSON contract
            "lean": self.lean,
            "uncertain_reasons": [r.as_dict() for r in self.reasons],
            "strength": self.strength,
        }


@dataclass(frozen=True)
class VerdictRule:
    """Threshold and uncertain band come from the model card, where they were chosen on validation data."""

    threshold: float = 0.5
    uncertain_low: float = 0.35
    uncertain_high: float = 0.65

    def side(self, fake_probability: float | None) -> str:
        """What the score alone says, with no doubt considered: `fake`, `real` or `no_face`."""
        if fake_probability is None:
            return "no_face"
        return "fake" if fake_probability >= self.threshold else "real"

    def strength(self, fake_probability: float) -> Strength:
        """The calibrated chance the score's side is right, and its level (weak / moderate / strong)."""
        chance = fake_probability if fake_probability >= self.threshold else 1 - fake_probability
        level = next(name for bound, name in STRENGTH_LEVELS if chance >= bound)
        return {"level": level, "chance": round(float(chance), 4)}

    def face_reasons(
        self, face: FaceEvidence, embedding_stats: dict | None = None, reference: np.ndarray | None = None
    ) -> list[u.Reason]:
        """Every reason to doubt this face's score, in the order a user should read them. `embedding_stats`
        and `reference` (training faces) are the deciding model card's, for the out-of-distribution check."""
        p = face.fake_probability
        found = [
            u.face_too_small(face.width, face.height),
            u.face_too_blurred(u.sharpness(face.crop)) if face.crop is not None else None,
            u.out_of_distribution(face.embeddings, embedding_stats, reference),
            u.views_disagree(face.view_probabilities),
            u.members_disagree(face.member_probabilities, self.threshold),
            u.track_disagrees_with_frames(p, face.frame_probabilities, self.threshold)
            if face.frame_probabilities
            else None,
            u.frames_disagree(face.frame_probabilities, self.threshold),
            u.near_threshold(p, self.uncertain_low, self.uncertain_high),
        ]
        return [r for r in found if r is not None]

    def judge(
        self,
        faces: Sequence[FaceEvidence],
        embedding_stats: dict | None = None,
        reference: np.ndarray | None = None,
    ) -> Judgement:
        """The item's verdict from its faces (see the module docstring for the rule)."""
        if not faces:
            return Judgement("no_face", None, None)
        probability = max(f.fake_probability for f in faces)
        per_face = [self.face_reasons(f, embedding_stats, reference) for f in faces]
        decided_sides = [self.side(f.fake_probability) for f, r in zip(faces, per_face, strict=True) if not r]
        if "fake" in decided_sides:
            verdict = "fake"
        elif len(decided_sides) == len(faces):
            verdict = "real"
        else:
            verdict = "uncertain"
        reasons: list[u.Reason] = []
        if verdict == "uncertain":
            for index, face_reasons in enumerate(per_face):
                for reason in face_reasons:
                    text = reason.text if len(faces) == 1 else f"Face {index + 1}: {reason.text}"
                    reasons.append(u.Reason(reason.code, text))
        return Judgement(
            verdict,
            self.side(probability),
            probability,
            reasons,
            per_face,
            None if verdict == "uncertain" else self.strength(probability),
        )
