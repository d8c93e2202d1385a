"""Frozen-encoder features of cached face crops, computed once and kept on disk.

CLIP costs about 0.2-0.7 s per crop on 2 CPU cores, so every experiment that fits a head on frozen features
(training, leave-one-source-out, the synthetic-family ablation) reads them from an `EmbeddingStore` instead
of running the encoder again. A store is keyed by the encoder's identity, and each row by a string key
(`path` for a photo, `path#t` for frame t of a video track, `synth/<family>/<n>` for a synthetic face), so a
subset can be embedded now and the rest later, and an interrupted run keeps what it finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

Encoder = Callable[[list[np.ndarray]], np.ndarray]  # crops -> feature rows


class EmbeddingStore:
    """key -> feature row (`ml.clip_encoder.ClipOutputs.rows`) in one .npz, saved atomically now and then.
    A benchmark that keeps bigger rows (a block's tokens) stores them in `dtype` and saves them less often."""

    def __init__(self, path: Path, flush_every: int = 256, dtype: type = np.float32):
        self.path = path
        self.flush_every = flush_every
        self.dtype = dtype
        self.rows: dict[str, np.ndarray] = {}
        self._dirty = 0
        if path.is_file():
            with np.load(path) as z:
                keys = json.loads(str(z["keys"]))
                self.rows = dict(zip(keys, z["features"], strict=True))

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, keys: Sequence[str]) -> np.ndarray:
        return np.stack([self.rows[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def add(self, keys: Sequence[str], features: np.ndarray) -> None:
        for key, row in zip(keys, features, strict=True):
            self.rows[key] = row.astype(self.dtype)
        self._dirty += len(keys)
        if self._dirty >= self.flush_every:
            self.save()

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = list(self.rows)
        np.savez(tmp, keys=np.array(json.dumps(keys)), features=np.stack([self.rows[k] for k in keys]))
        tmp.replace(self.path)
        self._dirty = 0


def fill(
    store: EmbeddingStore,
    items: Iterable[tuple[str, Callable[[], np.ndarray]]],
    encode: Encoder,
    batch: int = 8,
    log: Callable[[str], None] = print,
) -> None:
    """Embed every (key, make_crop) not yet in the store; crops are made lazily, `batch` at a time."""
    pending = [(k, make) for k, make in items if k not in store]
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        store.add([k for k, _ in chunk], encode([make() for _, make in chunk]))
        if (start // batch) % 25 == 0:
            log(f"  {store.path.name}: {start + len(chunk)}/{len(pending)} new rows")
    store.save()


def track_steps(length: int, per_track: int) -> list[int]:
    """`per_track` steps spread evenly over a track of `length` valid frames (fewer when it is shorter)."""
    if length <= 0:
        return []
    return sorted({round(x) for x in np.linspace(0, length - 1, min(per_track, length))})


def photo_key(path: str) -> str:
    return Path(path).name


def frame_key(path: str, step: int) -> str:
    return f"{Path(path).name}#{step}"


def crop_set_items(cs, per_track: int = 4, keep: Callable[[str], bool] = lambda path: True):
    """(key, make_crop) for every face of a photo CropSet, or `per_track` frames of each video track."""
    from ml.dataset import inner_crop

    for i, path in enumerate(cs.paths):
        if not keep(path):
            continue
        if cs.lengths is None:
            yield photo_key(path), (lambda i=i: inner_crop(cs.crops[i]))
        else:
            for t in track_steps(int(cs.lengths[i]), per_track):
                yield frame_key(path, t), (lambda i=i, t=t: inner_crop(cs.crops[i, t]))


def clip_stores(crop_cache: Path, seed: int) -> tuple[EmbeddingStore, EmbeddingStore]:
    """(faces of the media, synthetic forgeries of seed `seed`): the stores beside the crop cache."""
    # "blocks": rows carry every block's CLS token (ClipOutputs.rows); older stores had embed | CLS only.
    folder = crop_cache.parent / "features"
    return (
        EmbeddingStore(folder / "clip_vitb16_blocks.npz"),
        EmbeddingStore(folder / f"clip_vitb16_blocks_synth_s{seed}.npz"),
    )
