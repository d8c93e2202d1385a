from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.ml import media_factory as mf


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_jpg(media_dir) -> Path:
    return mf.write_image(media_dir / "astronaut.jpg", mf.astronaut())


@pytest.fixture(scope="session")
def tiny_face_jpg(media_dir) -> Path:
    """The astronaut photo at a third of its size: her face is about 35 px across."""
    small = cv2.resize(mf.astronaut(), None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    return mf.write_image(media_dir / "tiny_face.jpg", small)


@pytest.fixture(scope="session")
def noface_png(media_dir) -> Path:
    rng = np.random.default_rng(1)
    sky = np.clip(rng.normal(140, 10, (240, 320, 3)), 0, 255).astype(np.uint8)
    return mf.write_image(media_dir / "sky.png", sky)


@pytest.fixture(scope="session")
def face_video(media_dir) -> Path:
    return mf.write_video(media_dir / "one_face.mp4", frames=40, faces=1)


@pytest.fixture(scope="session")
def two_face_video(media_dir) -> Path:
    return mf.write_video(media_dir / "two_faces.mp4", frames=40, size=(960, 360), faces=2)


@pytest.fixture(scope="session")
def corrupt_files(media_dir, face_jpg, face_video) -> dict[str, Path]:
    """Files a user might send that must be refused with a clear message."""
    out = {}
    out["empty"] = media_dir / "empty.jpg"
    out["empty"].write_bytes(b"")
    out["pdf_as_mp4"] = media_dir / "report.mp4"
    out["pdf_as_mp4"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 2000)
    data = face_jpg.read_bytes()
    out["truncated_jpg"] = media_dir / "truncated.jpg"
    out["truncated_jpg"].write_bytes(data[: len(data) // 3])
    video = face_video.read_bytes()
    out["truncated_mp4"] = media_dir / "truncated.mp4"
    out["truncated_mp4"].write_bytes(video[: len(video) // 4])
    return out
