"""Training for the image branch (face classifier) and the video branch (LSTM over face tracks).

Both read the `DIR/{train,val,test}/{real,fake}/` layout through the crop cache in ml.dataset, stop
early on validation loss, calibrate on the validation split (temperature scaling) and write a
checkpoint with its card into a registry folder.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.dataset import CropSet, image_crops, inner_crop, video_crops
from ml.metrics import classification_report, fit_temperature
from ml.models import TrackLSTM, build_image_model, input_size_for
from ml.registry import ModelCard, load_image_model, save_model
from ml.sbi import draw_params, self_blend
from ml.synth import TRACK_FAMILIES, Face, check_families, synthesise, synthesise_track
from ml.transforms import degrade, random_affine, reencode_at_scale, to_tensor

Log = Callable[[str], None]


@dataclass
class ImageTrainConfig:
    arch: str = "mobilenet_v2"
    freeze: str = "last:5"
    epochs: int = 8
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
    max_minutes: float = 100.0
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


def _exclude(cs: CropSet, prefixes: list[str]) -> CropSet:
    if not prefixes:
        return cs
    keep = np.array([not any(Path(p).name.startswith(x) for x in prefixes) for p in cs.paths])
    return CropSet(
        cs.crops[keep],
        cs.landmarks[keep],
        cs.labels[keep],
        [p for p, k in zip(cs.paths, keep, strict=True) if k],
        None if cs.lengths is None else cs.lengths[keep],
    )


def video_frames_as_faces(cs: CropSet, step: int) -> CropSet:
    """Every `step`-th frame of each cached track as a standalone face, labelled by its clip."""
    crops, lms, labels, paths = [], [], [], []
    for i in range(len(cs)):
        for t in range(0, int(cs.lengths[i]), step):
            crops.append(cs.crops[i, t])
            lms.append(cs.landmarks[i, t])
            labels.append(cs.labels[i])
            paths.append(cs.paths[i])
    return CropSet(np.stack(crops), np.stack(lms), np.array(labels, dtype=np.int64), paths)


def concat(a: CropSet, b: CropSet) -> CropSet:
    return CropSet(
        np.concatenate([a.crops, b.crops]),
        np.concatenate([a.landmarks, b.landmarks]),
        np.concatenate([a.labels, b.labels]),
        a.paths + b.paths,
    )


def augment_face(
    context: np.ndarray, rng: np.random.Generator, size: int, reencode_fraction: float = 0.0
) -> np.ndarray:
    """Train-time view of a cached context crop: flip, re-encoding, the seeds' affine jitter, inner crop,
    degradations."""
    img = context[:, ::-1] if rng.random() < 0.5 else context
    if rng.random() < reencode_fraction:
        img = reencode_at_scale(np.ascontiguousarray(img), rng)
    if rng.random() < 0.7:
        img = random_affine(np.ascontiguousarray(img), rng)
    img = inner_crop(np.ascontiguousarray(img), size)
    return degrade(img, rng)


def _flip_landmarks(lm: np.ndarray, width: int) -> np.ndarray:
    out = lm.copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


def synth_mix(cfg: ImageTrainConfig) -> dict[str, float]:
    """Forgeries per real face per epoch, by family: the config's families, else self-blending alone."""
    mix = dict(cfg.synth_families) or {"sbi": cfg.sbi_fraction}
    check_families(list(mix))
    return mix


class _ImageEpoch(torch.utils.data.Dataset):
    """One epoch's samples: every cached face plus freshly drawn forgeries of real faces (ml.synth)."""

    donor_candidates = 4  # other real faces offered per forgery; the closest in pose gives its face

    def __init__(
        self, cs: CropSet, size: int, mix: dict[str, float], seed: int, reencode_fraction: float = 0.0
    ):
        self.cs, self.size, self.reencode_fraction = cs, size, reencode_fraction
        rng = np.random.default_rng(seed)
        self.reals = np.flatnonzero(cs.labels == 0)
        self.items: list[tuple[int, str | None]] = [(i, None) for i in range(len(cs))]
        for family, fraction in mix.items():
            n = int(round(fraction * len(self.reals)))
            self.items += [(int(i), family) for i in rng.choice(self.reals, n)]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        i, family = self.items[k]
        rng = np.random.default_rng((self.seed, k))
        context = self.cs.crops[i]
        label = int(self.cs.labels[i])
        if family is not None:
            context, _ = synthesise(self._face(i), self._donors(i, k), family, rng)
            label = 1
        face = augment_face(context, rng, self.size, self.reencode_fraction)
        return to_tensor(face)[0], torch.tensor(float(label))

    def _face(self, i: int) -> Face:
        return Face(self.cs.crops[i], self.cs.landmarks[i])

    def _donors(self, i: int, k: int) -> list[Face]:
        # a stream of its own, so the forgery's own draws (and self-blends) do not depend on it
        picks = np.random.default_rng((self.seed, k, 1)).choice(self.reals, self.donor_candidates)
        return [self._face(int(j)) for j in picks if j != i]


