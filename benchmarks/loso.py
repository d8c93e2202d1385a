"""Leave-one-source-out: train without one source of fakes, then measure on exactly that source.

    python -m benchmarks.loso --quick                 # the shipped CLIP probe: every row, one table
    python -m benchmarks.loso --quick --record        # ... and write the table into its card
    python -m benchmarks.loso --model finetune --task image --holdout wfir   # the fine-tuned CNN, one row

The default (`--model clip`, what ships) holds out each row of `ml.loso` (every source of ../shared/data,
FF++ by method with c23 apart, the GAN photo sources together) and each synthetic family of the recipe:
features are embedded once (`ml.train_clip.gather`, cached), then the probe is refitted per row without any
file of the held-out groups (nor forgeries made from them). Its last line is
`loso_rows=N loso_mean_auc=M loso_worst_auc=W`. On a fresh 2-core machine embedding takes ~25-45 min the
first time and seconds after; `--quick` is that path (the fine-tuned CNN needs ~35 min per row).

The fine-tune path (below) is the older one:

The recipe is the shipped one (ml/configs/*_default.json) with the held-out file-name prefixes excluded
from training, for the image model and (with --task video) for the LSTM on top of it, so neither ever sees
the held-out source. The evaluation set is every held-out file of every split (none of them was trained
on) plus the test split's real files not already held out, so the AUC says how well the held-out fakes are
told from real faces. The evaluation set is a folder of symbolic links in a temporary directory: the
research media is never copied. `--max-minutes` caps each training (report it with the numbers).
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ml.clip_encoder import ClipEncoder
from ml.features import clip_stores
from ml.loso import (
    IMAGE_ROWS,
    VIDEO_ROWS,
    OperatingPoint,
    RowResult,
    abstains,
    auc_or_nan,
    format_table,
    known_limits,
    operating_point_lines,
    pooled_report,
    score_row,
    selective_lines,
    split_row,
    summary_line,
)
from ml.metrics import fit_temperature, sigmoid
from ml.probe import HEADS, member_logits, select
from ml.registry import default_ref, find_card, load_clip_probe, record_metrics
from ml.sources import read_manifest, source_groups
from ml.train_clip import (
    ClipTrainConfig,
    fit,
    frames_by_clip,
    gather,
    ood_check,
    source_name,
    track_logits,
    val_files,
)
from ml.uncertainty import embedding_distance, neighbour_distance, out_of_distribution

SPLITS = ("train", "val", "test")
KINDS = ("images", "videos")
CONFIGS = Path(__file__).resolve().parent.parent / "ml" / "configs"


def holdout_folder(data: Path, prefixes: tuple[str, ...], out: Path) -> dict[str, int]:
    """out/{real,fake}/: links to every held-out file of every split, plus the test split's other reals."""
    counts = {"real": 0, "fake": 0}
    for label in counts:
        (out / label).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            for path in sorted((data / split / label).iterdir()):
                held_out = path.name.startswith(prefixes)
                if held_out or (label == "real" and split == "test"):
                    (out / label / f"{split}-{path.name}").symlink_to(path.resolve())
                    counts[label] += 1
    return counts


def use_shipped_video_model(registry: Path) -> None:
    from ml.registry import DEFAULTS_FILE, default_refs, find_card, registry_dir

    shipped = registry_dir()
    card = find_card(default_refs(shipped)["video"], shipped)
    for suffix in (".json", ".pt"):
        shutil.copy2(shipped / f"{card.stem}{suffix}", registry / f"{card.stem}{suffix}")
    defaults = json.loads((registry / DEFAULTS_FILE).read_text())
    (registry / DEFAULTS_FILE).write_text(json.dumps({**defaults, "video": card.ref}, indent=2) + "\n")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def clip_features(
    data: Path, cache: Path, cfg: ClipTrainConfig, log=print, splits: tuple[str, ...] = SPLITS
) -> dict:
    """The feature rows of `splits` (every split by default) for the recipe `cfg`, embedding only what the
    stores beside the crop cache `cache` lack."""
    return gather(data, cache, clip_stores(cache, cfg.seed), ClipEncoder().feature_rows, cfg, log, splits)


def clip_rows(data: Path, cache: Path, cfg: ClipTrainConfig, features: dict | None = None) -> list:
    """Every LOSO row for the CLIP probe recipe `cfg`, plus one per synthetic family it uses. `features`:
    what `clip_features` gave for a recipe with the same forgeries, when a caller varies only the probe."""
    if features is None:
        features = clip_features(data, cache, cfg)
    rows_of, records, group_of = row_inputs(data, features)
    results = [
        held_out_row(features, cfg, row, held, records[kind], group_of, rows_of)
        for kind, rows in (("images", IMAGE_ROWS), ("videos", VIDEO_ROWS))
        for row, held in rows.items()
    ]
    results += [
        synth_row(features, cfg, family, records["images"], rows_of, group_of)
        for family in cfg.synth_per_family
    ]
    return results


