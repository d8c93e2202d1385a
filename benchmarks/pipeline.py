"""End-to-end speed of the production pipeline against a naive baseline, on inputs built on the fly.

    python -m benchmarks.pipeline            # 10 s / 60 s / 5 min at 720p and 1080p, and a 12 MP photo
    python -m benchmarks.pipeline --quick    # only the 10 s 720p clip; last line is the headline numbers

Each input runs in a fresh spawned process that loads the models once (like a worker), warms up on a
small clip, then alternates production and naive runs. The naive baseline is what the published Django
ResNeXt+LSTM detector does: decode the first N frames in order, detect faces on every full-resolution
frame, push crops through the CNN one at a time, then the LSTM; same models, same detector network.

Peak RSS: per run, the kernel's high-water mark (VmHWM) reset through /proc/self/clear_refs before the
run (a sampling thread when that is not allowed); per input, the spawned process's ru_maxrss, which
includes loading the models and both pipelines. A fresh process per input is what makes the 10 s and
5 min peaks comparable.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("decode", "detect", "crop", "cnn", "lstm", "write")
HEADLINE_CASE = "720p-10s"
QUICK_CASES = (HEADLINE_CASE,)
WARMUP_CASE = "360p-2s"


# ------------------------------------------------------------------ memory


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class PeakRss:
    """Peak resident memory of this process over a block of code, in MB."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._kernel_hwm = self._reset_hwm()

    @staticmethod
    def _reset_hwm() -> bool:
        # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0): an exact peak, no sampling gaps.
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, _status_kb("VmRSS") / 1024)

    @contextmanager
    def measure(self) -> Iterator[PeakRss]:
        self._kernel_hwm = self._reset_hwm()
        self.peak_mb = _status_kb("VmRSS") / 1024
        sampler = None
        if not self._kernel_hwm:
            self._stop.clear()
            sampler = threading.Thread(target=self._sample, daemon=True)
            sampler.start()
        try:
            yield self
        finally:
            if sampler is not None:
                self._stop.set()
                sampler.join()
            if self._kernel_hwm:
                self.peak_mb = _status_kb("VmHWM") / 1024


