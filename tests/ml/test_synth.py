from __future__ import annotations

from dataclasses import replace
from functools import cache

import cv2
import numpy as np
import pytest

from ml.dataset import context_crop, inner_crop
from ml.faces import FaceBox
from ml.synth import (
    FAMILIES,
    TRACK_FAMILIES,
    Face,
    FrozenParams,
    ResynthParams,
    TransplantParams,
    draw_drift_params,
    draw_flicker_params,
    face_width,
    flicker,
    frozen_face,
    identity_drift,
    region_mask,
    resynthesise,
    similarity,
    synthesise,
    synthesise_track,
    synthetic_fakes,
    transform,
    transplant,
)
from tests.ml.media_factory import ASTRONAUT_FACE, astronaut

GREEN = (0, 255, 0)


@cache
def _astronaut() -> Face:
    crop, lm = context_crop(astronaut(), FaceBox(*ASTRONAUT_FACE))
    return Face(crop, lm)


def _moved(face: Face, angle: float, scale: float, shift: tuple[float, float], tint=(0, 0, 0)) -> Face:
    """The same face in another pose and light: a second 'frame' with exactly known landmarks."""
    h, w = face.image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += shift
    img = cv2.warpAffine(face.image, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = np.clip(img.astype(np.int16) + np.array(tint, np.int16), 0, 255).astype(np.uint8)
    return Face(img, transform(face.landmarks, m))


def _donor() -> Face:
    """Another pose, a bluish tint and a green nose tip: the swap must carry the dot to the target's nose."""
    donor = _moved(_astronaut(), angle=8, scale=0.9, shift=(6, -4), tint=(-30, 0, 40))
    img = donor.image.copy()
    cv2.circle(img, tuple(np.rint(donor.landmarks[30]).astype(int)), 6, GREEN, -1)
    return Face(img, donor.landmarks)


def _outside(face: Face, grow: float = 0.4) -> np.ndarray:
    """Pixels well away from the face: the landmark hull grown by `grow` face widths."""
    dilate = round(grow * face_width(face.landmarks))
    return region_mask(face.landmarks, "face", face.image.shape[:2], dilate) == 0


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_changes_the_face_keeps_the_shape_and_repeats_from_its_seed(family):
    real = _astronaut()
    fakes = [synthesise(real, [_donor()], family, np.random.default_rng(s))[0] for s in (1, 1, 2)]
    assert fakes[0].shape == real.image.shape and fakes[0].dtype == np.uint8
    assert _diff(fakes[0], real.image).mean() > 0.3  # visibly different somewhere
    assert np.array_equal(fakes[0], fakes[1])  # same seed, same forgery
    assert not np.array_equal(fakes[0], fakes[2])


@pytest.mark.parametrize("family", ["sbi", "swap", "partial"])
def test_seam_families_leave_everything_far_from_the_face_untouched(family):
    real = _astronaut()
    far = _outside(real)
    assert far.mean() > 0.3  # the check covers a good part of the crop
    for seed in range(6):  # several draws: alpha and Poisson blending, both regions
        fake, _ = synthesise(real, [_donor()], family, np.random.default_rng(seed))
        assert _diff(fake, real.image)[far].max() == 0, seed


@pytest.mark.parametrize("blend", ["alpha", "poisson"])
def test_swap_carries_the_donor_face_onto_the_target_landmarks(blend):
    real, donor = _astronaut(), _donor()
    params = TransplantParams(
        "face", blend, dilate=-0.03, feather=0.02, colour=0.0, resolution=1.0, shape="target"
    )
    fake = transplant(real, donor, params).astype(np.int16)
    x, y = np.rint(real.landmarks[30]).astype(int)
    nose_before = real.image[y - 2 : y + 3, x - 2 : x + 3].astype(np.int16)
    nose_after = fake[y - 2 : y + 3, x - 2 : x + 3]

    def greenness(patch):
        return float((patch[..., 1] - (patch[..., 0] + patch[..., 2]) / 2).mean())

    # the donor's green nose tip landed on the target's nose tip, though the donor was turned and shifted
    assert greenness(nose_after) > greenness(nose_before) + 60
    # and the rest of the face took the donor's blue tint (Poisson keeps the gradients, not the tint)
    inside = region_mask(real.landmarks, "face", real.image.shape[:2], -20) > 0
    if blend == "alpha":
        assert (fake[..., 2] - real.image[..., 2])[inside].mean() > 20


def test_mouth_edit_changes_the_mouth_and_not_the_eyes():
    real = _astronaut()
    donor = _moved(real, angle=-5, scale=1.05, shift=(-5, 3), tint=(40, -20, -20))
    params = TransplantParams(
        "mouth", "alpha", dilate=0.05, feather=0.02, colour=0.0, resolution=1.0, shape="donor"
    )
    fake = transplant(real, donor, params)
    changed = _diff(fake, real.image)
    mouth = region_mask(real.landmarks, "mouth", real.image.shape[:2]) > 0
    eyes = region_mask(real.landmarks, "eyes", real.image.shape[:2]) > 0
    assert changed[mouth].mean() > 15
    assert changed[eyes].max() == 0


def test_transposed_upsampling_leaves_a_checkerboard_where_bilinear_leaves_none():
    flat = np.full((64, 64, 3), 128, np.uint8)
    taps = (0.4, 1.1, 0.5)  # stride 2: the two phases sum to 0.9 and 1.1
    checker = resynthesise(flat, ResynthParams(factor=2, kernel="transposed", taps=taps)).astype(np.int16)
    smooth = resynthesise(flat, ResynthParams(factor=2, kernel="bilinear"))
    inner = checker[4:-4, 4:-4, 0]
    assert inner[::2, ::2].mean() - inner[1::2, 1::2].mean() != 0
    assert np.ptp(inner) >= 10 and np.ptp(smooth) == 0


def test_periodic_pattern_puts_a_peak_in_the_spectrum():
    img = inner_crop(_astronaut().image)
    fake = resynthesise(img, ResynthParams(peak_period=8, peak_amplitude=2.0))
    spectrum = lambda x: np.abs(np.fft.fft2(x[..., 1].astype(np.float64) - x[..., 1].mean()))  # noqa: E731
    bin_ = img.shape[0] // 8  # 224 / 8 = 28 cycles across the crop
    assert spectrum(fake)[0, bin_] > 5 * spectrum(img)[0, bin_]


def test_smoothing_irons_out_skin_texture():
    face = _astronaut()
    skin = region_mask(face.landmarks, "face", face.image.shape[:2], -15) > 0

    def texture(img: np.ndarray) -> float:  # median fine detail inside the face: edges barely count
        g = img[..., 1].astype(np.float32)
        return float(np.median(np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.5))[skin]))

    for smoothing in ("bilateral", "guided"):
        fake = resynthesise(face.image, ResynthParams(smoothing=smoothing, smooth_radius=4, smooth_range=35))
        assert texture(fake) < 0.75 * texture(face.image), smoothing


