"""Training for the image branch (face classifier) and the video branch (LSTM over face tracks).

Both read the `DIR/{train,val,test}/{real,fake}/` layout through the crop cache in ml.dataset, stop
early on validation loss, calibrate on the validation split (temperature scaling) and write a
checkpoint with its card into a registry folder.

Shaped like torchvision's classification reference: `train_one_epoch` and `evaluate` serve both
branches, `fit` loops epochs over them, `calibrate_and_save` is the common tail, and `train_image` /
`train_video` only build data and model. Datasets live in ml.dataset, augmentation presets in
ml.transforms; the recipes are the config dataclasses' defaults, and ml/configs/*.json name only where a
preset departs from them (the shipped image recipe also learns from the video clips' faces).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.dataset import (
    CropSet,
    FaceSet,
    ImageEpoch,
    concat,
    exclude_sources,
    image_crops,
    inner_crop,
    video_crops,
    video_frames_as_faces,
)
from ml.media import DEFAULT_FRAMES
from ml.metrics import classification_report, fit_temperature, sigmoid
from ml.models import TrackLSTM, build_image_model, embed_batched, input_size_for
from ml.registry import ModelCard, load_image_model, save_model
from ml.sbi import draw_params, self_blend
from ml.synth import TRACK_FAMILIES, Face, check_families, synthesise_track

Log = Callable[[str], None]


# The defaults below are the shipped recipes; ml/configs/*.json name only where a preset departs from them.


@dataclass
class ImageTrainConfig:
    arch: str = "mobilenet_v2"
    freeze: str = "last:5"
    epochs: int = 6
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    sbi_fraction: float = 0.5  # self-blended fakes added per epoch, as a fraction of the real faces
    # Forgeries of real faces per epoch by family of ml.synth.FAMILIES, each a fraction of the real faces
    # like sbi_fraction (e.g. {"sbi": 0.25, "swap": 0.25, "partial": 0.15, "resynth": 0.35}); when empty,
    # {"sbi": sbi_fraction}.
    synth_families: dict[str, float] = field(default_factory=dict)
    patience: int = 3
    seed: int = 0
    max_minutes: float = 60
    name: str = "image-mobilenet_v2"
    version: str = ""
    exclude_sources: list[str] = field(default_factory=list)  # leave-one-source-out: file-name prefixes
    # Faces from the video clips too (every k-th sampled frame), labelled by their clip: the image model
    # is also the video branch's frame embedder, so it must know compressed video faces.
    video_data: str = ""
    video_frame_step: int = 4
    # share of training faces re-encoded at native scale before cropping (ml.transforms.reencode_at_scale)
    reencode_fraction: float = 0.0


@dataclass
class VideoTrainConfig:
    image_model: str = ""  # name@version of the frame embedder; default: the registry's image model
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.4
    epochs: int = 80
    batch_size: int = 16
    lr: float = 1e-3
    sbi_copies: int = 2  # self-blended versions of each real training track
    # more forged versions of each real training track, by family of ml.synth.TRACK_FAMILIES
    # (e.g. {"frozen": 1, "flicker": 1, "drift": 1})
    track_families: dict[str, int] = field(default_factory=dict)
    patience: int = 15
    seed: int = 0
    name: str = "video-lstm"
    version: str = ""
    exclude_sources: list[str] = field(default_factory=list)


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _version() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d.%H%M")


def synth_mix(cfg: ImageTrainConfig) -> dict[str, float]:
    """Forgeries per real face per epoch, by family: the config's families, else self-blending alone."""
    mix = dict(cfg.synth_families) or {"sbi": cfg.sbi_fraction}
    check_families(list(mix))
    return mix


# ---------------------------------------------------------------- the loop both branches share

# A batch is (model inputs, labels): one input tensor (faces) or a tuple of them (sequences, lengths).
Batch = tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]


def _forward(model: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...], device: torch.device):
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else inputs
    return model(*(x.to(device) for x in inputs))


def set_train_mode(model: nn.Module) -> None:
    """Training mode, except that fully frozen feature blocks keep their ImageNet batch statistics
    (BatchNorm in eval mode there)."""
    model.train()
    for block in model.feature_blocks() if hasattr(model, "feature_blocks") else []:
        if not any(p.requires_grad for p in block.parameters()):
            block.eval()


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    optimiser: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
) -> float:
    """One pass over the training batches; returns the mean training loss per sample."""
    set_train_mode(model)
    total, count = 0.0, 0
    for inputs, y in batches:
        y = y.to(device)
        loss = loss_fn(_forward(model, inputs, device), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
    return total / count


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable[Batch], device: torch.device) -> dict:
    """ml.metrics.classification_report of the model on the batches, with the (unweighted) log-loss as
    "loss", and the "logits" and "labels" it was computed from."""
    model.eval()
    logits, labels = [], []
    for inputs, y in batches:
        logits.append(_forward(model, inputs, device).float().cpu())
        labels.append(y)
    logit, label = torch.cat(logits), torch.cat(labels).float()
    loss = float(nn.functional.binary_cross_entropy_with_logits(logit, label))
    labels_np = label.numpy().astype(np.int64)
    report = classification_report(labels_np, sigmoid(logit.numpy()))
    return {**report, "loss": loss, "logits": logit.numpy(), "labels": labels_np}