def row_inputs(
    data: Path, features: dict
) -> tuple[dict[str, list[np.ndarray]], dict[str, list], dict[str, str]]:
    """What every row reads: each media file's feature rows by file name (a photo: one), the manifest's
    records of the files that have them by kind, and each file's LOSO group."""
    rows_of: dict[str, list[np.ndarray]] = {}
    for name, f in features.items():
        if name not in ("train_synth", "train_resaved"):  # made from the media, not media files
            for key, row in zip(f.keys, f.x, strict=True):
                rows_of.setdefault(source_name(key), []).append(row)
    records = {kind: [r for r in read_manifest(data, kind) if r.path.name in rows_of] for kind in KINDS}
    group_of = {r.path.name: r.group for recs in records.values() for r in recs}
    return rows_of, records, group_of


def held_out_row(features, cfg, row: str, held: tuple[str, ...], records, group_of, rows_of) -> RowResult:
    """One source row: the probe fitted without `held`, calibrated on the val files of the other sources,
    and each held-out item checked against the statistics of that probe's own training faces."""

    def is_held(key: str) -> bool:
        return group_of.get(source_name(key)) in held

    probe = fit(features, cfg, drop=is_held, group_of=group_of)
    _, evaluation = split_row(records, held)
    result = score_row(row, evaluation, lambda recs: clip_scores(probe, recs, rows_of))
    val = [r for r in records if r.split == "val" and r.group not in held]
    t = fit_temperature(clip_scores(probe, val, rows_of), np.array([r.label for r in val]))
    val_inputs = [probe_input(r, rows_of, cfg) for r in val]
    stats, reference = row_ood_check(features, cfg, is_held, val_inputs)
    inputs = [probe_input(r, rows_of, cfg) for r in evaluation]
    unfamiliar = [out_of_distribution(x, stats, reference) is not None for x in inputs]
    return replace(
        result,
        probs=sigmoid(result.scores / t),
        unfamiliar=np.array(unfamiliar, bool),
        candidates=candidate_flags(probe, t, evaluation, val, rows_of),
        held_out=np.array([r.group in held for r in evaluation], bool),
        **ood_parts(inputs, val_inputs, stats, reference),
    )


def ood_parts(inputs: list[np.ndarray], val_inputs: list[np.ndarray], stats: dict, reference) -> dict:
    """The out-of-distribution check's parts for `ml.loso.abstains_at` (RowResult fields): which items lie
    too far from the training mean, and each item's and each val file's distance to its nearest
    reference faces, so any quantile of the latter can be the threshold."""
    k = stats["neighbours"]["k"]
    far = [embedding_distance(x, stats["mean"], stats["std"]) > stats["max_distance"] for x in inputs]
    return {
        "far_from_mean": np.array(far, bool),
        "neighbour_distance": np.array([neighbour_distance(x, reference, k) for x in inputs]),
        "val_neighbour_distance": np.array([neighbour_distance(x, reference, k) for x in val_inputs]),
    }


def probe_input(record, rows_of, cfg) -> np.ndarray:
    """What the probe reads of one media file: a photo's row, a clip's frames."""
    return select(np.stack(rows_of[record.path.name]), cfg.feature, cfg.l2)


def row_ood_check(features, cfg, is_held, val_inputs: list[np.ndarray]) -> tuple[dict, np.ndarray]:
    """The out-of-distribution check as the product's card holds it (`ml.train_clip`), made from the
    row's own training faces and thresholded on its own val files' probe inputs: (statistics, reference
    faces)."""
    stats, reference = ood_check(features, cfg, val_inputs, drop=is_held)
    return stats, reference.astype(np.float32)


# A candidate signal fires on a held-out item when it is larger than on this share of the row's val files
# (files of the sources it trained on), so each threshold abstains on about as many in-domain files.
CANDIDATE_QUANTILES = (0.90, 0.95, 0.99)


def candidate_flags(probe, temperature, evaluation, val, rows_of) -> dict:
    """Signals measured as UNCERTAIN reasons the product does not use, each thresholded on val: the heads'
    spread (`head_spread`). (The distance to the nearest training faces was one; the product uses it now.)"""
    signals = {"heads_disagree": lambda recs: head_spread(probe, recs, rows_of, temperature)}
    flags = {}
    for name, signal in signals.items():
        on_val, on_items = signal(val), signal(evaluation)
        for q in CANDIDATE_QUANTILES:
            flags[f"{name}_q{round(q * 100)}"] = on_items > np.quantile(on_val, q)
    return flags


