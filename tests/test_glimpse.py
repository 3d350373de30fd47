"""The glimpse against a full-image grid_sample reference, its gradient and its cost."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import saccade
from saccade.glimpse import Pyramid, box_to_z, glimpse, scale_to_fraction, z_to_box


def reference(image: np.ndarray, z: torch.Tensor, size: int, lo=0.05, hi=0.3) -> torch.Tensor:
    """Full-image grid_sample on a float copy: the O(H*W) crop the glimpse must reproduce."""
    frac = scale_to_fraction(z[:, 0], lo, hi)
    theta = torch.zeros(len(z), 2, 3, dtype=z.dtype)
    theta[:, 0, 0] = frac
    theta[:, 1, 1] = frac
    theta[:, :, 2] = z[:, 1:]
    grid = F.affine_grid(theta, (len(z), 1, size, size), align_corners=False)
    img = torch.from_numpy(image).to(z.dtype)[None, None].expand(len(z), 1, -1, -1) / 255
    return F.grid_sample(img, grid, align_corners=False)[:, 0]


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (100, 120), dtype=np.uint8)


def test_matches_full_image_reference(image):
    z = torch.tensor(
        [[0.0, 0.0, 0.0], [1.0, -0.9, 0.95], [-1.0, 0.3, -0.2], [0.5, 1.2, -1.1], [-0.3, 0.6, 0.1]],
        dtype=torch.float64,
    )
    out = glimpse(image, z, size=32)
    assert out.shape == (5, 32, 32) and out.dtype == torch.float64
    assert torch.allclose(out, reference(image, z, 32), atol=1e-9)
    # the same through a built pyramid, a batch source and a float32 z
    assert torch.allclose(glimpse(Pyramid(image), z, size=32), out, atol=1e-9)
    batch = np.stack([image] * 5)
    assert torch.allclose(glimpse(batch, z, size=32), out, atol=1e-9)
    out32 = glimpse(torch.from_numpy(image), z.float(), size=32)
    assert out32.dtype == torch.float32 and torch.allclose(out32.double(), out, atol=1e-5)


def test_coarse_level_matches_reference_on_the_area_averaged_image():
    big = np.random.default_rng(1).integers(0, 256, (512, 512), dtype=np.uint8)
    pyr = Pyramid(big)
    # frac 0.3 of 512 over 32 samples: 4.8 px apart, so level 2 (4 px per level pixel)
    z = torch.tensor([[1.0, 0.1, -0.2]], dtype=torch.float64)
    level2 = pyr.level(2)
    assert level2.shape == (128, 128)
    expected = big.reshape(128, 4, 128, 4).mean((1, 3))
    assert np.abs(level2.astype(float) - expected).max() <= 1.0  # area average, rounded
    assert torch.allclose(glimpse(pyr, z, 32), reference(level2, z, 32), atol=1e-9)


def test_gradcheck_float64_tiny_case(image):
    z = torch.tensor(
        [[0.13, 0.071, -0.093], [0.9, -0.97, 0.61]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(lambda t: glimpse(image, t, size=5), (z,))
    big = Pyramid(np.random.default_rng(2).integers(0, 256, (1500, 1500), dtype=np.uint8))
    assert torch.autograd.gradcheck(lambda t: glimpse(big, t, size=5), (z,))


def test_gradients_nonzero_for_scale_and_position():
    sample = saccade.make_dataset("cluttered", split="test")[0]
    x0, y0, x1, y1 = sample["boxes"][0]
    z = torch.tensor(box_to_z([[x0, y0, x1, y1]], (100, 100)), dtype=torch.float32)
    z.requires_grad_(True)
    glimpse(sample["image"], z, size=16).sum().backward()
    assert (z.grad.abs() > 1e-4).all(), z.grad


def test_outside_the_image_reads_zero(image):
    z = torch.tensor([[0.0, 5.0, 5.0], [1.0, -3.0, 0.0]])
    assert glimpse(image, z, size=8).abs().max() == 0
    # half outside: the outside half is zero, the inside half is the image
    half = glimpse(np.full((64, 64), 255, np.uint8), torch.tensor([[1.0, 1.0, 0.0]]), size=8)
    assert half[0, :, :4].min() > 0.99 and half[0, :, 4:].max() == 0


def test_memmap_source(tmp_path):
    img = np.random.default_rng(3).integers(0, 256, (300, 300), dtype=np.uint8)
    np.save(tmp_path / "x.npy", img)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    z = torch.tensor([[0.2, 0.1, 0.3]])
    assert torch.equal(glimpse(Pyramid(mm), z), glimpse(img, z))


def test_box_round_trip():
    z = np.array([[-0.5, 0.2, -0.7], [1.0, 0.0, 0.0]])
    boxes = z_to_box(z, (2528, 2528))
    half = 0.3 * 2528 / 2  # s = 1: the widest crop, 0.3 of the side, centred
    assert np.allclose(boxes[1], [1264 - half, 1264 - half, 1264 + half, 1264 + half])
    assert np.allclose(box_to_z(boxes, (2528, 2528)), z)


def test_lazy_pyramid_builds_only_what_crops_need():
    img = np.zeros((4096, 4096), np.uint8)
    pyr = Pyramid(img, lazy=True)
    glimpse(pyr, torch.tensor([[-1.0, 0.0, 0.0]]), size=64)  # 0.05*4096/64 = 3.2 px: level 1
    assert len(pyr.levels) == 2
    assert Pyramid(img).levels[-1].shape[0] <= 16


@pytest.mark.parametrize(
    "source,z,match",
    [
        (np.zeros((10, 10), np.float32), torch.zeros(1, 3), "uint8"),
        (np.zeros((1, 2, 10, 10), np.uint8), torch.zeros(1, 3), r"\(H, W\)"),
        (np.zeros((10, 10), np.uint8), torch.zeros(1, 2), r"\(B, 3\)"),
        (np.zeros((10, 10), np.uint8), torch.tensor([[0.0, float("nan"), 0.0]]), "finite"),
        (np.zeros((10, 10), np.uint8), torch.zeros(1, 3, dtype=torch.long), "float"),
        (np.zeros((2, 10, 10), np.uint8), torch.zeros(3, 3), "does not match"),
        ("image.png", torch.zeros(1, 3), "source must be"),
    ],
)
def test_bad_inputs_raise_value_error(source, z, match):
    with pytest.raises(ValueError, match=match):
        glimpse(source, z)