@torch.inference_mode()
def predict_logits(
    model: nn.Module, faces: np.ndarray, size: int, device: torch.device, batch: int = 64
) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(faces), batch):
        x = to_tensor(faces[s : s + batch], size).to(device)
        out.append(model(x).float().cpu())
    return torch.cat(out).numpy()


def _inner_crops(cs: CropSet, size: int) -> np.ndarray:
    return np.stack([inner_crop(c, size) for c in cs.crops])


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
    train = _exclude(image_crops(data_dir / "train", cache_dir, log=log), cfg.exclude_sources)
    val = _exclude(image_crops(data_dir / "val", cache_dir, log=log), cfg.exclude_sources)
    if cfg.video_data:
        vdir = Path(cfg.video_data)
        for split in ("train", "val"):
            frames = video_frames_as_faces(
                _exclude(video_crops(vdir / split, cache_dir, log=log), cfg.exclude_sources),
                cfg.video_frame_step,
            )
            log(f"+ {len(frames)} {split} faces from video clips")
            if split == "train":
                train = concat(train, frames)
            else:
                val = concat(val, frames)
    log(f"train {len(train)} faces ({int(train.labels.sum())} fake), val {len(val)}; device {dev}")
    model = build_image_model(cfg.arch).to(dev)
    model.set_trainable(cfg.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=1)
    loss_fn = nn.BCEWithLogitsLoss()
    val_faces = _inner_crops(val, size)
    best = (math.inf, None, -1)
    started = time.monotonic()
    history = []
    for epoch in range(cfg.epochs):
        ds = _ImageEpoch(train, size, mix, cfg.seed * 1000 + epoch, cfg.reencode_fraction)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=cfg.batch_size,
            shuffle=True,
            num_workers=1,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )
        model.train()
        # Frozen blocks keep ImageNet batch statistics: BatchNorm in eval mode there.
        for block in model.feature_blocks():
            if not any(p.requires_grad for p in block.parameters()):
                block.eval()
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        val_logits = predict_logits(model, val_faces, size, dev)
        val_loss = float(
            loss_fn(torch.from_numpy(val_logits), torch.from_numpy(val.labels.astype(np.float32)))
        )
        report = classification_report(val.labels, 1 / (1 + np.exp(-val_logits)))
        sched.step(val_loss)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / count,
                "val_loss": val_loss,
                "val_auc": report["roc_auc"],
                "val_acc": report["accuracy"],
            }
        )
        log(
            f"epoch {epoch}: train loss {total / count:.4f} val loss {val_loss:.4f} "
            f"val AUC {report['roc_auc']:.4f} acc {report['accuracy']:.4f} "
            f"({time.monotonic() - started:.0f}s)"
        )
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()), epoch)
        elif epoch - best[2] >= cfg.patience:
            log("early stop: validation loss has not improved")
            break
        if (time.monotonic() - started) / 60 > cfg.max_minutes:
            log("stopping: time budget spent")
            break
    model.load_state_dict(best[1])
    model.cpu().eval()
    val_logits = predict_logits(model, val_faces, size, torch.device("cpu"))
    temperature = fit_temperature(val_logits, val.labels)
    before = classification_report(val.labels, 1 / (1 + np.exp(-val_logits)))
    after = classification_report(val.labels, 1 / (1 + np.exp(-val_logits / temperature)))
    log(f"temperature {temperature:.3f}: val ECE {before['ece']:.4f} -> {after['ece']:.4f}")
    card = ModelCard(
        name=cfg.name,
        version=cfg.version or _version(),
        task="image",
        arch=cfg.arch,
        input_size=size,
        backbone=None if cfg.arch == "compact_cnn" else cfg.arch,
        temperature=temperature,
        metrics={"val": after, "val_uncalibrated_ece": before["ece"]},
        training={
            "data": str(data_dir),
            "config": cfg.__dict__,
            "best_epoch": best[2],
            "history": history,
            "train_faces": len(train),
            "minutes": round((time.monotonic() - started) / 60, 1),
        },
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    save_model(model, card, out_dir, set_default=True)
    log(f"saved {card.ref} to {out_dir}")
    return card


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


@torch.inference_mode()
def embed_faces(
    model: nn.Module, faces: np.ndarray, size: int, device: torch.device, batch: int = 64
) -> torch.Tensor:
    out = []
    for s in range(0, len(faces), batch):
        out.append(model.embed(to_tensor(faces[s : s + batch], size).to(device)).float().cpu())
    return torch.cat(out)


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
    seqs, labels = [], []
    for i in range(len(cs)):
        seqs.append(embed_faces(embedder, track_faces(cs, i, size), size, dev))
        labels.append(int(cs.labels[i]))
        if cs.labels[i] == 0:
            for _ in range(sbi_copies):
                seqs.append(embed_faces(embedder, track_faces(cs, i, size, rng), size, dev))
                labels.append(1)
            for family, copies in (track_families or {}).items():
                for _ in range(copies):
                    seqs.append(embed_faces(embedder, forged_track(cs, i, size, family, rng), size, dev))
                    labels.append(1)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"seqs": seqs, "labels": labels}, cache)
    return seqs, labels


