"""Forgeries made from real faces only: families of manipulation, each a small pure function.

Self-blending (ml.sbi) teaches the seam every face swap leaves. What it misses is what failed on
unseen sources: another person's face warped in, a re-rendered mouth or eyes, whole-face synthesis
that leaves no seam at all but resampling, over-smoothing and spectral traces, and in videos the
temporal traces (flicker, a frozen face with a moving mouth, an identity drifting away).

Every family is `draw_*_params(rng, ...)` (a frozen dataclass holding all the random choices, so a
forgery can be reproduced or reused across a track's frames) and a pure `apply` that takes faces and
those parameters. `FAMILIES` (photos) and `TRACK_FAMILIES` (videos) register them under the names a
training config uses (`"synth_families": {"sbi": 0.25, "swap": 0.25, ...}`). Numpy and OpenCV only:
no torch, so the functions run inside data-loader workers and in feature-extraction scripts alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ml.sbi import BlendParams, draw_params, hull_mask, self_blend

# dlib's 68-point layout: 0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth.
BROW_EYE_LEFT = np.r_[17:22, 36:42]
BROW_EYE_RIGHT = np.r_[22:27, 42:48]
MOUTH = np.r_[48:68]
# Eye corners and nose: what stays put when the mouth moves, to align two faces without the mouth.
STABLE = np.r_[27:36, 36, 39, 42, 45]


@dataclass(frozen=True)
class Face:
    """An RGB uint8 crop and its 68 landmarks in the crop's pixels."""

    image: np.ndarray
    landmarks: np.ndarray


# ---------------------------------------------------------------- geometry


def face_width(landmarks: np.ndarray) -> float:
    """Jaw corner to jaw corner: the face's scale, so that every size below is relative to it."""
    return float(np.linalg.norm(landmarks[16] - landmarks[0]))


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity (rotation, uniform scale, shift) taking `src` points onto `dst`."""
    x, y = src[:, 0].astype(np.float64), src[:, 1].astype(np.float64)
    a = np.zeros((2 * len(src), 4))
    a[0::2] = np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], axis=1)
    a[1::2] = np.stack([y, x, np.zeros_like(x), np.ones_like(x)], axis=1)
    p, q, tx, ty = np.linalg.lstsq(a, dst.astype(np.float64).ravel(), rcond=None)[0]
    return np.array([[p, -q, tx], [q, p, ty]])


def transform(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (points @ m[:, :2].T + m[:, 2]).astype(np.float32)


def piecewise_affine_maps(
    src_lm: np.ndarray, dst_lm: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps sending each destination pixel to where it lies in the source image.

    Inside the destination landmarks' hull: one affine per triangle of their Delaunay triangulation,
    so every landmark lands exactly on its counterpart. Outside: the best similarity of the two
    landmark sets, so a dilated or feathered mask still finds sensible source pixels.
    """
    from scipy.spatial import Delaunay

    tris = Delaunay(dst_lm).simplices
    d = np.concatenate([dst_lm[tris], np.ones((len(tris), 3, 1))], axis=2).astype(np.float64)
    keep = np.abs(np.linalg.det(d)) > 1.0  # twice the area: drop slivers (closed lips repeat points)
    tris, d = tris[keep], d[keep]
    per_tri = np.linalg.solve(d, src_lm[tris].astype(np.float64)).transpose(0, 2, 1)  # (T, 2, 3)
    mats = np.concatenate([similarity(dst_lm, src_lm)[None], per_tri]).astype(np.float32)
    index = np.zeros(shape, np.uint8)  # 0: outside the hull; 68 points give at most 132 triangles
    for k, tri in enumerate(tris, start=1):
        cv2.fillConvexPoly(index, np.rint(dst_lm[tri]).astype(np.int32), k)
    a = mats[index]
    ys, xs = np.indices(shape, dtype=np.float32)
    map_x = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    map_y = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    return map_x, map_y


def region_mask(landmarks: np.ndarray, region: str, shape: tuple[int, int], dilate: int = 0) -> np.ndarray:
    """Hard {0, 1} float mask of a face region: face (all 68), inner (brows to chin), mouth, eyes."""
    if region == "eyes":
        return np.maximum(
            hull_mask(landmarks[BROW_EYE_LEFT], shape, dilate),
            hull_mask(landmarks[BROW_EYE_RIGHT], shape, dilate),
        )
    points = {"face": landmarks, "inner": landmarks[17:], "mouth": landmarks[MOUTH]}[region]
    return hull_mask(points, shape, dilate)


