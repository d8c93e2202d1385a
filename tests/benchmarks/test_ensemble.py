from __future__ import annotations

import numpy as np

from benchmarks.ensemble import calibrated_logit, held_out_lines, print_table
from ml.metrics import sigmoid


def test_the_mix_is_read_off_val_and_test_only_reports_it(capsys):
    y = np.array([0, 0, 1, 1])
    separates, inverted = np.array([-2.0, -1.0, 1.0, 2.0]), np.array([2.0, 1.0, -1.0, -2.0])
    scores = {
        "val": (y, separates, inverted, ["a"] * 4),  # on val only CLIP ranks the fakes higher
        "test": (y, inverted, separates, ["a", "b", "a", "b"]),  # on test only the CNN does
    }
    print_table(scores)
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1]
    weight, test_auc = (float(cell.split("=")[1]) for cell in summary.split()[:2])
    assert weight > 0.5 and test_auc == 0.0  # the weight val prefers, whatever it does on test
    assert "clip_alone=0.000 cnn_alone=1.000" in summary
    header = out.splitlines()[0]
    assert header.endswith("| a | b |")  # one column per group holding both labels


def test_a_group_with_one_label_gets_no_column(capsys):
    y = np.array([0, 1, 1, 0, 1])
    z = np.array([-1.0, 1.0, 2.0, -2.0, 0.5])
    print_table({"val": (y, z, z, ["g"] * 5), "test": (y, z, -z, ["g", "g", "only_fakes", "g", "g"])})
    assert "only_fakes" not in capsys.readouterr().out


def test_a_held_out_rows_probabilities_go_back_to_the_logits_they_came_from():
    z = np.array([-20.0, -0.5, 0.0, 3.0])
    assert np.allclose(calibrated_logit(sigmoid(z)), z)
    assert np.isfinite(calibrated_logit(np.array([0.0, 1.0]))).all()  # saturated rows stay finite


def test_a_held_out_row_is_also_scored_against_its_own_reals_and_per_source():
    # gan_a's fakes outscore every real; gan_b's fakes only beat the other sources' reals ("lfw"), not
    # gan_a's own reals: the row looks separable, its own reals say otherwise for gan_b.
    groups = ["gan_a", "gan_a", "gan_b", "gan_a", "lfw", "lfw"]
    labels = np.array([1, 1, 1, 0, 0, 0])
    z = np.array([5.0, 4.0, 1.0, 3.0, -2.0, -3.0])
    lines = held_out_lines("all_gan", labels, z, z, groups, ("gan_a", "gan_b"))
    assert len(lines) == 8 and all(line.startswith("held_out=all_gan w=") for line in lines)
    cells = dict(cell.split("=") for cell in lines[0].split()[2:])
    assert cells == {"auc": "0.889", "own": "0.667", "gan_a": "1.000", "gan_b": "0.667"}


def test_a_held_out_source_without_reals_has_no_own_auc():
    lines = held_out_lines(
        "gen", np.array([1, 1, 0]), np.array([2.0, 1.0, 0.0]), np.zeros(3), ["gen"] * 2 + ["lfw"], ("gen",)
    )
    assert "own=nan" in lines[-1] and "auc=1.000" in lines[-1] and "gen=1.000" in lines[-1]


def test_a_recorded_row_lands_in_the_mix_cards_table_once_and_a_weak_row_becomes_a_known_limit(tmp_path):
    from benchmarks.ensemble import record_row
    from ml.photo_mix import MIX_ARCH
    from ml.registry import ModelCard, find_card, save_mix_card

    card = ModelCard(
        name="mix", version="1", task="mix", arch=MIX_ARCH, input_size=224,
        mix={"clip": "c@1", "image": "i@1", "clip_weight": 0.5},
    )  # fmt: skip
    save_mix_card(card, tmp_path, set_default=True)
    y = np.array([0, 0, 1, 1])
    own = np.array([True, False, True, True])
    strong = (np.array([-1.0, -2.0, 1.0, 2.0]), np.array([-1.0, -1.0, 1.0, 1.0]))
    record_row("genphotos", y, *strong, own, tmp_path)
    # the two disagree exactly on the second row: at w 0.5 every item scores 0, a coin
    weak = (np.array([1.0, -1.0, 1.0, -1.0]), np.array([-1.0, 1.0, -1.0, 1.0]))
    record_row("dfdc_photos", y, *weak, own, tmp_path)
    record_row("genphotos", y, *strong, own, tmp_path)  # measured again: replaces, not adds
    saved = find_card("mix@1", tmp_path)
    table = saved.metrics["loso"]["table"]
    assert [e["row"] for e in table] == ["dfdc_photos", "genphotos"]
    assert table[1]["auc"] == 1.0 and table[0]["auc"] == 0.5
    assert saved.metrics["loso"]["summary"] == "loso_rows=2 loso_mean_auc=0.750 loso_worst_auc=0.500"
    (limit,) = saved.known_limits
    assert "DFDC face-swap crops" in limit["what"] and "0.50" in limit["measured"]


def test_the_selective_comparison_scores_the_mix_with_its_own_temperature_and_the_cards_band():
    from benchmarks.ensemble import selective_comparison
    from ml.loso import RowResult
    from ml.registry import ModelCard

    y = np.array([0, 0, 1, 1])
    clip = np.array([-0.2, 0.1, -0.1, 0.2])  # the probe: every item inside the band
    cnn = np.array([-6.0, -6.0, 6.0, 6.0])  # the CNN: sure and right
    row = RowResult("r", 0.75, 2, 2, y, clip, 1 / (1 + np.exp(-clip)))
    card = ModelCard(
        name="mix", version="1", task="mix", arch="x", input_size=224, temperature=1.0,
        uncertain_band=(0.25, 0.75), mix={"clip": "c@1", "image": "i@1", "clip_weight": 0.5},
    )  # fmt: skip
    lines = selective_comparison(row, clip, cnn, card)
    probe_line = next(line for line in lines if "(probe alone)" in line)
    mix_line = next(line for line in lines if "(mix w 0.5)" in line)
    assert probe_line.split("|")[2].strip() == "0.00"  # decided share: the probe abstains on all
    assert mix_line.split("|")[2:4] == [" 1.00 ", " 1.000 "]  # the mix decides all, all right


def test_the_benchmark_flags_what_the_products_models_disagree_rule_flags_at_each_gap():
    from benchmarks.ensemble import disagreement_flags

    clip = np.array([2.0, 2.0, 0.1, -3.0])  # probabilities 0.88, 0.88, 0.52, 0.05
    cnn = np.array([1.0, -2.0, -0.1, 3.0])  # 0.73, 0.12, 0.48, 0.95
    flags = disagreement_flags(clip, cnn, 0.5)
    assert flags["models_disagree_gap_0"].tolist() == [False, True, True, True]  # opposite sides at all
    assert flags["models_disagree_gap_0.3"].tolist() == [False, True, False, True]  # the product's gap
    assert flags["models_disagree_gap_0.5"].tolist() == [False, True, False, True]
