"""What averaging the CLIP probe with the fine-tuned CNN buys on photos: in-domain, and on one held-out row.

    python -m benchmarks.ensemble [--data ../shared/data] [--cache cache/crops]
                                  [--clip-model REF] [--image-model REF] [--registry DIR]
    python -m ml train --task image --exclude dfdc --out runs/loso-dfdc --version 1
    python -m benchmarks.ensemble --held-out dfdc_photos --cnn-registry runs/loso-dfdc

Both models score the same cached face of every photo (`ml.dataset.image_crops`, one view; the CLIP
features come from the stores beside the crop cache, embedding only what they lack). Each model's logit is
divided by its own temperature, then mixed as w * clip + (1 - w) * cnn for w in a grid.

In-domain (the default): every val and test photo, both models as registered. The weight is read off val;
test is printed for every weight, whole and per source group, so nothing is chosen on test. Both models
trained on every source here, so this says what the mix does on sources they know.

`--held-out ROW` (a photo row of `ml.loso.IMAGE_ROWS`): the CLIP probe refitted and calibrated without the
row's source exactly as `benchmarks.loso` does, and a CNN trained without it (`ml train --exclude`, its
registry given by `--cnn-registry`), both on the row's items (the source's files of every split and the
other sources' test reals); at each weight the row's AUC, `own` (the held-out sources' fakes against
their own reals only, so neither model scores by knowing the other sources' reals) and each held-out
source's fakes against all the row's reals. A CNN per row costs 20-45 min of CPU, which is why this takes
one row at a time. It then prints what the product would tell users on the row, the probe alone against
the mix (decided share, accuracy on decided, at 80 % coverage, confidently wrong; `selective_comparison`),
with candidate UNCERTAIN reasons. `--record` writes the row, at the default mix card's weight
(`python -m ml mix`), into that card's leave-one-source-out table, and the rows under 0.70 into its known
limits.

Needs the research media in ../shared/data (not shipped with the project).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ml.loso import (
    IMAGE_ROWS,
    RowResult,
    auc_or_nan,
    known_limits,
    selective_lines,
    split_row,
    summary_line,
)
from ml.metrics import sigmoid
from ml.photo_mix import PhotoMix, mixed_logit
from ml.registry import ModelCard, default_ref, find_card, load_clip_probe, load_image_model, record_metrics
from ml.sources import read_manifest
from ml.train_clip import ClipTrainConfig
from ml.train_mix import cnn_logits
from ml.uncertainty import MIN_MEMBER_GAP, members_disagree

from .loso import SPLITS, clip_features, held_out_row, row_inputs

WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DISAGREEMENT_GAPS = sorted({0.0, MIN_MEMBER_GAP, 0.5})  # the product's gap, and 0 and 0.5 beside it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"))
    parser.add_argument("--clip-model", help="name@version (default: the registry's CLIP probe)")
    parser.add_argument("--image-model", help="name@version (default: the registry's image model)")
    parser.add_argument("--registry", type=Path, help="registry folder (default: ml/weights)")
    parser.add_argument("--held-out", choices=list(IMAGE_ROWS), help="one leave-one-source-out photo row")
    parser.add_argument(
        "--cnn-registry", type=Path, help="with --held-out: the registry of a CNN trained without that row"
    )
    parser.add_argument(
        "--record", action="store_true", help="with --held-out: write the row into the default mix card"
    )
    args = parser.parse_args(argv)
    if not (args.data / "MANIFEST.tsv").is_file():
        parser.error(f"{args.data} holds no MANIFEST.tsv: this benchmark needs the research media")
    if bool(args.held_out) != bool(args.cnn_registry):
        parser.error("--held-out and --cnn-registry go together")
    if args.record and not args.held_out:
        parser.error("--record records a --held-out row")
    if args.held_out:
        return held_out_mix(args)
    in_domain_mix(args)
    return 0


def in_domain_mix(args: argparse.Namespace) -> None:
    probe, clip_card, _ = load_clip_probe(args.clip_model, args.registry)
    cfg = ClipTrainConfig.of_card(clip_card)
    features = clip_features(args.data, args.cache, cfg, splits=("val", "test"))
    model, image_card = load_image_model(args.image_model, args.registry)
    group_of = {r.path.name: r.group for r in read_manifest(args.data, "images")}
    for card in (clip_card, image_card):
        print(f"# {card.ref}: logits divided by its temperature {card.temperature:.3f}")

    scores = {}
    for split in ("val", "test"):
        photos = features[f"{split}_photos"]
        cnn = cnn_logits(model, image_card.input_size, args.data / "images" / split, args.cache)
        clip = probe.logits(photos.x)
        scores[split] = (
            photos.y,
            clip / clip_card.temperature,
            np.array([cnn[k] for k in photos.keys]) / image_card.temperature,
            [group_of.get(k, "?") for k in photos.keys],
        )
    print_table(scores)


def held_out_mix(args: argparse.Namespace) -> int:
    """The mix on one leave-one-source-out row: the CLIP probe refitted and calibrated without the row's
    source (as `benchmarks.loso` does), the CNN trained without it, both scoring the row's items."""
    _, clip_card, _ = load_clip_probe(args.clip_model, args.registry)
    cfg = ClipTrainConfig.of_card(clip_card)
    features = clip_features(args.data, args.cache, cfg)
    rows_of, records, group_of = row_inputs(args.data, features)
    held = IMAGE_ROWS[args.held_out]
    row = held_out_row(features, cfg, args.held_out, held, records["images"], group_of, rows_of)
    _, evaluation = split_row(records["images"], held)  # the items of `row`, in its order
    model, card = load_image_model(None, args.cnn_registry)
    excluded = card.training["config"]["exclude_sources"]
    print(f"# row {args.held_out}: {row.n_fake} fakes / {row.n_real} reals; {card.ref} without {excluded}")
    cnn: dict[str, float] = {}
    for split in SPLITS:
        cnn.update(cnn_logits(model, card.input_size, args.data / "images" / split, args.cache))
    cnn_row = np.array([cnn[r.path.name] for r in evaluation]) / card.temperature
    clip_row = calibrated_logit(row.probs)
    groups = [r.group for r in evaluation]
    for line in held_out_lines(args.held_out, row.labels, clip_row, cnn_row, groups, held):
        print(line)
    mix_card = find_card(default_ref("mix", args.registry), args.registry)
    for line in selective_comparison(row, clip_row, cnn_row, mix_card):
        print(line)
    if args.record:
        record_row(args.held_out, row.labels, clip_row, cnn_row, np.isin(groups, held), args.registry)
    return 0


