"""Fit a photo mix (`ml.photo_mix`) for the registry's default CLIP probe and CNN: its temperature on
the val photos, its report on val and test, written as a mix card and made the default photo decider.

    python -m ml mix --clip-weight 0.5 --version 1 [--data ../shared/data] [--cache cache/crops]

The weight is not read off val here: it is the one the leave-one-source-out photo rows chose
(`python -m benchmarks.ensemble --held-out ROW`, README). Both members score the cached face of every photo
(`ml.dataset.image_crops`, one view, as the benchmark measured them); the CLIP features come from the stores
beside the crop cache, embedding only what they lack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from ml.clip_encoder import ClipEncoder
from ml.dataset import FaceSet, image_crops
from ml.features import clip_stores, photo_key
from ml.metrics import classification_report, fit_temperature, sigmoid
from ml.photo_mix import MIX_ARCH, mixed_logit
from ml.probe import Probe
from ml.registry import (
    ModelCard,
    default_ref,
    load_clip_probe,
    load_image_model,
    registry_dir,
    save_mix_card,
)
from ml.train import Log, evaluate, pick_device
from ml.train_clip import ClipTrainConfig, gather


def cnn_logits(model: torch.nn.Module, size: int, split_dir: Path, cache: Path) -> dict[str, float]:
    """The CNN's raw logit for the cached face of every photo in the split (one view), by photo key."""
    crops = image_crops(split_dir, cache)
    batches = torch.utils.data.DataLoader(FaceSet(crops, size), batch_size=64)
    logits = evaluate(model, batches, pick_device("cpu"))["logits"]
    return {photo_key(p): float(z) for p, z in zip(crops.paths, logits, strict=True)}


@dataclass
class MixMembers:
    """The two models a mix is fitted on, each with its card, and the CLIP encoder: loaded once per fit."""

    probe: Probe
    clip_card: ModelCard
    cnn: torch.nn.Module
    image_card: ModelCard
    encoder: ClipEncoder

    @classmethod
    def load_defaults(cls, registry: Path | None) -> MixMembers:
        probe, clip_card, _ = load_clip_probe(default_ref("clip", registry), registry)
        cnn, image_card = load_image_model(default_ref("image", registry), registry)
        return cls(probe, clip_card, cnn, image_card, ClipEncoder())


def split_logits(
    members: MixMembers, data: Path, cache: Path, split: str, log: Log = print
) -> tuple[np.ndarray, ...]:
    """Labels, and each member's logit over its temperature, for the cached face of every photo in
    the split that both models score."""
    cfg = ClipTrainConfig.of_card(members.clip_card)
    stores = clip_stores(cache, cfg.seed)
    rows = members.encoder.feature_rows
    photos = gather(data, cache, stores, rows, cfg, log, (split,), videos=False)[f"{split}_photos"]
    cnn = cnn_logits(members.cnn, members.image_card.input_size, data / "images" / split, cache)
    clip = members.probe.logits(photos.x) / members.clip_card.temperature
    return photos.y, clip, np.array([cnn[k] for k in photos.keys]) / members.image_card.temperature


def fit_mix_card(
    data: Path,
    cache: Path,
    clip_weight: float,
    version: str,
    registry: Path | None = None,
    out: Path | None = None,
    log: Log = print,
) -> ModelCard:
    """A mix card for the registry's default CLIP probe and CNN: the temperature fitted on val, the
    report on val and test. Written to `out` (default: the registry) as the default photo decider."""
    members = MixMembers.load_defaults(registry)
    clip_card, image_card = members.clip_card, members.image_card
    reports, temperature = {}, 1.0
    for split in ("val", "test"):  # val first: it fixes the temperature test is reported with
        labels, clip, cnn = split_logits(members, data, cache, split, log)
        mixed = mixed_logit(clip, cnn, clip_weight)
        if split == "val":
            temperature = fit_temperature(mixed, labels)
            reports["val_photos_uncalibrated_ece"] = classification_report(labels, sigmoid(mixed))["ece"]
        reports[f"{split}_photos"] = classification_report(labels, sigmoid(mixed / temperature))
    card = ModelCard(
        name="photo-mix",
        version=version,
        task="mix",
        arch=MIX_ARCH,
        input_size=image_card.input_size,
        backbone=f"{clip_card.ref} ({clip_card.backbone}) with {image_card.ref} ({image_card.backbone})",
        temperature=float(temperature),
        threshold=clip_card.threshold,
        uncertain_band=clip_card.uncertain_band,
        mix={"clip": clip_card.ref, "image": image_card.ref, "clip_weight": clip_weight},
        # known limits: the held-out rows under 0.70, by `benchmarks.ensemble --held-out ROW --record`
        metrics=reports,
        training={"data": str(data), "fitted_on": "val photos", "clip_weight_chosen_by": "LOSO photo rows"},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    save_mix_card(card, out or registry or registry_dir(), set_default=True)
    val, test = reports["val_photos"], reports["test_photos"]
    log(
        f"saved {card.ref}: w={clip_weight} T={temperature:.3f}; val AUC {val['roc_auc']:.3f} "
        f"ECE {val['ece']:.3f}; test AUC {test['roc_auc']:.3f} ECE {test['ece']:.3f}"
    )
    return card
