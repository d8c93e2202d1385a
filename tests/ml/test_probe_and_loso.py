"""The probes (linear and MLP), the feature store, the manifest's source groups and the LOSO split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ml.clip_encoder import EMBED_DIM, ROW_DIM
from ml.dataset import inner_crop
from ml.features import EmbeddingStore, fill, track_steps
from ml.loso import (
    OperatingPoint,
    RowResult,
    abstains,
    abstains_at,
    auc_or_nan,
    operating_point_lines,
    selective_lines,
    split_row,
    summary_line,
)
from ml.probe import (
    FEATURE_SLICES,
    EnsembleProbe,
    LinearProbe,
    MlpProbe,
    feature_parts,
    fit_mlp_probe,
    fit_probe,
    member_count,
    member_logits,
    probe_from_arrays,
    select,
)
from ml.sources import MediaRecord, source_group
from ml.train_clip import ClipTrainConfig, Features, fit, keep_photo, source_name, track_logits

WIDTH = ROW_DIM


def _features(rng, n, shift):
    x = rng.normal(0, 1, (n, WIDTH)).astype(np.float32)
    x[:, EMBED_DIM : EMBED_DIM + 8] += shift  # the label lives in the CLS part
    return x


def test_probe_separates_what_is_separable_and_survives_its_arrays():
    rng = np.random.default_rng(0)
    x = np.concatenate([_features(rng, 200, 0.0), _features(rng, 200, 1.5)])
    y = np.r_[np.zeros(200), np.ones(200)]
    probe = fit_probe(x, y, feature="cls")
    logits = probe.logits(x)
    assert (logits[y == 1] > 0).mean() > 0.9 and (logits[y == 0] < 0).mean() > 0.9
    again = LinearProbe.from_arrays(probe.to_arrays(), "cls", True)
    np.testing.assert_allclose(again.logits(x), logits, rtol=1e-9)


def test_mlp_probe_learns_what_no_line_separates_and_survives_its_arrays():
    rng = np.random.default_rng(2)
    x = np.zeros((600, WIDTH), np.float32)  # constant elsewhere: standardised to zero
    a, b = EMBED_DIM, EMBED_DIM + 1  # two CLS dimensions whose signs agree on real, disagree on fake
    x[:, a] = rng.choice([-3.0, 3.0], 600) + rng.normal(0, 0.3, 600)
    x[:, b] = rng.choice([-3.0, 3.0], 600) + rng.normal(0, 0.3, 600)
    y = (np.sign(x[:, a]) != np.sign(x[:, b])).astype(int)
    fit_rows, held_out = np.arange(600) < 400, np.arange(600) >= 400
    mlp = fit_mlp_probe(x[fit_rows], y[fit_rows], feature="cls", hidden=16, alpha=0.01, iterations=200)
    linear = fit_probe(x[fit_rows], y[fit_rows], feature="cls")
    assert ((mlp.logits(x[held_out]) > 0) == y[held_out]).mean() > 0.9
    assert ((linear.logits(x[held_out]) > 0) == y[held_out]).mean() < 0.7
    again = probe_from_arrays(mlp.to_arrays(), {"feature": "cls", "l2": True, "head": "mlp"})
    assert isinstance(again, MlpProbe)
    np.testing.assert_allclose(again.logits(x), mlp.logits(x), rtol=1e-9)


def test_cards_without_a_head_load_the_linear_probe_and_unknown_heads_fail():
    rng = np.random.default_rng(3)
    x = np.concatenate([_features(rng, 50, 0.0), _features(rng, 50, 1.5)])
    probe = fit_probe(x, np.r_[np.zeros(50), np.ones(50)], feature="cls")
    assert isinstance(probe_from_arrays(probe.to_arrays(), {"feature": "cls", "l2": True}), LinearProbe)
    with pytest.raises(ValueError, match="unknown probe head"):
        probe_from_arrays(probe.to_arrays(), {"feature": "cls", "l2": True, "head": "forest"})


def test_probe_reads_the_named_blocks_each_normalised_on_its_own():
    rng = np.random.default_rng(1)
    x = np.concatenate([_features(rng, 150, 0.0), _features(rng, 150, 0.0)])
    y = np.r_[np.zeros(150), np.ones(150)]
    x[150:, FEATURE_SLICES["L6"].start : FEATURE_SLICES["L6"].start + 8] += 3.0  # block 6 carries the label
    assert feature_parts("L6+cls") == ["L6", "cls"] and feature_parts("both") == ["embed", "cls"]
    chosen = select(x, "L6+cls")
    assert chosen.shape == (300, 2 * 768)
    np.testing.assert_allclose(np.linalg.norm(chosen[:, :768], axis=1), 1.0)
    fit_rows, held_out = np.arange(300) % 2 == 0, np.arange(300) % 2 == 1
    block6 = fit_probe(x[fit_rows], y[fit_rows], feature="L6")
    last = fit_probe(x[fit_rows], y[fit_rows], feature="L12")
    assert ((block6.logits(x[held_out]) > 0) == y[held_out]).mean() > 0.9
    assert ((last.logits(x[held_out]) > 0) == y[held_out]).mean() < 0.7  # block 12's slice is only noise here
    with pytest.raises(ValueError, match="unknown feature"):
        select(x, "L13")


def test_store_embeds_only_what_is_missing_and_persists(tmp_path):
    calls = []

    def encode(crops):
        calls.append(len(crops))
        n = len(crops)
        return np.full((n, WIDTH), 1.0, np.float32)

    store = EmbeddingStore(tmp_path / "f.npz")
    fill(
        store, [(f"k{i}", lambda: np.zeros((4, 4, 3), np.uint8)) for i in range(5)], encode, batch=2, log=str
    )
    fill(
        store, [(f"k{i}", lambda: np.zeros((4, 4, 3), np.uint8)) for i in range(6)], encode, batch=2, log=str
    )
    assert calls == [2, 2, 1, 1]  # the second fill embedded only k5
    reloaded = EmbeddingStore(tmp_path / "f.npz")
    assert len(reloaded) == 6 and reloaded.get(["k3"]).shape == (1, WIDTH)


def test_track_steps_spread_over_the_track():
    assert track_steps(32, 4) == [0, 10, 21, 31]
    assert track_steps(2, 4) == [0, 1]
    assert track_steps(0, 4) == []


def test_source_groups_split_ffpp_by_method_and_compression():
    assert source_group("ffpp_c40_Face2Face_720_672.mp4", "ffpp_c40_mudouble") == "ffpp_c40_Face2Face"
    assert source_group("ffpp_Deepfakes_033_097.mp4", "icpr2020dfdc") == "ffpp_c23_Deepfakes"
    assert source_group("ffpp_c40_original_youtube_866.mp4", "ffpp_c40_mudouble") == "ffpp_c40_original"
    assert source_group("dfdc_abc.mp4", "icpr2020dfdc") == "dfdc"
    assert source_group("dfl_x_left.mp4", "dfl") == "dfl"


def _rec(name, label, split, group):
    return MediaRecord(Path(name), label, split, group, group)


def test_a_row_never_trains_on_its_groups_and_scores_them_in_every_split():
    records = [
        _rec("a1", 1, "train", "A"), _rec("a2", 1, "test", "A"), _rec("a3", 0, "val", "A"),
        _rec("b1", 1, "train", "B"), _rec("b2", 0, "train", "B"), _rec("b3", 0, "test", "B"),
        _rec("b4", 1, "test", "B"),
    ]  # fmt: skip
    train, evaluation = split_row(records, ("A",))
    assert {r.path.name for r in train} == {"b1", "b2"}
    # every A file, plus the test split's reals of other groups (never their fakes)
    assert {r.path.name for r in evaluation} == {"a1", "a2", "a3", "b3"}


def test_fit_drops_the_rows_of_held_out_sources_including_their_forgeries():
    rng = np.random.default_rng(1)
    keys = ["lfw_real_1.jpg", "lfw_fake_1.jpg", "dfl_a.mp4#0", "dfl_a.mp4#9", "synth/swap/0/lfw_real_1.jpg"]
    assert [source_name(k) for k in keys] == [
        "lfw_real_1.jpg",
        "lfw_fake_1.jpg",
        "dfl_a.mp4",
        "dfl_a.mp4",
        "lfw_real_1.jpg",
    ]
    features = {
        "train_photos": Features(_features(rng, 2, 0), np.array([0, 1]), keys[:2]),
        "train_frames": Features(_features(rng, 2, 0), np.array([1, 1]), keys[2:4]),
        "train_synth": Features(_features(rng, 1, 0), np.array([1]), keys[4:]),
    }
    seen = []
    cfg = ClipTrainConfig()
    try:
        fit(features, cfg, drop=lambda key: seen.append(key) or source_name(key).startswith("lfw"))
    except ValueError:
        pass  # only one class (the dfl fakes) is left: the point is which rows were offered
    assert sorted(seen) == sorted(keys)


def test_resaved_faces_keep_their_label_and_their_source():
    from ml.dataset import CropSet
    from ml.train_clip import resaved_items

    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (6, 96, 96, 3), dtype=np.uint8)
    crops[:, 24:72, 24:72] = 128  # some flat area for the JPEG blocks to show on
    paths = [f"/d/train/{'fake' if i % 2 else 'real'}/wfir_{i}.jpg" for i in range(6)]
    cs = CropSet(crops, np.zeros((6, 68, 2), np.float32), np.array([i % 2 for i in range(6)]), paths)
    cfg = ClipTrainConfig(resaved=4)
    items = list(resaved_items(cs, cfg, keep=lambda path: not path.endswith("_5.jpg")))
    assert len(items) == 4 and len({k for k, _, _ in items}) == 4
    for key, make, label in items:
        index = int(source_name(key).split("_")[1].split(".")[0])
        assert key.startswith("resaved/") and index != 5  # never a photo the filter left out
        assert label == index % 2  # its own photo's label, fake or real
        crop = make()
        assert crop.shape == (224, 224, 3)
        original = inner_crop(cs.crops[index])
        assert 0 < np.abs(crop.astype(int) - original.astype(int)).mean() < 40  # the same face, re-saved
    again = list(resaved_items(cs, cfg, keep=lambda path: not path.endswith("_5.jpg")))
    assert [k for k, _, _ in again] == [k for k, _, _ in items]  # fixed by the seed: the store's keys hold


def test_clip_score_of_a_video_is_its_mean_frame_logit():
    rng = np.random.default_rng(2)
    x = np.concatenate([_features(rng, 100, 0.0), _features(rng, 100, 1.5)])
    probe = fit_probe(x, np.r_[np.zeros(100), np.ones(100)], feature="cls")
    frames = Features(x[[0, 1, 150]], np.array([0, 0, 1]), ["a.mp4#0", "a.mp4#5", "b.mp4#0"])
    means, labels = track_logits(probe, frames)
    logits = probe.logits(x[[0, 1, 150]])
    np.testing.assert_allclose(means, [logits[:2].mean(), logits[2]])
    assert labels.tolist() == [0, 1]


def test_thinning_is_a_fixed_function_of_the_name():
    cfg = ClipTrainConfig(thin_photos={"dfdcface": 4}, exclude=["wfir"])
    names = [f"dfdcface_{i:04d}.jpg" for i in range(400)]
    kept = [n for n in names if keep_photo(n, cfg)]
    assert 60 < len(kept) < 140 and kept == [n for n in names if keep_photo(n, cfg)]
    assert keep_photo("rof_ffhq_1.jpg", cfg) and not keep_photo("wfir_ffhq_1.jpg", cfg)


def test_thinning_by_pair_keeps_or_drops_a_real_face_with_the_fake_made_from_it(tmp_path):
    from ml.sources import photo_pairs

    rows = ["path\tlabel\tsplit\tgroup\tsource"]
    for i in range(200):
        rows.append(f"images/train/real/dfdcface_r{i}.jpg\treal\ttrain\torig{i}\tdfdcface")
        rows.append(f"images/train/fake/dfdcface_f{i}.jpg\tfake\ttrain\torig{i}\tdfdcface")
    rows.append("images/train/fake/lfw_fake_1.jpg\tfake\ttrain\t\tlfw_faceswap")
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    pairs = photo_pairs(tmp_path)
    assert pairs["dfdcface_r3.jpg"] == pairs["dfdcface_f3.jpg"] == "orig3" and "lfw_fake_1.jpg" not in pairs
    paired = ClipTrainConfig(thin_photos={"dfdcface": 4}, thin_by_pair=True)
    kept = [i for i in range(200) if keep_photo(f"dfdcface_r{i}.jpg", paired, pairs)]
    assert 25 < len(kept) < 75
    assert kept == [i for i in range(200) if keep_photo(f"dfdcface_f{i}.jpg", paired, pairs)]
    by_name = ClipTrainConfig(thin_photos={"dfdcface": 4})
    both = [i for i in range(200) if all(keep_photo(f"dfdcface_{x}{i}.jpg", by_name, pairs) for x in "rf")]
    assert len(both) < len(kept) / 2  # by name, a kept real seldom keeps its fake


def test_summary_line_is_the_issues_format():
    rows = [
        RowResult("a", 0.9, 1, 1, np.array([]), np.array([])),
        RowResult("b", 0.6, 1, 1, np.array([]), np.array([])),
    ]
    assert summary_line(rows) == "loso_rows=2 loso_mean_auc=0.750 loso_worst_auc=0.600"


def test_an_unfamiliar_held_out_item_abstains_as_the_product_does():
    labels = np.array([1, 1, 0, 0])
    probs = np.array([0.2, 0.9, 0.1, 0.5])  # a confidently wrong fake, two right, one inside the band
    plain = RowResult("row", 0.75, 2, 2, labels, probs, probs=probs)
    flagged = replace(plain, unfamiliar=np.array([True, False, False, False]))
    band = (0.35, 0.65)
    assert abstains(plain, band).tolist() == [False, False, False, True]
    assert abstains(flagged, band).tolist() == [True, False, False, True]
    before, after = selective_lines([plain], band)[-1], selective_lines([flagged], band)[-1]
    assert "decided=0.750" in before and "confidently_wrong=0.250" in before
    assert "decided=0.500" in after and "confidently_wrong=0.000" in after
    assert selective_lines([flagged], band)[2].endswith("| 0.25 |")


def test_an_operating_point_sets_the_band_and_the_neighbour_quantile():
    labels = np.array([1, 1, 0, 0, 1])
    probs = np.array([0.2, 0.9, 0.1, 0.5, 0.72])
    row = RowResult("row", 0.75, 3, 2, labels, probs, probs=probs,
                    far_from_mean=np.array([False, False, True, False, False]),
                    neighbour_distance=np.array([0.30, 0.10, 0.10, 0.10, 0.10]),
                    val_neighbour_distance=np.linspace(0.0, 0.25, 11))  # fmt: skip
    # far from the mean is uncertain at every point; the band; the neighbours past the val quantile
    assert abstains_at(row, OperatingPoint((0.35, 0.65), None)).tolist() == [False, False, True, True, False]
    assert abstains_at(row, OperatingPoint((0.25, 0.75), None)).tolist() == [False, False, True, True, True]
    assert abstains_at(row, OperatingPoint((0.35, 0.65), 0.9)).tolist() == [True, False, True, True, False]
    # a row that did not keep the check's parts abstains on its band alone
    plain = RowResult("row", 0.75, 3, 2, labels, probs, probs=probs)
    assert abstains_at(plain, OperatingPoint((0.35, 0.65), 0.9)).tolist() == [0, 0, 0, 1, 0]


def test_operating_point_lines_pool_the_held_out_rows_and_show_each_in_domain_set():
    labels = np.array([1, 1, 0, 0])
    probs = np.array([0.2, 0.9, 0.1, 0.5])
    held = RowResult("held", 0.75, 2, 2, labels, probs, probs=probs,
                     neighbour_distance=np.array([0.5, 0.1, 0.1, 0.1]),
                     val_neighbour_distance=np.array([0.1, 0.2]))  # fmt: skip
    test = replace(held, row="test_photos", neighbour_distance=np.zeros(4))
    points = [OperatingPoint((0.35, 0.65), None), OperatingPoint((0.35, 0.65), 0.95)]
    lines = operating_point_lines([held], [test], points)
    assert "test_photos decided | test_photos confidently wrong" in lines[0]
    assert len(lines[1].split("|")) == len(lines[0].split("|"))
    # the confidently wrong fake (0.2) is unfamiliar: the check makes it UNCERTAIN, in-domain unchanged
    assert lines[2] == "| 0.35-0.65 / off | 0.750 | 0.667 | 0.500 | 0.500 | 0.250 | 0.750 | 0.250 |"
    assert lines[3] == "| 0.35-0.65 / q95 | 0.500 | 1.000 | 0.500 | 0.500 | 0.000 | 0.750 | 0.250 |"


def test_a_candidate_signal_abstains_only_in_the_line_that_names_it():
    labels = np.array([1, 1, 0, 0])
    probs = np.array([0.2, 0.9, 0.1, 0.5])
    row = RowResult("row", 0.75, 2, 2, labels, probs, probs=probs,
                    candidates={"heads_disagree": np.array([True, False, False, False])})  # fmt: skip
    band = (0.35, 0.65)
    assert abstains(row, band).tolist() == [False, False, False, True]  # the product's reasons alone
    assert abstains(row, band, "heads_disagree").tolist() == [True, False, False, True]
    row = replace(row, held_out=np.array([True, True, False, False]))
    lines = selective_lines([row], band)
    pooled = [ln for ln in lines if ln.startswith("loso_pooled")]
    assert pooled[0].startswith("loso_pooled ") and "confidently_wrong=0.250" in pooled[0]
    assert pooled[1].startswith("loso_pooled_with_heads_disagree ") and "confidently_wrong=0.000" in pooled[1]
    # per row: fires on half the held-out files and none of the others' reals
    assert lines[-1] == "| row | 0.50 | 0.00 | 0.50 | 0.500 | 0.000 |"  # 80 %: both wrong ones too
    assert selective_lines([replace(row, candidates={})], band)[-1].startswith("loso_pooled ")


def test_the_recipe_names_the_head_it_fits():
    rng = np.random.default_rng(4)
    x = np.concatenate([_features(rng, 60, 0.0), _features(rng, 60, 1.5)])
    keys = [f"f{i}.jpg" for i in range(120)]
    features = {
        "train_photos": Features(x, np.r_[np.zeros(60), np.ones(60)].astype(int), keys),
        "train_frames": Features(x[:0], np.zeros(0, int), []),
    }
    shipped = fit(features, ClipTrainConfig(feature="cls"))  # the shipped default: five MLPs averaged
    assert isinstance(shipped, EnsembleProbe) and len(shipped.members) == 5
    assert all(isinstance(m, MlpProbe) for m in shipped.members)
    assert isinstance(fit(features, ClipTrainConfig(feature="cls", members=1)), MlpProbe)
    linear = fit(features, ClipTrainConfig(feature="cls", head="linear"))
    assert isinstance(linear, LinearProbe) and member_count(linear) == 1  # seed-free: one head, not five
    assert member_count(shipped) == 5
    with pytest.raises(ValueError, match="unknown probe head"):
        fit(features, ClipTrainConfig(feature="cls", head="forest"))


def test_balanced_weights_give_every_source_and_label_cell_the_same_weight():
    from ml.train_clip import balanced_weights

    groups = ["big"] * 8 + ["big"] * 2 + ["small"] * 2 + ["synth_sbi"] * 4
    labels = np.array([0] * 8 + [1] * 2 + [0] * 2 + [1] * 4)
    w = balanced_weights(groups, labels)
    assert w.mean() == pytest.approx(1.0)
    cell = {(g, y): w[[i for i in range(16) if groups[i] == g and labels[i] == y]].sum()
            for g, y in {(g, int(y)) for g, y in zip(groups, labels, strict=True)}}  # fmt: skip
    # two real cells, two fake cells: each a quarter of the total, whatever its row count
    assert all(v == pytest.approx(w.sum() / 4) for v in cell.values())
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum())


def test_a_balanced_recipe_weighs_a_small_source_as_much_as_a_large_one():
    rng = np.random.default_rng(5)
    # a large source whose fakes differ in CLS dims 0-7, a small one whose fakes differ in dims 8-15
    big = np.concatenate([_features(rng, 400, 0.0), _features(rng, 400, 1.0)])
    small = rng.normal(0, 1, (40, WIDTH)).astype(np.float32)
    small[20:, EMBED_DIM + 8 : EMBED_DIM + 16] += 1.0
    x = np.concatenate([big, small])
    y = np.r_[np.zeros(400), np.ones(400), np.zeros(20), np.ones(20)].astype(int)
    keys = [f"big_{i}.jpg" for i in range(800)] + [f"small_{i}.jpg" for i in range(40)]
    group_of = {k: k.split("_")[0] for k in keys}
    features = {"train_photos": Features(x, y, keys), "train_frames": Features(x[:0], y[:0], [])}
    test = rng.normal(0, 1, (400, WIDTH)).astype(np.float32)
    test[200:, EMBED_DIM + 8 : EMBED_DIM + 16] += 1.0  # fakes of the small source's kind
    truth = np.r_[np.zeros(200), np.ones(200)]
    aucs = {}
    for balance in (False, True):
        cfg = ClipTrainConfig(feature="cls", head="linear", c=0.05, balance=balance)
        aucs[balance] = auc_or_nan(truth, fit(features, cfg, group_of=group_of).logits(test))
    assert aucs[True] > aucs[False] + 0.02
    with pytest.raises(ValueError, match="source group"):
        fit(features, ClipTrainConfig(feature="cls", balance=True))


def test_an_ensemble_averages_its_members_and_survives_its_arrays():
    rng = np.random.default_rng(6)
    x = np.concatenate([_features(rng, 100, 0.0), _features(rng, 100, 1.5)])
    y = np.r_[np.zeros(100), np.ones(100)].astype(int)
    features = {"train_photos": Features(x, y, [f"{i}.jpg" for i in range(200)])}
    features["train_frames"] = Features(x[:0], y[:0], [])
    cfg = ClipTrainConfig(feature="cls", hidden=8, iterations=20, members=3)
    ensemble = fit(features, cfg)
    assert isinstance(ensemble, EnsembleProbe) and len(ensemble.members) == 3
    each = [m.logits(x) for m in ensemble.members]
    assert not np.allclose(each[0], each[1])  # different seeds, different heads
    np.testing.assert_allclose(ensemble.logits(x), np.mean(each, axis=0))
    np.testing.assert_allclose(member_logits(ensemble, x), np.stack(each))
    single = ensemble.members[0]
    np.testing.assert_allclose(member_logits(single, x), single.logits(x)[None])
    again = probe_from_arrays(
        ensemble.to_arrays(), {"feature": "cls", "l2": True, "head": "mlp", "members": 3}
    )
    np.testing.assert_allclose(again.logits(x), ensemble.logits(x), rtol=1e-9)


def test_the_neighbour_reference_is_drawn_from_the_training_faces_and_thresholded_on_val_files():
    from ml.train_clip import neighbour_reference, ood_check, training_faces, val_files

    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (30, WIDTH)).astype(np.float32)
    features = {
        "train_photos": Features(x[:20], np.zeros(20, int), [f"p{i}.jpg" for i in range(20)]),
        "train_frames": Features(x[20:26], np.zeros(6, int), [f"c{i // 3}.mp4#{i % 3}" for i in range(6)]),
        "val_photos": Features(x[26:28], np.zeros(2, int), ["v0.jpg", "v1.jpg"]),
        "val_frames": Features(x[28:30], np.zeros(2, int), ["vc.mp4#0", "vc.mp4#1"]),
    }
    cfg = ClipTrainConfig(feature="cls")
    faces = training_faces(features, cfg, drop=lambda key: key.startswith("c0"))
    reference = neighbour_reference(faces, n=10)
    assert reference.shape == (10, 768) and reference.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(reference.astype(np.float32), axis=1), 1, atol=1e-3)
    assert len(neighbour_reference(faces)) == 23  # all of them
    files = val_files(features, cfg)
    assert [len(f) for f in files] == [1, 1, 2]  # two photos, one clip of two frames
    stats, reference = ood_check(features, cfg, files)
    assert stats["neighbours"]["faces"] == 26 and 0 < stats["neighbours"]["max_distance"] <= 2
    # the recipe's operating point sets the quantile of the val files' distances that is the threshold
    looser, _ = ood_check(features, replace(cfg, neighbour_quantile=0.5), files)
    assert looser["neighbours"]["quantile"] == 0.5
    assert looser["neighbours"]["max_distance"] <= stats["neighbours"]["max_distance"]
