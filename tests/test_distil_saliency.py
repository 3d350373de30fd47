"""``saccade.train.distil.ReaderCrops`` picks its candidate cells with the model's own
saliency (``ModelConfig.saliency``): the brightest cells for a brightness model, the cells
with the most tissue for a tissue model, on the same bright-ground canvases."""

from __future__ import annotations

import numpy as np
import torch

import saccade
from saccade.models.vs import cell_saliency
from saccade.train.distil import ReaderCrops
from tests.helpers import small_model


class _BrightGround(torch.utils.data.Dataset):
    """100² canvases of bright glass (230, with noise) and one dark square of tissue (40) of
    30 px a side, its corner at (10 + 15 i, 50 - 10 i) for canvas i."""

    side = 100

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def box(self, i: int) -> tuple[int, int, int, int]:
        x, y = 10 + 15 * i, 50 - 10 * i
        return x, y, x + 30, y + 30

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(i)
        image = np.clip(rng.normal(230, 6, (100, 100)), 0, 255).astype(np.uint8)
        x0, y0, x1, y1 = self.box(i)
        image[y0:y1, x0:x1] = 40
        return {"image": image, "proxy": saccade.make_proxy(image, 32)}


def _candidates(kind: str, data, k: int = 8) -> list[torch.Tensor]:
    model = small_model("single", saliency=kind)
    crops = ReaderCrops(data, model, candidates=k, side=25)
    return [crops[i]["cells"] for i in range(len(data))]


def test_the_candidates_are_the_models_own_most_salient_cells():
    data = _BrightGround(4)
    g = small_model("single").config.where_grid
    k = 8
    found = {kind: _candidates(kind, data, k) for kind in ("brightness", "tissue")}
    for i in range(len(data)):
        proxy = torch.as_tensor(data[i]["proxy"], dtype=torch.float32)[None]
        for kind, cells in found.items():
            expected = cell_saliency(proxy, g, kind).flatten(1).topk(k, -1).indices[0]
            torch.testing.assert_close(cells[i], expected)
        # on a bright ground the brightest cells are glass; the tissue ones are on the square
        x0, y0, x1, y1 = (v * g / data.side for v in data.box(i))
        inside = {}
        for kind, cells in found.items():
            rows, cols = cells[i] // g, cells[i] % g
            inside[kind] = ((cols + 1 > x0) & (cols < x1) & (rows + 1 > y0) & (rows < y1)).all()
        assert inside == {"brightness": False, "tissue": True}, (i, found)
