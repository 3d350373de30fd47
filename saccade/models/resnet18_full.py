"""``resnet18-full``: ResNet-18 on the whole full-resolution image. Its cost grows with the
image's area: the reference point for what looking everywhere costs."""

from __future__ import annotations

import torch

from .registry import register_model
from .resnet import ResNetBaseline, full_images


@register_model("resnet18-full")
class ResNet18Full(ResNetBaseline):
    def logits(self, images, proxy: torch.Tensor) -> torch.Tensor:
        """images: B full-resolution (H, W) uint8 images -> (B, n_classes)."""
        return self.net(full_images(images, proxy.device))
