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


def test_compare_embeds_once_per_set_of_forgeries_and_applies_each_override(tmp_path, monkeypatch, capsys):
    import json

    import numpy as np

    from benchmarks import loso
    from ml.loso import RowResult

    gathered, fitted = [], []
    monkeypatch.setattr(loso, "clip_features", lambda data, cache, cfg: gathered.append(cfg) or {"id": cfg})
    monkeypatch.setattr(loso, "source_groups", lambda data: {})
    monkeypatch.setattr(loso, "in_domain_aucs", lambda features, cfg, group_of: (0.9, 0.8))

    def rows(data, cache, cfg, features):
        fitted.append((cfg, features["id"]))
        labels, probs = np.array([1, 0]), np.array([0.9, 0.8])  # both decided, the real one wrongly
        return [RowResult("lfw", 0.7 + 0.01 * cfg.members, 1, 1, labels, np.zeros(2), probs=probs)]

    monkeypatch.setattr(loso, "clip_rows", rows)
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"head": "mlp", "members": 1}))
    overrides = ["{}", '{"members": 3}', '{"synth_per_family": {"sbi": 10}}', '{"balance": true}']
    loso.main(["--compare", *overrides, "--config", str(config), "--data", str(tmp_path)])
    # head and weighting overrides share the recipe's rows; other forgeries need rows of their own
    assert [g.synth_per_family for g in gathered] == [{"resynth": 320, "sbi": 320}, {"sbi": 10}]
    assert [(c.members, c.balance) for c, _ in fitted] == [(1, False), (3, False), (1, False), (1, True)]
    assert fitted[3][1] is gathered[0]  # the balanced variant scored on the recipe's own rows
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| {")]
    assert lines[1] == '| {"members": 3} | 1 | 0.730 | 0.730 | lfw | - | 0.900 | 0.800 | 0.500 | 0.500 |'


def test_head_spread_is_how_far_the_calibrated_heads_of_a_record_lie_apart():
    from types import SimpleNamespace

    import numpy as np

    from benchmarks.loso import head_spread
    from ml.metrics import sigmoid

    class Head:
        def __init__(self, offset):
            self.offset = offset

        def logits(self, rows):
            return rows[:, 0] + self.offset

    from ml.probe import EnsembleProbe

    probe = EnsembleProbe([Head(-1.0), Head(0.0), Head(1.0)])
    rows_of = {"clip.mp4": [np.array([0.0]), np.array([2.0])], "photo.jpg": [np.array([0.0])]}
    records = [SimpleNamespace(path=SimpleNamespace(name=n)) for n in rows_of]
    spread = head_spread(probe, records, rows_of, temperature=2.0)
    # a clip: each head's logit averaged over its frames (mean 1.0), then calibrated
    np.testing.assert_allclose(spread, [sigmoid(1.0) - sigmoid(0.0), sigmoid(0.5) - sigmoid(-0.5)])
    assert head_spread(probe.members[1], records, rows_of, 2.0).tolist() == [0.0, 0.0]


def test_a_held_out_row_scores_calibrates_and_flags_its_items(tmp_path):
    from pathlib import Path

    import numpy as np

    from benchmarks.loso import held_out_row
    from ml.clip_encoder import EMBED_DIM, ROW_DIM
    from ml.sources import MediaRecord
    from ml.train_clip import ClipTrainConfig, Features

    rng = np.random.default_rng(1)
    records, rows_of = [], {}
    for split in ("train", "val", "test"):
        for group in ("lfw", "wfir"):
            for label in (0, 1):
                for i in range(12):
                    name = f"{group}_{split}_{label}_{i}.jpg"
                    row = rng.normal(0, 1, ROW_DIM).astype(np.float32)
                    row[EMBED_DIM : EMBED_DIM + 32] += 3.0 * label
                    rows_of[name] = [row]
                    records.append(MediaRecord(Path(name), label, split, group, group))
    train = [r for r in records if r.split == "train"]
    features = {
        "train_photos": Features(
            np.stack([rows_of[r.path.name][0] for r in train]),
            np.array([r.label for r in train]),
            [r.path.name for r in train],
        ),
        "train_frames": Features(np.zeros((0, ROW_DIM), np.float32), np.zeros(0, int), []),
    }
    group_of = {r.path.name: r.group for r in records}
    cfg = ClipTrainConfig(feature="cls", hidden=8, iterations=20, members=3)
    result = held_out_row(features, cfg, "wfir", ("wfir",), records, group_of, rows_of)
    assert result.n_fake == 36 and result.n_real == 36 + 12  # every wfir file, and lfw's test reals
    assert result.auc > 0.8 and ((result.probs > 0) & (result.probs < 1)).all()
    assert set(result.candidates) == {f"heads_disagree_q{q}" for q in (90, 95, 99)}
    assert result.unfamiliar.shape == result.labels.shape  # the product's check, with the row's own faces
    assert result.held_out.sum() == 72  # wfir's files; lfw's 12 test reals are the rest
    assert all(len(flag) == len(result.labels) for flag in result.candidates.values())
    # the check's parts are kept, and at the product's quantile they abstain exactly where it does
    from ml.loso import OperatingPoint, abstains_at

    band = (0.35, 0.65)
    inside = (result.probs >= band[0]) & (result.probs < band[1])
    assert len(result.neighbour_distance) == len(result.labels) and len(result.val_neighbour_distance) == 24
    np.testing.assert_array_equal(abstains_at(result, OperatingPoint(band, 0.95)), inside | result.unfamiliar)


def test_the_shipped_card_on_the_test_splits_reads_its_own_calibration_and_check():
    import numpy as np

    from benchmarks.loso import shipped_in_domain
    from ml.clip_encoder import ROW_DIM
    from ml.registry import load_clip_probe
    from ml.train_clip import Features
    from ml.uncertainty import out_of_distribution

    rng = np.random.default_rng(0)

    def part(keys, labels):
        return Features(rng.normal(0, 1, (len(keys), ROW_DIM)).astype(np.float32), np.array(labels), keys)

    features = {
        "val_photos": part(["v0.jpg", "v1.jpg"], [0, 1]),
        "val_frames": part(["c.mp4#0", "c.mp4#5"], [1, 1]),
        "test_photos": part(["t0.jpg", "t1.jpg", "t2.jpg"], [0, 1, 1]),
        "test_frames": part(["a.mp4#0", "a.mp4#3", "b.mp4#0"], [0, 0, 1]),
    }
    photos, clips = shipped_in_domain(features)
    assert (photos.row, clips.row) == ("test_photos", "test_clips")
    assert photos.labels.tolist() == [0, 1, 1] and clips.labels.tolist() == [0, 1]
    probe, card, reference = load_clip_probe()
    expected = 1 / (1 + np.exp(-probe.logits(features["test_photos"].x) / card.temperature))
    np.testing.assert_allclose(photos.probs, expected)
    assert len(photos.val_neighbour_distance) == 3  # two val photos and one val clip
    # the product's own check agrees with the kept parts at the card's threshold
    from ml.probe import select

    stats = card.embedding_stats
    inputs = [select(x[None], probe.feature, probe.l2) for x in features["test_photos"].x]
    flags = [out_of_distribution(x, stats, reference) is not None for x in inputs]
    near = photos.neighbour_distance > stats["neighbours"]["max_distance"]
    assert flags == (photos.far_from_mean | near).tolist()
