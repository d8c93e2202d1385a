"""From a file to a verdict: the production path the site, the CLI and the benchmarks all call.

image: detect every face -> crop -> image model (with a flipped view) -> calibrated probability per face.
video: sample frames -> detect -> link into face tracks -> CNN embeddings per frame -> LSTM per track;
the clip is as suspicious as its most suspicious track. Per-frame image scores make the timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TypedDict

import cv2
import numpy as np
import torch

from ml.clip_model import ClipDetector, ClipScores
from ml.errors import MediaError, MissingWeightsError
from ml.faces import (
    DEFAULT_DETECTOR,
    VIDEO_DETECT_MAX_SIDE,
    FaceBox,
    FaceDetector,
    crop_face,
    get_detector,
)
from ml.features import track_steps
from ml.gradcam import grad_cam, overlay
from ml.media import DEFAULT_FRAMES, MediaInfo, load_image, prefetch, probe, sample_frames
from ml.metrics import sigmoid
from ml.models import embed_batched, fold_batchnorm
from ml.onnx_embedder import make_onnx_embedder
from ml.photo_mix import PhotoMix
from ml.registry import (
    ModelCard,
    default_ref,
    find_card,
    has_default,
    load_clip_model,
    load_image_model,
    load_video_model,
    mix_problems,
)
from ml.results import AnalysisResult, FaceArtifacts, FaceResult, TimelinePoint
from ml.runtime import configured_threads
from ml.tracking import DETECT_STRIDE, FaceTrack, build_tracks, detect_sparse
from ml.verdict import FaceEvidence

Progress = Callable[[str, float], None]
THUMBNAIL_SIZE = 224
# Crops per CNN forward on CPU. Small batches stay in cache: MobileNetV2 embeds ~100-140 crops/s in batches
# of 2-8 and ~50 in batches of 32, whose activations (32 x 96 x 112 x 112 floats...) spill out of it and
# add ~350 MB of peak memory (measured with benchmarks/levers.py).
CPU_EMBED_BATCH = 8
GPU_EMBED_BATCH = 32
# CLIP costs ~0.2 s a crop on 2 cores (MobileNetV2 ~0.01 s), so a video is scored on a few frames per track,
# spread evenly over it, with a cap on the whole clip (crowd scenes share it between tracks).
CLIP_FRAMES_PER_TRACK = 8
CLIP_FRAMES_PER_CLIP = 16


def _no_progress(stage: str, fraction: float) -> None:
    return None


class _Views(TypedDict, total=False):
    """A photo face's evidence beyond its score (FaceEvidence's keyword arguments)."""

    view_probabilities: list[float]
    embeddings: np.ndarray
    member_probabilities: dict[str, float]


@dataclass
class Detection:
    """One face in one sampled frame: its box (the very object the face tracks hold), the model input crop,
    and on the CNN path the image model's embedding of that crop."""

    box: FaceBox
    crop: np.ndarray
    embedding: torch.Tensor | None = None


def track_detections(track: FaceTrack, found: dict[int, list[Detection]]) -> list[Detection]:
    """A track's detections in its order, from each sampled frame's (`found`, by frame index)."""
    steps = zip(track.frame_indices, track.boxes, strict=True)
    return [next(d for d in found[frame] if d.box is box) for frame, box in steps]


@dataclass
class TrackResult:
    track: FaceTrack
    detections: list[Detection] = field(default_factory=list)  # one per step of the track
    frame_probs: list[float] = field(default_factory=list)
    fake_probability: float = 0.0
    scored_steps: list[int] = field(default_factory=list)  # which crops frame_probs are of
    features: np.ndarray | None = None  # CLIP path: the probe's input for each scored frame

    @property
    def scored_frames(self) -> list[int]:
        return [self.track.frame_indices[i] for i in self.scored_steps]

    @cached_property
    def crops(self) -> list[np.ndarray]:
        return [d.crop for d in self.detections]