# ---------------------------------------------------------------- tracks


def _track(length: int = 6) -> list[Face]:
    """A face moving slightly, its mouth a different shade in every frame (so mouth motion shows)."""
    frames = []
    for t in range(length):
        face = _moved(_astronaut(), angle=t - 2, scale=1 + 0.01 * t, shift=(t, -t))
        img = face.image.copy()
        mouth = region_mask(face.landmarks, "mouth", img.shape[:2]) > 0
        img[mouth] = np.clip(img[mouth].astype(np.int16) + 12 * t, 0, 255).astype(np.uint8)
        frames.append(Face(img, face.landmarks))
    return frames


@pytest.mark.parametrize("family", sorted(TRACK_FAMILIES))
def test_track_families_keep_the_length_and_repeat_from_their_seed(family):
    track, donors = _track(), [_donor()]
    a = synthesise_track(track, donors, family, np.random.default_rng(4))
    b = synthesise_track(track, donors, family, np.random.default_rng(4))
    assert len(a) == len(track) and all(f.shape == track[0].image.shape for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(_diff(f, r.image).mean() > 0.3 for f, r in zip(a, track, strict=True))


def test_frozen_face_moves_only_the_mouth():
    track = _track()
    fake = frozen_face(track, FrozenParams(anchor=2, dilate=0.05, feather=0.02, sway=0.0))
    still = track[2]
    near_mouth = cv2.dilate(
        region_mask(
            still.landmarks, "mouth", still.image.shape[:2], round(0.2 * face_width(still.landmarks))
        ),
        np.ones((3, 3)),
    )
    rest = near_mouth == 0
    for frame in fake:
        assert _diff(frame, still.image)[rest].max() == 0  # everything but the mouth is the still frame
    mouth = region_mask(still.landmarks, "mouth", still.image.shape[:2]) > 0
    shades = [frame[mouth].mean() for frame in fake]
    assert shades[-1] - shades[0] > 30  # the mouth follows each frame (it brightens by 12 per frame)


def test_flicker_changes_the_blend_from_frame_to_frame():
    track = [_astronaut()] * 5  # a still face: any change between frames is the forgery's
    fake = flicker(track, draw_flicker_params(np.random.default_rng(0), 310, len(track)))
    steps = [_diff(a, b).mean() for a, b in zip(fake[:-1], fake[1:], strict=True)]
    assert min(steps) > 0.2


def test_identity_drift_grows_over_the_track():
    track = [_astronaut()] * 6
    drawn = draw_drift_params(np.random.default_rng(0))
    params = replace(drawn, swap=replace(drawn.swap, colour=0.0), final=1.0)  # the donor's tint shows
    fake = identity_drift(track, _donor(), params)
    distance = [_diff(f, track[0].image).mean() for f in fake]
    assert distance[0] == 0
    assert all(b >= a for a, b in zip(distance[:-1], distance[1:], strict=True)) and distance[-1] > 2


# ---------------------------------------------------------------- helper for feature experiments


def test_synthetic_fakes_from_bare_crops_find_their_own_landmarks():
    real = _astronaut()
    crops = [inner_crop(real.image), inner_crop(_moved(real, 6, 0.95, (4, 0), (20, 0, -20)).image)]
    fakes = synthetic_fakes(crops, count=8, mix={"swap": 1, "resynth": 1}, seed=3)
    again = synthetic_fakes(crops, count=8, mix={"swap": 1, "resynth": 1}, seed=3)
    assert len(fakes) == 8 and {name for _, name in fakes} <= {"swap", "resynth"}
    assert all(img.shape == (224, 224, 3) for img, _ in fakes)
    assert all(np.array_equal(a, b) and m == n for (a, m), (b, n) in zip(fakes, again, strict=True))
    # a swap from dlib's landmarks keeps the crop's corners (far from the face) as they were
    for img, name in fakes:
        if name == "swap":
            source = next(c for c in crops if _diff(img[:20, :20], c[:20, :20]).max() == 0)
            assert _diff(img, source).mean() > 0.3


def test_similarity_recovers_a_known_transform():
    pts = _astronaut().landmarks
    m = cv2.getRotationMatrix2D((100, 120), 12, 0.8)
    assert np.allclose(similarity(pts, transform(pts, m)), m, atol=1e-3)


# ---------------------------------------------------------------- python -m ml synth


def test_cli_writes_examples_and_a_contact_sheet_from_real_photos(tmp_path):
    from ml.__main__ import main
    from tests.ml.media_factory import write_image

    real_dir = tmp_path / "data" / "train" / "real"
    real_dir.mkdir(parents=True)
    photo = astronaut()
    write_image(real_dir / "a.jpg", photo)
    write_image(real_dir / "b.jpg", np.ascontiguousarray(photo[:, ::-1]))
    write_image(real_dir / "c.jpg", np.clip(photo.astype(np.int16) + (30, 0, -30), 0, 255).astype(np.uint8))
    out = tmp_path / "out"
    args = ["synth", "--family", "swap", "--out", str(out), "--count", "2", "--data", str(tmp_path / "data")]
    assert main(args) == 0
    sheet = cv2.imread(str(out / "sheet.png"))
    assert sheet.shape[:2] == (2 * 200, 4 * 200)  # two rows: real | donor | swap | difference
    assert len(list(out.glob("*-swap.png"))) == 2 and len(list(out.glob("*-real.png"))) == 2


def test_cli_writes_track_examples_from_real_clips(tmp_path):
    from ml.__main__ import main
    from tests.ml.media_factory import write_video

    real_dir = tmp_path / "data" / "train" / "real"
    real_dir.mkdir(parents=True)
    write_video(real_dir / "a.mp4", frames=20)
    write_video(real_dir / "b.mp4", frames=20, size=(480, 360))
    out = tmp_path / "out"
    args = [
        "synth",
        "--family",
        "frozen",
        "--out",
        str(out),
        "--count",
        "1",
        "--data",
        str(tmp_path / "data"),
    ]
    assert main(args) == 0
    strip = cv2.imread(str(out / "00-frozen-frames.png"))
    assert strip.shape[:2] == (2 * 200, 6 * 200)  # real frames above, forged frames below


def test_a_face_outside_the_crop_leaves_the_crop_as_it_was():
    real = _astronaut()
    away = Face(real.image, real.landmarks + 1000)  # landmarks of a face that is not in this crop
    for blend in ("alpha", "poisson"):
        params = TransplantParams("face", blend, 0.0, 0.02, colour=1.0, resolution=1.0, shape="target")
        assert np.array_equal(transplant(away, _donor(), params), real.image)
