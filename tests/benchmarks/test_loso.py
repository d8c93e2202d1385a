from __future__ import annotations

from benchmarks.loso import holdout_folder


def test_holdout_folder_takes_every_split_of_the_source_and_only_test_reals(tmp_path):
    data = tmp_path / "images"
    files = {"real": ["wfir_ffhq_1", "lfw_real_1"], "fake": ["wfir_tpdne_1", "lfw_fake_1"]}
    for split in ("train", "val", "test"):
        for label, names in files.items():
            (data / split / label).mkdir(parents=True)
            for name in names:
                (data / split / label / f"{name}.jpg").write_bytes(b"x")
    out = tmp_path / "heldout"
    counts = holdout_folder(data, ("wfir",), out)
    assert counts == {"real": 4, "fake": 3}  # 3 held-out reals + the test split's other real; 3 fakes
    fakes = sorted(p.name for p in (out / "fake").iterdir())
    assert fakes == ["test-wfir_tpdne_1.jpg", "train-wfir_tpdne_1.jpg", "val-wfir_tpdne_1.jpg"]
    assert "test-lfw_real_1.jpg" in {p.name for p in (out / "real").iterdir()}
    assert all(p.is_symlink() for p in (out / "real").iterdir())  # links, never copies of the media


def test_variant_line_reports_source_rows_apart_from_synthetic_ones():
    import numpy as np

    from benchmarks.loso import _variant_line
    from ml.loso import RowResult

    def row(name, auc):
        return RowResult(name, auc, 10, 10, np.zeros(2), np.zeros(2))

    line = _variant_line("L8, 0.05", [row("lfw", 0.9), row("dfdc", 0.6), row("synth_resynth", 0.2)])
    assert line == "| L8, 0.05 | 2 | 0.750 | 0.600 | dfdc | 0.200 |"
