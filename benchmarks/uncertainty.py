"""What the uncertainty reasons' thresholds rest on, and the out-of-distribution statistics for a card.

    python -m benchmarks.uncertainty --split train --every 3 --write-card   # embedding stats into the card
    python -m benchmarks.uncertainty --split val                            # how often each reason fires

For every photo of a split it detects the faces the way the pipeline does, and prints the percentiles of
the face's shorter side, its sharpness (ml.uncertainty.sharpness), the gap between the original and
mirrored views' probabilities and the embedding distance from the card's training statistics; then how
often each reason fires and the accuracy on the faces with and without a reason. `--write-card` stores
the mean and std of the (original-view) embeddings and the `--percentile` of their own distances in the
image model's card as `embedding_stats` (the weights, and so their SHA-256, are untouched).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ml import uncertainty as u
from ml.dataset import list_split
from ml.faces import crop_face
from ml.file_types import IMAGE_EXTENSIONS
from ml.media import load_image
from ml.pipeline import Analyser
from ml.registry import find_card, registry_dir


def face_rows(analyser: Analyser, files: list[tuple[Path, int]]) -> list[dict]:
    """One row per photo: its largest face's side, sharpness, view probabilities and embeddings."""
    size = analyser.image_card.input_size
    rows = []
    for path, label in files:
        rgb = load_image(path)
        boxes = analyser.detector.detect(rgb)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: b.area)
        crop = crop_face(rgb, box, size)
        emb = analyser._embed([crop, np.ascontiguousarray(crop[:, ::-1])])
        with torch.inference_mode():
            logits = analyser.image_model.classify_embedding(emb).float()
            views = analyser.image_card.calibrated(logits).tolist()
            prob = float(analyser.image_card.calibrated(logits.mean()[None])[0])
        rows.append(
            {
                "label": label,
                "side": min(box.w, box.h),
                "sharpness": u.sharpness(crop),
                "views": views,
                "prob": prob,
                "embedding": emb[0].cpu().numpy(),
            }
        )
    return rows


def embedding_stats(rows: list[dict], percentile: int) -> dict:
    return u.training_stats(np.stack([r["embedding"] for r in rows]), percentile)


def percentiles(values: list[float]) -> dict[int, float]:
    levels = (1, 2, 5, 50, 95, 99)
    return {p: round(float(v), 3) for p, v in zip(levels, np.percentile(values, levels), strict=True)}


def summary(rows: list[dict], analyser: Analyser) -> dict:
    card = analyser.image_card
    rule = card.verdict_rule()
    gaps = [abs(r["views"][0] - r["views"][1]) for r in rows]
    stats = card.embedding_stats
    out = {
        "faces": len(rows),
        "side_percentiles": percentiles([r["side"] for r in rows]),
        "sharpness_percentiles": percentiles([r["sharpness"] for r in rows]),
        "view_gap_percentiles": percentiles(gaps),
    }
    if stats:
        d = [u.embedding_distance(r["embedding"], stats["mean"], stats["std"]) for r in rows]
        out["distance_percentiles"] = percentiles(d)
    fired: dict[str, list[bool]] = {}
    for r in rows:
        reasons = [
            u.face_too_small(r["side"], r["side"]),
            u.face_too_blurred(r["sharpness"]),
            u.views_disagree(r["views"]),
            u.out_of_distribution(r["embedding"], stats),
            u.near_threshold(r["prob"], rule.uncertain_low, rule.uncertain_high),
        ]
        correct = (r["prob"] >= rule.threshold) == bool(r["label"])
        for reason in filter(None, reasons):
            fired.setdefault(reason.code, []).append(correct)
        r["doubted"] = any(reasons)
        r["correct"] = correct
    out["fired"] = {code: {"n": len(c), "accuracy": round(float(np.mean(c)), 3)} for code, c in fired.items()}
    decided = [r["correct"] for r in rows if not r["doubted"]]
    out["decided_share"] = round(len(decided) / max(1, len(rows)), 3)
    out["decided_accuracy"] = round(float(np.mean(decided)), 3) if decided else None
    out["all_accuracy"] = round(float(np.mean([r["correct"] for r in rows])), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/images"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--every", type=int, default=1, help="take every N-th photo (speed)")
    parser.add_argument("--percentile", type=int, default=99)
    parser.add_argument("--write-card", action="store_true", help="store embedding_stats in the image card")
    parser.add_argument("--registry", type=Path, default=None)
    args = parser.parse_args(argv)
    analyser = Analyser(heatmaps=False, registry=args.registry)
    files = list_split(args.data / args.split, IMAGE_EXTENSIONS)[:: args.every]
    rows = face_rows(analyser, files)
    print(json.dumps(summary(rows, analyser), indent=1))
    if args.write_card:
        directory = args.registry or registry_dir()
        card = find_card(analyser.image_card.ref, directory)
        card.embedding_stats = embedding_stats(rows, args.percentile)
        (directory / f"{card.stem}.json").write_text(json.dumps(asdict(card), indent=2) + "\n")
        print(f"embedding_stats of {len(rows)} faces written into {card.ref}'s card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