@dataclass
class Schedule:
    """When the epoch loop stops, and how often it reports."""

    epochs: int
    patience: int  # epochs without a better validation loss before an early stop
    max_minutes: float = math.inf
    log_every: int = 1


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Iterable[Batch],
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    loss_fn: nn.Module,
    device: torch.device,
    schedule: Schedule,
    log: Log = print,
) -> tuple[int, list[dict]]:
    """Epochs of train_one_epoch and evaluate until the schedule stops them; leaves the model at its
    best validation loss and returns that epoch and the per-epoch history."""
    best = (math.inf, None, -1)
    started = time.monotonic()
    history = []
    for epoch in range(schedule.epochs):
        train_loss = train_one_epoch(model, train_batches(epoch), optimiser, loss_fn, device)
        val = evaluate(model, val_batches, device)
        scheduler.step(val["loss"])
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val["loss"],
                "val_auc": val["roc_auc"],
                "val_acc": val["accuracy"],
            }
        )
        if epoch % schedule.log_every == 0:
            log(
                f"epoch {epoch}: train loss {train_loss:.4f} val loss {val['loss']:.4f} "
                f"val AUC {val['roc_auc']:.4f} acc {val['accuracy']:.4f} ({time.monotonic() - started:.0f}s)"
            )
        if val["loss"] < best[0]:
            best = (val["loss"], copy.deepcopy(model.state_dict()), epoch)
        elif epoch - best[2] >= schedule.patience:
            log("early stop: validation loss has not improved")
            break
        if (time.monotonic() - started) / 60 > schedule.max_minutes:
            log("stopping: time budget spent")
            break
    model.load_state_dict(best[1])
    return best[2], history


def calibrate_and_save(
    model: nn.Module, card: ModelCard, val_batches: Iterable[Batch], out_dir: Path, started: float, log: Log
) -> ModelCard:
    """The tail of every training run: temperature scaling on the validation split (on the CPU, where the
    model will run), the card's metrics, and the weights with their card as the registry's default."""
    model.cpu().eval()
    val = evaluate(model, val_batches, torch.device("cpu"))
    card.temperature = fit_temperature(val["logits"], val["labels"])
    after = classification_report(val["labels"], sigmoid(val["logits"] / card.temperature))
    log(
        f"best epoch {card.training['best_epoch']}: val AUC {after['roc_auc']:.4f}; temperature "
        f"{card.temperature:.3f}: ECE {val['ece']:.4f} -> {after['ece']:.4f}"
    )
    card.metrics = {"val": after, "val_uncalibrated_ece": val["ece"]}
    card.version = card.version or _version()
    card.training["minutes"] = round((time.monotonic() - started) / 60, 1)
    card.created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    save_model(model, card, out_dir, set_default=True)
    log(f"saved {card.ref} to {out_dir}")
    return card


# ---------------------------------------------------------------- image branch


def image_splits(
    data_dir: Path, cfg: ImageTrainConfig, cache_dir: Path, log: Log = print
) -> tuple[CropSet, CropSet]:
    """Cached faces of the train and val splits, less the excluded sources, with faces from the video
    clips when the config names them."""
    train = exclude_sources(image_crops(data_dir / "train", cache_dir, log=log), cfg.exclude_sources)
    val = exclude_sources(image_crops(data_dir / "val", cache_dir, log=log), cfg.exclude_sources)
    if cfg.video_data:
        vdir = Path(cfg.video_data)
        for split in ("train", "val"):
            frames = video_frames_as_faces(
                exclude_sources(video_crops(vdir / split, cache_dir, log=log), cfg.exclude_sources),
                cfg.video_frame_step,
            )
            log(f"+ {len(frames)} {split} faces from video clips")
            if split == "train":
                train = concat(train, frames)
            else:
                val = concat(val, frames)
    return train, val


