"""What averaging the CLIP probe with the fine-tuned CNN buys on photos, in-domain only.

    python -m benchmarks.ensemble [--data ../shared/data] [--cache cache/crops]
                                  [--clip-model REF] [--image-model REF] [--registry DIR]

Both models score the same cached face of every val and test photo (`ml.dataset.image_crops`; the CLIP
features come from the stores beside the crop cache, embedding only what they lack). Each model's logit is
divided by its own card's temperature, then mixed as w * clip + (1 - w) * cnn for w in a grid. The weight
is read off val; test is printed for every weight, whole and per source group, so nothing is chosen on test.

What this cannot say: both models trained on every source here, so it measures what the mix does on
sources they know. The default is chosen by leave-one-source-out (`benchmarks.loso`), and the CNN's rows
cost ~35 min of CPU each there (`benchmarks.loso --model finetune`), so a mix is not a default from this
alone.

Needs the research media in ../shared/data (not shipped with the project).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ml.dataset import FaceSet, image_crops
from ml.features import photo_key
from ml.loso import auc_or_nan
from ml.registry import load_clip_probe, load_image_model
from ml.sources import read_manifest
from ml.train import evaluate, pick_device
from ml.train_clip import ClipTrainConfig

from .loso import clip_features

WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def cnn_logits(model: torch.nn.Module, size: int, split_dir: Path, cache: Path) -> dict[str, float]:
    """The CNN's raw logit for the cached face of every photo in the split, by photo key."""
    crops = image_crops(split_dir, cache)
    batches = torch.utils.data.DataLoader(FaceSet(crops, size), batch_size=64)
    logits = evaluate(model, batches, pick_device("cpu"))["logits"]
    return {photo_key(p): float(z) for p, z in zip(crops.paths, logits, strict=True)}


def mixed(clip: np.ndarray, cnn: np.ndarray, weight: float) -> np.ndarray:
    return weight * clip + (1 - weight) * cnn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"))
    parser.add_argument("--clip-model", help="name@version (default: the registry's CLIP probe)")
    parser.add_argument("--image-model", help="name@version (default: the registry's image model)")
    parser.add_argument("--registry", type=Path, help="registry folder (default: ml/weights)")
    args = parser.parse_args(argv)
    if not (args.data / "MANIFEST.tsv").is_file():
        parser.error(f"{args.data} holds no MANIFEST.tsv: this benchmark needs the research media")

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
    return 0


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
        test = mixed(clip, cnn, w)
        cells = [f"{auc_or_nan(y[by_group[g]], test[by_group[g]]):.3f}" for g in shown]
        val_auc = auc_or_nan(val_y, mixed(val_clip, val_cnn, w))
        print(f"| {w:.2f} | {val_auc:.3f} | {auc_or_nan(y, test):.3f} | " + " | ".join(cells) + " |")
    best = max(WEIGHTS, key=lambda w: auc_or_nan(val_y, mixed(val_clip, val_cnn, w)))
    print(
        f"ensemble_val_weight={best:.2f} test_auc={auc_or_nan(y, mixed(clip, cnn, best)):.3f} "
        f"clip_alone={auc_or_nan(y, clip):.3f} cnn_alone={auc_or_nan(y, cnn):.3f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
