from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml.errors import MediaError
from ml.media import frame_indices, load_image, probe, sample_frames, sniff_format


def test_sniff_format_reads_content_not_names():
    assert sniff_format(b"\xff\xd8\xff\xe0....") == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert sniff_format(b"\x00\x00\x00\x18ftypisom") == "mp4"
    assert sniff_format(b"\x00\x00\x00\x14ftypqt  ") == "mov"
    assert sniff_format(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm") == "webm"
    assert sniff_format(b"%PDF-1.7") is None


def test_probe_image_and_video(face_jpg, face_video):
    img = probe(face_jpg)
    assert (img.kind, img.format, img.width, img.height) == ("image", "jpeg", 512, 512)
    vid = probe(face_video)
    assert (vid.kind, vid.format, vid.width, vid.height, vid.frame_count) == ("video", "mp4", 640, 360, 40)
    assert vid.duration == pytest.approx(2.0)


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty", "empty"),
        ("pdf_as_mp4", "not a supported image or video"),
        ("truncated_jpg", "corrupt or truncated"),
        ("truncated_mp4", "corrupt or truncated"),
    ],
)
def test_bad_files_get_readable_errors(corrupt_files, name, message):
    with pytest.raises(MediaError, match=message):
        probe(corrupt_files[name])


def test_image_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 9_000)).save(bomb)  # 90 megapixels in a tiny file
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(MediaError, match="too large"):
        probe(bomb)


