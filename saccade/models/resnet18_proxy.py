"""``resnet18-proxy``: ResNet-18 on the proxy alone. Where it is as good as anything, the
proxy already holds the answer and looking closer buys nothing; where it fails (Megapixel
MNIST: the digits are lost in the proxy), the crops carry the task."""

from __future__ import annotations

import torch

from .registry import register_model
from .resnet import ResNetBaseline


@register_model("resnet18-proxy")
class ResNet18Proxy(ResNetBaseline):
    def logits(self, images, proxy: torch.Tensor) -> torch.Tensor:
        """proxy: (B, p, p) or (B, C, p, p) float in [0, 1] -> (B, n_classes); the images
        are not read."""
        x = proxy[:, None] if proxy.ndim == 3 else proxy
        return self.net(x.float())
