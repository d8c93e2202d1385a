"""A bounded, coverage-guided fuzz run of ml.media.probe and the frame reader (Hypothesis).

    python -m benchmarks.fuzz_media                  # 300 examples per target, about a minute
    python -m benchmarks.fuzz_media --examples 2000  # longer

Each example mutates a valid seed (a JPEG, a PNG, a WebP, an MP4 with its index first or last) by flipping,
overwriting, inserting and cutting bytes, writes it to a file and calls `probe` and then, for videos,
`sample_frames` with the production settings, under a time limit. The only acceptable outcomes are a
result or `ml.errors.MediaError`; anything else (an OpenCV or Pillow exception escaping, a crash, a hang
past the deadline) is a finding, shrunk by Hypothesis to a small reproducer and printed. The last line:

    fuzz examples=N findings=F slowest_ms=S
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# One example may take this long; probing plus sampling a seed takes ~50 ms.
DEADLINE_MS = 5000


def seeds(workdir: Path) -> dict[str, bytes]:
    """Small valid files of every container the site accepts (generated, never committed)."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    out = {}
    for fmt in ("JPEG", "PNG", "WEBP"):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=fmt)
        out[fmt.lower()] = buffer.getvalue()
    clip = workdir / "seed.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for t in range(12):
        writer.write(np.roll(rgb, t, axis=1))
    writer.release()
    out["mp4"] = clip.read_bytes()
    from benchmarks.inputs import faststart

    out["mp4-index-first"] = faststart(clip, workdir / "seed-faststart.mp4").read_bytes()
    return out


def mutate(data: bytes, edits: list[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, length, bytes) edits: 0 overwrite, 1 insert, 2 delete, 3 cut the tail."""
    buffer = bytearray(data)
    for kind, position, length, chunk in edits:
        at = position % (len(buffer) + 1)
        if kind == 0:
            buffer[at : at + len(chunk)] = chunk
        elif kind == 1:
            buffer[at:at] = chunk
        elif kind == 2:
            del buffer[at : at + length]
        else:
            del buffer[at:]
    return bytes(buffer)


def exercise(path: Path) -> None:
    """What the site does with an upload: probe it, then (worker side) read its frames or decode it."""
    from ml.errors import MediaError
    from ml.media import load_image, probe, sample_frames

    try:
        info = probe(path)
        if info.kind == "video":
            for _ in sample_frames(path, 8, info=info):
                pass
        else:
            load_image(path, info)
    except MediaError:
        pass


def run(examples: int, workdir: Path) -> tuple[int, list[str], float]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seed_files = seeds(workdir)
    findings: list[str] = []
    slowest = [0.0]
    counted = [0]
    edit = st.tuples(
        st.integers(0, 3), st.integers(0, 1 << 20), st.integers(1, 64), st.binary(min_size=1, max_size=16)
    )

    @settings(
        max_examples=examples,
        deadline=DEADLINE_MS,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(seed=st.sampled_from(sorted(seed_files)), edits=st.lists(edit, min_size=1, max_size=4))
    def fuzz(seed: str, edits: list) -> None:
        path = workdir / f"case.{seed.split('-')[0]}"
        path.write_bytes(mutate(seed_files[seed], edits))
        started = time.perf_counter()
        exercise(path)
        slowest[0] = max(slowest[0], time.perf_counter() - started)
        counted[0] += 1

    try:
        fuzz()
    except Exception as exc:  # noqa: BLE001 - the shrunk reproducer is the finding
        findings.append(f"{type(exc).__name__}: {exc}")
    return counted[0], findings, slowest[0] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_media", description=__doc__)
    parser.add_argument("--examples", type=int, default=300, help="examples to run (default 300)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-media-") as tmp:
        count, findings, slowest_ms = run(args.examples, Path(tmp))
    for finding in findings:
        print(f"FINDING {finding}")
    print(f"fuzz examples={count} findings={len(findings)} slowest_ms={slowest_ms:.0f}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
