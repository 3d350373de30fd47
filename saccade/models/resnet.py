"""ResNet-18 (He et al. 2016), written here because torchvision cannot be installed beside
this torch. The layout is torchvision's ``resnet18`` (BasicBlock, [2, 2, 2, 2], a 1x1
convolution + BatchNorm on a block that changes shape, the same module names) with a stem of
``in_channels`` (1 for grayscale): ``resnet18(3, 1000)`` has torchvision's 11,689,512
parameters; with a 1-channel stem and 10 classes, 11,175,370.

Also the common part of the three ResNet baselines (``resnet18_full``, ``resnet18_grid``,
``resnet18_proxy``): a config, the conversion of a batch of full-resolution images to a
float tensor, and the cross-entropy loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..glimpse import ImageSource, Pyramid
from .registry import OneLookConfig, Output, check_one_look, setting


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection: (B, C, H, W) -> (B, C', H/s, W/s)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """(B, in_channels, H, W) float -> (B, n_classes) logits; ``features`` stops before
    ``fc`` at (B, 512). Any H, W >= 1 (global average pooling at the end)."""

    def __init__(self, in_channels: int = 1, n_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, inplanes = (64, 128, 256, 512), 64
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes))
            self.add_module(f"layer{i + 1}", layer)
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@dataclass
class ResNetConfig(OneLookConfig):
    """Settings of a ResNet-18 baseline; saved in its checkpoint's JSON. ``BaseConfig``
    holds the classes, the proxy's side and the dataset; T is 1 (``OneLookConfig``: one look
    at the input, the class "after one step")."""

    n_classes: int = 19
    channels: int = 1  # 1: grayscale; 3: colour images (H, W, 3) and proxies (B, 3, p, p)
    grid: int = setting(
        12, "resnet18-grid: cut the image into GRID x GRID tiles (12: the paper's 144)"
    )

    def __post_init__(self):
        super().__post_init__()
        if self.grid < 1:
            raise ValueError(f"grid={self.grid!r} must be >= 1")


def full_images(images, device: torch.device) -> torch.Tensor:
    """A batch of full-resolution images as (B, C, H, W) float in [0, 1] on ``device``:
    ``images`` is a (B, H, W) (C = 1) or (B, H, W, C) uint8 tensor/array, or a list of
    ``Pyramid``s of one size."""
    if isinstance(images, (list, tuple)):
        for im in images:
            if isinstance(im, ImageSource) and not isinstance(im, Pyramid):
                raise ValueError(
                    f"{im!r} is never read whole: models that crop (vs, ram) read it; a model "
                    "that needs the whole image (resnet18-full, resnet18-grid) reads images in "
                    "memory"
                )
        arrays = [im.levels[0] if isinstance(im, Pyramid) else np.asarray(im) for im in images]
        images = torch.from_numpy(np.stack(arrays))
    elif isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4):
        raise ValueError(
            "images must be a (B, H, W) or (B, H, W, C) uint8 batch or a list of Pyramids"
        )
    images = images.to(device, non_blocking=True)
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return images.float() / 255.0


class ResNetBaseline(nn.Module):
    """The shared part of the ResNet baselines; subclasses define ``logits(images, proxy)``."""

    config_class = ResNetConfig
    chooses_where = False

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.net = ResNet18(config.channels, config.n_classes)

    def logits(self, images, proxy: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images, proxy, n_saccades=None, sample=None, generator=None, policy=None):
        check_one_look(self, n_saccades, policy)
        return Output(self.logits(images, proxy)[None])

    def loss(self, output, labels, proxy=None, weights=None) -> tuple[torch.Tensor, dict]:
        """Cross-entropy of the one prediction; terms: loss, ce, acc."""
        logits = output.logits[-1]
        ce = F.cross_entropy(logits.float(), labels)
        acc = (logits.argmax(-1) == labels).float().mean()
        return ce, {"loss": ce.item(), "ce": ce.item(), "acc": acc.item()}
