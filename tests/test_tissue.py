"""The tissue mask (``saccade.data.tissue``): Otsu on the HSV saturation of a colour thumbnail,
on the difference from the background of a gray one; on a real generated slide, and shown
over the thumbnail by the app's Explore tab (``python app.py --images DIR``)."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from saccade import app  # noqa: E402
from saccade.data import tissue  # noqa: E402
from saccade.data.slide import write_slide  # noqa: E402
from saccade.data.slide_pyramid import SlidePyramid  # noqa: E402
from tests.helpers import write_tiny_checkpoint  # noqa: E402

pytestmark = [  # gradio 6.31's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
ROOT = Path(__file__).resolve().parent.parent
GLASS = (240, 238, 242)


def _stained(h: int = 400, w: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(an H&E-like RGB image: pink-purple tissue, two blobs, on bright noisy glass, the
    tissue's true mask)."""
    rng = np.random.default_rng(seed)
    image = np.clip(np.array(GLASS) + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.ellipse(truth, (w // 3, h // 2), (w // 5, h // 5), 0, 0, 360, 1, -1)
    cv2.circle(truth, (3 * w // 4, 5 * h // 8), h // 6, 1, -1)
    truth = truth.astype(bool)
    stain = np.stack(
        [
            rng.integers(150, 230, (h, w)),
            rng.integers(60, 140, (h, w)),
            rng.integers(140, 210, (h, w)),
        ],
        -1,
    ).astype(np.uint8)
    image[truth] = stain[truth]
    return image, truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_otsu_on_the_saturation_finds_stained_tissue_on_glass():
    image, truth = _stained()
    mask = tissue.tissue_mask(image)
    assert mask.shape == truth.shape and mask.dtype == bool
    assert _iou(mask, truth) > 0.95
    # the threshold is Otsu's on the saturation: a paler stain (half the saturation) is found too
    pale = (0.5 * image.astype(np.float32) + 0.5 * np.array(GLASS)).astype(np.uint8)
    assert _iou(tissue.tissue_mask(pale), truth) > 0.9


def test_gray_images_use_the_difference_from_the_background():
    image, truth = _stained()
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert _iou(tissue.tissue_mask(gray), truth) > 0.95  # darker than the glass
    # an RGB image with no saturation (a gray scan saved as RGB) falls back to it
    assert _iou(tissue.tissue_mask(np.repeat(gray[:, :, None], 3, 2)), truth) > 0.95
    # bright ink on black (the digits' slides): brighter than the background
    dark = np.where(truth, 200, 5).astype(np.uint8)
    assert _iou(tissue.tissue_mask(dark), truth) > 0.95
    # a given background decides the side: on 5, the 200s are tissue; on 200, the 5s are
    assert tissue.tissue_mask(dark, (200,)).mean() == pytest.approx(1 - truth.mean(), abs=0.02)


def test_blank_glass_has_no_tissue_and_bad_images_are_refused():
    rng = np.random.default_rng(1)
    blank = np.clip(240 + rng.normal(0, 3, (300, 300, 3)), 0, 255).astype(np.uint8)
    assert tissue.tissue_mask(blank).mean() < 0.01
    assert tissue.tissue_mask(blank[:, :, 0]).mean() < 0.01
    with pytest.raises(ValueError, match=r"uint8"):
        tissue.tissue_mask(blank.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        tissue.tissue_mask(np.zeros((10, 10, 4), np.uint8))


def test_cell_fraction_and_overlay():
    mask = np.zeros((64, 64), bool)
    mask[:32, :16] = True
    cells = tissue.cell_fraction(mask, 4)
    np.testing.assert_allclose(cells, [[1, 0, 0, 0], [1, 0, 0, 0], [0] * 4, [0] * 4])
    image = np.full((64, 64), 100, np.uint8)
    shown = tissue.overlay(image, mask)
    assert shown.shape == (64, 64, 3)
    assert (shown[40, 40] == 100).all()  # glass untouched
    assert shown[10, 8, 1] > 100 and shown[10, 8, 0] < 100  # tissue tinted green


def test_the_mask_of_a_generated_slide_from_its_thumbnail(tmp_path):
    image, truth = _stained(1200, 1800)
    path = write_slide(tmp_path / "he.tif", image, tile=256, compression="jpeg")
    thumbnail, mask = tissue.slide_tissue(SlidePyramid(path, cache_dir=False), 600)
    assert thumbnail.shape[:2] == mask.shape == (400, 600)
    small = cv2.resize(truth.astype(np.uint8), (600, 400), interpolation=cv2.INTER_AREA) > 0
    assert _iou(mask, small) > 0.93
    # read inverted (the app's Invert), the mask is the same tissue
    inverted = SlidePyramid(path, cache_dir=False, invert=True)
    _, again = tissue.slide_tissue(inverted, 600)
    assert _iou(again, mask) > 0.95


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("tissue")
    os.environ.setdefault("SACCADE_SLIDE_CACHE", str(root / "slide-cache"))
    images = root / "images"
    images.mkdir()
    image, truth = _stained(1200, 1800)
    write_slide(images / "he.tif", image, tile=256, compression="jpeg")
    cv2.imwrite(str(images / "photo.png"), image[:200, :200])
    ckpts = root / "checkpoints"
    ckpts.mkdir()
    write_tiny_checkpoint(ckpts, "b-sum-learnt", n_saccades=2)
    return app.App(ckpts, ROOT / "assets", images=images), truth


def test_explore_shows_the_tissue_mask_over_a_server_slide(served):
    the_app, truth = served
    blocks = {
        b.elem_id: b for b in app.build_demo(the_app).blocks.values() if getattr(b, "elem_id", None)
    }
    assert blocks["explore-tissue"].visible and not blocks["explore-tissue-image"].visible
    shown = the_app.explore.on_tissue(True, "he.tif")
    assert shown["visible"] and "Tissue mask" in shown["label"]
    view = shown["value"]
    assert view.shape[:2] == (683, 1024)  # the thumbnail, at most 1024 px a side
    share = float(shown["label"].split(": ")[1].split("%")[0]) / 100
    assert share == pytest.approx(truth.mean(), abs=0.03)
    hidden = the_app.explore.on_tissue(False, "he.tif")
    assert hidden["visible"] is False
    refused = the_app.explore.on_tissue(True, "photo.png")
    assert "not a slide" in refused["label"] and refused["value"] is None
    with pytest.raises(gr.Error, match="'..' is refused"):
        the_app.state.tissue_view("../he.tif")


def test_proxy_cells_are_the_tissue_share_of_each_cell_per_image():
    import torch

    image, truth = _stained(64, 64)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    proxies = torch.from_numpy(np.stack([gray, 255 - gray])).float() / 255  # (2, 64, 64)
    cells = tissue.proxy_cells(proxies, 8)
    assert cells.shape == (2, 8, 8) and cells.dtype == torch.float32
    want = torch.from_numpy(tissue.cell_fraction(truth, 8))
    # the same tissue on bright glass and (inverted) on black
    assert (cells[0] - want).abs().mean() < 0.08 and (cells[1] - want).abs().mean() < 0.08
    colour = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, 64, 64)
    assert (tissue.proxy_cells(colour, 8)[0] - want).abs().mean() < 0.08
