"""``resnet18-grid``: the paper's 2528² baseline. The image is cut into a grid x grid mesh of
tiles (12 x 12 = 144 at 2528²: 211 px tiles); every tile goes through one shared ResNet-18
trunk, the 512-d features of the tiles are averaged, and a linear layer classifies them.
The side is padded with black up to a multiple of the grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import register_model
from .resnet import ResNetBaseline, full_images


@register_model("resnet18-grid")
class ResNet18Grid(ResNetBaseline):
    def tiles(self, images, device: torch.device) -> torch.Tensor:
        """(B, H, W[, C]) images -> (B * grid², C, t, t) tiles, t = ceil(side / grid),
        row-major."""
        x = full_images(images, device)
        g = self.config.grid
        B, C, H, W = x.shape
        th, tw = -(-H // g), -(-W // g)
        x = F.pad(x, (0, tw * g - W, 0, th * g - H))
        x = x.view(B, C, g, th, g, tw).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B * g * g, C, th, tw)

    def logits(self, images, proxy: torch.Tensor) -> torch.Tensor:
        """images: B full-resolution (H, W) uint8 images -> (B, n_classes)."""
        tiles = self.tiles(images, proxy.device)
        B = tiles.shape[0] // self.config.grid**2
        f = self.net.features(tiles).view(B, self.config.grid**2, -1).mean(1)
        return self.net.fc(f)
