"""Group per-frame face detections into tracks, one per person, so each is scored on its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ml.faces import FaceBox, FaceDetector, iou
from ml.media import Frame

# Sampled frames between two detector runs in `detect_sparse`. With 4 the detector runs on 0.35 of the
# sampled frames of the ../shared/data val/test clips, and the face count differs from detecting every
# frame on 3 of 1184 frames (benchmarks/detectors.py --sparse); a fast pan like the benchmark clip's still
# needs it on most frames.
DETECT_STRIDE = 4
# Two detections "agree" when every face in one overlaps its match in the other at least this much; only
# then are the frames between them given interpolated boxes instead of a detector run.
AGREE_IOU = 0.6
# A single frame between two detections is interpolated when each face moved at most this many face sizes
# (and kept its size): the middle of a smooth pan is where its ends say, even when the ends barely overlap.
# On the clip of a person walking, 1.0 put the boxes at mean IoU 0.80 of the dense ones, 0.5 at 0.85
# (all 37 clips: 0.92 either way); 0.5 still saves 6 of 30 detector runs on the benchmark's fast pan.
SINGLE_GAP_MAX_STEP = 0.5


@dataclass
class FaceTrack:
    """One person's face across the sampled frames, in time order."""

    track_id: int
    frame_indices: list[int] = field(default_factory=list)
    boxes: list[FaceBox] = field(default_factory=list)

    def add(self, frame_index: int, box: FaceBox) -> None:
        self.frame_indices.append(frame_index)
        self.boxes.append(box)

    @property
    def last_box(self) -> FaceBox:
        return self.boxes[-1]

    def __len__(self) -> int:
        return len(self.boxes)

    def representative_index(self, among: Iterable[int] | None = None) -> int:
        """Step of the most confident, largest detection (of the steps `among`): the thumbnail's."""
        steps = range(len(self.boxes)) if among is None else among
        return max(steps, key=lambda i: (self.boxes[i].score, self.boxes[i].area))

    def representative_box(self) -> FaceBox:
        return self.boxes[self.representative_index()]


def _match_cost(track_box: FaceBox, box: FaceBox) -> float:
    """Lower is a better match: 1 - IoU, or a centre-distance fallback for fast motion between samples."""
    overlap = iou(track_box, box)
    if overlap > 0:
        return 1.0 - overlap
    (ax, ay), (bx, by) = track_box.center, box.center
    scale = max(track_box.w, track_box.h, box.w, box.h, 1)
    dist = float(np.hypot(ax - bx, ay - by)) / scale
    return 1.0 + dist


def build_tracks(
    detections: list[tuple[int, list[FaceBox]]],
    max_cost: float = 1.6,
    min_track_fraction: float = 0.25,
) -> list[FaceTrack]:
    """Link detections frame to frame by greedy box matching.

    detections: (frame_index, boxes) in time order. A box joins the track whose last box it overlaps
    most (or whose centre is within ~0.6 face widths); otherwise it starts a new track. Tracks seen in
    fewer than `min_track_fraction` of the longest track's frames are dropped as spurious detections.
    """
    tracks: list[FaceTrack] = []
    for frame_index, boxes in detections:
        free = list(range(len(tracks)))
        pairs = sorted(
            ((_match_cost(tracks[t].last_box, b), t, i) for t in free for i, b in enumerate(boxes)),
            key=lambda p: p[0],
        )
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for cost, t, i in pairs:
            if cost > max_cost or t in used_tracks or i in used_boxes:
                continue
            tracks[t].add(frame_index, boxes[i])
            used_tracks.add(t)
            used_boxes.add(i)
        for i, box in enumerate(boxes):
            if i not in used_boxes:
                track = FaceTrack(track_id=len(tracks))
                track.add(frame_index, box)
                tracks.append(track)
    if not tracks:
        return []
    longest = max(len(t) for t in tracks)
    kept = [t for t in tracks if len(t) >= max(1, round(min_track_fraction * longest))]
    for new_id, track in enumerate(kept):
        track.track_id = new_id
    return kept


