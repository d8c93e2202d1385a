"""Command line: `python -m ml train|evaluate|predict|models|synth|prepare` (see `python -m ml --help`).

Strict, like timm's train.py: a flag the chosen command or training task does not read is refused with
the reason (exit status 2) instead of being dropped, e.g. `train --task image --sbi-copies 2`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.train import ImageTrainConfig, VideoTrainConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _config(cls, path: str | None, overrides: dict):
    data = {}
    if path:
        p = Path(path)
        if not p.exists() and (CONFIG_DIR / p).exists():
            p = CONFIG_DIR / p
        data = json.loads(p.read_text())
    names = {f.name for f in fields(cls)}
    data.update({k: v for k, v in overrides.items() if v is not None and k in names})
    return cls(**data)


def _family_mix(pairs: list[str] | None, kind: type = float) -> dict | None:
    """`swap=0.25 resynth=0.35` -> {"swap": 0.25, "resynth": 0.35}."""
    if not pairs:
        return None
    try:
        return {name: kind(value) for name, value in (pair.split("=", 1) for pair in pairs)}
    except ValueError:
        raise SystemExit(f"families are given as NAME=NUMBER pairs, got {pairs}") from None


TRAIN_TASKS = ("image", "video", "clip")
# The named presets: `python -m ml train --task T` trains the shipped recipe unless --config names another.
PRESETS = {task: f"{task}_default.json" for task in TRAIN_TASKS}


def train_config(args: argparse.Namespace) -> ImageTrainConfig | VideoTrainConfig:
    """The task's preset (or --config), with the flags given on the command line on top."""
    from ml.train import ImageTrainConfig, VideoTrainConfig

    overrides = {
        "arch": args.arch,
        "epochs": args.epochs,
        "freeze": args.freeze,
        "name": args.name,
        "version": args.version,
        "sbi_fraction": args.sbi_fraction,
        "synth_families": _family_mix(args.synth_families),
        "reencode_fraction": args.reencode_fraction,
        "sbi_copies": args.sbi_copies,
        "track_families": _family_mix(args.track_families, int),
        "seed": args.seed,
        "image_model": args.image_model,
        "max_minutes": args.max_minutes,
        "exclude_sources": args.exclude,
    }
    cfg = _config(
        ImageTrainConfig if args.task == "image" else VideoTrainConfig,
        args.config or PRESETS[args.task],
        overrides,
    )
    if args.task == "image" and args.name is None and args.arch:
        cfg.name = f"image-{cfg.arch}"
    if args.task == "image" and args.sbi_fraction is not None and cfg.synth_families:
        # ml.train.synth_mix reads sbi_fraction only when there are no families
        raise SystemExit(
            "--sbi-fraction does not apply when synth families are set (by --synth-families or the config): "
            "give self-blending as one of them, e.g. --synth-families sbi=0.5 swap=0.25"
        )
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    if args.task == "clip":
        return _train_clip(args)
    from ml.media import DEFAULT_FRAMES
    from ml.train import train_image, train_video

    cfg = train_config(args)
    cache = Path(args.cache)
    if args.task == "image":
        train_image(Path(args.data), Path(args.out), cfg, cache, device=args.device)
    else:
        registry = Path(args.registry) if args.registry else None
        train_video(
            Path(args.data),
            Path(args.out),
            cfg,
            cache,
            frames=DEFAULT_FRAMES if args.frames is None else args.frames,
            device=args.device,
            registry=registry,
        )
    return 0


