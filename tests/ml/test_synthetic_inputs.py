"""ml.synthetic_inputs: the face videos and photos that roundtrip and the benchmarks build on the fly."""

from __future__ import annotations

import numpy as np

from ml.media import probe, sample_frames
from ml.synthetic_inputs import InputSpec, build_input


def test_input_builder_writes_a_face_video_with_sparse_keyframes(tmp_path):
    spec = InputSpec("tiny", 320, 240, 1.0, fps=30)
    path = build_input(spec, tmp_path, key_interval=24)
    info = probe(path)
    assert (info.kind, info.width, info.height, info.frame_count) == ("video", 320, 240, 30)
    # only frames 0 and 24 are indexed as keyframes: seeking must still land on every frame exactly
    grabbed = list(sample_frames(path, 30, mode="first", strategy="grab", info=info))
    seeked = list(sample_frames(path, 30, mode="first", strategy="seek", info=info))
    assert [f.index for f in seeked] == [f.index for f in grabbed] == list(range(30))
    for a, b in zip(grabbed, seeked, strict=True):
        assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() < 2


def test_input_builder_writes_a_photo(tmp_path):
    path = build_input(InputSpec("photo", 800, 600), tmp_path)
    info = probe(path)
    assert (info.kind, info.width, info.height) == ("image", 800, 600)
