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


def mip_reference(image: np.ndarray, z: torch.Tensor, size: int) -> torch.Tensor:
    """The trilinear mip-map crop: full-image references on the two pyramid levels around
    log2(sample spacing), blended linearly in the level."""
    pyr = Pyramid(image)
    frac = scale_to_fraction(z[:, 0], 0.05, 0.3)
    level = torch.log2((frac * max(image.shape) / size).clamp_min(1.0)).clamp(max=pyr.max_level)
    out = []
    for b in range(len(z)):
        lo = int(level[b].floor())
        w = level[b] - lo
        r0 = reference(pyr.level(lo), z[b : b + 1], size)
        r1 = reference(pyr.level(lo + 1), z[b : b + 1], size) if w > 0 else r0
        out.append((1 - w) * r0 + w * r1)
    return torch.cat(out)


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
    assert torch.allclose(out, mip_reference(image, z, 32), atol=1e-9)
    # samples 1 px apart or closer read level 0 alone: the plain full-image reference
    assert torch.allclose(out[2], reference(image, z[2:3], 32)[0], atol=1e-9)
    # the same through a built pyramid, a batch source and a float32 z
    assert torch.allclose(glimpse(Pyramid(image), z, size=32), out, atol=1e-9)
    batch = np.stack([image] * 5)
    assert torch.allclose(glimpse(batch, z, size=32), out, atol=1e-9)
    out32 = glimpse(torch.from_numpy(image), z.float(), size=32)
    assert out32.dtype == torch.float32 and torch.allclose(out32.double(), out, atol=1e-5)


def test_coarse_level_matches_reference_on_the_area_averaged_image():
    big = np.random.default_rng(1).integers(0, 256, (512, 512), dtype=np.uint8)
    pyr = Pyramid(big)
    # frac 0.3 of 512 over 32 samples: 4.8 px apart, level log2(4.8) = 2.26: mostly level 2
    # (4 px per level pixel), blended with level 3
    z = torch.tensor([[1.0, 0.1, -0.2]], dtype=torch.float64)
    level2 = pyr.level(2)
    assert level2.shape == (128, 128)
    expected = big.reshape(128, 4, 128, 4).mean((1, 3))
    assert np.abs(level2.astype(float) - expected).max() <= 1.0  # area average, rounded
    w = np.log2(4.8) - 2
    blend = (1 - w) * reference(level2, z, 32) + w * reference(pyr.level(3), z, 32)
    assert torch.allclose(glimpse(pyr, z, 32), blend, atol=1e-9)


def test_continuous_across_a_level_switch():
    """Stepping s through the switch from level 3 to level 4 (samples 16 px apart) of an
    upsampled digit changes the crop as little as a step elsewhere, and the gradient with
    respect to s agrees with finite differences on both sides of the switch."""
    sample = saccade.make_dataset("cluttered", task="single", split="test", full_size=2528)[0]
    pyr = Pyramid(sample["image"])
    box = sample["boxes"][0]
    z0 = torch.tensor(box_to_z([box], (2528, 2528)), dtype=torch.float64)
    frac_switch = 16 * 32 / 2528  # spacing 16 px: level 4 exactly
    s_switch = 2 * (frac_switch - 0.05) / 0.25 - 1
    step = 5e-4
    s_values = s_switch + step * torch.arange(-10, 11, dtype=torch.float64)
    z = z0.repeat(len(s_values), 1)
    z[:, 0] = s_values
    crops = glimpse(pyr, z, 32)
    jumps = (crops[1:] - crops[:-1]).abs().amax((1, 2))
    assert jumps.max() < 0.01, jumps  # was up to 0.11 with a hard level switch
    assert jumps.max() < 3 * jumps.median()  # no step stands out
    for offset in (-3e-3, 3e-3):
        zs = z0.clone()
        zs[0, 0] = s_switch + offset
        zs.requires_grad_(True)
        weights = torch.linspace(0, 1, 32 * 32, dtype=torch.float64).view(32, 32)
        (glimpse(pyr, zs, 32)[0] * weights).sum().backward()
        h = 1e-6
        plus, minus = zs.detach().clone(), zs.detach().clone()
        plus[0, 0] += h
        minus[0, 0] -= h
        numeric = ((glimpse(pyr, plus, 32) - glimpse(pyr, minus, 32))[0] * weights).sum() / (2 * h)
        assert torch.isclose(zs.grad[0, 0], numeric, rtol=1e-4), (zs.grad[0, 0], numeric)


