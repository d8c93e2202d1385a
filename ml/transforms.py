"""Explicit transforms: model input normalisation (inference and training) and training augmentations."""

from __future__ import annotations

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Cached faces are context crops 1.8× the face box (ml.dataset.context_crop); models see the 1.3× inside.
CONTEXT_MARGIN = 1.8


def to_tensor(crops: np.ndarray | list[np.ndarray], size: int | None = None) -> torch.Tensor:
    """RGB uint8 crops (N,H,W,3) -> normalised float tensor (N,3,S,S) with ImageNet statistics."""
    arr = np.stack(crops) if isinstance(crops, list) else crops
    if arr.ndim == 3:
        arr = arr[None]
    if size is not None and arr.shape[1] != size:
        arr = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in arr])
    x = (arr.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def inner_crop(context: np.ndarray, size: int = 224) -> np.ndarray:
    """The 1.3× face crop inside a context crop, at the model's input size."""
    c = context.shape[0]
    inner = c * 1.3 / CONTEXT_MARGIN
    o = (c - inner) / 2
    patch = context[round(o) : round(o + inner), round(o) : round(o + inner)]
    return cv2.resize(
        patch, (size, size), interpolation=cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    )


def random_affine(
    img: np.ndarray,
    rng: np.random.Generator,
    rotation: float = 20,
    shear: float = 0.15,
    zoom: float = 0.15,
    shift: float = 0.08,
) -> np.ndarray:
    """The seeds' geometric augmentation: rotation up to 20°, shear, zoom and shift, edges reflected."""
    h, w = img.shape[:2]
    angle = rng.uniform(-rotation, rotation)
    scale = 1 + rng.uniform(-zoom, zoom)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    sh = rng.uniform(-shear, shear)
    m[0, 1] += sh
    m[0, 2] -= sh * h / 2
    m[:, 2] += rng.uniform(-shift, shift, size=2) * (w, h)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def reencode_at_scale(
    img: np.ndarray, rng: np.random.Generator, min_scale: float = 0.35, quality: tuple[int, int] = (30, 96)
) -> np.ndarray:
    """JPEG at a smaller, "native" resolution, then back to the crop's size: what a re-upload does to a
    face that was smaller in the original than in our cached crop.

    Applied to most training faces, it also hides the source files' own JPEG settings, which here differ
    by label (the LFW face-swap photos: reals saved at about quality 90, fakes at about 95), a shortcut
    that re-encoding removes and that a model must not learn.
    """
    h, w = img.shape[:2]
    f = rng.uniform(min_scale, 1.0)
    small = cv2.resize(img, (max(16, round(w * f)), max(16, round(h * f))), interpolation=cv2.INTER_AREA)
    small = jpeg(small, int(rng.integers(*quality)))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Robustness augmentations: what social-media re-encoding and resizing do to an upload."""
    out = img
    if rng.random() < 0.3:  # downscale then upscale
        h, w = out.shape[:2]
        f = rng.uniform(0.4, 0.9)
        small = cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.5))
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(2, 8), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        alpha = rng.uniform(0.8, 1.2)
        beta = rng.uniform(-20, 20)
        out = np.clip(out.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        out = jpeg(out, int(rng.integers(30, 96)))
    return out


class FaceTrainPreset:
    """The training view of a cached context crop (torchvision's ClassificationPresetTrain): flip,
    re-encoding at native scale, the seeds' affine jitter, the inner crop, degradations, normalisation."""

    def __init__(self, size: int, reencode_fraction: float = 0.0):
        self.size, self.reencode_fraction = size, reencode_fraction

    def augment(self, context: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = context[:, ::-1] if rng.random() < 0.5 else context
        if rng.random() < self.reencode_fraction:
            img = reencode_at_scale(np.ascontiguousarray(img), rng)
        if rng.random() < 0.7:
            img = random_affine(np.ascontiguousarray(img), rng)
        img = inner_crop(np.ascontiguousarray(img), self.size)
        return degrade(img, rng)

    def __call__(self, context: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return to_tensor(self.augment(context, rng))[0]


class FaceEvalPreset:
    """The evaluation view (torchvision's ClassificationPresetEval): the inner crop as inference cuts it,
    normalised."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, context: np.ndarray) -> torch.Tensor:
        return to_tensor(inner_crop(context, self.size), self.size)[0]
