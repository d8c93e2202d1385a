"""The shape of what `ml.pipeline.analyse` returns: the JSON contract of `ml predict --json`, the result
stored with each item, and what `detection.jobs.store_result` reads.

TypedDicts, so a result is still a plain dict (JSON as it is) while mypy checks its writers and readers.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class UncertainReason(TypedDict):
    """One reason to doubt a score (ml.uncertainty.Reason): a stable code and a sentence for the user."""

    code: str
    text: str


class Strength(TypedDict):
    """How sure a decided verdict is: the calibrated chance that it is right, and its level."""

    level: str  # weak / moderate / strong (ml.verdict.STRENGTH_LEVELS)
    chance: float


class VerdictFields(TypedDict):
    """The verdict rule's part of a result (ml.verdict.Judgement.as_result)."""

    verdict: str  # one of ml.verdict.VERDICTS
    uncertain: bool  # verdict == "uncertain", kept from the first JSON contract
    lean: str | None  # the side of the threshold the score alone is on
    uncertain_reasons: list[UncertainReason]
    strength: Strength | None  # None when uncertain or no face


class FaceArtifacts(TypedDict, total=False):
    """File names inside the item's artifacts directory; absent when no directory was given."""

    thumbnail: str
    heatmap: str  # only when heatmaps are on


class FaceResult(FaceArtifacts):
    """One face (photo) or face track (video)."""

    track: int
    box: list[int]  # x, y, w, h in pixels: the representative box of a track
    frames: list[int]  # sampled frame indices the face is in ([0] for a photo)
    fake_probability: float
    frame_probabilities: NotRequired[list[float]]  # video: one per scored frame
    scored_frames: NotRequired[list[int]]  # video: which frames those are
    member_probabilities: NotRequired[dict[str, float]]  # photo mix: each mixed model's own, by name
    uncertain_reasons: list[UncertainReason]


class TimelinePoint(TypedDict):
    """A video's scored frame: the most suspicious face in it."""

    frame: int
    time: float  # seconds
    fake_probability: float


class AnalysisResult(VerdictFields):
    """What `ml.pipeline.analyse` returns for one file."""

    path: str
    kind: str  # "image" or "video"
    fake_probability: float | None  # None when no face was found
    model: str  # the deciding model's name@version
    faces: list[FaceResult]
    timeline: list[TimelinePoint]  # empty for a photo
    threshold: float
    uncertain_band: list[float]  # [low, high]
    known_limits: list[dict[str, str]]  # from the card: what / measured / command (ml.loso.known_limits)
    seconds: float
    timings: dict[str, float]  # seconds per pipeline stage
    # A video's: how a track's score is formed from its frames. "frame_mean": the CLIP probe's frame
    # logits averaged and calibrated (the chart's points, calibrated the same way); "sequence_model": the
    # LSTM's reading of all the frames, beside the photo model's per-frame scores.
    video_score: NotRequired[str]
