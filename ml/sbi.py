"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from a real face alone.

A real face is blended with a slightly altered copy of itself inside a randomised face mask. The
result carries the traces every face swap leaves (a blending boundary, colour and frequency
mismatch, slight misalignment) but no fingerprint of any particular generator, which is what lets
a detector trained on it recognise manipulations it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BlendParams:
    """One draw of the random choices, so a video track can reuse it on every frame."""

    hull: str
    dilate: int
    blur: float
    ratio: float
    scale: float
    shift: tuple[float, float]
    color: tuple[float, float, float]
    brightness: float
    contrast: float
    sharpen: float


def draw_params(rng: np.random.Generator, size: int) -> BlendParams:
    return BlendParams(
        hull=str(rng.choice(["full", "inner", "lower"])),
        dilate=int(rng.integers(-size // 40, size // 25)),
        blur=float(rng.uniform(size / 80, size / 25)),
        ratio=float(rng.choice([1.0, 1.0, rng.uniform(0.5, 1.0)])),
        scale=float(rng.uniform(0.95, 1.05)),
        shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        color=tuple(float(v) for v in rng.uniform(-20, 20, 3)),
        brightness=float(rng.uniform(-0.1, 0.1)),
        contrast=float(rng.uniform(-0.1, 0.1)),
        sharpen=float(rng.uniform(-1.0, 1.0)),
    )


def hull_mask(points: np.ndarray, shape: tuple[int, int], dilate: int = 0, blur: float = 0.0) -> np.ndarray:
    """A float mask in [0, 1]: the convex hull of `points`, dilated (eroded if negative), then feathered."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(points.astype(np.int32)), 255)
    if dilate:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(dilate) + 1,) * 2)
        mask = cv2.dilate(mask, k) if dilate > 0 else cv2.erode(mask, k)
    soft = mask.astype(np.float32) / 255.0
    return cv2.GaussianBlur(soft, (0, 0), blur) if blur > 0 else soft


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], params: BlendParams) -> np.ndarray:
    """A soft float mask in [0, 1] from the convex hull of (a subset of) the 68 landmarks."""
    if params.hull == "inner":  # brows, eyes, nose, mouth: a smaller swap region
        pts = landmarks[17:]
    elif params.hull == "lower":  # jaw line and nose: swaps that keep the forehead
        pts = np.concatenate([landmarks[0:17], landmarks[27:36]])
    else:
        pts = landmarks
    return np.clip(hull_mask(pts, shape, params.dilate, params.blur) * params.ratio, 0, 1)


def _alter_source(img: np.ndarray, params: BlendParams) -> np.ndarray:
    """The copy to blend in: colour/contrast jitter, sharpened or blurred, rescaled and shifted."""
    src = img.astype(np.float32)
    src = src * (1 + params.contrast) + params.brightness * 255 + np.array(params.color, np.float32)
    if params.sharpen > 0:
        blurred = cv2.GaussianBlur(src, (0, 0), 1.0)
        src = src + params.sharpen * (src - blurred)
    elif params.sharpen < 0:
        src = cv2.GaussianBlur(src, (0, 0), -params.sharpen)
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, params.scale)
    m[:, 2] += np.array(params.shift) * (w, h)
    src = cv2.warpAffine(src, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(src, 0, 255)


def self_blend(img: np.ndarray, landmarks: np.ndarray, params: BlendParams) -> np.ndarray:
    """Blend an altered copy of `img` into itself inside the landmark mask; returns uint8 RGB."""
    mask = face_mask(landmarks, img.shape[:2], params)[..., None]
    out = _alter_source(img, params) * mask + img.astype(np.float32) * (1 - mask)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)  # rint: truncation darkened the region by 0.5