def match_boxes(
    a: list[FaceBox], b: list[FaceBox], min_iou: float = AGREE_IOU, max_step: float | None = None
) -> list[tuple[int, int]] | None:
    """Pair every box of `a` with one of `b` (greedy, best match first), or None when the frames disagree:
    a different number of faces, or a pair that is not the same face held steady.

    A pair agrees when it overlaps at least `min_iou`, or, with `max_step`, when its centres are at most
    `max_step` face sizes apart and its sizes within 20 % of each other (steady motion, however fast).
    """
    if len(a) != len(b):
        return None
    pairs = sorted((_match_cost(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b))
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i in used_a or j in used_b:
            continue
        if not _same_face(a[i], b[j], min_iou, max_step):
            return None
        used_a.add(i)
        used_b.add(j)
        matched.append((i, j))
    return sorted(matched)


def _same_face(x: FaceBox, y: FaceBox, min_iou: float, max_step: float | None) -> bool:
    if iou(x, y) >= min_iou:
        return True
    if max_step is None:
        return False
    size_x, size_y = max(x.w, x.h, 1), max(y.w, y.h, 1)
    (ax, ay), (bx, by) = x.center, y.center
    step = float(np.hypot(ax - bx, ay - by)) / max(size_x, size_y)
    return step <= max_step and min(size_x, size_y) / max(size_x, size_y) >= 0.8


def interpolate_box(a: FaceBox, b: FaceBox, t: float) -> FaceBox:
    """The box a fraction t of the way from a to b (landmarks too, when both have them)."""

    def lerp(u: float, v: float) -> float:
        return u + (v - u) * t

    landmarks = None
    if a.landmarks is not None and b.landmarks is not None and len(a.landmarks) == len(b.landmarks):
        pairs = zip(a.landmarks, b.landmarks, strict=True)
        landmarks = tuple((lerp(p[0], q[0]), lerp(p[1], q[1])) for p, q in pairs)
    return FaceBox(
        round(lerp(a.x, b.x)),
        round(lerp(a.y, b.y)),
        round(lerp(a.w, b.w)),
        round(lerp(a.h, b.h)),
        min(a.score, b.score),
        landmarks,
    )


_Detected = tuple[Frame, list[FaceBox]]
_Boxed = tuple[Frame, list[FaceBox], bool]  # a frame, its boxes, whether the detector ran on it


def detect_sparse(
    frames: Iterable[Frame], detector: FaceDetector, stride: int = DETECT_STRIDE
) -> Iterator[_Boxed]:
    """Face boxes for every frame, running the detector on as few frames as the motion allows.

    Yields (frame, boxes, detected) in order. The detector runs on every `stride`-th frame (and the last);
    when the detections at both ends of a gap agree (`match_boxes`; for a one-frame gap, steady motion is
    enough), the frames between get boxes interpolated in time, otherwise the gap is bisected: detect its
    middle frame and try each half again.
    A face that appears or leaves, or moves fast, is therefore always detected where it is. At most
    `stride` frames are held at once, so memory stays flat however long the clip is.
    """

    def detected(frame: Frame) -> _Detected:
        return frame, detector.detect(frame.rgb)

    def fill(left: _Detected, gap: list[Frame], right: _Detected) -> Iterator[_Boxed]:
        """Boxes for the frames strictly between two detected frames, in order."""
        if not gap:
            return
        pairs = match_boxes(left[1], right[1], max_step=SINGLE_GAP_MAX_STEP if len(gap) == 1 else None)
        if pairs is not None:
            span = max(1, right[0].index - left[0].index)
            for frame in gap:
                t = (frame.index - left[0].index) / span
                yield frame, [interpolate_box(left[1][i], right[1][j], t) for i, j in pairs], False
            return
        mid = len(gap) // 2
        middle = detected(gap[mid])
        yield from fill(left, gap[:mid], middle)
        yield (*middle, True)
        yield from fill(middle, gap[mid + 1 :], right)

    stride = max(1, stride)
    anchor: _Detected | None = None
    pending: list[Frame] = []
    for frame in frames:
        if anchor is None:
            anchor = detected(frame)
            yield (*anchor, True)
            continue
        pending.append(frame)
        if len(pending) == stride:
            right = detected(pending[-1])
            yield from fill(anchor, pending[:-1], right)
            yield (*right, True)
            anchor, pending = right, []
    if anchor is not None and pending:
        right = detected(pending[-1])
        yield from fill(anchor, pending[:-1], right)
        yield (*right, True)