def selective_comparison(row: RowResult, clip: np.ndarray, cnn: np.ndarray, mix_card: ModelCard) -> list[str]:
    """What the product would tell users on the row (decided share, accuracy on decided, confidently
    wrong), the probe alone against the mix at the card's weight and temperature, with the card's band and
    the row's out-of-distribution flags (the probe's features: the mix reads the same ones). The mix's
    temperature was fitted on val with the row's source in it: an approximation for the held-out mix."""
    mix = PhotoMix.of_card(mix_card)
    candidates = {**row.candidates, **disagreement_flags(clip, cnn, mix_card.threshold)}
    mixed_row = replace(
        row, row=f"{row.row} (mix w {mix.clip_weight:g})", scores=mix.logits(clip, cnn),
        probs=mix.probabilities(clip, cnn), candidates=candidates,
    )  # fmt: skip
    probe_row = replace(row, row=f"{row.row} (probe alone)")
    lines = selective_lines([probe_row, mixed_row], mix_card.uncertain_band)
    return [line for line in lines if not line.startswith("loso_pooled")]  # pooling the two means nothing


def disagreement_flags(clip: np.ndarray, cnn: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The product's UNCERTAIN reason for the mix (`ml.uncertainty.members_disagree`: the two members, each
    calibrated on its own, on opposite sides of the threshold and more than a gap apart) at a few gaps."""
    pairs = list(zip(sigmoid(clip), sigmoid(cnn), strict=True))
    return {
        f"models_disagree_gap_{gap:g}": np.array(
            [members_disagree({"clip": a, "cnn": b}, threshold, gap) is not None for a, b in pairs], bool
        )
        for gap in DISAGREEMENT_GAPS
    }


def record_row(
    row: str, labels: np.ndarray, clip: np.ndarray, cnn: np.ndarray, own: np.ndarray, registry: Path | None
) -> None:
    """The row at the default mix card's weight into that card's LOSO table (one entry per row, the
    latest run kept), and the table's weak rows into its known limits."""
    card = find_card(default_ref("mix", registry), registry)
    scores = mixed_logit(clip, cnn, card.mix["clip_weight"])
    entry = {
        "row": row,
        "auc": round(auc_or_nan(labels, scores), 4),
        "own": round(auc_or_nan(labels[own], scores[own]), 4),
        "fakes": int(labels.sum()),
        "reals": int((labels == 0).sum()),
        "command": f"python -m benchmarks.ensemble --held-out {row} --cnn-registry DIR --record",
    }
    record_entry(card, entry, registry)