def train_image(
    data_dir: Path,
    out_dir: Path,
    cfg: ImageTrainConfig,
    cache_dir: Path,
    device: str | None = None,
    log: Log = print,
) -> ModelCard:
    torch.manual_seed(cfg.seed)
    mix = synth_mix(cfg)  # before the slow part: an unknown family name fails here
    dev = pick_device(device)
    size = input_size_for(cfg.arch)
    train, val = image_splits(data_dir, cfg, cache_dir, log)
    log(f"train {len(train)} faces ({int(train.labels.sum())} fake), val {len(val)}; device {dev}")
    model = build_image_model(cfg.arch).to(dev)
    model.set_trainable(cfg.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=1)
    # a generator of its own: a loader without one draws its seed from torch's global stream, which
    # would shift the dropout masks of the next epoch
    val_batches = torch.utils.data.DataLoader(FaceSet(val, size), batch_size=64, generator=torch.Generator())

    def epoch_batches(epoch: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            ImageEpoch(train, size, mix, cfg.seed * 1000 + epoch, cfg.reencode_fraction),
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=1,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )

    started = time.monotonic()
    schedule = Schedule(cfg.epochs, cfg.patience, cfg.max_minutes)
    best_epoch, history = fit(
        model, epoch_batches, val_batches, opt, sched, nn.BCEWithLogitsLoss(), dev, schedule, log
    )
    card = ModelCard(
        name=cfg.name,
        version=cfg.version,
        task="image",
        arch=cfg.arch,
        input_size=size,
        backbone=None if cfg.arch == "compact_cnn" else cfg.arch,
        training={
            "data": str(data_dir),
            "config": cfg.__dict__,
            "best_epoch": best_epoch,
            "history": history,
            "train_faces": len(train),
        },
    )
    return calibrate_and_save(model, card, val_batches, out_dir, started, log)


# ---------------------------------------------------------------- video branch


def track_faces(cs: CropSet, i: int, size: int, blend_rng: np.random.Generator | None = None) -> np.ndarray:
    """The inner crops of one cached track; with blend_rng, self-blended consistently over time.

    The same blend parameters are used on every frame, with a small drift of the shift, so the
    sequence shows a temporally coherent seam like a face-swapped clip rather than flicker.
    """
    n = int(cs.lengths[i])
    params = draw_params(blend_rng, cs.crops.shape[2]) if blend_rng is not None else None
    faces = []
    for t in range(n):
        context = cs.crops[i, t]
        if params is not None:
            drift = blend_rng.normal(0, 0.002, 2)
            params = params.__class__(**{**params.__dict__, "shift": tuple(np.add(params.shift, drift))})
            context = self_blend(context, cs.landmarks[i, t], params)
        faces.append(inner_crop(context, size))
    return np.stack(faces)


def forged_track(cs: CropSet, i: int, size: int, family: str, rng: np.random.Generator) -> np.ndarray:
    """Inner crops of real track `i` forged by a track family (donors: other real tracks' first faces)."""
    track = [Face(cs.crops[i, t], cs.landmarks[i, t]) for t in range(int(cs.lengths[i]))]
    others = np.flatnonzero((cs.labels == 0) & (np.arange(len(cs)) != i))
    donors = [Face(cs.crops[j, 0], cs.landmarks[j, 0]) for j in rng.choice(others, min(4, len(others)))]
    return np.stack([inner_crop(frame, size) for frame in synthesise_track(track, donors, family, rng)])


def _pad(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs])
    return nn.utils.rnn.pad_sequence(seqs, batch_first=True), lengths


def _embed_split(
    cs: CropSet,
    embedder: nn.Module,
    size: int,
    dev: torch.device,
    sbi_copies: int,
    rng: np.random.Generator,
    cache: Path | None = None,
    track_families: dict[str, int] | None = None,
) -> tuple[list[torch.Tensor], list[int]]:
    """Embeddings of every track (and its self-blended copies), cached: embedding is the slow part on
    CPU, and the LSTM recipe is what one iterates on."""
    if cache is not None and cache.exists():
        saved = torch.load(cache, weights_only=True)
        return saved["seqs"], saved["labels"]

    def embed(faces: np.ndarray) -> torch.Tensor:
        return embed_batched(embedder.embed, faces, size, dev, batch=64).cpu()

    seqs, labels = [], []
    for i in range(len(cs)):
        seqs.append(embed(track_faces(cs, i, size)))
        labels.append(int(cs.labels[i]))
        if cs.labels[i] == 0:
            for _ in range(sbi_copies):
                seqs.append(embed(track_faces(cs, i, size, rng)))
                labels.append(1)
            for family, copies in (track_families or {}).items():
                for _ in range(copies):
                    seqs.append(embed(forged_track(cs, i, size, family, rng)))
                    labels.append(1)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"seqs": seqs, "labels": labels}, cache)
    return seqs, labels