def _train_clip(args: argparse.Namespace) -> int:
    from ml.train_clip import ClipTrainConfig, train_clip

    overrides = {"name": args.name, "version": args.version, "seed": args.seed, "exclude": args.exclude}
    cfg = _config(ClipTrainConfig, args.config or PRESETS["clip"], overrides)
    train_clip(Path(args.data), Path(args.out), cfg, Path(args.cache))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Build what is derived from installed packages (the fp32 CLIP graph), so no job waits for it."""
    from ml.clip_encoder import ensure_fp32_model

    print(f"CLIP image tower: {ensure_fp32_model()}")
    return 0


def cmd_neighbours(args: argparse.Namespace) -> int:
    """Give an existing CLIP card its out-of-distribution reference faces (its probe's weights untouched):
    drawn from the training files of the recipe its card records, thresholded on its val files; with
    `--quantile` / `--band`, at that operating point (recorded in the card's recipe as well)."""
    from dataclasses import asdict, replace

    from ml.clip_encoder import ClipEncoder
    from ml.features import clip_stores
    from ml.registry import default_ref, find_card, registry_dir, save_reference
    from ml.train_clip import ClipTrainConfig, gather, ood_check, val_files

    directory = Path(args.registry) if args.registry else registry_dir()
    card = find_card(args.ref or default_ref("clip", directory), directory)
    cfg = ClipTrainConfig.of_card(card)
    if args.quantile is not None:
        cfg = replace(cfg, neighbour_quantile=args.quantile)
    if args.band is not None:
        cfg = replace(cfg, uncertain_band=(args.band[0], args.band[1]))
        card.uncertain_band = (args.band[0], args.band[1])
    card.training["config"] = asdict(cfg)
    cache = Path(args.cache)
    features = gather(
        Path(args.data), cache, clip_stores(cache, cfg.seed), ClipEncoder().feature_rows, cfg, print
    )
    stats, reference = ood_check(features, cfg, val_files(features, cfg))
    card.embedding_stats["neighbours"] = neighbours = stats["neighbours"]  # the card's own mean and std stay
    path = save_reference(reference, card, directory)
    print(
        f"{card.ref}: {len(reference)} reference faces in {path}, max distance {neighbours['max_distance']} "
        f"(quantile {neighbours['quantile']} of the val files), uncertain band {list(card.uncertain_band)}"
    )
    return 0


def _analyser(args: argparse.Namespace):
    from ml.pipeline import Analyser

    return Analyser(
        image_model=args.image_model,
        video_model=args.video_model,
        detector=args.detector,
        frames=args.frames,
        device=args.device,
        heatmaps=getattr(args, "heatmaps", False),
        registry=Path(args.registry) if args.registry else None,
        detect_stride=args.detect_stride,
        clip_model=args.clip_model,
        use_clip=not args.no_clip,
        use_mix=not args.no_mix,
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ml.evaluate import evaluate_folder, format_report, report_json

    analyser = _analyser(args)
    if args.reencode_sweep:
        return _reencode_sweep(args, analyser)
    report = evaluate_folder(
        Path(args.data),
        analyser,
        jpeg_quality=args.jpeg_quality,
        roc_png=Path(args.roc) if args.roc else None,
        exclude=tuple(args.exclude or ()),
        only=tuple(args.only or ()),
    )
    print(format_report(report))
    if args.record:
        from ml.registry import record_metrics

        record_metrics(report["model"], args.record, report, Path(args.registry) if args.registry else None)
        print(f"recorded as metrics[{args.record!r}] in the card of {report['model']}")
    if args.json_out:
        Path(args.json_out).write_text(report_json(report) + "\n")
    return 0


def _reencode_sweep(args: argparse.Namespace, analyser) -> int:
    from ml.evaluate import format_sweep, reencode_sweep

    sweep = reencode_sweep(
        Path(args.data), analyser, exclude=tuple(args.exclude or ()), only=tuple(args.only or ())
    )
    print(format_sweep(sweep))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(sweep, indent=2) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ml.errors import MediaError

    analyser = _analyser(args)
    status = 0
    for name in args.files:
        started = time.perf_counter()
        artifacts = Path(args.artifacts) / Path(name).stem if args.artifacts else None
        try:
            result = analyser.analyse(name, artifacts_dir=artifacts)
            result.pop("timings", None)
        except MediaError as exc:
            result = {"path": name, "error": str(exc), "seconds": round(time.perf_counter() - started, 3)}
            status = 1
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            if "error" in result:
                print(f"{name}: ERROR {result['error']}")
            else:
                p = result["fake_probability"]
                pct = "" if p is None else f" ({100 * p:.1f}% fake)"
                why = ", ".join(r["code"] for r in result.get("uncertain_reasons", []))
                print(
                    f"{name}: {result['verdict'].upper()}{pct}{f' [{why}]' if why else ''}, "
                    f"{len(result['faces'])} face(s), {result['model']}, {result['seconds']:.2f}s"
                )
    return status


def cmd_mix(args: argparse.Namespace) -> int:
    """Fit the photo mix of the default CLIP probe and CNN (ml.train_mix) and make it the photo decider."""
    from ml.registry import registry_dir
    from ml.train_mix import fit_mix_card

    registry = Path(args.registry) if args.registry else registry_dir()
    fit_mix_card(Path(args.data), Path(args.cache), args.clip_weight, args.version, registry)
    return 0


def _clip_weight_problems(args: argparse.Namespace) -> list[str]:
    return [] if 0 <= args.clip_weight <= 1 else ["--clip-weight must lie in [0, 1]"]


def cmd_models(args: argparse.Namespace) -> int:
    from ml.registry import check_weights, default_refs, list_cards

    registry = Path(args.registry) if args.registry else None
    defaults = set(default_refs(registry).values())
    for card in list_cards(registry):
        mark = "*" if card.ref in defaults else " "
        test = card.metrics.get("test", {})
        auc = f" test AUC {test['roc_auc']:.3f}" if "roc_auc" in test else ""
        print(f"{mark} {card.ref:32s} {card.task:5s} {card.arch:16s} T={card.temperature:.2f}{auc}")
    problems = check_weights(registry)
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


def cmd_synth(args: argparse.Namespace) -> int:
    from ml.synth import TRACK_FAMILIES
    from ml.synth_examples import write_examples

    data = args.data or (
        "../shared/data/videos" if args.family in TRACK_FAMILIES else "../shared/data/images"
    )
    write_examples(args.family, Path(data), Path(args.out), count=args.count, seed=args.seed)
    return 0


Check = Callable[[argparse.Namespace], list[str]]


def _no_problems(_args: argparse.Namespace) -> list[str]:
    return []


def _operating_point_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if args.quantile is not None and not 0 < args.quantile < 1:
        problems.append(f"--quantile must lie between 0 and 1, not {args.quantile:g}")
    if args.band is not None and not 0 <= args.band[0] < 0.5 < args.band[1] <= 1:
        problems.append("--band LOW HIGH must hold the threshold 0.5: 0 <= LOW < 0.5 < HIGH <= 1")
    return problems


def _command(
    sub: argparse._SubParsersAction, name: str, func: Callable, help: str, check: Check = _no_problems
) -> argparse.ArgumentParser:
    """A subcommand whose flags `check` vets before `func` runs; its usage is shown with a refusal."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func, check=check, usage_error=parser.error)
    return parser


def _registry_option(add_argument: Callable[..., object], reads: str = "the models") -> None:
    # One meaning everywhere: the registry models are read from (train writes into --out).
    add_argument(
        "--registry", help=f"registry folder to read {reads} from (default: ml/weights or $ML_WEIGHTS_DIR)"
    )


def _model_options(parser: argparse.ArgumentParser) -> None:
    """What evaluate and predict share: which models and detector the analyser loads, and how it samples."""
    from ml.faces import DEFAULT_DETECTOR, DETECTORS
    from ml.media import DEFAULT_FRAMES
    from ml.tracking import DETECT_STRIDE

    parser.add_argument("--image-model", help="name@version (default: the registry's default)")
    parser.add_argument("--video-model", help="name@version (default: the registry's default)")
    clip = parser.add_mutually_exclusive_group()
    clip.add_argument("--clip-model", help="name@version of the CLIP probe (default: the registry's)")
    clip.add_argument(
        "--no-clip", action="store_true", help="decide with the fine-tuned CNN and the LSTM instead"
    )
    parser.add_argument(
        "--no-mix", action="store_true", help="photos: the CLIP probe alone, not its mix with the CNN"
    )
    _registry_option(parser.add_argument)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames sampled per video")
    parser.add_argument(
        "--detect-stride",
        type=int,
        default=DETECT_STRIDE,
        help="run the face detector on every N-th sampled frame, interpolating boxes between agreeing "
        f"detections (1: every frame; default {DETECT_STRIDE})",
    )
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")


def _task_flags(parser: argparse.ArgumentParser, *tasks: str) -> Callable[..., None]:
    """add_argument for train flags that only `tasks` read: --help lists them under those tasks, and the
    parser's `task_flags` default records them, so check_train_flags refuses them with any other task.
    Their default is None, so a flag given can be told from one left out."""
    group = parser.add_argument_group(f"--task {' and '.join(tasks)} only")
    read_by: dict[str, tuple[str, tuple[str, ...]]] = parser.get_default("task_flags")

    def add(*flags: str, **kwargs) -> None:
        action = group.add_argument(*flags, **kwargs)
        read_by[action.dest] = (action.option_strings[0], tasks)

    return add


def check_train_flags(args: argparse.Namespace) -> list[str]:
    """The flags given that the chosen training task does not read."""
    return [
        f"{flag} does not apply to --task {args.task} (only to --task {' and '.join(tasks)})"
        for dest, (flag, tasks) in args.task_flags.items()
        if args.task not in tasks and getattr(args, dest) is not None
    ]


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = _command(
        sub, "train", cmd_train, "train a model over DIR/{train,val}/{real,fake}/", check_train_flags
    )
    t.set_defaults(task_flags={})
    t.add_argument("--task", choices=TRAIN_TASKS, required=True)
    t.add_argument(
        "--data", required=True, help="image/video: DIR; clip: the folder holding images/ and videos/"
    )
    t.add_argument("--out", required=True, help="registry folder to write the checkpoint and card into")
    t.add_argument(
        "--config",
        help="JSON config (ml/configs/*.json; default: the task's preset, ml/configs/TASK_default.json)",
    )
    t.add_argument("--exclude", nargs="*", help="file-name prefixes to leave out (leave-one-source-out)")
    t.add_argument("--name")
    t.add_argument("--version")
    t.add_argument("--seed", type=int)
    t.add_argument("--cache", default="cache/crops", help="where face crops are cached")
    _image_train_flags(t)
    _video_train_flags(t)
    both = _task_flags(t, "image", "video")
    both("--epochs", type=int)
    both("--device", help="cpu or cuda (default: cuda when present)")


def _image_train_flags(t: argparse.ArgumentParser) -> None:
    from ml.models import IMAGE_ARCHS

    image = _task_flags(t, "image")
    image("--arch", choices=IMAGE_ARCHS, help="the image model (default: the preset's)")
    image("--freeze", help="backbone | last:N | none")
    image("--max-minutes", type=float)
    image("--sbi-fraction", type=float, help="self-blended fakes per real face per epoch")
    image("--reencode-fraction", type=float, help="share of faces JPEG re-encoded at native scale")
    image(
        "--synth-families",
        nargs="*",
        metavar="NAME=FRACTION",
        help="forgeries per real face per epoch by ml.synth family (replaces --sbi-fraction)",
    )


def _video_train_flags(t: argparse.ArgumentParser) -> None:
    from ml.media import DEFAULT_FRAMES

    video = _task_flags(t, "video")
    video("--sbi-copies", type=int, help="self-blended copies per real track")
    video(
        "--track-families",
        nargs="*",
        metavar="NAME=COPIES",
        help="more forged copies per real track by ml.synth track family (frozen, flicker, drift)",
    )
    video("--image-model", help="name@version of the frame embedder (default: the registry's)")
    video("--frames", type=int, help=f"frames sampled per clip (default {DEFAULT_FRAMES})")
    _registry_option(video, "the image model")


def check_evaluate_flags(args: argparse.Namespace) -> list[str]:
    """The sweep re-encodes every photo itself, writes no ROC and records nothing in a card."""
    given = [
        flag
        for flag, value in (
            ("--jpeg-quality", args.jpeg_quality),
            ("--roc", args.roc),
            ("--record", args.record),
        )
        if value
    ]
    return [f"--reencode-sweep does not take {', '.join(given)}"] if args.reencode_sweep and given else []


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    e = _command(
        sub, "evaluate", cmd_evaluate, "metrics of the pipeline on DIR/{real,fake}/", check_evaluate_flags
    )
    e.add_argument("--data", required=True)
    e.add_argument("--roc", help="write the ROC curve PNG here")
    e.add_argument("--jpeg-quality", type=int, help="re-compress every input first (robustness)")
    e.add_argument(
        "--reencode-sweep",
        action="store_true",
        help="photos only: AUC and verdict flip rate with every photo saved again as JPEG 50-95, WebP, PNG "
        "and rescaled 0.5-2x",
    )
    e.add_argument("--exclude", nargs="*", help="leave out files whose names start with these")
    e.add_argument("--only", nargs="*", help="only files whose names start with these")
    e.add_argument("--json-out", help="also write the metrics as JSON")
    e.add_argument(
        "--record", metavar="KEY", help="store the metrics in the model's card under KEY (e.g. test)"
    )
    _model_options(e)


def check_predict_flags(args: argparse.Namespace) -> list[str]:
    if args.heatmaps and not args.artifacts:
        return ["--heatmaps needs --artifacts (the overlays are written there)"]
    return []


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "predict", cmd_predict, "verdicts for files", check_predict_flags)
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per line per input")
    p.add_argument("--artifacts", help="write face thumbnails and heatmaps under this folder")
    p.add_argument("--heatmaps", action="store_true", help="Grad-CAM overlays (with --artifacts)")
    _model_options(p)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    from ml.synth import FAMILIES, TRACK_FAMILIES

    s = _command(sub, "synth", cmd_synth, "write examples of a forgery family made from real training faces")
    s.add_argument("--family", required=True, choices=[*FAMILIES, *TRACK_FAMILIES])
    s.add_argument("--out", required=True, help="folder for the PNGs and the contact sheet")
    s.add_argument("--count", type=int, default=8)
    s.add_argument(
        "--data", help="DIR with train/real/ (default ../shared/data/images, or videos for a track family)"
    )
    s.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_synth(sub)
    _command(sub, "prepare", cmd_prepare, "build derived weights (the fp32 CLIP tower) once, at set-up")
    n = _command(
        sub,
        "neighbours",
        cmd_neighbours,
        "give a CLIP card its out-of-distribution reference faces",
        check=_operating_point_problems,
    )
    n.add_argument("--ref", help="name@version (default: the registry's default CLIP probe)")
    n.add_argument("--data", default="../shared/data")
    n.add_argument("--cache", default="cache/crops", help="the crop cache (features live beside it)")
    n.add_argument(
        "--quantile", type=float, help="unfamiliar past this quantile of the val files' distances (0-1)"
    )
    n.add_argument(
        "--band", type=float, nargs=2, metavar=("LOW", "HIGH"), help="the uncertain band of the probability"
    )
    _registry_option(n.add_argument, "and write the card to")
    m = _command(
        sub,
        "mix",
        cmd_mix,
        "fit the photo mix of the default CLIP probe and CNN on val and make it the photo decider",
        check=_clip_weight_problems,
    )
    m.add_argument("--clip-weight", type=float, required=True, help="the probe's share w, from the LOSO rows")
    m.add_argument("--version", required=True)
    m.add_argument("--data", default="../shared/data")
    m.add_argument("--cache", default="cache/crops", help="the crop cache (features live beside it)")
    _registry_option(m.add_argument, "and write the card to")
    models = _command(sub, "models", cmd_models, "list registered models and check their files")
    _registry_option(models.add_argument)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problems = args.check(args)
    if problems:
        args.usage_error("; ".join(problems))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
