"""Shortcut audit: how well file properties alone, no pixel looked at, separate real from fake.

    python -m benchmarks.shortcuts [--data ../shared/data] [--splits train val test]

For every split and source (the file-name prefix before the first "_"), prints the ROC AUC of single
file properties used as a fake score: for photos the JPEG quality (from the luminance quantisation
table; PNG counts as lossless) and the pixel count; for videos the bitrate, the pixel count and the
frame rate. AUC 0.5 means the property says nothing; near 0 or 1 means a model can learn the label
from how the file was saved instead of what the face shows, and a re-encoded upload will break it.
`ml evaluate --jpeg-quality 50` is the evaluation such a shortcut does not reach.

Needs the research media in ../shared/data (not shipped with the project).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from PIL import Image
from sklearn.metrics import roc_auc_score

from ml.dataset import list_split
from ml.file_types import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ml.media import probe


def jpeg_quality_score(path: Path) -> tuple[float, float]:
    """(quality score, pixel count): higher score = finer quantisation; lossless files score highest."""
    with Image.open(path) as im:
        tables = getattr(im, "quantization", None)
        pixels = float(im.size[0] * im.size[1])
    if not tables:
        return 0.0, pixels
    return -float(sum(tables[0][:64])), pixels


def video_properties(path: Path) -> tuple[float, float, float]:
    info = probe(path)
    bitrate = path.stat().st_size * 8 / max(info.duration, 1e-3)
    return bitrate, float(info.width * info.height), float(info.fps)


def auc_or_none(labels: list[int], scores: list[float]) -> float | None:
    """None when a source has one label only; 0.5 when the property is the same for every file."""
    if len(set(labels)) < 2:
        return None
    if len(set(scores)) < 2:
        return 0.5
    return float(roc_auc_score(labels, scores))


def audit(split_dir: Path, kind: str) -> dict[str, dict[str, float | None]]:
    suffixes = IMAGE_EXTENSIONS if kind == "images" else VIDEO_EXTENSIONS
    columns = ("jpeg_quality", "pixels") if kind == "images" else ("bitrate", "pixels", "fps")
    by_source: dict[str, list[tuple[int, tuple[float, ...]]]] = defaultdict(list)
    for path, label in list_split(split_dir, suffixes):
        props = jpeg_quality_score(path) if kind == "images" else video_properties(path)
        by_source[path.name.split("_")[0]].append((label, props))
        by_source["all"].append((label, props))
    out = {}
    for source, rows in sorted(by_source.items()):
        labels = [y for y, _ in rows]
        out[f"{source} ({sum(labels)} fake / {len(labels) - sum(labels)} real)"] = {
            name: auc_or_none(labels, [p[i] for _, p in rows]) for i, name in enumerate(columns)
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    args = ap.parse_args(argv)
    for kind in ("images", "videos"):
        for split in args.splits:
            table = audit(Path(args.data) / kind / split, kind)
            names = list(next(iter(table.values())))
            print(f"\n{kind}/{split}: ROC AUC of a file property as the fake score")
            print(f"{'source':<34}" + "".join(f"{n:>14}" for n in names))
            for source, row in table.items():
                cells = "".join(f"{'-' if v is None else f'{v:.3f}':>14}" for v in row.values())
                print(f"{source:<34}{cells}")
    print("\n(0.5: no information; near 0 or 1: the label can be read off the file)")


if __name__ == "__main__":
    main()