def record_entry(card: ModelCard, entry: dict, registry: Path | None) -> None:
    """One row of a mix card's LOSO table (`row`, `auc`, `fakes`, `reals`, how it was measured): the
    row's earlier entry replaced, the summary line and the known limits recomputed over the table."""
    table = [e for e in card.metrics.get("loso", {}).get("table", []) if e["row"] != entry["row"]] + [entry]
    none = np.zeros(0)
    results = [RowResult(e["row"], e["auc"], e["fakes"], e["reals"], none, none) for e in table]
    limits = known_limits(results, command="python -m benchmarks.ensemble --held-out ROW --record")
    report = {"table": table, "summary": summary_line(results)}
    record_metrics(card.ref, "loso", report, registry, known_limits=limits)
    print(f"recorded {entry['row']} in {card.ref}: auc={entry['auc']:.3f}; {report['summary']}")


def held_out_lines(
    row: str, labels: np.ndarray, clip: np.ndarray, cnn: np.ndarray, groups: list[str], held: tuple[str, ...]
) -> list[str]:
    """One line per weight: the row's AUC; `own`, the held-out sources' fakes against their own reals
    only (so a model cannot score by knowing the other sources' reals; nan where they have none); and
    each held-out group's fakes against all the row's reals."""
    own = np.isin(groups, held)
    reals = labels == 0
    lines = []
    for w in WEIGHTS:
        scores = mixed_logit(clip, cnn, w)
        cells = [f"auc={auc_or_nan(labels, scores):.3f}", f"own={auc_or_nan(labels[own], scores[own]):.3f}"]
        for g in held:
            pick = reals | (np.asarray(groups) == g)
            cells.append(f"{g}={auc_or_nan(labels[pick], scores[pick]):.3f}")
        lines.append(f"held_out={row} w={w:.2f} " + " ".join(cells))
    return lines


def calibrated_logit(probs: np.ndarray) -> np.ndarray:
    p = np.clip(probs.astype(np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def print_table(scores: dict) -> None:
    val_y, val_clip, val_cnn, _ = scores["val"]
    y, clip, cnn, groups = scores["test"]
    by_group = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    shown = sorted(g for g, idx in by_group.items() if len(set(y[idx])) == 2)
    print("| w (CLIP share) | val AUC | test AUC | " + " | ".join(shown) + " |")
    print("|---" * (3 + len(shown)) + "|")
    for w in WEIGHTS:
        test = mixed_logit(clip, cnn, w)
        cells = [f"{auc_or_nan(y[by_group[g]], test[by_group[g]]):.3f}" for g in shown]
        val_auc = auc_or_nan(val_y, mixed_logit(val_clip, val_cnn, w))
        print(f"| {w:.2f} | {val_auc:.3f} | {auc_or_nan(y, test):.3f} | " + " | ".join(cells) + " |")
    best = max(WEIGHTS, key=lambda w: auc_or_nan(val_y, mixed_logit(val_clip, val_cnn, w)))
    print(
        f"ensemble_val_weight={best:.2f} test_auc={auc_or_nan(y, mixed_logit(clip, cnn, best)):.3f} "
        f"clip_alone={auc_or_nan(y, clip):.3f} cnn_alone={auc_or_nan(y, cnn):.3f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