def closest_donor(target: Face, donors: Sequence[Face]) -> Face:
    """The donor whose landmarks best fit the target's after a similarity: the same pose and face
    shape, as face-swap tools pick their source frames, so the warp stays mild and the result
    looks like a swap rather than a distortion."""
    if not donors:
        raise ValueError("this family needs at least one donor face")

    def misfit(donor: Face) -> float:
        m = similarity(donor.landmarks, target.landmarks)
        return float(np.abs(transform(donor.landmarks, m) - target.landmarks).mean())

    return min(donors, key=misfit)


# ---------------------------------------------------------------- colour and blending


def match_colour(src: np.ndarray, ref: np.ndarray, where: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Reinhard colour transfer: `src`'s LAB mean and spread inside `where` moved to `ref`'s (float RGB)."""
    if not where.any():  # a face outside the crop: nothing to match
        return src.astype(np.float32)
    s = cv2.cvtColor(src.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    r = cv2.cvtColor(ref.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    ms, ss = s[where].mean(0), s[where].std(0) + 1e-3
    mr, sr = r[where].mean(0), r[where].std(0)
    matched = s + strength * ((s - ms) * (sr / ss) + mr - s)
    return np.clip(cv2.cvtColor(matched, cv2.COLOR_LAB2RGB) * 255, 0, 255)


def blend(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, mode: str, feather: float) -> np.ndarray:
    """`src` put into `dst` inside the hard `mask`: alpha with a feathered edge, or Poisson blending."""
    if mode == "poisson" and (mask > 0.5).any():
        binary = (mask > 0.5).astype(np.uint8) * 255
        x, y, w, h = cv2.boundingRect(binary)
        # seamlessClone centres the mask's bounding box on this point: this centre keeps it in place
        centre = (x + w // 2, y + h // 2)
        return cv2.seamlessClone(np.clip(src, 0, 255).astype(np.uint8), dst, binary, centre, cv2.NORMAL_CLONE)
    alpha = cv2.GaussianBlur(mask, (0, 0), feather)[..., None] if feather > 0 else mask[..., None]
    out = src.astype(np.float32) * alpha + dst.astype(np.float32) * (1 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)  # rint: a zero-weight pixel keeps its value


def resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Down to `factor` of the size and back up: the detail a generator working at low resolution has."""
    if factor >= 1:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(
        img, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------- swap and partial edits


@dataclass(frozen=True)
class TransplantParams:
    """One face's region replaced by a donor's: a whole-face swap, or a partial edit (mouth, eyes)."""

    region: str  # face | inner | mouth | eyes
    blend: str  # alpha | poisson
    dilate: float  # growth of the region, fraction of the face width (negative shrinks)
    feather: float  # alpha edge softness (Gaussian sigma), fraction of the face width
    colour: float  # 0..1: strength of the colour transfer to the target's skin
    resolution: float  # donor detail kept (1: all; 0.4: a generator working at 40 % of the size)
    shape: str  # "target": warped onto the target's landmarks; "donor": keeps its own (an open mouth)


def transplant(target: Face, donor: Face, p: TransplantParams) -> np.ndarray:
    """The donor's region warped onto the target, colour-matched and blended in; uint8 RGB."""
    shape = target.image.shape[:2]
    width = face_width(target.landmarks)
    if p.shape == "target":
        map_x, map_y = piecewise_affine_maps(donor.landmarks, target.landmarks, shape)
        warped = cv2.remap(donor.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        moved = target.landmarks
    else:  # aligned on eyes and nose only, so the donor's mouth keeps its own opening
        to_donor = similarity(target.landmarks[STABLE], donor.landmarks[STABLE])
        warped = cv2.warpAffine(
            donor.image,
            to_donor,
            shape[::-1],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        moved = transform(donor.landmarks, cv2.invertAffineTransform(to_donor))
    warped = resample(warped, p.resolution)
    dilate = round(p.dilate * width)
    mask = np.maximum(
        region_mask(target.landmarks, p.region, shape, dilate), region_mask(moved, p.region, shape, dilate)
    )
    coloured = match_colour(warped, target.image, mask > 0.5, p.colour) if p.colour > 0 else warped
    return blend(coloured, target.image, mask, p.blend, p.feather * width)


def draw_swap_params(rng: np.random.Generator) -> TransplantParams:
    return TransplantParams(
        region=str(rng.choice(["face", "inner"])),
        blend=str(rng.choice(["alpha", "poisson"])),
        dilate=float(rng.uniform(-0.05, 0.0)),
        feather=float(rng.uniform(0.01, 0.05)),
        colour=float(rng.uniform(0.6, 1.0)),
        resolution=float(rng.choice([1.0, rng.uniform(0.3, 0.8)])),
        shape="target",
    )


def draw_partial_params(rng: np.random.Generator) -> TransplantParams:
    region = str(rng.choice(["mouth", "eyes"]))
    return TransplantParams(
        region=region,
        blend=str(rng.choice(["alpha", "alpha", "poisson"])),
        # a mouth edit re-renders lips, teeth and the skin around them; an eye edit the lids and brows
        dilate=float(rng.uniform(0.04, 0.10) if region == "mouth" else rng.uniform(0.01, 0.04)),
        feather=float(rng.uniform(0.015, 0.04)),
        colour=float(rng.uniform(0.7, 1.0)),
        resolution=float(rng.choice([1.0, rng.uniform(0.4, 0.8)])),
        # "donor": the other frame's or person's mouth opening, as lip-sync changes it. Eyes always take
        # the target's shape: aligned on eyes and nose alone they tear when the poses differ.
        shape=str(rng.choice(["target", "donor"])) if region == "mouth" else "target",
    )


# ---------------------------------------------------------------- whole-face re-synthesis (no seam)


@dataclass(frozen=True)
class ResynthParams:
    """Traces a generator leaves over the whole crop. Neutral values switch a step off."""

    factor: int = 1  # down-then-up sampling factor (1: none)
    kernel: str = "bilinear"  # nearest | bilinear | transposed (zero-insert + uneven kernel: checkerboard)
    taps: tuple[float, ...] = ()  # the transposed kernel, 1-D, applied along both axes
    smoothing: str = "none"  # none | bilateral | guided: skin texture ironed out, edges kept
    smooth_radius: int = 3
    smooth_range: float = 20.0  # grey levels: differences below this count as texture
    peak_period: int = 4  # pixels between the periodic pattern's repeats
    peak_amplitude: float = 0.0  # grey levels (0: no spectral peaks)
    peak_phase: tuple[float, float] = (0.0, 0.0)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 1.0


def _down_up(img: np.ndarray, factor: int, kernel: str, taps: tuple[float, ...]) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    if kernel != "transposed":
        interp = cv2.INTER_NEAREST if kernel == "nearest" else cv2.INTER_LINEAR
        return cv2.resize(small, (w, h), interpolation=interp)
    sh, sw = small.shape[:2]
    up = np.zeros((sh * factor, sw * factor, 3), np.float32)
    up[::factor, ::factor] = small
    k = np.asarray(taps, np.float32)
    up = cv2.sepFilter2D(up, -1, k, k, borderType=cv2.BORDER_REFLECT)
    return cv2.copyMakeBorder(up, 0, h - up.shape[0], 0, w - up.shape[1], cv2.BORDER_REFLECT)


def _guided_smooth(img: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with the image as its own guide: flat regions flattened, edges kept."""

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1))

    mean = box(img)
    var = box(img * img) - mean * mean
    a = var / (var + eps)
    return box(a) * img + box(mean - a * mean)


def periodic_pattern(
    shape: tuple[int, int], period: int, amplitude: float, phase: tuple[float, float]
) -> np.ndarray:
    """A grid repeating every `period` pixels: peaks in the spectrum like an upsampling layer's."""
    ys, xs = np.indices(shape, dtype=np.float32)
    cx = np.cos(2 * np.pi * xs / period + phase[0])
    cy = np.cos(2 * np.pi * ys / period + phase[1])
    return (amplitude * (cx + cy + cx * cy) / 3)[..., None]


def resynthesise(img: np.ndarray, p: ResynthParams) -> np.ndarray:
    """The whole crop passed through the chosen re-synthesis traces; no seam anywhere. uint8 RGB."""
    out = img.astype(np.float32)
    if p.factor > 1:
        out = _down_up(out, p.factor, p.kernel, p.taps)
    if p.smoothing == "bilateral":
        out = cv2.bilateralFilter(out, 2 * p.smooth_radius + 1, p.smooth_range, p.smooth_radius)
    elif p.smoothing == "guided":
        out = _guided_smooth(out, p.smooth_radius, p.smooth_range**2)
    if p.peak_amplitude > 0:
        out = out + periodic_pattern(out.shape[:2], p.peak_period, p.peak_amplitude, p.peak_phase)
    if p.gamma != 1.0 or p.gain != (1.0, 1.0, 1.0):
        out = 255 * np.clip(out / 255, 0, 1) ** p.gamma * np.asarray(p.gain, np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _transposed_taps(factor: int, rng: np.random.Generator) -> tuple[float, ...]:
    """A bilinear upsampling kernel with uneven weights: the phases of a stride-`factor` transposed
    convolution then sum to different gains, the checkerboard of learned upsampling."""
    base = 1 - np.abs(np.arange(-factor + 1, factor)) / factor
    taps = base * (1 + rng.uniform(-0.12, 0.12, base.size))  # a ripple of a few %, not a visible grid
    return tuple(float(t) for t in taps * factor / taps.sum())


def draw_resynth_params(rng: np.random.Generator) -> ResynthParams:
    """One to four of the steps, each with its own strength."""
    use = rng.random(4) < 0.5
    if not use.any():
        use[rng.integers(4)] = True
    p = ResynthParams()
    if use[0]:
        factor = int(rng.choice([2, 2, 3, 4]))
        kernel = str(rng.choice(["nearest", "bilinear", "transposed"]))
        p = replace(p, factor=factor, kernel=kernel, taps=_transposed_taps(factor, rng))
    if use[1]:
        smoothing = str(rng.choice(["bilateral", "guided"]))
        p = replace(
            p,
            smoothing=smoothing,
            smooth_radius=int(rng.integers(2, 6)),
            smooth_range=float(rng.uniform(12, 40)),
        )
    if use[2]:
        phase = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)))
        p = replace(
            p,
            peak_period=int(rng.choice([2, 4, 8])),
            peak_amplitude=float(rng.uniform(0.8, 3.0)),
            peak_phase=phase,
        )
    if use[3]:
        gain = tuple(float(g) for g in rng.uniform(0.94, 1.06, 3))
        p = replace(p, gain=gain, gamma=float(rng.uniform(0.85, 1.15)))
    return p


# ---------------------------------------------------------------- temporal families (a track of faces)


@dataclass(frozen=True)
class FlickerParams:
    """A self-blend whose mask, colour and shift are drawn afresh for every frame."""

    frames: tuple[BlendParams, ...]


def draw_flicker_params(rng: np.random.Generator, size: int, length: int) -> FlickerParams:
    base = draw_params(rng, size)

    def jittered() -> BlendParams:
        return replace(
            base,
            dilate=base.dilate + int(rng.integers(-size // 60, size // 60 + 1)),
            color=tuple(float(c) for c in np.add(base.color, rng.normal(0, 8, 3))),
            shift=tuple(float(s) for s in np.add(base.shift, rng.normal(0, 0.01, 2))),
        )

    return FlickerParams(tuple(jittered() for _ in range(length)))


def flicker(track: Sequence[Face], p: FlickerParams) -> list[np.ndarray]:
    return [self_blend(f.image, f.landmarks, fp) for f, fp in zip(track, p.frames, strict=True)]


@dataclass(frozen=True)
class FrozenParams:
    """A talking head from one still: the anchor frame held, each frame's mouth pasted onto it."""

    anchor: int  # index of the frame whose face stays still
    dilate: float  # mouth region growth, fraction of the face width
    feather: float  # fraction of the face width
    sway: float  # pixels of a slow whole-crop sway (0: a still image)


def draw_frozen_params(rng: np.random.Generator, length: int) -> FrozenParams:
    return FrozenParams(
        anchor=int(rng.integers(length)),
        dilate=float(rng.uniform(0.04, 0.10)),
        feather=float(rng.uniform(0.015, 0.04)),
        sway=float(rng.choice([0.0, rng.uniform(0.5, 3.0)])),
    )


def frozen_face(track: Sequence[Face], p: FrozenParams) -> list[np.ndarray]:
    still = track[p.anchor]
    mouth = TransplantParams("mouth", "alpha", p.dilate, p.feather, colour=0.0, resolution=1.0, shape="donor")
    out = []
    for t, face in enumerate(track):
        frame = transplant(still, face, mouth)
        if p.sway:
            h, w = frame.shape[:2]
            shift = np.float32([[1, 0, p.sway * np.sin(t / 5)], [0, 1, p.sway * np.cos(t / 7)]])
            frame = cv2.warpAffine(frame, shift, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        out.append(frame)
    return out


@dataclass(frozen=True)
class DriftParams:
    """A swap faded in over the track: the identity moves slowly from the person to the donor."""

    swap: TransplantParams
    final: float  # the donor's weight at the last frame (0 at the first)


def draw_drift_params(rng: np.random.Generator) -> DriftParams:
    return DriftParams(swap=replace(draw_swap_params(rng), blend="alpha"), final=float(rng.uniform(0.4, 1.0)))


def identity_drift(track: Sequence[Face], donor: Face, p: DriftParams) -> list[np.ndarray]:
    out = []
    for t, face in enumerate(track):
        weight = p.final * t / max(1, len(track) - 1)
        swapped = transplant(face, donor, p.swap).astype(np.float32)
        frame = face.image + weight * (swapped - face.image)
        out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return out


# ---------------------------------------------------------------- registry

Family = Callable[[Face, Sequence[Face], np.random.Generator], np.ndarray]
TrackFamily = Callable[[Sequence[Face], Sequence[Face], np.random.Generator], list[np.ndarray]]

FAMILIES: dict[str, Family] = {
    "sbi": lambda real, donors, rng: self_blend(
        real.image, real.landmarks, draw_params(rng, real.image.shape[0])
    ),
    "swap": lambda real, donors, rng: transplant(real, closest_donor(real, donors), draw_swap_params(rng)),
    "partial": lambda real, donors, rng: transplant(
        real, closest_donor(real, donors), draw_partial_params(rng)
    ),
    "resynth": lambda real, donors, rng: resynthesise(real.image, draw_resynth_params(rng)),
}

TRACK_FAMILIES: dict[str, TrackFamily] = {
    "flicker": lambda track, donors, rng: flicker(
        track, draw_flicker_params(rng, track[0].image.shape[0], len(track))
    ),
    "frozen": lambda track, donors, rng: frozen_face(track, draw_frozen_params(rng, len(track))),
    "drift": lambda track, donors, rng: identity_drift(
        track, closest_donor(track[0], donors), draw_drift_params(rng)
    ),
}

# The first mix; what the leave-one-source-out table says should replace it.
DEFAULT_MIX = {"sbi": 0.25, "swap": 0.25, "partial": 0.15, "resynth": 0.35}


def pick_family(mix: Mapping[str, float], rng: np.random.Generator) -> str:
    names = sorted(mix)
    weights = np.array([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def check_families(names: Sequence[str], registry: Mapping[str, object] = FAMILIES) -> None:
    unknown = sorted(set(names) - set(registry))
    if unknown:
        raise ValueError(f"unknown forgery families {unknown}; choose from {sorted(registry)}")


def synthesise(
    real: Face, donors: Sequence[Face], family: str | Mapping[str, float], rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """One forgery of `real` (donors: other real faces, for the families that need one) and its family;
    `family` is a name of FAMILIES or a {name: weight} mix to draw it from."""
    name = family if isinstance(family, str) else pick_family(family, rng)
    check_families([name])
    return FAMILIES[name](real, donors, rng), name


def synthesise_track(
    track: Sequence[Face], donors: Sequence[Face], family: str, rng: np.random.Generator
) -> list[np.ndarray]:
    """One forged version of a face track (same length), by a family of TRACK_FAMILIES."""
    check_families([family], TRACK_FAMILIES)
    return TRACK_FAMILIES[family](track, donors, rng)


def synthetic_fakes(
    crops: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray | None] | None = None,
    count: int = 100,
    mix: Mapping[str, float] = DEFAULT_MIX,
    seed: int = 0,
    candidates: int = 4,
) -> list[tuple[np.ndarray, str]]:
    """`count` forgeries made from real face crops (RGB uint8, e.g. 224 px inference crops), each with
    its family name. Missing landmarks are found by dlib in the crop's centre (the crop is taken to
    be a 1.3x face crop); donors are the closest in pose of `candidates` other crops."""
    from ml.landmarks import landmarks_in_crop

    check_families(list(mix))
    lms = landmarks if landmarks is not None else [None] * len(crops)
    faces = [
        Face(c, lm.astype(np.float32) if lm is not None else landmarks_in_crop(c))
        for c, lm in zip(crops, lms, strict=True)
    ]
    if len(faces) < 2:
        raise ValueError("need at least two real faces: one to forge, one to give a face")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        i = int(rng.integers(len(faces)))
        others = np.delete(np.arange(len(faces)), i)
        picks = rng.choice(others, min(candidates, len(others)), replace=False)
        out.append(synthesise(faces[i], [faces[int(j)] for j in picks], mix, rng))
    return out
