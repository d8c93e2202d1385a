"""Would the CLIP probe generalise better if it also read the patch tokens of the middle blocks?

    python -m benchmarks.patch_tokens                          # needs ../shared/data
    python -m benchmarks.patch_tokens --compare L3+L6+L9+cls L3+L6+L9+cls+P3+P6+P9 P3+P6+P9+P12

The shipped probe reads each block's CLS token. The 196 patch tokens around it carry local texture
(blending seams, resampling), which a CLS token summarises away. This embeds every face crop once more
(the same crops and forgeries `benchmarks.loso` uses; ~30-40 min on 2 cores the first time, stored in
`cache/features/clip_vitb16_patchmean*.npz`), keeping the mean of each chosen block's patch tokens, appends
them to the stored rows as parts `P3`, `P6`, ... and prints, for each probe input, the leave-one-source-out
line of `benchmarks.loso --compare-features`: source rows, mean AUC, worst AUC, worst row, synthetic rows.
A measurement only: the product's rows (`ml.clip_encoder.ClipOutputs.rows`) do not change.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.loso import CONFIGS, _variant_line, clip_features, clip_rows
from ml import probe
from ml.clip_encoder import ROW_DIM, ClipEncoder
from ml.features import EmbeddingStore
from ml.train_clip import ClipTrainConfig, Features, gather

BLOCKS = (3, 6, 9, 12)
DEFAULT_COMPARE = ["L3+L6+L9+cls", "L3+L6+L9+cls+P3+P6+P9", "L3+L6+L9+cls+P3+P6+P9+P12", "P3+P6+P9+P12"]


def patch_means(encoder: ClipEncoder, crops: list[np.ndarray]) -> np.ndarray:
    """Per crop, the mean of the 196 patch tokens of each block in BLOCKS, side by side."""
    blocks = encoder.run(crops).blocks  # [N, 12, 197, 768]
    return np.concatenate([blocks[:, b - 1, 1:].mean(axis=1) for b in BLOCKS], axis=1)


def with_patch_parts(base: dict[str, Features], patches: dict[str, Features]) -> dict[str, Features]:
    """The stored rows with the patch means appended, and the probe told where each part lies."""
    width = patches["train_photos"].x.shape[1] // len(BLOCKS)
    for i, b in enumerate(BLOCKS):
        probe.FEATURE_SLICES[f"P{b}"] = slice(ROW_DIM + i * width, ROW_DIM + (i + 1) * width)
    out = {}
    for name, f in base.items():
        p = patches[name]
        assert f.keys == p.keys, f"{name}: the two stores list different crops"
        out[name] = replace(f, x=np.concatenate([f.x, p.x], axis=1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"), help="face-crop cache")
    parser.add_argument("--config", type=Path, default=CONFIGS / "clip_default.json")
    parser.add_argument("--compare", nargs="+", default=DEFAULT_COMPARE, metavar="FEATURE")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    cfg = ClipTrainConfig.from_file(args.config)
    base = clip_features(args.data, args.cache, cfg)
    folder = args.cache.parent / "features"
    stores = (
        EmbeddingStore(folder / "clip_vitb16_patchmean.npz"),
        EmbeddingStore(folder / f"clip_vitb16_patchmean_synth_s{cfg.seed}.npz"),
    )
    encoder = ClipEncoder()
    splits = ("train", "val", "test")
    patches = gather(args.data, args.cache, stores, lambda c: patch_means(encoder, c), cfg, print, splits)
    features = with_patch_parts(base, patches)
    print("| probe input | source rows | mean AUC | worst AUC | worst row | synthetic rows |")
    print("|---|---|---|---|---|---|")
    for feature in args.compare:
        results = clip_rows(args.data, args.cache, replace(cfg, feature=feature), features)
        print(_variant_line(feature, results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