def train_video(
    data_dir: Path,
    out_dir: Path,
    cfg: VideoTrainConfig,
    cache_dir: Path,
    frames: int = 32,
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
    size = image_card.input_size
    train = _exclude(video_crops(data_dir / "train", cache_dir, frames, log=log), cfg.exclude_sources)
    val = _exclude(video_crops(data_dir / "val", cache_dir, frames, log=log), cfg.exclude_sources)
    started = time.monotonic()
    # the embedder's checksum too: a retrained image model of the same name@version must not reuse these
    key = f"{image_card.stem}-{image_card.sha256[:8]}-f{frames}-x{'_'.join(cfg.exclude_sources) or 'none'}"
    forged = "".join(f"-{name}{n}" for name, n in sorted(cfg.track_families.items()))
    train_seqs, train_labels = _embed_split(
        train,
        embedder,
        size,
        dev,
        cfg.sbi_copies,
        rng,
        cache_dir / f"emb-{key}-train-sbi{cfg.sbi_copies}{forged}-s{cfg.seed}.pt",
        cfg.track_families,
    )
    val_seqs, val_labels = _embed_split(val, embedder, size, dev, 0, rng, cache_dir / f"emb-{key}-val.pt")
    log(
        f"embedded {len(train_seqs)} train tracks ({sum(train_labels)} fake, incl. self-blended) and "
        f"{len(val_seqs)} val tracks in {time.monotonic() - started:.0f}s"
    )
    feature_dim = train_seqs[0].shape[1]
    lstm_cfg = {
        "feature_dim": feature_dim,
        "hidden": cfg.hidden,
        "layers": cfg.layers,
        "dropout": cfg.dropout,
    }
    model = TrackLSTM(**lstm_cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5)
    y_all = torch.tensor(train_labels, dtype=torch.float32)
    pos = float(y_all.sum())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y_all) - pos) / max(pos, 1.0)))
    val_x, val_len = _pad(val_seqs)
    val_y = torch.tensor(val_labels, dtype=torch.float32)
    best = (math.inf, None, -1)
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(train_seqs))
        for s in range(0, len(order), cfg.batch_size):
            batch = []
            for j in order[s : s + cfg.batch_size]:
                seq = train_seqs[j]
                # random contiguous window: robust to clip length and to where faces appear
                n = len(seq)
                w = int(rng.integers(max(1, n // 2), n + 1))
                o = int(rng.integers(0, n - w + 1))
                batch.append(seq[o : o + w])
            x, lengths = _pad(batch)
            y = y_all[order[s : s + cfg.batch_size]]
            loss = loss_fn(model(x.to(dev), lengths.to(dev)), y.to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            val_logits = model(val_x.to(dev), val_len.to(dev)).cpu()
        val_loss = float(nn.functional.binary_cross_entropy_with_logits(val_logits, val_y))
        sched.step(val_loss)
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()), epoch)
        elif epoch - best[2] >= cfg.patience:
            break
        if epoch % 10 == 0:
            rep = classification_report(val_labels, torch.sigmoid(val_logits).numpy())
            log(f"epoch {epoch}: val loss {val_loss:.4f} val AUC {rep['roc_auc']:.4f}")
    model.load_state_dict(best[1])
    model.cpu().eval()
    with torch.inference_mode():
        val_logits = model(val_x, val_len).numpy()
    temperature = fit_temperature(val_logits, np.array(val_labels))
    before = classification_report(val_labels, 1 / (1 + np.exp(-val_logits)))
    after = classification_report(val_labels, 1 / (1 + np.exp(-val_logits / temperature)))
    log(
        f"best epoch {best[2]}: val AUC {after['roc_auc']:.4f}; temperature {temperature:.3f}: "
        f"ECE {before['ece']:.4f} -> {after['ece']:.4f}"
    )
    card = ModelCard(
        name=cfg.name,
        version=cfg.version or _version(),
        task="video",
        arch="lstm",
        input_size=size,
        backbone=image_card.backbone,
        feature_model=image_card.ref,
        lstm=lstm_cfg,
        temperature=temperature,
        metrics={"val": after, "val_uncalibrated_ece": before["ece"]},
        training={
            "data": str(data_dir),
            "config": cfg.__dict__,
            "frames": frames,
            "best_epoch": best[2],
            "train_tracks": len(train_seqs),
            "minutes": round((time.monotonic() - started) / 60, 1),
        },
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    save_model(model, card, out_dir, set_default=True)
    log(f"saved {card.ref} to {out_dir}")
    return card
