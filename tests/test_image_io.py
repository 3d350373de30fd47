"""User images to the model's input: every accepted kind gives the right pixels, every bad one
a clear ValueError; example copies are matched to their ground truth by content."""

import json
import shutil
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from saccade import image_io
from tests.helpers import png_with_header


@pytest.fixture
def gray():
    """A 40 x 60 gray ramp with a bright block: easy to check after conversion."""
    a = np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))
    a[10:20, 10:20] = 255
    return a


# ----------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("ext", ["png", "tif", "bmp", "webp"])
def test_lossless_formats_round_trip(tmp_path, gray, ext):
    path = tmp_path / f"img.{ext}"
    options = {"lossless": True} if ext == "webp" else {}
    Image.fromarray(gray).save(path, **options)
    assert np.array_equal(image_io.read_image(path), gray)


def test_jpeg_is_read_within_compression_error(tmp_path, gray):
    path = tmp_path / "img.jpg"
    Image.fromarray(gray).save(path, quality=95)
    assert np.abs(image_io.read_image(path).astype(int) - gray).mean() < 3


def test_to_model_image_pads_to_a_centred_square(tmp_path, gray):
    path = tmp_path / "img.png"
    Image.fromarray(gray).save(path)
    sq = image_io.to_model_image(path)
    assert sq.shape == (60, 60) and sq.dtype == np.uint8
    assert np.array_equal(sq[10:50], gray) and sq[:10].max() == 0 and sq[50:].max() == 0
    # array, PIL image and path give the same result
    assert np.array_equal(image_io.to_model_image(gray), sq)
    assert np.array_equal(image_io.to_model_image(Image.fromarray(gray)), sq)


def test_rgb_uses_luma(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1] = 200  # pure green
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    expected = round(200 * 0.587)
    assert abs(int(image_io.read_image(path)[0, 0]) - expected) <= 1


def test_rgba_alpha_is_composited_on_black(tmp_path):
    rgba = np.full((16, 16, 4), 255, np.uint8)
    rgba[:, :8, 3] = 0  # left half transparent white
    rgba[:, 8:, 3] = 128
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = image_io.read_image(path)
    assert out[:, :8].max() == 0
    assert abs(int(out[0, 12]) - 128) <= 1


def test_16_bit_is_scaled_to_8_bit(tmp_path):
    a = np.zeros((16, 16), np.uint16)
    a[:, 8:] = 65535
    a[0, 0] = 32768
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    out = image_io.read_image(path)
    assert out.dtype == np.uint8 and out[:, 8:].min() == 255 and out[1, 1] == 0
    assert abs(int(out[0, 0]) - 128) <= 1


def test_cmyk_jpeg_and_tiff(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, :8, 3] = 255  # left half: full black ink
    for ext in ("jpg", "tif"):
        path = tmp_path / f"cmyk.{ext}"
        Image.fromarray(cmyk, "CMYK").save(path)
        assert Image.open(path).mode == "CMYK"
        out = image_io.read_image(path)
        assert out[:, :6].max() < 20 and out[:, 10:].min() > 235, ext


def test_palette_image(tmp_path):
    im = Image.new("P", (16, 16), 0)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    im.paste(1, (0, 0, 16, 8))
    path = tmp_path / "pal.png"
    im.save(path)
    out = image_io.read_image(path)
    assert out[:8].min() == 255 and out[8:].max() == 0


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("L", (16, 16), v) for v in (200, 50, 100)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 3
    out = image_io.read_image(path)
    assert abs(int(out.mean()) - 200) <= 2


def test_float_and_bool_arrays():
    assert image_io.to_model_image(np.full((8, 8), 0.5))[0, 0] == 128
    assert image_io.to_model_image(np.ones((8, 8), bool))[0, 0] == 255


# ----------------------------------------------------------------------------- refused


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture")
    with pytest.raises(
        ValueError,
        match=r"'notes.png' is not an image: it holds text; accepted: an image file \(PNG",
    ):
        image_io.to_model_image(path)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_file(tmp_path, gray, ext):
    noisy = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    full = tmp_path / f"full.{ext}"
    Image.fromarray(noisy).save(full)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"'cut.{ext}' is truncated or corrupt"):
        image_io.to_model_image(cut)


def test_zero_and_one_pixel_images(tmp_path):
    zero = tmp_path / "zero.png"
    zero.write_bytes(png_with_header(0, 0))
    with pytest.raises(ValueError, match="'zero.png'"):
        image_io.to_model_image(zero)
    one = tmp_path / "one.png"
    Image.new("L", (1, 1), 255).save(one)
    with pytest.raises(ValueError, match="'one.png' is 1x1 pixels; accepted: at least 8 px"):
        image_io.to_model_image(one)
    with pytest.raises(ValueError, match="is 1x1 pixels"):
        image_io.to_model_image(np.zeros((1, 1), np.uint8))


def test_decompression_bomb_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(40000, 40000))  # 1.6 gigapixels claimed, ~100 bytes
    assert path.stat().st_size < 2000
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"40000x40000 = 1,600,000,000 pixels; accepted: at most"):
        image_io.to_model_image(path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 50e6  # nothing was decoded


def test_unsupported_format_and_missing_file(tmp_path):
    path = tmp_path / "img.ico"
    Image.new("L", (16, 16)).save(path)
    with pytest.raises(ValueError, match="is ICO; accepted"):
        image_io.read_image(path)
    with pytest.raises(ValueError, match="does not exist"):
        image_io.read_image(tmp_path / "missing.png")


# ----------------------------------------------------------------------------- sidecars


def test_example_copies_find_their_ground_truth(tmp_path, gray):
    assets = tmp_path / "assets"
    assets.mkdir()
    Image.fromarray(gray).save(assets / "ex-0.png")
    meta = {"label": 3, "class_name": "3", "digits": [3], "boxes": [[1, 2, 3, 4]]}
    (assets / "ex-0.json").write_text(json.dumps(meta))
    Image.fromarray(gray[::-1]).save(assets / "no-sidecar.png")
    (assets / "bad.json").write_text("{}")
    Image.fromarray(gray.T).save(assets / "bad.png")

    index = image_io.sidecar_index(assets)
    assert list(index.values()) == [assets / "ex-0.png"]
    copy = tmp_path / "upload" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(assets / "ex-0.png", copy)
    found = image_io.find_sidecar(copy, index)
    assert found["label"] == 3 and found["example"] == assets / "ex-0.png"
    np.testing.assert_array_equal(found["boxes"], [[1, 2, 3, 4]])
    # same name, different pixels: not the example
    other = tmp_path / "ex-0.png"
    Image.fromarray(255 - gray).save(other)
    assert image_io.find_sidecar(other, index) is None
    assert image_io.find_sidecar(tmp_path / "missing.png", index) is None


def test_shipped_examples_have_sidecars():
    from pathlib import Path

    assets = Path(__file__).resolve().parent.parent / "assets"
    index = image_io.sidecar_index(assets)
    stems = {p.stem for p in index.values()}
    assert {"cluttered-sum-100-0", "cluttered-sum-2528-0", "megapixel-majority-1500-0"} <= stems
    meta = image_io.read_sidecar(assets / "cluttered-sum-2528-0.png")
    assert meta["dataset"]["side"] == 2528 and meta["boxes"].shape == (2, 4)
    assert meta["boxes"].max() <= 2528