def test_gradcheck_float64_tiny_case(image):
    z = torch.tensor(
        [[0.13, 0.071, -0.093], [0.9, -0.97, 0.613]], dtype=torch.float64, requires_grad=True
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
    # half outside: the outside half is zero, the inside half is the image (the samples next
    # to the edge blend with the coarser level, whose pixels straddle the edge)
    half = glimpse(np.full((64, 64), 255, np.uint8), torch.tensor([[1.0, 1.0, 0.0]]), size=8)
    assert half[0, :, :3].min() > 0.99 and half[0, :, 5:].max() == 0


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
    glimpse(pyr, torch.tensor([[-1.0, 0.0, 0.0]]), size=64)  # 0.05*4096/64 = 3.2 px: level 1.7
    assert len(pyr.levels) == 3  # levels 0, 1 and 2, none coarser
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


def test_colour_glimpse_is_the_glimpse_of_each_channel():
    """(H, W, 3): each channel of the (B, 3, k, k) crop equals the gray glimpse of that
    channel alone, at the fine level, across a level blend and past the border; and the
    gradient with respect to z is the sum of the channels' gradients."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (600, 500, 3), dtype=np.uint8)
    z = torch.tensor([[-1.0, 0.1, -0.2], [0.37, -0.5, 0.6], [1.0, 0.95, -0.9]], dtype=torch.float64)
    crops = glimpse(Pyramid(img), z, size=24)
    assert crops.shape == (3, 3, 24, 24)
    for c in range(3):
        gray = glimpse(Pyramid(np.ascontiguousarray(img[:, :, c])), z, size=24)
        assert torch.allclose(crops[:, c], gray, atol=1e-12)
    zc = z.clone().requires_grad_(True)
    glimpse(Pyramid(img), zc, size=24).sum().backward()
    want = torch.zeros_like(z)
    for c in range(3):
        zg = z.clone().requires_grad_(True)
        glimpse(Pyramid(np.ascontiguousarray(img[:, :, c])), zg, size=24).sum().backward()
        want += zg.grad
    assert torch.allclose(zc.grad, want, atol=1e-9)
    # a batch (B, H, W, C) and a list of pyramids give the same crops
    batch = np.stack([img, img[::-1].copy(), img])
    assert torch.allclose(glimpse(batch, z, 24), glimpse([Pyramid(b) for b in batch], z, 24))
    # levels keep the layout, and mixing gray and colour in one batch is refused
    assert Pyramid(img).level(2).shape == (150, 125, 3)
    with pytest.raises(ValueError, match="same channels"):
        glimpse([Pyramid(img), Pyramid(img[:, :, 0].copy())], z[:2], 24)


def test_pyramid_from_levels_checks_shapes_and_drops_nothing_it_has():
    img = np.random.default_rng(0).integers(0, 256, (300, 257, 3), dtype=np.uint8)
    full = Pyramid(img)
    pyr = Pyramid.from_levels(img.shape[:2], [None, None] + full.levels[2:])
    z = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.equal(glimpse(pyr, z, 16), glimpse(full, z, 16))  # level >= 2 only
    with pytest.raises(ValueError, match="dropped"):
        glimpse(pyr, torch.tensor([[-1.0, 0.0, 0.0]]), 64)  # needs level 0
    bad = full.levels[2:]
    bad[0] = bad[0][:-1]
    with pytest.raises(ValueError, match="expected"):
        Pyramid.from_levels(img.shape[:2], [None, None] + bad)