def clip_scores(probe, records, rows_of) -> np.ndarray:
    """A photo's logit, or a video's mean frame logit: what the product calibrates into its verdict."""
    return np.array([probe.logits(np.stack(rows_of[r.path.name])).mean() for r in records])


def head_spread(probe, records, rows_of, temperature: float) -> np.ndarray:
    """Per record, the largest minus the smallest calibrated probability of the probe's heads (each head's
    logit averaged over a clip's frames, as `clip_scores` does); 0 for a single head."""
    spreads = []
    for r in records:
        probs = sigmoid(member_logits(probe, np.stack(rows_of[r.path.name])).mean(axis=1) / temperature)
        spreads.append(float(probs.max() - probs.min()))
    return np.array(spreads)


def synth_row(features, cfg, family: str, photos, rows_of, group_of):
    """A synthetic family held out: trained without it, scored on its forgeries against the test reals."""
    probe = fit(features, cfg, drop=lambda key: key.startswith(f"synth/{family}/"), group_of=group_of)
    synth = features["train_synth"]
    mine = np.array([k.startswith(f"synth/{family}/") for k in synth.keys])
    reals = [r for r in photos if r.split == "test" and r.label == 0]
    scores = np.concatenate([probe.logits(synth.x[mine]), clip_scores(probe, reals, rows_of)])
    labels = np.concatenate([np.ones(int(mine.sum()), int), np.zeros(len(reals), int)])
    n_fake = int(mine.sum())
    return RowResult(f"synth_{family}", auc_or_nan(labels, scores), n_fake, len(reals), labels, scores)


# The operating points `--operating-points` measures: the uncertain band (calibrated probability) and the
# quantile of the val files' neighbour distances past which a face is unfamiliar (None: that check off).
OPERATING_POINTS = [
    OperatingPoint(band, quantile)
    for band in ((0.35, 0.65), (0.3, 0.7), (0.25, 0.75), (0.2, 0.8))
    for quantile in (None, 0.95, 0.9, 0.85, 0.8)
]


def shipped_in_domain(features: dict) -> list[RowResult]:
    """The shipped CLIP card on the test split's photos and clips, from the cached features (4 frames a
    track, where the pipeline reads 8): calibrated as its card says, with its own out-of-distribution
    statistics and reference faces, the val files' distances measured against that reference."""
    probe, card, reference = load_clip_probe()
    cfg = ClipTrainConfig.of_card(card)
    stats = card.embedding_stats
    val_inputs = val_files(features, cfg)
    photos, frames = features["test_photos"], features["test_frames"]
    clip_logits, clip_labels = track_logits(probe, frames)
    clip_rows = [frames.x[i] for i in frames_by_clip(frames).values()]
    sets = [
        ("test_photos", photos.y, probe.logits(photos.x) / card.temperature, [x[None] for x in photos.x]),
        ("test_clips", clip_labels, clip_logits / card.video_temperature, clip_rows),
    ]
    rows = []
    for name, labels, logits, raw in sets:
        inputs = [select(x, cfg.feature, cfg.l2) for x in raw]
        result = RowResult(name, auc_or_nan(labels, logits), int(labels.sum()), int((labels == 0).sum()),
                           labels, logits, sigmoid(logits))  # fmt: skip
        rows.append(replace(result, **ood_parts(inputs, val_inputs, stats, reference)))
    return rows


