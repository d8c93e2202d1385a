"""Each speed lever of the pipeline measured on its own, to decide which ones to keep.

    python -m benchmarks.levers [--workdir DIR] [--registry DIR]

decode: grab()/retrieve() walk vs CAP_PROP_POS_FRAMES seeks, per clip length and resolution, and what one
seek and one grab cost (their ratio is the gap past which seeking wins: ml.media.SEEK_GAP_FRAMES).
detect: RetinaFace at several downscale sizes (does it still find the face, and how fast).
cnn: batch size, memory format, inference_mode vs no_grad, thread count, ONNX Runtime, torch.compile.
photo: decoding a 12 MP JPEG. write: thumbnail + Grad-CAM heatmap per face.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from ml.faces import FaceBox, RetinaFaceDetector, crop_face, iou
from ml.media import frame_indices, load_image, probe, sample_frames
from ml.models import fold_batchnorm
from ml.onnx_embedder import EmbedModule, OnnxEmbedder
from ml.pipeline import DEFAULT_FRAMES, Analyser
from ml.registry import load_image_model
from ml.synthetic_inputs import DEFAULT_KEY_INTERVAL, SPECS, build_input
from ml.transforms import to_tensor


def timeit(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median seconds of `repeat` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def lever_decode(paths: dict[str, Path], budget: int) -> None:
    print("\n## decode: sampling", budget, "frames uniformly (seconds per clip)")
    print(
        f"{'input':<11} {'frames':>6} {'gap':>5} {'grab':>7} {'seek':>7} {'auto':>7}  "
        f"{'ms/grab':>7} {'ms/seek':>7} {'crossover_gap':>13}"
    )
    for name, path in paths.items():
        info = probe(path)
        if info.kind != "video":
            continue
        wanted = frame_indices(info.frame_count, budget)
        gap = (wanted[-1] - wanted[0]) / max(1, len(wanted) - 1)
        timings = {}
        for strategy in ("grab", "seek", "auto"):

            def decode(s: str = strategy, p: Path = path, i=info) -> int:
                return sum(1 for _ in sample_frames(p, budget, strategy=s, info=i))

            timings[strategy] = timeit(decode, repeat=1 if info.duration > 60 else 2, warmup=0)
        # the cost of one grab() (decode without colour conversion) and of one seek + read
        per_grab = timings["grab"] / max(1, wanted[-1] + 1)
        per_seek = timings["seek"] / len(wanted)
        print(
            f"{name:<11} {info.frame_count:>6} {gap:>5.0f} {timings['grab']:>7.2f} {timings['seek']:>7.2f} "
            f"{timings['auto']:>7.2f}  {per_grab * 1e3:>7.2f} {per_seek * 1e3:>7.1f} "
            f"{per_seek / per_grab:>13.0f}"
        )


def lever_detect(paths: dict[str, Path]) -> None:
    print("\n## detect: RetinaFace on one frame at several detector input sizes (ms; IoU vs full resolution)")
    print(f"{'input':<11} {'max_side':>8} {'ms':>7} {'faces':>5} {'iou':>5}")
    for name in ("720p-10s", "1080p-10s"):
        if name not in paths:
            continue
        frame = next(iter(sample_frames(paths[name], 1))).rgb
        reference: list[FaceBox] = []
        for max_side in (0, 960, 640, 480, 320):
            detector = RetinaFaceDetector(max_side=max_side)
            seconds = timeit(lambda d=detector, f=frame: d.detect(f), repeat=5)
            boxes = detector.detect(frame)
            if max_side == 0:
                reference = boxes
            overlap = iou(boxes[0], reference[0]) if boxes and reference else 0.0
            print(f"{name:<11} {max_side or 'full':>8} {seconds * 1e3:>7.1f} {len(boxes):>5} {overlap:>5.2f}")


def lever_cnn(analyser: Analyser, crops: list[np.ndarray], registry: Path | None) -> None:
    print(f"\n## cnn: {analyser.image_card.arch} embeddings of {len(crops)} face crops (crops/s)")
    # the weights as stored (the analyser's copy is already BatchNorm-folded, one of the levers)
    stored, _ = load_image_model(analyser.image_card.ref, registry)
    model_nchw = stored
    model_cl = copy.deepcopy(stored).to(memory_format=torch.channels_last)
    model_folded = fold_batchnorm(copy.deepcopy(stored)).to(memory_format=torch.channels_last)
    size = analyser.image_card.input_size
    x = to_tensor(crops, size)

    def embed(model: torch.nn.Module, batch: int, channels_last: bool, mode: str) -> None:
        ctx = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
        with ctx:
            for s in range(0, len(x), batch):
                xb = x[s : s + batch]
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                model.embed(xb)

    threads = torch.get_num_threads()
    print(f"{'variant':<44} {'crops/s':>8}")
    for label, model, batch, cl, mode in (
        ("batch 1, NCHW, no_grad (naive)", model_nchw, 1, False, "no_grad"),
        ("batch 1, channels_last, inference_mode", model_cl, 1, True, "inference_mode"),
        ("batch 8, NCHW, inference_mode", model_nchw, 8, False, "inference_mode"),
        ("batch 2, channels_last, inference_mode", model_cl, 2, True, "inference_mode"),
        ("batch 4, channels_last, inference_mode", model_cl, 4, True, "inference_mode"),
        ("batch 8, channels_last, inference_mode", model_cl, 8, True, "inference_mode"),
        ("batch 32, NCHW, no_grad", model_nchw, 32, False, "no_grad"),
        ("batch 32, NCHW, inference_mode", model_nchw, 32, False, "inference_mode"),
        ("batch 32, channels_last, inference_mode (old)", model_cl, 32, True, "inference_mode"),
        ("batch 16, channels_last, inference_mode", model_cl, 16, True, "inference_mode"),
        ("batch 4, BN folded, channels_last", model_folded, 4, True, "inference_mode"),
        ("batch 8, BN folded, channels_last (prod)", model_folded, 8, True, "inference_mode"),
        ("batch 32, BN folded, channels_last", model_folded, 32, True, "inference_mode"),
    ):
        seconds = timeit(lambda m=model, b=batch, c=cl, md=mode: embed(m, b, c, md))
        print(f"{label:<44} {len(crops) / seconds:>8.1f}")
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        seconds = timeit(lambda: embed(model_folded, 8, True, "inference_mode"))
        print(f"{f'batch 8, BN folded, channels_last, {n} thread(s)':<44} {len(crops) / seconds:>8.1f}")
    torch.set_num_threads(threads)
    _cnn_onnxruntime(model_nchw, x, threads)
    _cnn_compiled(model_cl, x)


def _cnn_onnxruntime(model: torch.nn.Module, x: torch.Tensor, threads: int) -> None:
    label = "batch 8, ONNX Runtime (CPU EP, production)"
    try:
        t = time.perf_counter()
        embedder = OnnxEmbedder(model, x.shape[-1], threads)
        setup = time.perf_counter() - t
        seconds = timeit(lambda: [embedder(x[s : s + 8]) for s in range(0, len(x), 8)])
        print(f"{label:<44} {len(x) / seconds:>8.1f}  (export + session {setup:.1f} s)")
    except Exception as exc:  # noqa: BLE001 - a lever we cannot try is reported, not fatal
        print(f"{label:<44} {'n/a':>8}  ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")


def _cnn_compiled(model: torch.nn.Module, x: torch.Tensor) -> None:
    label = "batch 32, channels_last, torch.compile"
    try:
        compiled = torch.compile(EmbedModule(model).eval())
        xc = x.contiguous(memory_format=torch.channels_last)
        t = time.perf_counter()
        with torch.inference_mode():
            compiled(xc[:32])
        setup = time.perf_counter() - t

        def run() -> None:
            with torch.inference_mode():
                for s in range(0, len(xc), 32):
                    compiled(xc[s : s + 32])

        seconds = timeit(run)
        print(f"{label:<44} {len(x) / seconds:>8.1f}  (first call compiles: {setup:.1f} s)")
    except Exception as exc:  # noqa: BLE001
        print(f"{label:<44} {'n/a':>8}  ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")


def lever_lstm_and_write(analyser: Analyser, crops: list[np.ndarray], out_dir: Path) -> None:
    print("\n## lstm and write-out (ms)")
    with torch.inference_mode():
        emb = analyser.image_model.embed(
            to_tensor(crops, analyser.image_card.input_size).contiguous(memory_format=torch.channels_last)
        )
        seconds = timeit(lambda: analyser.video_model(emb[None]), repeat=5)
    print(f"LSTM over a {len(crops)}-frame track: {seconds * 1e3:.1f}")
    seconds = timeit(lambda: analyser._write_artifacts(crops[0], "face", out_dir), repeat=3)
    print(f"thumbnail + Grad-CAM heatmap for one face: {seconds * 1e3:.1f}")


def lever_photo(path: Path) -> None:
    from PIL import Image

    print("\n## photo: decoding a 12 MP JPEG (ms)")
    print(f"load_image (PIL, full size, EXIF transpose): {timeit(lambda: load_image(path)) * 1e3:.0f}")
    print(f"cv2.imread (full size): {timeit(lambda: cv2.imread(str(path))) * 1e3:.0f}")

    def draft() -> np.ndarray:
        with Image.open(path) as img:
            img.draft("RGB", (img.width // 2, img.height // 2))
            return np.asarray(img.convert("RGB"))

    print(f"PIL draft at 1/2 scale (DCT scaling): {timeit(draft) * 1e3:.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.levers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workdir", type=Path, default=None, help="reuse/keep inputs here")
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["720p-10s", "720p-60s", "720p-5min", "1080p-10s", "1080p-60s", "1080p-5min", "photo-12mp"],
    )
    parser.add_argument("--only", nargs="+", default=["decode", "detect", "cnn", "write", "photo"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="levers-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        paths = {name: build_input(SPECS[name], work, DEFAULT_KEY_INTERVAL) for name in args.cases}
        print(f"# torch threads {torch.get_num_threads()}, keyframe every {DEFAULT_KEY_INTERVAL} frames")
        if "decode" in args.only:
            lever_decode(paths, DEFAULT_FRAMES)
        if "detect" in args.only:
            lever_detect(paths)
        analyser = Analyser(registry=args.registry)
        clip = paths.get("720p-10s") or next(p for p in paths.values() if probe(p).kind == "video")
        crops = [
            crop_face(f.rgb, b, analyser.image_card.input_size)
            for f in sample_frames(clip, DEFAULT_FRAMES)
            for b in analyser.detector.detect(f.rgb)
        ]
        if "cnn" in args.only:
            lever_cnn(analyser, crops, args.registry)
        if "write" in args.only:
            lever_lstm_and_write(analyser, crops, Path(tmp) / "artifacts")
        if "photo" in args.only and "photo-12mp" in paths:
            lever_photo(paths["photo-12mp"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
