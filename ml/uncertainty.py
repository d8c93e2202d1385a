"""Why a verdict may be a guess: one small pure function per reason, each returning a `Reason` or None.

The functions take plain numbers and arrays (a face's box side, its crop, per-frame or per-view fake
probabilities, an embedding and the training statistics from a model card), never a model, so they work
for any image or video model the registry holds (MobileNetV2 today, a CLIP-based one tomorrow).
`ml.verdict` decides what the reasons do to the verdict; this module only finds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ml.results import UncertainReason

# A face whose shorter box side is below this many pixels of the original photo or frame is upscaled more
# than 3.5x to reach the 224 px model input: what the model then sees is interpolation, not skin. Under 1 %
# of the training photos' faces are that small (percentiles 1 / 50 / 99: 65 / 159 / 269 px, every 4th
# photo of images/train; `python -m benchmarks.uncertainty --split train --every 4`). A 40x40 px face is
# called REAL at 18 % by image-mobilenet_v2@1 without this rule.
MIN_FACE_SIDE = 64

# Sharpness is the variance of the Laplacian (Pech-Pacheco et al., 2000) of the grey face crop resampled to
# 64x64 (INTER_AREA), so the number does not depend on the model's input size or on how large the face was.
# Below this value the skin texture and blending seams the models read are gone: it is the 2nd percentile of
# the faces in images/val (41; images/train: 32; median 450-490), and what a Gaussian blur of sigma ~6 px
# leaves of a sharp 224 px crop (`python -m benchmarks.uncertainty --split val`).
SHARPNESS_SIDE = 64
MIN_SHARPNESS = 40.0

# Frames of one track disagree when the middle half of their fake probabilities (interquartile range)
# spans more than this, or when at least this share of frames falls on each side of the threshold.
MAX_FRAME_IQR = 0.30
MIN_MINORITY_SHARE = 0.25

# The original crop and its mirror image are the same face; when their calibrated probabilities differ by
# more than this the score is an accident of pixels, not evidence. 0.25 is about the 97th percentile of the
# gap on images/val (95th: 0.18, 99th: 0.37).
MAX_VIEW_GAP = 0.25

# The photo mix (ml.photo_mix) averages two models that fail on different sources. When the two, each
# calibrated on its own, fall on opposite sides of the threshold more than this far apart, the mixed score
# is a compromise between two contradicting readings, not evidence either way. Held out of training
# (`python -m benchmarks.ensemble --held-out ROW`), photo-mix@1 was confidently wrong on 7.0 % of the rof
# row and 5.2 % of the wfir row; with this reason 5.5 % and 4.3 %, and on images/test (`ml evaluate`)
# 4.9 % -> 3.8 %, deciding 55.7 % of the photos instead of 60.6 %. Any gap up to 0.3 doubts the same
# decided photos (at photo-mix@1's temperature and band, opposite members of a decided mix are at least
# 0.30 apart); 0.3 keeps the reason off photos the band already doubts with members a few points either
# side. At 0.5 it doubts half as many, and the rof row stays at 6.0 %.
MIN_MEMBER_GAP = 0.3


@dataclass(frozen=True)
class Reason:
    """A stable code (for filters, tests and the API) and a sentence a user can read."""

    code: str
    text: str

    def as_dict(self) -> UncertainReason:
        return {"code": self.code, "text": self.text}


def face_too_small(width: float, height: float, min_side: int = MIN_FACE_SIDE) -> Reason | None:
    side = min(width, height)
    if side >= min_side:
        return None
    return Reason(
        "face_too_small",
        f"The face is only {side:.0f} pixels across; the model needs at least {min_side} to see "
        "the skin and edges where manipulations show.",
    )


def sharpness(crop: np.ndarray, side: int = SHARPNESS_SIDE) -> float:
    """Variance of the Laplacian of the grey crop resampled to side x side: low means blurred."""
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def face_too_blurred(value: float, min_sharpness: float = MIN_SHARPNESS) -> Reason | None:
    """`value` is the face crop's `sharpness`."""
    if value >= min_sharpness:
        return None
    return Reason(
        "face_blurred",
        f"The face is too blurred to judge (sharpness {value:.0f}, the model needs at least "
        f"{min_sharpness:.0f}): the fine detail where manipulations show is gone.",
    )