class Analyser:
    """Holds the models (loaded once per process) and analyses files one at a time."""

    def __init__(
        self,
        image_model: str | None = None,
        video_model: str | None = None,
        detector: str = DEFAULT_DETECTOR,
        frames: int = DEFAULT_FRAMES,
        sampling: str = "uniform",
        device: str | None = None,
        heatmaps: bool = True,
        registry: Path | None = None,
        detect_stride: int = DETECT_STRIDE,
        runtime: str = "auto",
        clip_model: str | None = None,
        use_clip: bool = True,
        use_mix: bool = True,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if threads := configured_threads():
            torch.set_num_threads(threads)
        self.image_model, self.image_card = load_image_model(image_model, registry)
        # A registry holding only an image model (one just trained, say) still analyses photos; a video
        # then fails with the reason instead of the whole analyser failing to start.
        self.video_model: torch.nn.Module | None = None
        self.video_card: ModelCard | None = None
        self._video_missing: MissingWeightsError | None = None
        try:
            self.video_model, self.video_card = load_video_model(video_model, registry)
            self.video_model.to(self.device)
        except MissingWeightsError as exc:
            if video_model:
                raise
            self._video_missing = exc
        # The CLIP probe decides when one is registered (chosen by leave-one-source-out, see its card);
        # without it the fine-tuned CNN scores photos and the LSTM scores videos.
        self.clip, self.clip_card = None, None
        if use_clip and (clip_model or has_default("clip", registry)):
            self.clip, self.clip_card = load_clip_model(clip_model, registry)
        self.mix_card = self._load_mix(registry) if use_mix else None
        self.mix = PhotoMix.of_card(self.mix_card) if self.mix_card is not None else None
        self.image_model.to(self.device)
        fold_batchnorm(self.image_model)
        if self.device.type == "cpu":
            self.image_model = self.image_model.to(memory_format=torch.channels_last)
        if runtime not in ("auto", "torch", "onnxruntime"):
            raise ValueError(f"runtime must be auto, torch or onnxruntime, not {runtime!r}")
        self._onnx_embed = None
        if self.device.type == "cpu" and runtime != "torch":
            self._onnx_embed = make_onnx_embedder(self.image_model, self.image_card.input_size)
            if self._onnx_embed is None and runtime == "onnxruntime":
                raise RuntimeError("runtime='onnxruntime' asked for, but the ONNX export or Runtime failed")
        self.runtime = "onnxruntime" if self._onnx_embed is not None else "torch"
        self.detector = get_detector(detector)
        self.video_detector = get_detector(detector, VIDEO_DETECT_MAX_SIDE)
        self.frames = frames
        self.sampling = sampling
        self.heatmaps = heatmaps
        self.detect_stride = detect_stride
        self.embed_batch = CPU_EMBED_BATCH if self.device.type == "cpu" else GPU_EMBED_BATCH
        self.detector_runs = 0  # of the last video analysed (benchmarks report it)
        self.timings: dict[str, float] = {}

    def _load_mix(self, registry: Path | None) -> ModelCard | None:
        """The default mix card when it was fitted on the loaded probe and CNN: it then decides photos."""
        if self.clip_card is None or not has_default("mix", registry):
            return None
        card = find_card(default_ref("mix", registry), registry)
        loaded = {"clip": self.clip_card.ref, "image": self.image_card.ref}
        return card if mix_problems(card, loaded) == [] else None

    def deciding_card(self, video: bool) -> ModelCard:
        """The card of the model whose probability the verdict reads: for photos the mix when loaded, then
        the CLIP probe when loaded (`ml.registry.deciding_refs` says the same from the registry alone).

        Raises MissingWeightsError for a video when neither the CLIP probe nor a video model is loaded."""
        if not video and self.mix_card is not None:
            return self.mix_card
        card = self.clip_card or (self.video_card if video else self.image_card)
        if card is None:
            assert self._video_missing is not None  # set whenever the video model failed to load
            raise self._video_missing
        return card

    # ------------------------------------------------------------ shared pieces

    def _timed(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @contextmanager
    def _stage(self, stage: str) -> Iterator[None]:
        """Adds the seconds the block takes to timings[stage] (a stage may run many times per file)."""
        started = time.perf_counter()
        yield
        self._timed(stage, time.perf_counter() - started)

    def _embed(self, faces: list[np.ndarray]) -> torch.Tensor:
        """Pooled CNN features for a list of crops, batched."""
        return embed_batched(
            self._embed_batch, faces, self.image_card.input_size, self.device, self.embed_batch
        )

    def _embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        if self._onnx_embed is not None:
            return self._onnx_embed(x)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.image_model.embed(x)

    def _image_probs(self, emb: torch.Tensor) -> list[float]:
        with torch.inference_mode():
            return self.image_card.calibrated(self.image_model.classify_embedding(emb)).cpu().tolist()

    def _write_artifacts(self, face: np.ndarray, name: str, artifacts_dir: Path | None) -> FaceArtifacts:
        """Thumbnail and heatmap files of a face.

        The heatmap is Grad-CAM of the fine-tuned CNN whichever model decides: on forgeries with known
        edited pixels it puts 1.3-1.4x its share of weight on them, where the CLIP probe's patch map is no
        better than uniform (1.0x; `python -m benchmarks.heatmap`, recorded in the CLIP card)."""
        if artifacts_dir is None:
            return {}
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        thumb = f"{name}.jpg"
        write_image(
            artifacts_dir / thumb, cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        out: FaceArtifacts = {"thumbnail": thumb}
        if self.heatmaps and hasattr(self.image_model, "classify_embedding"):
            cam = grad_cam(self.image_model, face, self.image_card.input_size)
            heat = f"{name}_heatmap.png"
            write_image(artifacts_dir / heat, cv2.cvtColor(overlay(face, cam), cv2.COLOR_RGB2BGR))
            out["heatmap"] = heat
        return out

    # ------------------------------------------------------------ entry point

    def analyse(
        self, path: str | Path, artifacts_dir: Path | None = None, progress: Progress | None = None
    ) -> AnalysisResult:
        """Analyse one file; returns the stable result dict (see `ml predict --json`).

        Raises MediaError for files that are not analysable media.
        """
        progress = progress or _no_progress
        started = time.perf_counter()
        self.timings = {}
        path = Path(path)
        progress("probing", 0.0)
        info = probe(path)
        try:
            if info.kind == "image":
                result = self._analyse_image(path, info, artifacts_dir, progress)
            else:
                result = self._analyse_video(path, info, artifacts_dir, progress)
        except cv2.error as exc:
            # OpenCV fails on what a file contains (shapes, pixel formats), and does so again on a retry.
            raise MediaError("The file's pixels could not be processed; it may be damaged.") from exc
        result["seconds"] = round(time.perf_counter() - started, 3)
        result["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        progress("done", 1.0)
        return result

    def _result(
        self,
        path: Path,
        kind: str,
        card: ModelCard,
        prob: float | None,
        faces: list[FaceResult],
        timeline: list[TimelinePoint],
        evidence: Sequence[FaceEvidence] = (),
    ) -> AnalysisResult:
        rule = card.verdict_rule()
        # The one call that weighs the doubts (ml.verdict). Embeddings are the CLIP probe's input whenever
        # it takes part (alone or in the mix), else the image model's; each card holds its statistics.
        reads_clip = self.clip is not None and card in (self.clip_card, self.mix_card)
        reference = self._loaded_clip[0].reference if reads_clip else None
        stats = (self._loaded_clip[1] if reads_clip else card).embedding_stats
        judgement = rule.judge(evidence, stats or self.image_card.embedding_stats, reference)
        for face, reasons in zip(faces, judgement.face_reasons, strict=True):
            face["uncertain_reasons"] = [r.as_dict() for r in reasons]
        return {
            "path": str(path),
            "kind": kind,
            **judgement.as_result(),
            "fake_probability": None if prob is None else round(float(prob), 4),
            "model": card.ref,
            "faces": faces,
            "timeline": timeline,
            "threshold": rule.threshold,
            "uncertain_band": [rule.uncertain_low, rule.uncertain_high],
            "known_limits": card.known_limits,
            "seconds": 0.0,  # analyse() sets these two once the whole file is done
            "timings": {},
        }

    def _analyse_image(
        self, path: Path, info: MediaInfo, artifacts_dir: Path | None, progress: Progress
    ) -> AnalysisResult:
        with self._stage("decode"):
            rgb = load_image(path, info)  # probe() has validated it: decode once more, not twice
        progress("detecting faces", 0.2)
        with self._stage("detect"):
            boxes = self.detector.detect(rgb)
        card = self.deciding_card(video=False)
        if not boxes:
            return self._result(path, "image", card, None, [], [])
        progress("scoring faces", 0.5)
        with self._stage("crop"):
            size = self.image_card.input_size
            crops = [crop_face(rgb, b, size) for b in boxes]
        if self.clip is not None:
            probs, views = self._clip_probs(crops)
        else:
            probs, views = self._cnn_photo_probs(crops)
        progress("writing results", 0.8)
        with self._stage("write"):
            faces: list[FaceResult] = []
            for i, (box, crop, p, view) in enumerate(zip(boxes, crops, probs, views, strict=True)):
                face: FaceResult = {
                    "track": i,
                    "box": box.as_list(),
                    "frames": [0],
                    "fake_probability": round(p, 4),
                    **self._write_artifacts(crop, f"face_{i}", artifacts_dir),
                    "uncertain_reasons": [],  # _result fills them in
                }
                if "member_probabilities" in view:  # how the photo mix formed the score, for the page
                    members = view["member_probabilities"]
                    face["member_probabilities"] = {name: round(q, 4) for name, q in members.items()}
                faces.append(face)
        evidence = [
            FaceEvidence(p, box.w, box.h, crop, **view)
            for box, crop, p, view in zip(boxes, crops, probs, views, strict=True)
        ]
        return self._result(path, "image", card, max(probs), faces, [], evidence)

    def _cnn_view_logits(self, crops: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine-tuned CNN's raw logits of each crop and of its mirror image ([2, n]), and embeddings."""
        with self._stage("cnn"):
            emb = self._embed(crops + [np.ascontiguousarray(c[:, ::-1]) for c in crops])
            with torch.inference_mode():
                view_logits = self.image_model.classify_embedding(emb).float().view(2, len(crops))
        return view_logits, emb

    def _cnn_photo_probs(self, crops: list[np.ndarray]) -> tuple[list[float], list[_Views]]:
        """The fine-tuned CNN's calibrated probability per crop, averaged with its mirror image's logit;
        and per crop both views' probabilities and embeddings (what ml.uncertainty weighs)."""
        view_logits, emb = self._cnn_view_logits(crops)
        probs = self.image_card.calibrated(view_logits.mean(0)).cpu().tolist()
        view_probs = self.image_card.calibrated(view_logits).T.cpu().tolist()
        view_emb = emb.view(2, len(crops), -1).cpu().numpy()
        views: list[_Views] = [
            {"view_probabilities": vp, "embeddings": view_emb[:, i]} for i, vp in enumerate(view_probs)
        ]
        return probs, views

    @property
    def _loaded_clip(self) -> tuple[ClipDetector, ModelCard]:
        """The CLIP probe and its card: the paths that call this run only when one is loaded."""
        assert self.clip is not None and self.clip_card is not None, "no CLIP probe is loaded"
        return self.clip, self.clip_card

    def _clip_scores(self, crops: list[np.ndarray]) -> ClipScores:
        with self._stage("clip"):
            return self._loaded_clip[0].score(crops)

    def _clip_probs(self, crops: list[np.ndarray]) -> tuple[list[float], list[_Views]]:
        """The calibrated probability per crop, the CLIP probe's or, when loaded, the photo mix's; and per
        crop the probe's features and, with the mix, each member's own calibrated probability."""
        scores = self._clip_scores(crops)
        clip_logits = np.asarray(scores.logits, np.float64) / self._loaded_clip[1].temperature
        views: list[_Views] = [{"embeddings": scores.features[i : i + 1]} for i in range(len(crops))]
        if self.mix is None:
            return sigmoid(clip_logits).tolist(), views
        view_logits, _ = self._cnn_view_logits(crops)
        cnn_logits = view_logits.mean(0).double().cpu().numpy() / self.image_card.temperature
        for view, p_clip, p_cnn in zip(views, sigmoid(clip_logits), sigmoid(cnn_logits), strict=True):
            view["member_probabilities"] = {"CLIP probe": float(p_clip), "fine-tuned CNN": float(p_cnn)}
        return self.mix.probabilities(clip_logits, cnn_logits).tolist(), views

    def _analyse_video(
        self, path: Path, info: MediaInfo, artifacts_dir: Path | None, progress: Progress
    ) -> AnalysisResult:
        card = self.deciding_card(video=True)  # raises if no model can score a video
        detections, found, times = self._detect_video(path, info, progress)
        tracks = build_tracks(detections)
        if not tracks:
            return self._result(path, "video", card, None, [], [])
        progress("scoring faces", 0.7)
        results = [TrackResult(track, track_detections(track, found)) for track in tracks]
        if self.clip is not None:
            self._score_tracks_clip(results)
        else:
            self._score_tracks_lstm(results)
        progress("writing results", 0.9)
        with self._stage("write"):
            faces = [self._video_face(tr, artifacts_dir) for tr in results]
            timeline = video_timeline(results, times)
        clip = max(tr.fake_probability for tr in results)
        evidence = [track_evidence(tr) for tr in results]
        result = self._result(path, "video", card, clip, faces, timeline, evidence)
        result["video_score"] = "frame_mean" if self.clip is not None else "sequence_model"
        return result

    def _detect_video(
        self, path: Path, info: MediaInfo, progress: Progress
    ) -> tuple[list[tuple[int, list[FaceBox]]], dict[int, list[Detection]], dict[int, float]]:
        """Sampled frames -> face boxes (sparse detection) for build_tracks, each frame's Detections (crops
        and, CNN path, embeddings) by frame index, and each frame's time.

        Frames are decoded ahead in a background thread while this one detects and embeds faces; the
        detector runs on a subset of them (detect_sparse) and is timed where it runs, so "decode" is what
        is left of waiting for the next frame.
        """
        size = self.image_card.input_size
        detections: list[tuple[int, list[FaceBox]]] = []
        found: dict[int, list[Detection]] = {}
        unembedded: list[Detection] = []
        times: dict[int, float] = {}
        embed_all = self.clip is None  # the CLIP path scores a few chosen crops per track, later

        def embed_pending() -> None:
            with self._stage("cnn"):
                if unembedded:
                    embeddings = self._embed([d.crop for d in unembedded])
                    for detection, embedding in zip(unembedded, embeddings, strict=True):
                        detection.embedding = embedding
                    unembedded.clear()

        frames = prefetch(sample_frames(path, self.frames, self.sampling, info=info))
        n_expected = max(1, min(self.frames, info.frame_count))
        stream = detect_sparse(frames, _TimedDetector(self.video_detector, self._timed), self.detect_stride)
        self.detector_runs = 0
        while True:
            t = time.perf_counter()
            detect_before = self.timings.get("detect", 0.0)
            item = next(stream, None)
            # the detector is timed as it runs: the rest of the wait is for the decoder thread
            self._timed("decode", time.perf_counter() - t - (self.timings.get("detect", 0.0) - detect_before))
            if item is None:
                break
            frame, boxes, ran_detector = item
            self.detector_runs += ran_detector
            with self._stage("crop"):
                # crop now and drop the frame: memory stays flat however long the clip is
                found[frame.index] = [Detection(box, crop_face(frame.rgb, box, size)) for box in boxes]
                detections.append((frame.index, boxes))
                times[frame.index] = frame.time
            if embed_all:
                unembedded.extend(found[frame.index])
                if len(unembedded) >= self.embed_batch:
                    embed_pending()
            progress("detecting faces", 0.05 + 0.6 * len(detections) / n_expected)
        if embed_all:
            embed_pending()
        return detections, found, times

    def _score_tracks_lstm(self, results: list[TrackResult]) -> None:
        """CNN probability of every frame, and the LSTM's over each whole track."""
        with self._stage("cnn"):
            emb = torch.stack([d.embedding for tr in results for d in tr.detections])
            frame_probs = self._image_probs(emb)
        model, card = self.video_model, self.video_card
        assert model is not None and card is not None  # deciding_card has checked there is one
        offset = 0
        with self._stage("lstm"), torch.inference_mode():
            for tr in results:
                n = len(tr.crops)
                tr.frame_probs = frame_probs[offset : offset + n]
                tr.scored_steps = list(range(n))
                logit = model(emb[offset : offset + n][None])
                tr.fake_probability = float(card.calibrated(logit)[0])
                offset += n

    def _score_tracks_clip(self, results: list[TrackResult]) -> None:
        """CLIP probe on a few frames per track; the track's score is its frames' mean logit, calibrated.

        The timeline shows exactly these frames, so the chart and the clip verdict tell one story: the clip
        score is the mean of the points drawn, calibrated as they are (the card's video temperature), so
        it always lies between the lowest and the highest point and not beside them.
        """
        video_temperature = self._loaded_clip[1].video_temperature
        per_track = max(2, min(CLIP_FRAMES_PER_TRACK, CLIP_FRAMES_PER_CLIP // len(results)))
        for tr in results:
            tr.scored_steps = track_steps(len(tr.crops), per_track)
        crops = [tr.crops[i] for tr in results for i in tr.scored_steps]
        scores = self._clip_scores(crops)
        logits = scores.logits
        offset = 0
        for tr in results:
            n = len(tr.scored_steps)
            track_logits = logits[offset : offset + n]
            tr.features = scores.features[offset : offset + n]
            tr.frame_probs = calibrate(track_logits, video_temperature)
            tr.fake_probability = calibrate(np.array([track_logits.mean()]), video_temperature)[0]
            offset += n

    def _video_face(self, tr: TrackResult, artifacts_dir: Path | None) -> FaceResult:
        best = representative_step(tr)
        name = f"face_{tr.track.track_id}"
        return {
            "track": tr.track.track_id,
            "box": tr.track.boxes[best].as_list(),
            "frames": tr.track.frame_indices,
            "fake_probability": round(tr.fake_probability, 4),
            "frame_probabilities": [round(p, 4) for p in tr.frame_probs],
            "scored_frames": tr.scored_frames,
            **self._write_artifacts(tr.crops[best], name, artifacts_dir),
            "uncertain_reasons": [],  # _result fills them in
        }


def representative_step(tr: TrackResult) -> int:
    """The track's thumbnail: its best detection among the frames the chart shows (all, on the LSTM path)."""
    return tr.track.representative_index(tr.scored_steps or None)


def track_evidence(tr: TrackResult) -> FaceEvidence:
    """What ml.verdict weighs for a track: its representative face, its frames' scores and the deciding
    model's features of its scored frames (CLIP path) or the image model's embedding of every frame."""
    best = representative_step(tr)  # the face _video_face shows
    box = tr.track.boxes[best]
    rows = [d.embedding for d in tr.detections if d.embedding is not None]
    embeddings = torch.stack(rows).float().cpu().numpy() if rows else tr.features
    return FaceEvidence(tr.fake_probability, box.w, box.h, tr.crops[best], tr.frame_probs, (), embeddings)


def write_image(path: Path, bgr: np.ndarray, params: list[int] | None = None) -> None:
    """Encode and write an image file. cv2.imwrite only returns False on a full disk and may leave a
    truncated file that a face would then point at; this raises the OSError (ENOSPC) instead."""
    ok, encoded = cv2.imencode(path.suffix, bgr, params or [])
    if not ok:
        raise ValueError(f"OpenCV could not encode {path.name}")
    path.write_bytes(encoded.tobytes())


def calibrate(logits: np.ndarray, temperature: float) -> list[float]:
    """Calibrated probabilities sigmoid(logit / T) as plain floats."""
    return sigmoid(np.asarray(logits, np.float64) / temperature).tolist()


def video_timeline(results: list[TrackResult], times: dict[int, float]) -> list[TimelinePoint]:
    """One point per scored frame: the most suspicious face in it."""
    per_frame: dict[int, float] = {}
    for tr in results:
        for f, p in zip(tr.scored_frames, tr.frame_probs, strict=True):
            per_frame[f] = max(per_frame.get(f, 0.0), p)
    return [
        {"frame": f, "time": round(times[f], 3), "fake_probability": round(p, 4)}
        for f, p in sorted(per_frame.items())
    ]


class _TimedDetector:
    """A detector that reports the seconds each call takes to `record("detect", seconds)`."""

    def __init__(self, detector: FaceDetector, record: Callable[[str, float], None]):
        self.detector = detector
        self.name = detector.name
        self.record = record

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        t = time.perf_counter()
        try:
            return self.detector.detect(rgb)
        finally:
            self.record("detect", time.perf_counter() - t)


@cache
def get_analyser(**options) -> Analyser:
    """The process-wide analyser (models load once per worker process, not once per job)."""
    return Analyser(**options)


def analyse(
    path: str | Path, artifacts_dir: Path | None = None, progress: Progress | None = None
) -> AnalysisResult:
    """Analyse a photo or a video with the default models; see Analyser.analyse."""
    return get_analyser().analyse(path, artifacts_dir=artifacts_dir, progress=progress)