def process_peak_rss_mb() -> float:
    """Lifetime peak of this process (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ naive baseline


class NaiveBaseline:
    """The published detector's way: first N frames in order, full-resolution detection, batch-1 CNN.

    Uses the same weights (the image model loaded again as stored, the analyser's LSTM) and the same
    RetinaFace network without the downscale, so the speed difference comes from how the pipeline works,
    not from different models.
    """

    def __init__(self, analyser, registry: Path | None = None):
        from ml.faces import DEFAULT_DETECTOR, DETECTORS
        from ml.registry import load_image_model

        self.analyser = analyser
        self.device = analyser.device
        # its own copy of the weights, as loaded from the registry: the analyser's is BatchNorm-folded
        # and channels_last, which are levers of the production pipeline
        self.image_model, _ = load_image_model(analyser.image_card.ref, registry)
        self.image_model.to(self.device)
        self.detector = DETECTORS[DEFAULT_DETECTOR](max_side=0)  # max_side=0: never downscale

    def reset_detector(self) -> None:
        """A fresh full-resolution detector session, outside the timed runs.

        ONNX Runtime's memory arena keeps the buffers of a full-resolution 12 MP input (hundreds of MB)
        after a call and grows with each new shape; left in place between the alternating runs it
        inflated the production run's RSS (1.0 -> 1.9 GB) and slowed its decoding (0.16 -> 0.44 s) on the
        photo. The published detector runs in its own process, so each naive run starts clean instead.
        """
        from ml.faces import DEFAULT_DETECTOR, DETECTORS

        self.detector = DETECTORS[DEFAULT_DETECTOR](max_side=0)

    def _timed(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - started
        return now

    def _cnn_one_by_one(self, crops: list) -> tuple[list, list[float]]:
        import torch

        from ml.transforms import to_tensor

        card = self.analyser.image_card
        embeddings, probs = [], []
        with torch.no_grad():
            for crop in crops:
                emb = self.image_model.embed(to_tensor(crop, card.input_size).to(self.device))
                embeddings.append(emb)
                probs.append(float(card.calibrated(self.image_model.classify_embedding(emb))[0]))
        return embeddings, probs

    def _clip_one_by_one(self, crops: list):
        """The CLIP probe's logit of each crop, one encoder call per crop (what a naive port would do)."""
        import numpy as np

        return np.array([self.analyser.clip.score([crop]).logits[0] for crop in crops])

    def _write(self, crop, name: str, artifacts_dir: Path) -> None:
        import cv2

        from ml.gradcam import grad_cam, overlay

        artifacts_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(artifacts_dir / f"{name}.jpg"),
            cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        if self.analyser.heatmaps:
            cam = grad_cam(self.image_model, crop, self.analyser.image_card.input_size)
            cv2.imwrite(
                str(artifacts_dir / f"{name}_heatmap.png"),
                cv2.cvtColor(overlay(crop, cam), cv2.COLOR_RGB2BGR),
            )

    def analyse(self, path: Path, artifacts_dir: Path) -> dict:
        from ml.media import probe

        self.timings = {}
        started = time.perf_counter()
        info = probe(path)
        if info.kind == "image":
            prob = self._analyse_image(path, artifacts_dir)
        else:
            prob = self._analyse_video(path, artifacts_dir)
        card = self.analyser.deciding_card(video=info.kind == "video")
        return {
            "fake_probability": None if prob is None else round(prob, 4),
            "verdict": card.verdict_rule().side(prob),  # the naive baseline weighs no doubts
            "seconds": time.perf_counter() - started,
            "timings": dict(self.timings),
        }

    def _analyse_image(self, path: Path, artifacts_dir: Path) -> float | None:
        import numpy as np
        import torch

        from ml.faces import crop_face
        from ml.media import load_image

        t = time.perf_counter()
        rgb = load_image(path)
        t = self._timed("decode", t)
        boxes = self.detector.detect(rgb)
        t = self._timed("detect", t)
        if not boxes:
            return None
        crops = [crop_face(rgb, b, self.analyser.image_card.input_size) for b in boxes]
        t = self._timed("crop", t)
        if self.analyser.clip is not None:  # the same model as production, one crop per call
            from ml.pipeline import calibrate

            probs = calibrate(self._clip_one_by_one(crops), self.analyser.clip_card.temperature)
            t = self._timed("clip", t)
            self._write_all(crops, artifacts_dir, t)
            return max(probs)
        # the same test-time augmentation as production (crop and mirror, logits averaged), one at a time
        embeddings, _ = self._cnn_one_by_one(crops + [np.ascontiguousarray(c[:, ::-1]) for c in crops])
        with torch.no_grad():
            logits = self.image_model.classify_embedding(torch.cat(embeddings)).view(2, len(crops)).mean(0)
            probs = self.analyser.image_card.calibrated(logits).tolist()
        t = self._timed("cnn", t)
        self._write_all(crops, artifacts_dir, t)
        return max(probs)

    def _write_all(self, crops: list, artifacts_dir: Path, started: float) -> None:
        for i, crop in enumerate(crops):
            self._write(crop, f"face_{i}", artifacts_dir)
        self._timed("write", started)

    def _analyse_video(self, path: Path, artifacts_dir: Path) -> float | None:
        import cv2
        import torch

        from ml.faces import crop_face
        from ml.tracking import build_tracks

        size = self.analyser.image_card.input_size
        detections, crop_of = [], {}
        cap = cv2.VideoCapture(str(path))
        try:
            t = time.perf_counter()
            for index in range(self.analyser.frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                t = self._timed("decode", t)
                boxes = self.detector.detect(rgb)
                t = self._timed("detect", t)
                for box in boxes:
                    crop_of[id(box)] = crop_face(rgb, box, size)
                detections.append((index, boxes))
                t = self._timed("crop", t)
        finally:
            cap.release()
        tracks = build_tracks(detections)
        if not tracks:
            return None
        t = time.perf_counter()
        if self.analyser.clip is not None:  # every frame of every track through CLIP, one at a time
            from ml.pipeline import calibrate

            card = self.analyser.clip_card
            track_logits = [self._clip_one_by_one([crop_of[id(b)] for b in track.boxes]) for track in tracks]
            t = self._timed("clip", t)
            self._write_all([crop_of[id(track.representative_box())] for track in tracks], artifacts_dir, t)
            return max(calibrate([logits.mean()], card.video_temperature)[0] for logits in track_logits)
        per_track = [self._cnn_one_by_one([crop_of[id(b)] for b in track.boxes]) for track in tracks]
        t = self._timed("cnn", t)
        track_probs = []
        with torch.no_grad():
            for embeddings, _ in per_track:
                logit = self.analyser.video_model(torch.cat(embeddings)[None])
                track_probs.append(float(self.analyser.video_card.calibrated(logit)[0]))
        t = self._timed("lstm", t)
        for track in tracks:
            best = track.representative_box()
            self._write(crop_of[id(best)], f"face_{track.track_id}", artifacts_dir)
        self._timed("write", t)
        return max(track_probs)


# ------------------------------------------------------------------ one input, in a fresh process


@dataclass(frozen=True)
class CaseRequest:
    name: str
    path: str
    warmup_video: str
    warmup_photo: str
    frames: int
    rounds: int
    device: str
    registry: str | None
    scratch: str
    no_clip: bool = False  # the fast path: the fine-tuned CNN and the LSTM decide


@dataclass
class Run:
    pipeline: str  # "production" | "naive" | "production-first"
    wall_s: float
    timings: dict[str, float]
    peak_rss_mb: float
    fake_probability: float | None
    verdict: str
    detector_runs: int | None = None  # production videos: frames the face detector ran on


@dataclass
class CaseResult:
    name: str
    kind: str
    duration_s: float
    load_s: float
    process_peak_rss_mb: float
    runs: list[Run] = field(default_factory=list)
    cnn_runtime: str = "torch"

    def median(self, pipeline: str) -> Run:
        """The run with the median wall time of that pipeline (a real run, so its stages add up)."""
        runs = sorted((r for r in self.runs if r.pipeline == pipeline), key=lambda r: r.wall_s)
        return runs[(len(runs) - 1) // 2]

    def has(self, pipeline: str) -> bool:
        return any(r.pipeline == pipeline for r in self.runs)


def run_case(request: CaseRequest) -> CaseResult:
    """Body of the spawned process: load once, warm up, alternate production and naive runs."""
    from ml.media import probe
    from ml.pipeline import Analyser

    registry = Path(request.registry) if request.registry else None
    started = time.perf_counter()
    analyser = Analyser(
        frames=request.frames, device=request.device, registry=registry, use_clip=not request.no_clip
    )
    naive = NaiveBaseline(analyser, registry)
    load_s = time.perf_counter() - started
    scratch = Path(request.scratch)
    info = probe(request.path)
    warmup = request.warmup_photo if info.kind == "image" else request.warmup_video
    # A worker has served jobs before: first-call costs (allocators, oneDNN primitives) are not per job.
    analyser.analyse(warmup, artifacts_dir=scratch / "warmup-production")
    naive.analyse(Path(warmup), scratch / "warmup-naive")
    naive.reset_detector()

    peak = PeakRss()
    result = CaseResult(request.name, info.kind, info.duration, load_s, 0.0, cnn_runtime=analyser.runtime)

    def measure(pipeline: str, call: Callable[[Path], dict]) -> None:
        out_dir = scratch / f"{pipeline}-{len(result.runs)}"
        with peak.measure():
            t = time.perf_counter()
            out = call(out_dir)
            wall = time.perf_counter() - t
        result.runs.append(
            Run(
                pipeline,
                wall,
                {k: float(v) for k, v in out["timings"].items()},
                peak.peak_mb,
                out["fake_probability"],
                out["verdict"],
                analyser.detector_runs if pipeline.startswith("prod") and info.kind == "video" else None,
            )
        )

    for _ in range(request.rounds):
        measure("production", lambda d: analyser.analyse(request.path, artifacts_dir=d))
        measure("naive", lambda d: naive.analyse(Path(request.path), d))
        naive.reset_detector()
    if info.kind == "video":
        # The same frames as the naive baseline (the first N), to check the verdict is unchanged.
        analyser.sampling = "first"
        measure("production-first", lambda d: analyser.analyse(request.path, artifacts_dir=d))
    result.process_peak_rss_mb = process_peak_rss_mb()
    return result


def run_in_fresh_process(request: CaseRequest) -> CaseResult:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_case, request).result()


# ------------------------------------------------------------------ report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_header() -> str:
    stages = " ".join(f"{s:>7}" for s in (*STAGES, "other"))
    return (
        f"{'input':<11} {'pipeline':<16} {'wall_s':>7} {'s/s':>6} {stages} "
        f"{'rss_mb':>7} {'p_fake':>6}  verdict"
    )


def table_row(case: CaseResult, run: Run) -> str:
    per_second = run.wall_s / case.duration_s if case.duration_s else None
    stages = [run.timings.get(s, 0.0) for s in STAGES]
    other = max(0.0, run.wall_s - sum(stages))  # probe, tracking, Python between stages
    cells = " ".join(f"{v:7.3f}" for v in (*stages, other))
    return (
        f"{case.name:<11} {run.pipeline:<16} {run.wall_s:7.3f} {_fmt(per_second):>6} {cells} "
        f"{run.peak_rss_mb:7.0f} {_fmt(run.fake_probability, 4):>6}  {run.verdict}"
    )


def case_summary(case: CaseResult) -> list[str]:
    prod, naive = case.median("production"), case.median("naive")
    lines = [
        f"{case.name:<11} speedup vs naive {naive.wall_s / prod.wall_s:.2f}x (median of "
        f"{sum(r.pipeline == 'production' for r in case.runs)} alternating runs); model load "
        f"{case.load_s:.2f} s once per worker; process peak RSS {case.process_peak_rss_mb:.0f} MB; "
        f"production CNN on {case.cnn_runtime}"
    ]
    if prod.detector_runs is not None:
        lines.append(
            f"{case.name:<11} production ran the face detector on {prod.detector_runs} sampled frames "
            "(boxes interpolated on the others); naive on every frame"
        )
    if case.has("production-first") and naive.fake_probability is not None:
        first = case.median("production-first")
        if first.fake_probability is not None:
            delta = abs(first.fake_probability - naive.fake_probability)
            lines.append(
                f"{case.name:<11} same frames (first N): production p={first.fake_probability:.4f} "
                f"{first.verdict}, naive p={naive.fake_probability:.4f} {naive.verdict}, |dp|={delta:.4f} "
                f"({'OK' if delta <= 0.02 and first.verdict == naive.verdict else 'DIFFERENT'}); "
                f"production uniform sampling p={_fmt(prod.fake_probability, 4)} {prod.verdict}"
            )
    return lines


def headline(case: CaseResult) -> str:
    prod, naive = case.median("production"), case.median("naive")
    per_second = prod.wall_s / case.duration_s if case.duration_s else prod.wall_s
    return (
        f"video_seconds_per_second={per_second:.3f} speedup_vs_naive={naive.wall_s / prod.wall_s:.2f} "
        f"peak_rss_mb={case.process_peak_rss_mb:.0f}"
    )


def scaling_summary(results: dict[str, CaseResult]) -> list[str]:
    """Time and memory against clip length at each resolution: both should stay flat past the budget."""
    lines = []
    for res in ("720p", "1080p"):
        cases = [results[n] for n in (f"{res}-10s", f"{res}-60s", f"{res}-5min") if n in results]
        if len(cases) < 2:
            continue
        walls = ", ".join(f"{c.name} {c.median('production').wall_s:.2f} s" for c in cases)
        rss = ", ".join(f"{c.process_peak_rss_mb:.0f}" for c in cases)
        lines.append(f"{res}: production wall {walls}; process peak RSS MB {rss}")
    return lines


# ------------------------------------------------------------------ main


def one_keyframe_sampling(path: Path, frames: int, scratch: Path) -> str:
    """Sampling cost of the clip as encoded and of the same packets indexed with a single keyframe, the
    worst GOP an upload can have (issue 12: 57 s for a 170 s 1080p clip before the decode bound)."""
    import cv2

    from ml.media import MAX_DECODE_MEGAPIXELS, probe, sample_frames
    from ml.synthetic_inputs import ENCODER_KEY_INTERVAL, remux_key_interval

    frame_count = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    whole_clip = ENCODER_KEY_INTERVAL * (frame_count // ENCODER_KEY_INTERVAL + 1)
    scratch.mkdir(parents=True, exist_ok=True)
    single = remux_key_interval(path, scratch / f"{path.stem}-one-keyframe{path.suffix}", whole_clip)
    seconds = []
    try:
        for clip in (path, single):
            info = probe(clip)
            started = time.perf_counter()
            sampled = sum(1 for _ in sample_frames(clip, frames, info=info))
            seconds.append((time.perf_counter() - started, sampled))
    finally:
        single.unlink(missing_ok=True)
    (encoded, n_encoded), (one_key, n_one_key) = seconds
    return (
        f"# sampling {path.stem}: {n_encoded} frames in {encoded:.2f} s as encoded, {n_one_key} frames in "
        f"{one_key:.2f} s with one keyframe (decode bound {MAX_DECODE_MEGAPIXELS} MP a video)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.inputs import DEFAULT_CASES
    from ml.synthetic_inputs import DEFAULT_KEY_INTERVAL, SPECS

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help=f"only the {HEADLINE_CASE} clip")
    parser.add_argument(
        "--cases", nargs="+", choices=sorted(SPECS), help=f"default: {' '.join(DEFAULT_CASES)}"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--frames", type=int, default=None, help="frame budget (default: the pipeline's)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="alternating production/naive runs per input (default 3, 1 for 5 min clips)",
    )
    parser.add_argument(
        "--key-interval",
        type=int,
        default=DEFAULT_KEY_INTERVAL,
        help="frames between keyframes in the generated videos (multiple of 12)",
    )
    parser.add_argument(
        "--registry", type=Path, default=None, help="model registry folder (default: the shipped one)"
    )
    parser.add_argument(
        "--no-clip", action="store_true", help="measure the fast path (CNN + LSTM) instead of the CLIP probe"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep inputs here and reuse them (default: a temporary folder, deleted)",
    )
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available on this machine")
    args.cases = list(QUICK_CASES if args.quick else (args.cases or DEFAULT_CASES))
    return args


def main(argv: list[str] | None = None) -> int:
    from ml.pipeline import DEFAULT_FRAMES
    from ml.synthetic_inputs import SPECS, InputSpec, build_input, write_photo

    args = parse_args(argv)
    frames = args.frames or DEFAULT_FRAMES
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        inputs_dir = args.workdir or Path(tmp) / "inputs"
        inputs_dir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        warmup_video = build_input(SPECS[WARMUP_CASE], inputs_dir, args.key_interval)
        warmup_photo = inputs_dir / "warmup-photo.jpg"
        if not warmup_photo.is_file():
            write_photo(warmup_photo, InputSpec("warmup-photo", 1024, 768))
        paths = {name: build_input(SPECS[name], inputs_dir, args.key_interval) for name in args.cases}
        print(
            f"# inputs built in {time.perf_counter() - t:.1f} s in {inputs_dir} (keyframe every "
            f"{args.key_interval} frames); device={args.device} frames={frames} "
            f"cpus={len(os.sched_getaffinity(0))} load_avg_1min={os.getloadavg()[0]:.2f}",
            flush=True,
        )
        print(table_header(), flush=True)
        results: dict[str, CaseResult] = {}
        for name in args.cases:
            spec = SPECS[name]
            rounds = args.rounds or (1 if spec.seconds > 60 else 3)
            scratch = Path(tmp) / f"scratch-{name}"
            request = CaseRequest(
                name,
                str(paths[name]),
                str(warmup_video),
                str(warmup_photo),
                frames,
                rounds,
                args.device,
                str(args.registry) if args.registry else None,
                str(scratch),
                args.no_clip,
            )
            case = run_in_fresh_process(request)
            results[name] = case
            for run in case.runs:
                print(table_row(case, run), flush=True)
            for line in case_summary(case):
                print(line, flush=True)
            if case.kind == "video":
                print(one_keyframe_sampling(paths[name], frames, scratch), flush=True)
            if args.workdir is None and name != WARMUP_CASE:
                paths[name].unlink(missing_ok=True)  # a 5 min 1080p clip is hundreds of MB
        for line in scaling_summary(results):
            print(line)
    videos = [results[n] for n in args.cases if results[n].kind == "video"]
    if not videos:
        return 0
    print(headline(results.get(HEADLINE_CASE, videos[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