def near_threshold(probability: float, low: float, high: float) -> Reason | None:
    if not low <= probability < high:
        return None
    return Reason(
        "near_threshold",
        f"The score, {probability:.0%}, lies between {low:.0%} and {high:.0%}: on validation data the "
        "model is right little more than a coin toss there.",
    )


def frames_disagree(
    frame_probabilities: Sequence[float],
    threshold: float,
    max_iqr: float = MAX_FRAME_IQR,
    min_minority: float = MIN_MINORITY_SHARE,
) -> Reason | None:
    """The frames of one face track tell different stories (a wide spread, or many on each side)."""
    probs = np.asarray(frame_probabilities, dtype=float)
    if probs.size < 4:
        return None  # too few frames to speak of a spread; `track_disagrees_with_frames` covers short ones
    q1, q3 = np.percentile(probs, [25, 75])
    fake_share = float((probs >= threshold).mean())
    minority = min(fake_share, 1 - fake_share)
    if q3 - q1 <= max_iqr and minority < min_minority:
        return None
    return Reason(
        "frames_disagree",
        f"The frames disagree: the middle half of them score {q1:.0%} to {q3:.0%}, and "
        f"{minority:.0%} of them fall on the other side of the threshold.",
    )


def track_disagrees_with_frames(
    track_probability: float, frame_probabilities: Sequence[float], threshold: float
) -> Reason | None:
    """The clip model's reading of a track and the median of its per-frame scores are on opposite sides.

    The clip model (an LSTM over the frame embeddings) can overrule every frame: 32 frames at 60-81 %
    gave a track score of 47.8 %. When they disagree the two models tell different stories and neither
    is shown as the answer.
    """
    if not len(frame_probabilities):
        return None
    median = float(np.median(frame_probabilities))
    if (median >= threshold) == (track_probability >= threshold):
        return None
    return Reason(
        "frames_disagree_with_clip_model",
        f"The clip model scores this face {track_probability:.0%} while its {len(frame_probabilities)} "
        f"frame{'s' if len(frame_probabilities) != 1 else ''} score {median:.0%} (median): the two "
        "models disagree.",
    )


def views_disagree(view_probabilities: Sequence[float], max_gap: float = MAX_VIEW_GAP) -> Reason | None:
    """Test-time views of one face (original and mirrored, or ensemble members) disagree."""
    if len(view_probabilities) < 2:
        return None
    gap = float(np.max(view_probabilities) - np.min(view_probabilities))
    if gap <= max_gap:
        return None
    return Reason(
        "views_disagree",
        f"The face and its mirror image score {gap:.0%} apart: the model reacts to this picture in a "
        "way it did not learn from faces like it, so its score is unreliable.",
    )


def members_disagree(
    member_probabilities: Mapping[str, float], threshold: float, min_gap: float = MIN_MEMBER_GAP
) -> Reason | None:
    """The models whose scores were mixed into this one (name: calibrated probability) read the face on
    opposite sides of the threshold, more than `min_gap` apart."""
    if len(member_probabilities) < 2:
        return None
    probs = member_probabilities.values()
    if max(probs) < threshold or min(probs) >= threshold or max(probs) - min(probs) <= min_gap:
        return None
    readings = ", ".join(f"the {name} {p:.0%}" for name, p in member_probabilities.items())
    return Reason(
        "models_disagree",
        f"The two models behind the score read this face in opposite ways ({readings} likely fake): the "
        "score shown is a compromise between them, not evidence either way.",
    )


