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