def _track_batches(
    seqs: list[torch.Tensor], labels: torch.Tensor, batch_size: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """One epoch of shuffled batches, each track cut to a random contiguous window: robust to clip length
    and to where faces appear."""
    order = rng.permutation(len(seqs))
    for s in range(0, len(order), batch_size):
        windows = []
        for j in order[s : s + batch_size]:
            n = len(seqs[j])
            w = int(rng.integers(max(1, n // 2), n + 1))
            o = int(rng.integers(0, n - w + 1))
            windows.append(seqs[j][o : o + w])
        yield _pad(windows), labels[order[s : s + batch_size]]


def _balanced_loss(labels: torch.Tensor) -> nn.Module:
    """Log-loss with the fakes weighted down by their surplus: self-blended copies outnumber the reals."""
    pos = float(labels.sum())
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(labels) - pos) / max(pos, 1.0)))


def embedded_splits(
    train: CropSet,
    val: CropSet,
    cfg: VideoTrainConfig,
    embedder: nn.Module,
    image_card: ModelCard,
    cache_dir: Path,
    frames: int,
    dev: torch.device,
    rng: np.random.Generator,
    log: Log = print,
) -> tuple[tuple[list[torch.Tensor], list[int]], tuple[list[torch.Tensor], list[int]]]:
    """Embedded train tracks (with their forged copies) and val tracks, cached per embedder and recipe."""
    started = time.monotonic()
    # the embedder's checksum too: a retrained image model of the same name@version must not reuse these
    key = f"{image_card.stem}-{image_card.sha256[:8]}-f{frames}-x{'_'.join(cfg.exclude_sources) or 'none'}"
    forged = "".join(f"-{name}{n}" for name, n in sorted(cfg.track_families.items()))
    size = image_card.input_size
    train_cache = cache_dir / f"emb-{key}-train-sbi{cfg.sbi_copies}{forged}-s{cfg.seed}.pt"
    train_seqs, train_labels = _embed_split(
        train, embedder, size, dev, cfg.sbi_copies, rng, train_cache, cfg.track_families
    )
    val_seqs, val_labels = _embed_split(val, embedder, size, dev, 0, rng, cache_dir / f"emb-{key}-val.pt")
    log(
        f"embedded {len(train_seqs)} train tracks ({sum(train_labels)} fake, incl. self-blended) and "
        f"{len(val_seqs)} val tracks in {time.monotonic() - started:.0f}s"
    )
    return (train_seqs, train_labels), (val_seqs, val_labels)


def train_video(
    data_dir: Path,
    out_dir: Path,
    cfg: VideoTrainConfig,
    cache_dir: Path,
    frames: int = DEFAULT_FRAMES,
    device: str | None = None,
    log: Log = print,
    registry: Path | None = None,
) -> ModelCard:
    torch.manual_seed(cfg.seed)
    check_families(list(cfg.track_families), TRACK_FAMILIES)
    rng = np.random.default_rng(cfg.seed)
    dev = pick_device(device)
    embedder, image_card = load_image_model(cfg.image_model or None, registry)
    embedder.to(dev)
    train = exclude_sources(video_crops(data_dir / "train", cache_dir, frames, log=log), cfg.exclude_sources)
    val = exclude_sources(video_crops(data_dir / "val", cache_dir, frames, log=log), cfg.exclude_sources)
    started = time.monotonic()
    (train_seqs, train_labels), (val_seqs, val_labels) = embedded_splits(
        train, val, cfg, embedder, image_card, cache_dir, frames, dev, rng, log
    )
    lstm_cfg = {
        "feature_dim": train_seqs[0].shape[1],
        "hidden": cfg.hidden,
        "layers": cfg.layers,
        "dropout": cfg.dropout,
    }
    model = TrackLSTM(**lstm_cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5)
    y_train = torch.tensor(train_labels, dtype=torch.float32)
    val_batches = [(_pad(val_seqs), torch.tensor(val_labels, dtype=torch.float32))]

    def epoch_batches(_epoch: int) -> Iterator[Batch]:
        return _track_batches(train_seqs, y_train, cfg.batch_size, rng)

    schedule = Schedule(cfg.epochs, cfg.patience, log_every=10)
    best_epoch, _ = fit(
        model, epoch_batches, val_batches, opt, sched, _balanced_loss(y_train), dev, schedule, log
    )
    card = ModelCard(
        name=cfg.name,
        version=cfg.version,
        task="video",
        arch="lstm",
        input_size=image_card.input_size,
        backbone=image_card.backbone,
        feature_model=image_card.ref,
        lstm=lstm_cfg,
        training={
            "data": str(data_dir),
            "config": cfg.__dict__,
            "frames": frames,
            "best_epoch": best_epoch,
            "train_tracks": len(train_seqs),
        },
    )
    return calibrate_and_save(model, card, val_batches, out_dir, started, log)