def embedding_distance(embeddings: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> float:
    """Root-mean-square of the per-dimension z-scores against the training statistics; for several
    embeddings of one face (the frames of a track) the median of theirs."""
    e = np.atleast_2d(np.asarray(embeddings, dtype=float))
    m = np.asarray(mean, dtype=float)
    s = np.maximum(np.asarray(std, dtype=float), 1e-6)
    return float(np.median(np.sqrt(np.mean(((e - m) / s) ** 2, axis=1))))


def training_stats(embeddings: np.ndarray, percentile: int = 99) -> dict:
    """What a card stores for `out_of_distribution`: the training faces' mean, std and the `percentile` of
    their own distances from that mean."""
    embeddings = np.asarray(embeddings, dtype=float)
    mean, std = embeddings.mean(0), embeddings.std(0)
    distances = [embedding_distance(e, mean, std) for e in embeddings]
    return {
        "mean": [round(float(v), 5) for v in mean],
        "std": [round(float(v), 5) for v in std],
        "max_distance": round(float(np.percentile(distances, percentile)), 4),
        "percentile": percentile,
        "faces": len(embeddings),
    }


# A face is also unlike the training faces when even its nearest training faces are far: the mean cosine
# distance to its NEIGHBOURS nearest faces of a reference set (training faces drawn at random, as the probe
# reads them) beyond the 95th percentile of what the val files show. On the leave-one-source-out rows the
# distance from the training mean alone leaves 13.1 % of held-out items confidently wrong; with the
# neighbours as well (1,000 reference faces), 6.1 % (`python -m benchmarks.loso --quick`, README).
NEIGHBOURS = 10
NEIGHBOUR_QUANTILE = 0.95


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbour_distance(rows: np.ndarray, reference: np.ndarray, k: int = NEIGHBOURS) -> float:
    """1 - the mean cosine similarity of each row's `k` nearest `reference` rows (unit rows), averaged over
    the rows (one per view or frame of a face)."""
    similarities = unit_rows(rows) @ np.asarray(reference, dtype=np.float32).T
    nearest = np.sort(similarities, axis=1)[:, -min(k, similarities.shape[1]) :]
    return float(1 - nearest.mean())


def neighbour_stats(
    reference: np.ndarray,
    val_faces: Sequence[np.ndarray],
    k: int = NEIGHBOURS,
    quantile: float = NEIGHBOUR_QUANTILE,
) -> dict:
    """What a card stores beside its reference faces: `k`, and the `quantile` of the val faces' (one array
    of rows per file) own neighbour distances, past which a face is called unfamiliar."""
    distances = [neighbour_distance(rows, reference, k) for rows in val_faces]
    return {
        "k": k,
        "max_distance": round(float(np.quantile(distances, quantile)), 5),
        "quantile": quantile,
        "faces": int(len(reference)),
    }


def out_of_distribution(
    embeddings: np.ndarray | None, stats: dict | None, reference: np.ndarray | None = None
) -> Reason | None:
    """The face is unlike the training faces: its embedding (one row, or one per frame) lies farther from
    their mean than `stats["max_distance"]`, a high percentile of the training faces' own distances that
    the model card stores beside their mean and std; or, given the card's `reference` faces, its nearest
    ones are farther than `stats["neighbours"]["max_distance"]`.

    `stats` is {"mean": [...], "std": [...], "max_distance": float, "percentile": int, "neighbours": {...}};
    without it (an older card) nothing is said rather than guessed.
    """
    if embeddings is None or not stats or "max_distance" not in stats:
        return None
    embeddings = np.atleast_2d(np.asarray(embeddings, dtype=float))
    if embeddings.shape[1] != len(stats["mean"]):
        return None  # statistics of another model's embedding: not comparable
    distance = embedding_distance(embeddings, stats["mean"], stats["std"])
    if distance > stats["max_distance"]:
        return Reason(
            "out_of_distribution",
            "The face is unlike anything the model was trained on (its features lie "
            f"{distance / stats['max_distance']:.1f}x farther from the training faces than "
            f"{stats.get('percentile', 99)}% of them), so its score says little.",
        )
    neighbours = stats.get("neighbours")
    if reference is None or not neighbours or reference.shape[1] != embeddings.shape[1]:
        return None
    near = neighbour_distance(embeddings, reference, neighbours["k"])
    if near <= neighbours["max_distance"]:
        return None
    return Reason(
        "out_of_distribution",
        "The face is unlike the faces the model was trained on (even the most similar of them are "
        f"farther away than for {neighbours['quantile']:.0%} of the faces it was checked on), so its "
        "score says little.",
    )