def record_in_card(results, config: Path) -> None:
    """The table, per row, into the card of the default CLIP model (the recipe `config` trained)."""
    table = [{"row": r.row, "auc": round(r.auc, 4), "fakes": r.n_fake, "reals": r.n_real} for r in results]
    record_metrics(
        default_ref("clip"),
        "loso",
        {"table": table, "config": config.name, "summary": summary_line(results)},
        known_limits=known_limits(results),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["clip", "finetune"], default="clip")
    parser.add_argument(
        "--quick", action="store_true", help="the shipped CLIP recipe's rows (same as the default)"
    )
    parser.add_argument("--config", type=Path, default=CONFIGS / "clip_default.json", help="clip: the recipe")
    parser.add_argument("--record", action="store_true", help="clip: write the table into the default's card")
    parser.add_argument(
        "--operating-points",
        action="store_true",
        help="clip: UNCERTAIN at each band and neighbour-check quantile, held out and on the test splits",
    )
    parser.add_argument(
        "--ablate-families",
        nargs="+",
        metavar="FAMILY",
        help="clip: the recipe with no forgeries, with each FAMILY alone, and with all of them",
    )
    parser.add_argument(
        "--compare-features",
        nargs="+",
        metavar="FEATURE",
        help="clip: the recipe with each probe input (cls, L8, L6+L9+cls ...: ml.probe.FEATURE_SLICES)",
    )
    parser.add_argument(
        "--c", type=float, nargs="+", help="clip, --compare-features: each linear probe C too"
    )
    parser.add_argument(
        "--heads", nargs="+", choices=HEADS, help="clip, --compare-features: each probe head too (ml.probe)"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="JSON",
        help="clip: the recipe with each set of overrides: '{}' '{\"balance\": true}' ...",
    )
    parser.add_argument("--per-family", type=int, default=320, help="clip: forgeries per family (ablation)")
    parser.add_argument("--task", choices=["image", "video"], help="finetune: which model")
    parser.add_argument("--holdout", nargs="+", help="finetune: file-name prefixes of the held-out source")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=None, help="registry folder (default: temporary)")
    parser.add_argument("--cache", default="cache/crops", help="face-crop cache, shared with ml train")
    parser.add_argument("--max-minutes", type=float, default=20, help="cap on the image model's training")
    parser.add_argument("--sbi-fraction", type=float, default=None, help="override the recipe's (0: no SBI)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    if args.model == "clip" and args.ablate_families:
        return ablate_families(args)
    if args.model == "clip" and args.compare_features:
        return compare_features(args)
    if args.model == "clip" and args.compare:
        return compare_overrides(args)
    if args.model == "clip":
        cfg = ClipTrainConfig.from_file(args.config)
        features = clip_features(args.data, Path(args.cache), cfg)
        results = clip_rows(args.data, Path(args.cache), cfg, features)
        print(f"# recipe {args.config}")
        print(format_table(results))
        print("\n".join(selective_lines(results, find_card(default_ref("clip")).uncertain_band)))
        if args.operating_points:
            held_out = [r for r in results if r.probs is not None]
            print("\n".join(operating_point_lines(held_out, shipped_in_domain(features), OPERATING_POINTS)))
        if args.record:
            record_in_card(results, args.config)
        print(summary_line(results))
        return 0
    if not (args.task and args.holdout):
        parser.error("--model finetune needs --task and --holdout")
    return finetune_row(args)


def _variant_line(label: str, results: list, extra: str = "") -> str:
    """One row of a comparison table: the source rows' mean and worst AUC, and the synthetic rows' mean."""
    rows = [r for r in results if not r.row.startswith("synth_")]
    synth = [r.auc for r in results if r.row.startswith("synth_")]
    worst = min(rows, key=lambda r: r.auc)
    synth_mean = f"{np.mean(synth):.3f}" if synth else "-"
    mean = np.mean([r.auc for r in rows])
    return f"| {label} | {len(rows)} | {mean:.3f} | {worst.auc:.3f} | {worst.row} | {synth_mean} |{extra}"


def in_domain_aucs(features: dict, cfg: ClipTrainConfig, group_of: dict[str, str]) -> tuple[float, float]:
    """Test-split AUC of photos and of clips (mean frame logit) for the probe fitted on every training row:
    the in-domain figures beside the held-out ones, from the same cached features."""
    probe = fit(features, cfg, group_of=group_of)
    photos = features["test_photos"]
    clip_logits, clip_labels = track_logits(probe, features["test_frames"])
    return auc_or_nan(photos.y, probe.logits(photos.x)), auc_or_nan(clip_labels, clip_logits)


# What `gather` reads of a recipe: variants that change none of these share one set of feature rows.
GATHER_FIELDS = (
    "thin_photos",
    "thin_by_pair",
    "frames_per_track",
    "video_frames",
    "synth_per_family",
    "resaved",
    "seed",
)


def compare_variants(args: argparse.Namespace, variants: list[tuple[str, ClipTrainConfig]]) -> int:
    """Each recipe's LOSO line and its in-domain test AUCs; rows are embedded once per set of forgeries."""
    cache, group_of = Path(args.cache), source_groups(args.data)
    shared: dict[tuple, dict] = {}
    print(
        "| recipe | source rows | mean AUC | worst AUC | worst row | synthetic rows "
        "| test photos AUC | test clips AUC | pooled acc. at 80 % | confidently wrong |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, cfg in variants:
        what = tuple(repr(getattr(cfg, f)) for f in GATHER_FIELDS)
        if what not in shared:
            shared[what] = clip_features(args.data, cache, cfg)
        features = shared[what]
        results = clip_rows(args.data, cache, cfg, features)
        photos, clips = in_domain_aucs(features, cfg, group_of)
        extra = f" {photos:.3f} | {clips:.3f} | {_pooled_cells(results)} |"
        print(_variant_line(label, results, extra), flush=True)
    return 0


def _pooled_cells(results: list[RowResult]) -> str:
    """Accuracy at 80 % coverage and the confidently wrong share over the calibrated rows, as the product
    abstains (the shipped card's band, and faces out of distribution)."""
    rows = [r for r in results if r.probs is not None]
    if not rows:
        return "- | -"
    band = find_card(default_ref("clip")).uncertain_band
    report = pooled_report(rows, lambda r: abstains(r, band))
    return f"{report['accuracy_at_80']:.3f} | {report['confidently_wrong']:.3f}"


def compare_features(args: argparse.Namespace) -> int:
    """Which CLIP output the probe should read, by leave-one-source-out (features are embedded once)."""
    base = ClipTrainConfig.from_file(args.config)
    variants = []
    for feature in args.compare_features:
        for head in args.heads or [base.head]:
            for c in (args.c or [base.c]) if head == "linear" else [base.c]:
                label = f"{feature}, linear C={c:g}" if head == "linear" else f"{feature}, {head}"
                variants.append((label, replace(base, feature=feature, head=head, c=c)))
    return compare_variants(args, variants)


def compare_overrides(args: argparse.Namespace) -> int:
    """The recipe with each JSON set of overrides (`{}` is the recipe itself)."""
    base = ClipTrainConfig.from_file(args.config)
    return compare_variants(args, [(o, replace(base, **json.loads(o))) for o in args.compare])


def ablate_families(args: argparse.Namespace) -> int:
    """What each synthetic family is worth: the source rows' mean and worst AUC with and without it."""
    base = ClipTrainConfig.from_file(args.config)
    mixes = [(), *[(f,) for f in args.ablate_families], tuple(args.ablate_families)]
    print("| forgeries mixed in | source rows | mean AUC | worst AUC | worst row | synthetic rows |")
    print("|---|---|---|---|---|---|")
    for mix in mixes:
        cfg = replace(base, synth_per_family={f: args.per_family for f in mix})
        print(_variant_line("+".join(mix) or "none", clip_rows(args.data, Path(args.cache), cfg)), flush=True)
    return 0


def finetune_row(args: argparse.Namespace) -> int:
    work = args.work or Path(tempfile.mkdtemp(prefix="loso-"))
    registry = work / "registry"
    py = [sys.executable, "-m", "ml"]
    common = ["--exclude", *args.holdout, "--out", str(registry), "--cache", args.cache]
    image_config = ["--config", str(CONFIGS / "image_default.json"), "--max-minutes", str(args.max_minutes)]
    if args.sbi_fraction is not None:
        image_config += ["--sbi-fraction", str(args.sbi_fraction)]
    run([*py, "train", "--task", "image", "--data", str(args.data / "images"), *image_config, *common])
    image_ref = json.loads((registry / "defaults.json").read_text())["image"]
    if args.task == "image":
        use_shipped_video_model(registry)  # the analyser loads one; image scores never touch it
    if args.task == "video":
        run([*py, "train", "--task", "video", "--data", str(args.data / "videos"),
             "--config", str(CONFIGS / "video_default.json"), "--image-model", image_ref,
             "--registry", str(registry), *common])  # fmt: skip
    folder = work / "heldout"
    counts = holdout_folder(
        args.data / ("images" if args.task == "image" else "videos"), tuple(args.holdout), folder
    )
    print(
        f"# held out {' '.join(args.holdout)}: {counts['fake']} fake, {counts['real']} real files", flush=True
    )
    report = work / "report.json"
    run([*py, "evaluate", "--data", str(folder), "--registry", str(registry), "--json-out", str(report)])
    metrics = json.loads(report.read_text())
    selective = metrics["selective"]  # what the UNCERTAIN verdict buys (ml.metrics.selective_report)
    print(
        f"LOSO task={args.task} holdout={'+'.join(args.holdout)} n={metrics['n']} "
        f"auc={metrics['roc_auc']:.3f} acc={metrics['accuracy']:.3f} max_minutes={args.max_minutes:g} "
        f"sbi_fraction={'recipe' if args.sbi_fraction is None else args.sbi_fraction} "
        f"acc_at_80_coverage={selective['accuracy_at_80']:.3f} decided={selective['decided_share']:.3f} "
        f"decided_acc={selective['decided_accuracy']:.3f} "
        f"confidently_wrong={selective['confidently_wrong']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
