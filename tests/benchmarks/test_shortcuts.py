from __future__ import annotations

from benchmarks.shortcuts import audit
from tests.ml import media_factory as mf


def test_the_audit_reads_a_label_off_the_jpeg_quality(tmp_path):
    face = mf.astronaut()
    for label, quality in (("real", 90), ("fake", 95)):
        (tmp_path / label).mkdir()
        for i in range(3):
            mf.write_image(tmp_path / label / f"lfw_{label}_{i}.jpg", face, quality=quality)
    table = audit(tmp_path, "images")
    row = table["lfw (3 fake / 3 real)"]
    assert row["jpeg_quality"] == 1.0  # every fake saved finer than every real
    assert row["pixels"] == 0.5  # same size: no information
