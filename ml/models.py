"""Network definitions: image classifiers (fine-tuned backbone, compact CNN) and the video LSTM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ml.backbones import BACKBONES, DEFAULT_BACKBONE, build_backbone
from ml.transforms import to_tensor


class PooledClassifier(nn.Module):
    """`features` -> global average pool -> `head`: the shape both image classifiers share.

    `embed` exposes the pooled features, which the video branch consumes frame by frame, and
    `classify_embedding` turns them into the fake logit.
    """

    features: nn.Module
    pool: nn.Module
    head: nn.Module

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x)).squeeze(1)

    def classify_embedding(self, emb: torch.Tensor) -> torch.Tensor:
        return self.head(emb).squeeze(1)

    def feature_blocks(self) -> list[nn.Module]:
        return list(self.features.children())


class FaceClassifier(PooledClassifier):
    """ImageNet backbone + global average pool + linear head: one fake logit per face crop."""

    def __init__(self, backbone: str = DEFAULT_BACKBONE, pretrained: bool = True, dropout: float = 0.2):
        super().__init__()
        self.features, self.feature_dim = build_backbone(backbone, pretrained=pretrained)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, 1))

    def set_trainable(self, freeze: str) -> None:
        """freeze: "backbone" (head only), "last:N" (last N feature blocks + head) or "none" (all)."""
        blocks = self.feature_blocks()
        if freeze == "none":
            n_train = len(blocks)
        elif freeze == "backbone":
            n_train = 0
        elif freeze.startswith("last:"):
            n_train = int(freeze.split(":", 1)[1])
        else:
            raise ValueError(f"unknown freeze option {freeze!r}")
        for i, block in enumerate(blocks):
            block.requires_grad_(i >= len(blocks) - n_train)
        self.head.requires_grad_(True)


class _ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.out = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))


class CompactCNN(PooledClassifier):
    """The seeds' custom CNN: five residual conv blocks on 128×128 input, two dense layers.

    Trained from scratch (no pretrained weights), as a baseline for the fine-tuned backbone.
    """

    input_size = 128

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256, 256), dropout: float = 0.5):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers.append(_ResidualBlock(cin, w))
            cin = w
        self.features = nn.Sequential(*layers)
        self.feature_dim = cin
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Linear(cin, 128), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(128, 1)
        )

    def set_trainable(self, freeze: str) -> None:
        self.requires_grad_(True)  # trained from scratch: nothing to freeze


class TrackLSTM(nn.Module):
    """Per-frame face embeddings of one track, in time order -> LSTM -> one fake logit for the track."""

    def __init__(self, feature_dim: int, hidden: int = 256, layers: int = 2, dropout: float = 0.4):
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            feature_dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        # Mean and last hidden state: the mean is robust to a few bad frames, the last sees the sequence.
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, 1))

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """seq: (N, T, D); lengths: valid steps per sequence (padding after them is ignored)."""
        out, _ = self.lstm(self.input_dropout(seq))
        if lengths is None:
            mean = out.mean(dim=1)
            last = out[:, -1]
        else:
            mask = (torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None]).unsqueeze(-1)
            mean = (out * mask).sum(1) / lengths.clamp(min=1)[:, None].to(out.dtype)
            last = out[torch.arange(out.shape[0], device=out.device), (lengths - 1).clamp(min=0)]
        return self.head(torch.cat([mean, last], dim=1)).squeeze(1)


# Every backbone in ml.backbones.BACKBONES, and the compact CNN trained from scratch.
IMAGE_ARCHS = (*BACKBONES, "compact_cnn")


def _unknown_arch(arch: str) -> ValueError:
    return ValueError(f"unknown image architecture {arch!r}; choose from {IMAGE_ARCHS}")


def build_image_model(arch: str, pretrained: bool = True) -> nn.Module:
    """The one constructor for image-branch architectures by name."""
    if arch == "compact_cnn":
        return CompactCNN()
    if arch in BACKBONES:
        return FaceClassifier(arch, pretrained=pretrained)
    raise _unknown_arch(arch)


@torch.inference_mode()
def embed_batched(
    embed: Callable[[torch.Tensor], torch.Tensor],
    faces: np.ndarray | list[np.ndarray],
    size: int,
    device: torch.device,
    batch: int,
) -> torch.Tensor:
    """`embed` of RGB uint8 face crops, `batch` crops a call on `device`, as one float32 tensor where
    `embed` leaves it: the one batched-inference loop, for the analyser and the video trainer alike."""
    return torch.cat(
        [embed(to_tensor(faces[s : s + batch], size).to(device)).float() for s in range(0, len(faces), batch)]
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d in a Sequential into the conv (in place).

    Inference only (running statistics are frozen in eval mode): the same outputs to float rounding, one
    layer fewer per block; MobileNetV2 embeds ~1.3x faster on CPU. Grad-CAM still works (it needs the
    last activations, not the BatchNorms).
    """
    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = module._modules[first], module._modules[second]
            foldable = isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
            if foldable and not norm.training:
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
    return model


def input_size_for(arch: str) -> int:
    """The side of the square face crop `arch` is fed: its BackboneSpec's, or the compact CNN's own."""
    if arch == "compact_cnn":
        return CompactCNN.input_size
    if arch in BACKBONES:
        return BACKBONES[arch].input_size
    raise _unknown_arch(arch)
