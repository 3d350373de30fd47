"""The where-network's tissue saliency (``ModelConfig.saliency = "tissue"``): its saliency
input is the tissue share of each proxy cell (``saccade.data.tissue.proxy_cells``), so that
bright glass does not draw the first crops as it draws the brightness saliency's."""

from __future__ import annotations

import pytest
import torch

import saccade
from saccade.data.tissue import proxy_cells
from tests.helpers import small_model


def _first_on_digit(model, n: int, bright: bool) -> int:
    """How many of the first ``n`` test canvases get a first crop centred on the digit."""
    data = saccade.make_dataset("cluttered", task="single", split="test", size=100)
    hits = 0
    for i in range(n):
        sample = data[i]
        image = 255 - sample["image"] if bright else sample["image"]
        box = saccade.predict(model, image, n_saccades=1).boxes[0]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0, x1, y1 = sample["boxes"][0]
        hits += bool(x0 <= cx <= x1 and y0 <= cy <= y1)
    return hits


def test_the_tissue_saliency_is_the_tissue_share_of_each_cell():
    model = small_model("single", saliency="tissue")
    proxy = torch.rand(2, 32, 32)
    torch.testing.assert_close(model.saliency(proxy), proxy_cells(proxy, model.config.where_grid))
    with pytest.raises(ValueError, match=r"saliency='edges'; accepted: \['brightness', 'tissue'\]"):
        small_model("single", saliency="edges")


def test_on_a_bright_ground_the_untrained_first_crop_follows_tissue_not_glass():
    # at initialisation the saliency's learnt weight (8) leads the first crop: on dark digits
    # on white, brightness sends it to the glass, tissue to the ink (200 canvases: 0% against
    # 52%; on the usual dark ground 87.5% against 52%: the clutter is tissue too)
    brightness = small_model("single", saliency="brightness", seed=0).eval()
    tissue = small_model("single", saliency="tissue", seed=0).eval()
    assert _first_on_digit(brightness, 40, bright=True) <= 2
    assert _first_on_digit(tissue, 40, bright=True) >= 12
