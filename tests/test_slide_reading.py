"""How a slide is read beyond its pixels: outside it, the slide's background (not black);
``invert`` (the app's Invert box, ``predict(invert=True)``, a checkpoint trained with
``--invert``), on real generated slides."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import saccade
from saccade.data.folder import FolderDataset
from saccade.data.slide import Slide, write_slide
from saccade.data.slide_pyramid import SlidePyramid
from saccade.glimpse import Pyramid, glimpse

ROOT = Path(__file__).resolve().parents[1]
GLASS = (236, 232, 240)  # bright glass, as a stained slide's


def _glass_slide(path: Path, rgb: bool) -> Path:
    """A 600 x 900 slide of bright glass with darker 'tissue' in its middle (deflate: exact)."""
    rng = np.random.default_rng(0)
    shape = (600, 900, 3) if rgb else (600, 900)
    image = np.full(shape, GLASS if rgb else 234, np.uint8)
    image[150:450, 200:700] = rng.integers(40, 160, (300, 500) + shape[2:], dtype=np.uint8)
    return write_slide(path, image, tile=128, compression="deflate", min_side=64)


@pytest.mark.parametrize("rgb", [False, True])
def test_outside_a_bright_slide_reads_its_background(tmp_path, rgb):
    path = _glass_slide(tmp_path / "glass.tif", rgb)
    pyr = SlidePyramid(path, cache_dir=False)
    background = Slide(path).background
    assert background == (GLASS if rgb else (234,))
    want = np.array(background, np.uint8) if rgb else background[0]
    # the virtual square is 900², the slide 600 px high in it: its top rows are pad
    assert pyr.shape == (900, 900) and pyr.offset[1] > 100
    for level in range(3):
        window = pyr.read_window(level, -20, -20, 40, 40)  # past the square's corner
        assert (window == want).all(), level
    # the glimpse of a crop past the image's corner reads the background, not black
    z = torch.tensor([[-1.0, -1.0, -1.0]])  # the smallest crop, centred on the top-left corner
    crop = glimpse(pyr, z, size=16, min_scale=0.05, max_scale=0.3)
    corner = crop[0, :, :4, :4] if rgb else crop[0, :4, :4]  # outside the square
    expect = torch.tensor(background, dtype=crop.dtype) / 255
    got = corner.reshape(len(background), -1) if rgb else corner.reshape(1, -1)
    torch.testing.assert_close(got, expect[:, None].expand_as(got), atol=1e-6, rtol=0)
    # the proxy's padded rows too, and a thumbnail's zoom clipped to the square
    proxy = pyr.proxy(30)
    top = proxy[:, :3] if rgb else proxy[:3]
    assert np.allclose(top.reshape(len(background), -1).T, expect.numpy(), atol=1 / 255)
    # fill=0 reads black there, as an in-memory array does (it keeps 0)
    black = SlidePyramid(path, cache_dir=False, fill=0)
    assert (black.read_window(0, -20, -20, 40, 40) == 0).all()
    memory = Pyramid(np.asarray(black.square_image(900)))
    assert (memory.read_window(0, -20, -20, 40, 40)[:20] == 0).all()


def _held_out(size: int = 1600) -> tuple[np.ndarray, int]:
    """A held-out (test) cluttered canvas with one digit, upsampled to ``size``, and its label."""
    sample = saccade.make_dataset("cluttered", task="single", split="test", size=100)[3]
    image = cv2.resize(sample["image"], (size, size), interpolation=cv2.INTER_LINEAR)
    return image, int(sample["label"])


@pytest.fixture(scope="module")
def single():
    return saccade.load(ROOT / "checkpoints" / "cluttered-single-learnt")


def test_a_bright_copy_of_a_held_out_slide_predicted_with_invert_keeps_its_class(tmp_path, single):
    image, label = _held_out()
    dark = write_slide(tmp_path / "dark.tif", image, compression="deflate")
    bright = write_slide(tmp_path / "bright.tif", 255 - image, compression="deflate")
    assert Slide(bright).background == (255,)
    original = saccade.predict(single, dark)
    assert original.class_name == str(label)
    inverted = saccade.predict(single, bright, invert=True)
    assert inverted.class_name == str(label)
    np.testing.assert_allclose(inverted.probs, original.probs, atol=1e-4)
    # (within a pixel of 1,600: the file's coarser levels round 255 - x apart from x)
    np.testing.assert_allclose(inverted.boxes, original.boxes, atol=1.0)
    # what the model saw, and the thumbnail shown, are the negative of the bright copy
    assert np.abs(inverted.proxy - original.proxy).max() <= 1 / 255 + 1e-6
    assert np.abs(inverted.image.astype(int) - original.image).max() <= 1
    # an array goes the same way (and a non-square one is padded black after inverting)
    np.testing.assert_allclose(
        saccade.predict(single, 255 - image, invert=True).probs, original.probs, atol=1e-4
    )
    from saccade.infer import model_input

    tall = np.full((200, 100), 250, np.uint8)
    square = model_input(tall, 1, invert=True)
    assert square.shape == (200, 200) and square[:, :50].max() == 0 and square[:, 60].max() == 5


def test_a_checkpoint_trained_with_invert_inverts_what_it_is_given(tmp_path, single):
    image, label = _held_out(800)
    bright = write_slide(tmp_path / "bright.tif", 255 - image, compression="deflate")
    spec = dict(single.config.dataset)
    plain = saccade.predict(single, tmp_path / "bright.tif")
    try:
        single.config.dataset = spec | {"invert": True}  # as an --invert run's spec says
        own = saccade.predict(single, bright)
        assert own.class_name == str(label)
        # invert=True on top undoes it: the bright copy read as it is
        np.testing.assert_allclose(saccade.predict(single, bright, invert=True).probs, plain.probs)
    finally:
        single.config.dataset = spec


def test_the_folder_dataset_with_invert_reads_negatives(tmp_path):
    image, _ = _held_out(400)
    root, cache = tmp_path / "data", tmp_path / "cache"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            write_slide(root / cls / f"s{i}.tif", 255 - image, compression="deflate")
            cv2.imwrite(str(root / cls / f"p{i}.png"), 255 - image[:, :300])
    ds = FolderDataset(root, "train", channels=1, invert=True, cache_dir=cache)
    plain = FolderDataset(root, "train", channels=1, cache_dir=cache)
    assert ds.spec.to_dict()["invert"] is True and plain.spec.to_dict()["invert"] is False
    kinds = set()
    for i in range(len(ds)):
        ours, theirs = ds[i], plain[i]
        assert ours["path"] == theirs["path"]
        kinds.add("image" in ours)
        if "image" not in ours:  # a slide (square, no pad): every read inverted
            np.testing.assert_allclose(ours["proxy"], 1 - theirs["proxy"], atol=1 / 255 + 1e-6)
        else:  # an untiled image: its negative, padded black (cached apart)
            assert ours["image"][:, :20].max() == 0 and theirs["image"][:, :20].max() == 0
            assert ours["image"][200, 200] == 255 - theirs["image"][200, 200]
    assert kinds == {True, False}
