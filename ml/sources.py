"""Which source a file of ../shared/data comes from, for leave-one-source-out evaluation.

`MANIFEST.tsv` names each file's source repository; a LOSO row needs finer groups than that (each
FaceForensics++ method, c23 apart from c40), so `source_group` maps a file name to the group a row holds out.
Pure functions over names: no media is read here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")


@dataclass(frozen=True)
class MediaRecord:
    path: Path
    label: int  # 1 fake, 0 real
    split: str
    source: str  # as the manifest names it
    group: str  # the finer LOSO group
    # the manifest's `group`: the original a fake was made from, shared by that original's real file
    # (DFDC crops); empty where the manifest names none
    pair: str = ""


def source_group(name: str, source: str) -> str:
    """The LOSO group of a file: its manifest source, with FF++ split by method and compression."""
    if source in ("ffpp_c40_mudouble", "icpr2020dfdc") and name.startswith("ffpp"):
        quality = "c40" if name.startswith("ffpp_c40") else "c23"
        method = next((m for m in FFPP_METHODS if f"_{m}_" in f"_{name}"), "original")
        return f"ffpp_{quality}_{method}"
    if source in ("icpr2020dfdc", "dfdc_aaronchong"):
        return "dfdc"
    return source


def read_manifest(data: Path, kind: str) -> list[MediaRecord]:
    """Every `images` or `videos` file the manifest lists, with label, split and group."""
    records = []
    with (data / "MANIFEST.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if not row["path"].startswith(f"{kind}/"):
                continue
            name = Path(row["path"]).name
            records.append(
                MediaRecord(
                    path=data / row["path"],
                    label=1 if row["label"] == "fake" else 0,
                    split=row["split"],
                    source=row["source"],
                    group=source_group(name, row["source"]),
                    pair=row.get("group") or "",
                )
            )
    return records


def source_groups(data: Path) -> dict[str, str]:
    """File name -> LOSO group, for every photo and video the manifest lists."""
    return {r.path.name: r.group for kind in ("images", "videos") for r in read_manifest(data, kind)}


def photo_pairs(data: Path) -> dict[str, str]:
    """Photo file name -> the original it shares with its real or fake counterpart, where the manifest
    names one (`MediaRecord.pair`)."""
    return {r.path.name: r.pair for r in read_manifest(data, "images") if r.pair}