def test_load_image_applies_exif_orientation(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = 255  # left half white
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    upright = load_image(path)
    assert upright.shape == (40, 20, 3)
    assert upright[:20].mean() > 200 and upright[20:].mean() < 50  # the white half is now on top


def test_frame_indices_uniform_and_first():
    assert frame_indices(100, 4) == [12, 37, 62, 87]
    assert frame_indices(100, 4, "first") == [0, 1, 2, 3]
    assert frame_indices(3, 10) == [0, 1, 2]
    assert frame_indices(0, 10) == []
    idx = frame_indices(10_000, 32)
    assert len(idx) == 32 and idx[0] < 320 and idx[-1] > 9_600  # covers the whole clip


def test_sample_frames_grab_and_seek_agree(face_video):
    grabbed = list(sample_frames(face_video, 5, strategy="grab"))
    seeked = list(sample_frames(face_video, 5, strategy="seek"))
    assert [f.index for f in grabbed] == [4, 12, 20, 28, 36] == [f.index for f in seeked]
    for a, b in zip(grabbed, seeked, strict=True):
        assert a.rgb.shape == (360, 640, 3)
        assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() < 2
    assert grabbed[1].time == pytest.approx(12 / 20)


def test_sample_frames_refuses_images(face_jpg):
    with pytest.raises(MediaError):
        list(sample_frames(face_jpg))


def test_prefetch_keeps_order_bounds_memory_and_reraises():
    import threading

    from ml.media import prefetch

    produced = []

    def numbers(n: int, fail_at: int | None = None):
        for i in range(n):
            if i == fail_at:
                raise MediaError("broken frame")
            produced.append(i)
            yield i

    assert list(prefetch(numbers(20), depth=3)) == list(range(20))
    with pytest.raises(MediaError, match="broken frame"):
        list(prefetch(numbers(10, fail_at=5)))
    produced.clear()
    stream = prefetch(numbers(1000), depth=3)
    assert next(stream) == 0
    stream.close()  # a consumer that stops early stops the producer: no thread left, few items decoded
    assert len(produced) <= 6
    assert not [t for t in threading.enumerate() if t.name == "prefetch"]


def test_keyframes_are_read_from_packets(face_video):
    from ml.media import keyframe_indices

    # OpenCV's writer stores a keyframe every 12 frames (the fixture has 40)
    assert keyframe_indices(face_video) == [0, 12, 24, 36]


def test_samples_snap_to_cheap_seek_targets_spread_over_the_clip():
    from ml.media import OPENCV_SEEK_BACKSTEP, snap_to_keyframes

    keyframes = list(range(0, 9000, 250))  # x264's default GOP, a 5 min clip at 30 fps
    wanted = frame_indices(9000, 32)
    snapped = snap_to_keyframes(wanted, keyframes, 9000)
    assert len(snapped) == 32 and snapped == sorted(set(snapped))
    assert all((f - OPENCV_SEEK_BACKSTEP) in keyframes for f in snapped)
    assert max(abs(a - b) for a, b in zip(snapped, wanted, strict=True)) < 250
    assert snap_to_keyframes(wanted, keyframes[:20], 9000) is None  # too few keyframes: keep exact seeks


# --- Hostile shapes and containers (issue 12) -------------------------------------------------------------


@pytest.mark.parametrize(
    "size, message",
    [((60000, 1), "impossible shape|too small"), ((1, 1), "too small"), ((4000, 100), "shape")],
)
def test_impossible_image_shapes_are_refused_at_probe(tmp_path, size, message):
    path = tmp_path / "odd.png"
    Image.new("L", size).save(path)
    with pytest.raises(MediaError, match=message):
        probe(path)


@pytest.mark.parametrize("side", [20000, 65535])
def test_images_over_pillows_own_bomb_limit_are_too_large_not_corrupt(tmp_path, side):
    from tests.ml.media_factory import png_header_only

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(MediaError, match="too large"):
        probe(path)


def test_sixteen_bit_grayscale_png_keeps_its_tones(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)
    rgb = load_image(path)
    assert rgb.shape == (64, 64, 3)
    assert rgb.mean() == pytest.approx(127.5, abs=2)  # all white (255) before the fix
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_mp4_with_its_index_first_cut_to_a_third_is_truncated(tmp_path, face_video):
    from tests.ml.media_factory import faststart

    whole = faststart(face_video, tmp_path / "faststart.mp4")
    assert probe(whole).frame_count == 40  # the rewrite itself is a valid clip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(MediaError, match="truncated"):
        probe(cut)


@pytest.mark.parametrize("brand, name", [(b"heic", "HEIC"), (b"avif", "AVIF"), (b"mif1", "HEIF")])
def test_heic_and_avif_renamed_mp4_are_named_as_photos(tmp_path, brand, name):
    from tests.ml.media_factory import heif_box

    path = tmp_path / "photo.mp4"
    path.write_bytes(heif_box(brand))
    with pytest.raises(MediaError, match=f"{name} photo"):
        probe(path)


def test_mp4_without_a_video_track_says_so(tmp_path, face_video):
    from tests.ml.media_factory import sound_only

    path = sound_only(face_video, tmp_path / "sound.mp4")
    with pytest.raises(MediaError, match="no video stream"):
        probe(path)


def test_mp4_without_an_index_is_corrupt(tmp_path, face_video):
    data = face_video.read_bytes()
    at = data.find(b"moov") - 4
    path = tmp_path / "nomoov.mp4"
    path.write_bytes(data[:at])
    with pytest.raises(MediaError, match="no index|truncated"):
        probe(path)


def test_read_plan_is_bounded_whatever_the_keyframes():
    from ml.media import MAX_DECODE_MEGAPIXELS, plan_reads

    pixels = 1920 * 1080
    frames = 170 * 30  # the clip of issue 12: 170 s of 1080p with one keyframe
    wanted = frame_indices(frames, 32)
    plan = plan_reads(wanted, [0], frames, pixels, "uniform")
    assert len(plan.frames) == 32 and plan.frames == sorted(set(plan.frames))
    assert plan.decodes * pixels <= MAX_DECODE_MEGAPIXELS * 1_000_000
    # 5 min with x264's keyframe every 250 frames: samples snap to keyframes, ~33 decodes each
    regular = plan_reads(frame_indices(9000, 32), list(range(0, 9000, 250)), 9000, pixels, "uniform")
    assert regular.strategy == "seek" and regular.decodes <= 32 * 40
    # short clip, samples close together: walking is cheapest
    short = frame_indices(300, 32)
    assert plan_reads(short, list(range(0, 300, 250)), 300, pixels, "uniform").strategy == "grab"


def test_single_keyframe_clip_costs_no_more_than_walking_it(tmp_path):
    import time

    import cv2

    from tests.ml.media_factory import single_keyframe

    # 5000 frames: samples 156 frames apart, where seeking used to be chosen and cost ~16x a walk
    path = tmp_path / "one_key.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (128, 96))
    for i in range(5000):
        writer.write(np.roll(base, 3 * i, axis=1))
    writer.release()
    single_keyframe(path)
    started = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    while cap.grab():
        pass
    cap.release()
    walk = time.perf_counter() - started
    started = time.perf_counter()
    frames = list(sample_frames(path, 32))
    sampled = time.perf_counter() - started
    print(f"single-keyframe 5000-frame clip: walk {walk:.2f} s, sample 32 frames {sampled:.2f} s")
    assert len(frames) == 32
    assert sampled < 3 * walk + 1  # before the bound: 16-22 times the walk


def test_opencv_failures_inside_the_analysis_are_not_retried_as_transient(face_jpg, monkeypatch):
    import cv2

    from ml.pipeline import Analyser

    def broken(*args):
        return cv2.resize(np.zeros((0, 0), np.uint8), (2, 2))  # cv2.error: an internal assertion

    analyser = object.__new__(Analyser)  # no models needed: the failure comes before them
    monkeypatch.setattr(Analyser, "_analyse_image", broken)
    with pytest.raises(MediaError, match="could not be processed") as raised:
        analyser.analyse(face_jpg)
    assert "cv2" not in str(raised.value) and "Assertion" not in str(raised.value)
