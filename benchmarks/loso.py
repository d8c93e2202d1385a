"""Leave-one-source-out: train without one source of fakes, then measure on exactly that source.

    python -m benchmarks.loso --task image --holdout wfir            # StyleGAN photos (and their FFHQ reals)
    python -m benchmarks.loso --task video --holdout ffpp_c40_NeuralTextures ffpp_NeuralTextures

The recipe is the shipped one (ml/configs/*_default.json) with the held-out file-name prefixes excluded
from training, for the image model and (with --task video) for the LSTM on top of it, so neither ever sees
the held-out source. The evaluation set is every held-out file of every split (none of them was trained
on) plus the test split's real files not already held out, so the AUC says how well the held-out fakes are
told from real faces. The evaluation set is a folder of symbolic links in a temporary directory: the
research media is never copied. `--max-minutes` caps each training (report it with the numbers).
Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SPLITS = ("train", "val", "test")
CONFIGS = Path(__file__).resolve().parent.parent / "ml" / "configs"


def holdout_folder(data: Path, prefixes: tuple[str, ...], out: Path) -> dict[str, int]:
    """out/{real,fake}/: links to every held-out file of every split, plus the test split's other reals."""
    counts = {"real": 0, "fake": 0}
    for label in counts:
        (out / label).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            for path in sorted((data / split / label).iterdir()):
                held_out = path.name.startswith(prefixes)
                if held_out or (label == "real" and split == "test"):
                    (out / label / f"{split}-{path.name}").symlink_to(path.resolve())
                    counts[label] += 1
    return counts


def use_shipped_video_model(registry: Path) -> None:
    from ml.registry import DEFAULTS_FILE, default_refs, find_card, registry_dir

    shipped = registry_dir()
    card = find_card(default_refs(shipped)["video"], shipped)
    for suffix in (".json", ".pt"):
        shutil.copy2(shipped / f"{card.stem}{suffix}", registry / f"{card.stem}{suffix}")
    defaults = json.loads((registry / DEFAULTS_FILE).read_text())
    (registry / DEFAULTS_FILE).write_text(json.dumps({**defaults, "video": card.ref}, indent=2) + "\n")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=["image", "video"], required=True)
    parser.add_argument(
        "--holdout", nargs="+", required=True, help="file-name prefixes of the held-out source"
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=None, help="registry folder (default: temporary)")
    parser.add_argument("--cache", default="cache/crops", help="face-crop cache, shared with ml train")
    parser.add_argument("--max-minutes", type=float, default=20, help="cap on the image model's training")
    parser.add_argument("--sbi-fraction", type=float, default=None, help="override the recipe's (0: no SBI)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: {args.data} not found (the research media is not part of the repository)")
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="loso-"))
    registry = work / "registry"
    py = [sys.executable, "-m", "ml"]
    common = ["--exclude", *args.holdout, "--out", str(registry), "--cache", args.cache]
    image_config = ["--config", str(CONFIGS / "image_default.json"), "--max-minutes", str(args.max_minutes)]
    if args.sbi_fraction is not None:
        image_config += ["--sbi-fraction", str(args.sbi_fraction)]
    run([*py, "train", "--task", "image", "--data", str(args.data / "images"), *image_config, *common])
    image_ref = json.loads((registry / "defaults.json").read_text())["image"]
    if args.task == "image":
        use_shipped_video_model(registry)  # the analyser loads one; image scores never touch it
    if args.task == "video":
        run([*py, "train", "--task", "video", "--data", str(args.data / "videos"),
             "--config", str(CONFIGS / "video_default.json"), "--image-model", image_ref,
             "--registry", str(registry), *common])  # fmt: skip
    folder = work / "heldout"
    counts = holdout_folder(
        args.data / ("images" if args.task == "image" else "videos"), tuple(args.holdout), folder
    )
    print(
        f"# held out {' '.join(args.holdout)}: {counts['fake']} fake, {counts['real']} real files", flush=True
    )
    report = work / "report.json"
    run([*py, "evaluate", "--data", str(folder), "--registry", str(registry), "--json-out", str(report)])
    metrics = json.loads(report.read_text())
    print(
        f"LOSO task={args.task} holdout={'+'.join(args.holdout)} n={metrics['n']} "
        f"auc={metrics['roc_auc']:.3f} acc={metrics['accuracy']:.3f} max_minutes={args.max_minutes:g} "
        f"sbi_fraction={'recipe' if args.sbi_fraction is None else args.sbi_fraction}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
