from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.clip_encoder import CLS_DIM
from ml.probe import LinearProbe
from ml.registry import ModelCard, default_refs, find_card, registry_dir, save_probe
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


@pytest.fixture(scope="session")
def clip_registry(tmp_path_factory):
    """The shipped CNN/LSTM cards plus a CLIP probe with fixed random weights and distinct temperatures."""
    out = tmp_path_factory.mktemp("clip_registry")
    shipped = registry_dir()
    refs = default_refs(shipped)
    for task in ("image", "video"):
        card = find_card(refs[task], shipped)
        for suffix in (".pt", ".json"):
            shutil.copy2(shipped / f"{card.stem}{suffix}", out / f"{card.stem}{suffix}")
    (out / "defaults.json").write_text(json.dumps({t: refs[t] for t in ("image", "video")}))
    rng = np.random.default_rng(0)
    probe = LinearProbe(
        "cls", True, np.zeros(CLS_DIM), np.full(CLS_DIM, 0.03), rng.normal(0, 0.05, CLS_DIM), 0.2
    )
    card = ModelCard(
        name="clip-test", version="1", task="clip", arch="clip_vitb16_probe", input_size=224,
        probe={"feature": "cls", "l2": True, "frames_per_track": 4}, temperature=1.7, video_temperature=0.8,
        training={"config": {}},  # the default recipe, which ml mix reads to find the feature stores
    )  # fmt: skip
    save_probe(probe, card, out, set_default=True)
    return out
