"""`python -m ml synth`: examples of a forgery family made from real training faces, for a person to see.

Each example is written as PNGs (the real context crop, the forgery, and for tracks a strip of frames)
and all of them on one contact sheet, `sheet.png`: real | donor | forgery | difference (x4), one row per
example; for a track family, a row of real frames above the same frames forged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import cv2
import numpy as np

from ml.dataset import main_track, photo_face
from ml.faces import get_detector
from ml.file_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ml.synth import FAMILIES, TRACK_FAMILIES, Face, closest_donor, synthesise, synthesise_track

TILE = 200  # pixels per face on the contact sheet
TRACK_FRAMES = 16  # frames sampled per clip for the track families
SHEET_FRAMES = 6  # of which the sheet shows this many


def _real_files(data: Path, suffixes: Collection[str], rng: np.random.Generator) -> list[Path]:
    folder = data / "train" / "real"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no real training media under {folder}")
    return [files[i] for i in rng.permutation(len(files))]


def real_faces(data: Path, count: int, rng: np.random.Generator, detector: str = "retinaface") -> list[Face]:
    """Up to `count` faces from random photos of DATA/train/real (photos without a face are passed over)."""
    det = get_detector(detector)
    faces = []
    for file in _real_files(data, IMAGE_EXTENSIONS, rng):
        found = photo_face(file, det)
        if found is not None:
            faces.append(Face(*found))
        if len(faces) == count:
            break
    return faces


def real_tracks(
    data: Path, count: int, rng: np.random.Generator, detector: str = "retinaface"
) -> list[list[Face]]:
    """Main face tracks of up to `count` random clips of DATA/train/real, at least 4 frames long."""
    from ml.faces import VIDEO_DETECT_MAX_SIDE

    det = get_detector(detector, VIDEO_DETECT_MAX_SIDE)
    tracks = []
    for file in _real_files(data, VIDEO_EXTENSIONS, rng):
        found = main_track(file, det, TRACK_FRAMES)
        if found is not None and found[2] >= 4:
            seq, lms, length, _ = found
            tracks.append([Face(seq[t], lms[t]) for t in range(length)])
        if len(tracks) == count:
            break
    return tracks


def _tile(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_AREA)


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(np.abs(a.astype(np.int16) - b.astype(np.int16)) * 4, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _photo_examples(
    family: str, data: Path, out: Path, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    faces = real_faces(data, count * 3, rng)
    if len(faces) < 2:
        raise FileNotFoundError(f"fewer than two faces found under {data}/train/real")
    rows = []
    for k in range(min(count, len(faces))):
        real, donors = faces[k], faces[:k] + faces[k + 1 :]
        fake, _ = synthesise(real, donors, family, rng)
        donor = (
            closest_donor(real, donors).image if family in ("swap", "partial") else np.zeros_like(real.image)
        )
        _save(out / f"{k:02d}-real.png", real.image)
        _save(out / f"{k:02d}-{family}.png", fake)
        rows.append(np.hstack([_tile(x) for x in (real.image, donor, fake, _difference(fake, real.image))]))
    return rows


def _track_examples(
    family: str, data: Path, out: Path, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    tracks = real_tracks(data, count + 1, rng)
    if len(tracks) < 2:
        raise FileNotFoundError(f"fewer than two face tracks found under {data}/train/real")
    rows = []
    for k, track in enumerate(tracks[:count]):
        donors = [t[0] for j, t in enumerate(tracks) if j != k]
        fake = synthesise_track(track, donors, family, rng)
        shown = np.linspace(0, len(track) - 1, SHEET_FRAMES).round().astype(int)
        real_row = np.hstack([_tile(track[t].image) for t in shown])
        fake_row = np.hstack([_tile(fake[t]) for t in shown])
        _save(out / f"{k:02d}-{family}-frames.png", np.vstack([real_row, fake_row]))
        rows += [real_row, fake_row, np.full((8, real_row.shape[1], 3), 255, np.uint8)]
    return rows


def write_examples(
    family: str, data: Path, out: Path, count: int = 8, seed: int = 0, log: Callable[[str], None] = print
) -> Path:
    """Examples of `family` from DATA/train/real under OUT, and their contact sheet; returns the sheet."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    if family in FAMILIES:
        rows = _photo_examples(family, data, out, count, rng)
    elif family in TRACK_FAMILIES:
        rows = _track_examples(family, data, out, count, rng)
    else:
        raise ValueError(
            f"unknown family {family!r}; choose from {sorted(FAMILIES) + sorted(TRACK_FAMILIES)}"
        )
    sheet = out / "sheet.png"
    _save(sheet, np.vstack(rows))
    n = len(rows) if family in FAMILIES else len(rows) // 3
    log(f"{n} examples of {family} in {out}; contact sheet {sheet}")
    return sheet
