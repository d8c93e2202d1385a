"""Does the heatmap point at what was manipulated? Measured on forgeries whose edited pixels are known.

    python -m benchmarks.heatmap [--data ../shared/data] [--faces 60] [--record]

From real faces of the photo test split (the cached crops of `ml.dataset`), `ml.synth` makes a face swap
and a mouth-or-eyes edit of each; the edited region is every pixel the forgery changed. For the product's
map (the CLIP probe's patch map when a CLIP model is the default) and for Grad-CAM of the fine-tuned
MobileNetV2 (the `--no-clip` path), it prints per family:

- `mass_in_region`: the share of the map's weight inside the edited region, next to `region_area`, the
  share of the crop the region covers (a map that ignores the region gets about its area: `lift` = 1);
- `pointing`: how often the map's peak lies inside the region (dilated by one 16 px patch);
- on the test split's real fakes (no pixel truth there), `face_mass` / `face_area`: the map's weight inside
  the face from brows to chin against that area, so a map that lights hair and forehead shows `lift` < 1.

`--record` writes both maps' figures into the CLIP card (`heatmap`, with which one the pipeline draws).
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ml.dataset import CropSet, image_crops, inner_crop
from ml.metrics import map_mass_share, map_peak_inside
from ml.sbi import hull_mask

Mapper = Callable[[list[np.ndarray]], list[np.ndarray]]  # 224 px RGB crops -> [0, 1] maps
EDIT_FAMILIES = ("swap", "partial")
INNER_FACE = slice(17, 68)  # brows, eyes, nose, mouth: the face without the jaw line's outside


def edited_region(real: np.ndarray, fake: np.ndarray, threshold: int = 6) -> np.ndarray:
    """{0, 1} mask of the pixels a forgery changed (any channel by more than `threshold` levels)."""
    diff = np.abs(fake.astype(np.int16) - real.astype(np.int16)).max(axis=2)
    changed = (diff > threshold).astype(np.uint8)
    # close pinholes where the blend happened to leave a pixel as it was
    return cv2.morphologyEx(changed, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(np.float32)


def model_view(mask: np.ndarray) -> np.ndarray:
    """A context-crop mask cut and scaled as the model's 224 px input is (`ml.dataset.inner_crop`)."""
    as_image = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    return (inner_crop(as_image)[..., 0] > 127).astype(np.float32)


def forgeries(cs: CropSet, family: str, count: int, seed: int = 0):
    """(fake crop, edited-region mask) of `count` reals of `cs`, both as the model sees them."""
    from ml.synth import Face, synthesise

    rng = np.random.default_rng(seed)
    reals = np.flatnonzero(cs.labels == 0)
    for _ in range(count):
        i, *donors = (int(j) for j in rng.choice(reals, 6, replace=False))
        real = Face(cs.crops[i], cs.landmarks[i])
        fake, _ = synthesise(real, [Face(cs.crops[j], cs.landmarks[j]) for j in donors], family, rng)
        region = edited_region(cs.crops[i], fake)
        if region.mean() > 0.002:  # a forgery that changed nothing visible says nothing about the map
            yield inner_crop(fake), model_view(region)


def clip_mapper() -> tuple[Mapper, str]:
    from ml.registry import load_clip_model

    detector, card = load_clip_model()
    return (lambda crops: detector.score(crops, with_maps=True).maps), card.ref


def gradcam_mapper() -> tuple[Mapper, str]:
    from ml.gradcam import grad_cam
    from ml.registry import load_image_model

    model, card = load_image_model()
    return (lambda crops: [grad_cam(model, c, card.input_size) for c in crops]), card.ref


def _weight_on(maps: list[np.ndarray | None], masks: list[np.ndarray]) -> tuple[list, float, float]:
    """(the (map, mask) pairs with a map, mean share of map weight on the mask, mean mask area)."""
    usable = [(m, r) for m, r in zip(maps, masks, strict=True) if m is not None]
    mass = float(np.mean([map_mass_share(m, r) for m, r in usable]))
    return usable, mass, float(np.mean([r.mean() for _, r in usable]))


def region_figures(mapper: Mapper, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    usable, mass, area = _weight_on(mapper([crop for crop, _ in pairs]), [mask for _, mask in pairs])
    patch = np.ones((17, 17), np.uint8)  # one 16 px patch of slack around the region
    pointing = float(np.mean([map_peak_inside(m, cv2.dilate(r, patch)) for m, r in usable]))
    return {
        "n": len(usable),
        "mass_in_region": mass,
        "region_area": area,
        "lift": mass / area,
        "pointing": pointing,
    }


def face_figures(mapper: Mapper, cs: CropSet, count: int) -> dict[str, float]:
    """On real fakes: the map's weight inside the inner face against the inner face's area."""
    fakes = np.flatnonzero(cs.labels == 1)[:count]
    shape = cs.crops.shape[1:3]
    masks = [model_view(hull_mask(cs.landmarks[i][INNER_FACE], shape)) for i in fakes]
    usable, mass, area = _weight_on(mapper([inner_crop(cs.crops[i]) for i in fakes]), masks)
    return {"n": len(usable), "face_mass": mass, "face_area": area, "lift": mass / area}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("cache/crops"))
    parser.add_argument("--faces", type=int, default=60, help="forgeries per family, and real fakes")
    parser.add_argument("--record", action="store_true", help="write the figures into the CLIP card")
    args = parser.parse_args(argv)
    if not (args.data / "images" / "test").is_dir():
        print(f"error: {args.data}/images/test not found (the research media is not part of the repository)")
        return 2
    cs = image_crops(args.data / "images" / "test", args.cache)
    pairs = {family: list(forgeries(cs, family, args.faces)) for family in EDIT_FAMILIES}
    recorded = {}
    for key, make in (("clip_patch_map", clip_mapper), ("grad_cam", gradcam_mapper)):
        mapper, ref = make()
        figures = {family: region_figures(mapper, p) for family, p in pairs.items()}
        figures["real_fakes"] = face_figures(mapper, cs, args.faces)
        for row, f in figures.items():
            cells = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items())
            print(f"{key} ({ref}) {row}: {cells}", flush=True)
        recorded[key] = {"model": ref, **figures}
    if args.record:
        from ml.registry import default_ref, record_metrics

        shown = {"shown": "grad_cam", **recorded}  # what the pipeline draws (ml.pipeline._write_artifacts)
        record_metrics(default_ref("clip"), "heatmap", _rounded(shown))
    print(
        " ".join(
            f"heatmap_{key}_swap_lift={f['swap']['lift']:.3f} "
            f"heatmap_{key}_swap_pointing={f['swap']['pointing']:.3f} "
            f"heatmap_{key}_face_lift={f['real_fakes']['lift']:.3f}"
            for key, f in recorded.items()
        )
    )
    return 0


def _rounded(figures: dict) -> dict:
    return {
        k: _rounded(v) if isinstance(v, dict) else round(v, 4) if isinstance(v, float) else v
        for k, v in figures.items()
    }


if __name__ == "__main__":
    raise SystemExit(main())
