"""Group per-frame face detections into tracks, one per person, so each is scored on its own."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.faces import FaceBox, iou


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

    def representative_box(self) -> FaceBox:
        """The most confident, largest detection: used for the thumbnail."""
        return max(self.boxes, key=lambda b: (b.score, b.area))


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
