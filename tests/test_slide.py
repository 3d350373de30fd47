"""The slide source (saccade/data/slide.py) and the glimpse's pyramid over a slide
(saccade/data/slide_pyramid.py), on small or sparse tiled TIFFs written here with tifffile."""

from __future__ import annotations

import os
import pickle
import struct
import zlib

import numpy as np
import pytest
import tifffile

from saccade.data.slide import HOW_TO_TILE, Slide, write_slide
from saccade.data.slide_pyramid import (
    STREAM_PIXELS,
    SlidePyramid,
    area_weights,
    snap_downsample,
)
from saccade.glimpse import ImageSource, Pyramid
from saccade.image_io import to_square


def smooth_image(h: int, w: int, rgb: bool, seed: int = 0) -> np.ndarray:
    """A smooth (h, w) or (h, w, 3) uint8 image (JPEG keeps it within a few levels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3 if rgb else 1):
        a, b, c = rng.uniform(0.005, 0.03, 3)
        chans.append(127 + 120 * np.sin(a * xx + b * yy + c * 100))
    out = np.stack(chans, -1) if rgb else chans[0]
    return np.clip(out, 0, 255).astype(np.uint8)


def write_sparse(path, shape, filled, tile=512, compression="zlib", levels=1):
    """A sparse tiled TIFF of ``shape`` (H, W) gray: tiles listed in ``filled`` ({(ty, tx):
    value} at level 0) hold that value, every other tile is empty (no bytes). ``levels`` > 1
    adds reduced pages (SubFileType 1) of the halved sizes, filled where level 0 is."""
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for lv in range(levels):
            f = 2**lv
            h, w = -(-shape[0] // f), -(-shape[1] // f)
            ny, nx = -(-h // tile), -(-w // tile)

            def tiles(f=f, ny=ny, nx=nx):
                for ty in range(ny):
                    for tx in range(nx):
                        value = next(
                            (
                                v
                                for (fy, fx), v in filled.items()
                                if fy * tile // (tile * f) == ty and fx * tile // (tile * f) == tx
                            ),
                            None,
                        )
                        if value is not None:
                            yield np.full((tile, tile), value, np.uint8)
                        elif ty == tx == 0:  # tifffile reads the first tile's dtype
                            yield np.zeros((tile, tile), np.uint8)
                        else:
                            yield None

            tw.write(
                tiles(),
                shape=(h, w),
                dtype=np.uint8,
                tile=(tile, tile),
                compression=compression,
                subfiletype=1 if lv else 0,
            )
    return path


# -- the slide source -------------------------------------------------------------------------


@pytest.mark.parametrize("pyramid", ["subifds", "pages"])
@pytest.mark.parametrize("compression", ["jpeg", "deflate"])
@pytest.mark.parametrize("rgb", [True, False])
def test_levels_and_regions(tmp_path, pyramid, compression, rgb):
    image = smooth_image(600, 1000, rgb)
    path = write_slide(
        tmp_path / "s.tif", image, tile=128, compression=compression, pyramid=pyramid, min_side=128
    )
    slide = Slide(path)
    assert slide.backend == "tifffile" and slide.tiled
    assert slide.channels == (3 if rgb else 1)
    assert [(lv.height, lv.width) for lv in slide.levels] == [
        (600, 1000),
        (300, 500),
        (150, 250),
        (75, 125),
    ]
    snapped = [
        snap_downsample(lv.downsample, (lv.height, lv.width), slide.shape) for lv in slide.levels
    ]
    assert snapped == [1, 2, 4, 8]
    assert slide.levels[3].downsample == pytest.approx(8.0, abs=0.02)
    region = slide.read_region(0, 130, 250, 200, 100)
    assert region.shape == ((100, 200, 3) if rgb else (100, 200)) and region.dtype == np.uint8
    err = np.abs(region.astype(int) - image[250:350, 130:330]).max()
    assert err == 0 if compression == "deflate" else err <= 12
    # rows 250..349 and columns 130..329 touch tile rows 1..2 and tile columns 1..2
    assert slide.tiles_decoded == slide.tiles_of(0, 130, 250, 200, 100) == 4
    slide.read_region(0, 140, 260, 50, 50)  # inside the cached tiles
    assert slide.tiles_decoded == 4


def test_region_outside_the_level_reads_zeros(tmp_path):
    image = np.full((300, 300), 200, np.uint8)
    slide = Slide(write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate"))
    region = slide.read_region(0, -10, 290, 30, 20)
    assert region.shape == (20, 30)
    assert (region[:10, 10:] == 200).all()  # inside: rows 290..299, columns 0..19
    assert region[:, :10].max() == 0 and region[10:].max() == 0
    assert slide.read_region(0, 400, 400, 5, 5).max() == 0


def test_tile_cache_is_bounded_by_bytes(tmp_path):
    image = smooth_image(512, 512, False)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", pyramid="none")
    slide = Slide(path, cache_bytes=2 * 128 * 128)  # two tiles
    slide.read_region(0, 0, 0, 512, 512)
    assert slide.tiles_decoded == 16
    assert slide.cached_bytes <= 2 * 128 * 128
    slide.read_region(0, 0, 0, 10, 10)  # the first tile was evicted
    assert slide.tiles_decoded == 17
    nocache = Slide(path, cache_bytes=0)
    nocache.read_region(0, 0, 0, 10, 10)
    nocache.read_region(0, 0, 0, 10, 10)
    assert nocache.tiles_decoded == 2 and nocache.cached_bytes == 0


def test_openslide_reads_a_page_pyramid_as_tifffile_does(tmp_path):
    image = smooth_image(400, 700, True)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", pyramid="pages")
    a, b = Slide(path), Slide(path, backend="openslide")
    assert b.backend == "openslide" and b.channels == 3
    assert [lv.width for lv in b.levels] == [lv.width for lv in a.levels]
    for level in range(len(a.levels)):
        np.testing.assert_array_equal(
            a.read_region(level, 5, 7, 90, 60), b.read_region(level, 5, 7, 90, 60)
        )


def test_every_backend_has_what_a_slide_reads_it_through(tmp_path):
    from PIL import Image

    from saccade.data.slide_backends import SlideBackend

    image = smooth_image(400, 700, True)
    tiff = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", pyramid="pages")
    Image.fromarray(image).save(tmp_path / "s.png")
    members = set(SlideBackend.__annotations__) | {"tile_shape", "read_tile", "close"}
    for path, backend in [(tiff, "tifffile"), (tiff, "openslide"), (tmp_path / "s.png", "pillow")]:
        b = Slide(path, backend=backend)._backend
        assert members <= set(dir(b)), (backend, members - set(dir(b)))
        for level, (h, w) in enumerate(b.shapes):
            th, tw = b.tile_shape(level)
            # the last tile of the level, cut to its extent, as (h, w, s) samples
            tile = b.read_tile(level, (h - 1) // th, (w - 1) // tw)
            assert tile.ndim == 3 and tile.shape[:2] == ((h - 1) % th + 1, (w - 1) % tw + 1)


def test_an_untiled_small_file_is_read_whole_with_pillow(tmp_path):
    from PIL import Image

    image = smooth_image(120, 90, True)
    Image.fromarray(image).save(tmp_path / "small.png")
    slide = Slide(tmp_path / "small.png")
    assert slide.backend == "pillow" and not slide.tiled and len(slide.levels) == 1
    np.testing.assert_array_equal(slide.read_region(0, 10, 20, 30, 40), image[20:60, 10:40])
    edge = slide.read_region(0, 80, 100, 20, 30)  # partly outside: zeros there
    np.testing.assert_array_equal(edge[:20, :10], image[100:, 80:])
    assert not edge[20:].any() and not edge[:, 10:].any()
    # its one tile is the image the backend decoded when opened: not decoded, not cached again
    assert slide.tile_shape(0) == (120, 90)
    assert slide.tiles_decoded == 0 and slide.cached_bytes == 0


def test_a_sparse_40000_square_slide_is_never_decoded_whole(tmp_path):
    path = write_sparse(
        tmp_path / "sparse.tif", (40000, 40000), {(3, 5): 250, (70, 70): 90}, levels=8
    )
    assert os.path.getsize(path) < 2_000_000
    pyramid = SlidePyramid(path, cache_dir=False)
    slide = pyramid.slide
    assert len(slide.levels) == 8 and pyramid.made_levels == 0  # level 7: 313 px a side
    proxy = pyramid.proxy(32)
    assert proxy.shape == (32, 32) and proxy.max() > 0
    window = pyramid.read_window(0, 5 * 512 + 10, 3 * 512 + 10, 64, 64)
    assert (window == 250).all()
    level0_tiles = (40000 // 512 + 1) ** 2
    assert slide.tiles_decoded <= 10 < level0_tiles // 100


# -- bad input ----------------------------------------------------------------------------------


def _corrupt_first_tile(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * count)


@pytest.mark.parametrize("compression", ["jpeg", "deflate"])
def test_a_corrupt_tile_names_the_file_and_level(tmp_path, compression):
    image = smooth_image(256, 256, True)
    path = write_slide(tmp_path / "bad.tif", image, tile=128, compression=compression)
    _corrupt_first_tile(path)
    slide = Slide(path)
    with pytest.raises(ValueError, match=r"'bad.tif'.*level 0"):
        slide.read_region(0, 0, 0, 10, 10)
    assert slide.read_region(0, 200, 200, 10, 10).max() > 0  # the other tiles still read


def test_an_untiled_file_too_large_is_refused_with_how_to_tile(tmp_path):
    path = tmp_path / "huge.tif"
    with tifffile.TiffWriter(path) as tw:  # uncompressed strips, never written: a sparse file
        tw.write(None, shape=(20000, 20000), dtype=np.uint8)
    with pytest.raises(ValueError, match="huge.tif") as err:
        Slide(path)
    assert HOW_TO_TILE in str(err.value) and "vips tiffsave" in str(err.value)
    # a PNG whose header says 20000 x 20000: refused from the header
    header_only_png(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(ValueError, match=r"'huge.png' is an untiled 20000x20000 image") as err:
        Slide(tmp_path / "huge.png")
    assert HOW_TO_TILE in str(err.value)


def header_only_png(path, width, height):
    """A valid PNG whose header says width x height (its data is a few bytes)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    path.write_bytes(png + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))


def test_an_unsupported_codec_is_named(tmp_path):
    path = write_slide(tmp_path / "c.tif", smooth_image(256, 256, False), compression="deflate")
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags["Compression"]
        where = tag.valueoffset
    with open(path, "r+b") as f:  # compression 33333: no codec of that number exists
        f.seek(where)
        f.write(struct.pack("<H", 33333))
    with pytest.raises(ValueError, match=r"c.tif.*compression 33333.*imagecodecs"):
        Slide(path)


def test_an_unsupported_format_names_the_package_that_reads_it(tmp_path):
    path = tmp_path / "scan.vsi"
    path.write_bytes(b"VSI?" + bytes(200))
    with pytest.raises(ValueError, match=r"scan.vsi.*Bio-Formats"):
        Slide(path)
    with pytest.raises(ValueError, match="does not exist"):
        Slide(tmp_path / "missing.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        Slide(tmp_path / "empty.tif")


def test_a_changed_file_is_opened_again(tmp_path):
    path = tmp_path / "s.tif"
    write_slide(path, np.full((256, 256), 10, np.uint8), tile=128, compression="deflate")
    slide = Slide(path)
    assert slide.read_region(0, 0, 0, 4, 4).max() == 10
    write_slide(path, np.full((300, 256), 99, np.uint8), tile=128, compression="deflate")
    os.utime(path, ns=(0, 10**18))  # a new mtime even on a coarse clock
    assert slide.read_region(0, 0, 0, 4, 4).max() == 99
    assert slide.reopened == 1 and slide.shape == (300, 256)


# -- the pyramid over a slide ------------------------------------------------------------------


def test_area_weights_average_exactly():
    w = area_weights(0.5, 2.0, 3, 8)  # output j covers [0.5 + 2j, 2.5 + 2j)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(w[0, :3], [0.25, 0.5, 0.25])


def test_windows_match_the_in_memory_pyramid(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", min_side=32)
    # outside the slide reads black (fill=0), as outside an array (the default: its background)
    slide_pyr, memory = SlidePyramid(path, cache_dir=False, fill=0), Pyramid(image)
    assert slide_pyr.shape == memory.shape and slide_pyr.max_level == memory.max_level
    # both implement the glimpse's interface; the slide's levels are never held whole
    assert isinstance(slide_pyr, ImageSource) and isinstance(memory, ImageSource)
    assert not isinstance(slide_pyr, Pyramid) and not hasattr(slide_pyr, "levels")
    for level in range(5):
        np.testing.assert_array_equal(
            slide_pyr.read_window(level, -3, 5, 40, 30),
            _window(memory.level(level), -3, 5, 40, 30),
        )


def test_a_window_read_checks_the_file_once_and_sees_a_change(tmp_path, monkeypatch):
    path = tmp_path / "s.tif"
    write_slide(path, np.full((512, 512), 10, np.uint8), tile=128, compression="deflate")
    pyr = SlidePyramid(path, cache_dir=False)
    checks = []
    stamp = Slide._local_stamp
    monkeypatch.setattr(Slide, "_local_stamp", lambda self: checks.append(1) or stamp(self))
    assert pyr.read_window(1, 0, 0, 64, 64).max() == 10
    assert len(checks) == 1  # the pyramid checks the file; read_region does not again
    write_slide(path, np.full((512, 512), 99, np.uint8), tile=128, compression="deflate")
    os.utime(path, ns=(0, 10**18))
    assert pyr.read_window(1, 0, 0, 64, 64).max() == 99 and pyr.slide.reopened == 1
    assert pyr.proxy(8).max() == pytest.approx(99 / 255)


def _window(level: np.ndarray, x0, y0, ww, wh) -> np.ndarray:
    out = np.zeros((wh, ww) + level.shape[2:], np.uint8)
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + ww, level.shape[1]), min(y0 + wh, level.shape[0])
    out[ys - y0 : ye - y0, xs - x0 : xe - x0] = level[ys:ye, xs:xe]
    return out


def test_a_missing_level_is_made_from_the_window_of_the_finer_one(tmp_path):
    """An Aperio-like file with levels 1x, 4x, 16x: the 2x and 8x windows are area averages of
    the 1x and 4x windows, as the in-memory pyramid's halvings are (within their rounding)."""
    image = np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    memory = Pyramid(image)
    path = tmp_path / "aperio.tif"
    with tifffile.TiffWriter(path) as tw:
        for i, level in enumerate((0, 2, 4)):
            tw.write(
                memory.level(level), tile=(128, 128), compression="zlib", subfiletype=1 if i else 0
            )
    pyr = SlidePyramid(path, cache_dir=False)
    assert [s.downsample for s in pyr.sources] == [1, 4, 16]
    for level in (1, 3):
        before = pyr.slide.tiles_decoded
        window = pyr.read_window(level, 20, 10, 48, 40)
        diff = np.abs(window.astype(int) - _window(memory.level(level), 20, 10, 48, 40))
        assert diff.max() <= 1
        # only the tiles under the window's 2x-wider source region are decoded
        assert pyr.slide.tiles_decoded - before <= 4


def test_a_rectangular_slide_keeps_its_aspect_in_a_virtual_square(tmp_path):
    image = smooth_image(300, 1000, False)
    path = write_slide(tmp_path / "r.tif", image, tile=128, compression="deflate", min_side=64)
    pyr = SlidePyramid(path, cache_dir=False, fill=0)  # padded black, as the array below
    assert pyr.shape == (1000, 1000) and pyr.image_shape == (300, 1000)
    oy = pyr.offset[1]
    assert abs(oy - 350) < pyr.align and oy % pyr.align == 0
    padded = np.zeros((1000, 1000), np.uint8)
    padded[oy : oy + 300] = image
    memory = Pyramid(padded)
    for level in range(4):
        window = pyr.read_window(level, 0, 0, 64, 64).astype(int)
        diff = np.abs(window - _window(memory.level(level), 0, 0, 64, 64))
        # exact while the offset is a multiple of the level's downsample; then one area
        # average against repeated halvings, each rounded
        assert diff.max() <= (0 if 2**level <= pyr.align else 1)
    boxes = pyr.to_slide_boxes(np.array([[0.0, oy, 10.0, oy + 10.0]]))
    np.testing.assert_array_equal(boxes, [[0, 0, 10, 10]])
    diff = np.abs(pyr.proxy(32) - _proxy(padded, 32))
    assert diff.max() <= 3 / 255 and diff.mean() < 0.5 / 255


def _proxy(image, size):
    from saccade.data.proxy import make_proxy

    return make_proxy(image, size)


def test_the_proxy_comes_from_the_coarsest_level_at_least_its_size(tmp_path):
    image = smooth_image(1024, 1024, True)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", min_side=16)
    pyr = SlidePyramid(path, cache_dir=False)
    proxy = pyr.proxy(32)
    assert proxy.shape == (3, 32, 32)
    # level 5 (32 px) is read, never level 0
    assert pyr.slide.tiles_decoded == 1
    np.testing.assert_allclose(proxy, _proxy(to_square(image), 32), atol=2 / 255)
    gray = SlidePyramid(path, channels=1, cache_dir=False)
    assert gray.proxy(32).shape == (32, 32) and gray.read_window(0, 0, 0, 8, 8).shape == (8, 8)


def test_an_unpyramided_tiled_file_gets_levels_once_cached(tmp_path):
    shape = (6000, 8192)
    assert shape[0] * shape[1] > STREAM_PIXELS
    path = write_sparse(tmp_path / "flat.tif", shape, {(2, 3): 200, (10, 15): 100}, levels=1)
    cache = tmp_path / "cache"
    first = SlidePyramid(path, cache_dir=cache)
    assert first.made_levels >= 2
    assert [s.downsample for s in first.sources][:2] == [1, 2]
    n_tiles = (-(-6000 // 512)) * (8192 // 512)
    assert first.slide.tiles_decoded == n_tiles  # one pass
    assert first.slide.cached_bytes == 0  # the pass keeps no tiles
    again = SlidePyramid(path, cache_dir=cache)
    assert again.slide.tiles_decoded == 0  # from the cache
    assert isinstance(again.sources[1].array, np.memmap)
    for level in (1, 4):
        np.testing.assert_array_equal(
            first.read_window(level, 0, 0, 200, 200), again.read_window(level, 0, 0, 200, 200)
        )
    # a 2x window of the filled tile (2, 3): level-0 rows 1024.. + offset, columns 1536..
    oy = first.offset[1]
    assert (first.read_window(1, 1536 // 2 + 8, (1024 + oy) // 2 + 8, 8, 8) == 200).all()
    # the cache's entry is checked: a changed proxy file is not trusted
    for proxy in cache.rglob("proxy.npy"):
        proxy.write_bytes(proxy.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    rebuilt = SlidePyramid(path, cache_dir=cache)
    assert rebuilt.slide.tiles_decoded == n_tiles


def test_a_slide_pyramid_pickles_as_its_path(tmp_path):
    path = write_slide(tmp_path / "s.tif", smooth_image(512, 512, False), compression="deflate")
    pyr = SlidePyramid(path, cache_dir=False)
    pyr.read_window(0, 0, 0, 64, 64)
    data = pickle.dumps(pyr)
    assert len(data) < 2000
    other = pickle.loads(data)
    assert other.slide is not pyr.slide and other.slide.tiles_decoded == 0
    np.testing.assert_array_equal(
        other.read_window(2, 3, 3, 20, 20), pyr.read_window(2, 3, 3, 20, 20)
    )


# -- the glimpse and predict on a slide ---------------------------------------------------------


def test_glimpse_from_a_slide_matches_memory_with_its_gradient(tmp_path):
    import torch

    from saccade.glimpse import glimpse

    image = np.random.default_rng(2).integers(0, 256, (1024, 1024), dtype=np.uint8)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", min_side=32)
    pyr = SlidePyramid(path, cache_dir=False)
    # crops at spacings 0.6 .. 9 px: level 0 alone, and blends of levels 0..4
    z0 = torch.tensor([[-1.0, -0.3, 0.2], [-0.2, 0.4, -0.5], [0.9, 0.0, 0.1]], dtype=torch.float64)
    grads, crops = [], []
    for source in (pyr, Pyramid(image)):
        z = z0.clone().requires_grad_(True)
        crop = glimpse(source, z, 32, min_scale=0.02, max_scale=0.3)
        (crop * torch.linspace(0, 1, 32, dtype=torch.float64)).sum().backward()
        crops.append(crop.detach())
        grads.append(z.grad)
    torch.testing.assert_close(crops[0], crops[1], rtol=0, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    assert grads[0].abs().min() > 0


@pytest.fixture(scope="module")
def sum_model():
    import saccade

    return saccade.load("checkpoints/cluttered-sum-learnt")


def _cluttered(index: int, side: int) -> np.ndarray:
    import cv2

    from saccade import make_dataset

    canvas = make_dataset("cluttered", task="sum", split="test", size=100)[index]["image"]
    return cv2.resize(canvas, (side, side), interpolation=cv2.INTER_LINEAR)


def test_predict_on_a_slide_matches_the_canvas_it_was_made_from(tmp_path, sum_model):
    import saccade

    for index in range(3):
        image = _cluttered(index, 2528)
        path = write_slide(tmp_path / f"c{index}.tif", image, tile=256, compression="deflate")
        on_slide = saccade.predict(sum_model, str(path), slide_cache_dir=tmp_path / "cache")
        in_memory = saccade.predict(sum_model, image)
        assert on_slide.label == in_memory.label
        np.testing.assert_allclose(on_slide.probs, in_memory.probs, atol=0.02)
        np.testing.assert_allclose(on_slide.boxes, in_memory.boxes, atol=2528 * 0.01)
        # area averages of differently rounded levels: a few levels apart at strokes
        diff = np.abs(on_slide.proxy - in_memory.proxy)
        assert diff.max() <= 8 / 255 and diff.mean() < 0.5 / 255
        assert on_slide.slide == str(path) and on_slide.image_shape == (2528, 2528)
        assert all(max(zm.shape) <= 512 for zm in on_slide.zooms)


def test_predict_boxes_are_level0_pixels_of_a_rectangular_slide(tmp_path, sum_model):
    import saccade

    image = np.zeros((1200, 3000), np.uint8)
    image[500:700, 2000:2200] = 255  # one bright square
    path = write_slide(tmp_path / "r.tif", image, tile=256, compression="deflate")
    out = saccade.predict(sum_model, path, slide_cache_dir=False)
    pyr = SlidePyramid(path, cache_dir=False)
    square = saccade.z_to_box(out.z, pyr.shape, sum_model.config.min_scale, 0.3)
    np.testing.assert_allclose(out.boxes, pyr.to_slide_boxes(square))
    assert out.image_shape == (1200, 3000)
    assert out.image.shape[1] == 1024 and abs(out.image.shape[0] - 1024 / 2.5) <= 1
    assert out.image_scale == pytest.approx(out.image.shape[1] / 3000)
    # each zoom is the region under its box, clipped to the square (the padding is black)
    oy = pyr.offset[1]
    for box, zoom in zip(out.boxes, out.zooms, strict=True):
        x0, y0 = max(box[0], 0), max(box[1], -oy)
        x1, y1 = min(box[2], 3000), min(box[3], 3000 - oy)
        assert abs(zoom.shape[1] / zoom.shape[0] - (x1 - x0) / (y1 - y0)) < 0.05
    bright = pyr.read_box((1900, 400, 2300, 800), max_side=100)
    assert bright.shape == (100, 100) and bright[40:60, 40:60].min() == 255
    assert bright[:10].max() == 0


def test_predict_on_a_sparse_40000_square_slide_reads_a_few_tiles(tmp_path, sum_model):
    import resource

    import saccade

    path = write_sparse(tmp_path / "sparse.tif", (40000, 40000), {(40, 40): 200}, levels=8)
    pyr = SlidePyramid(path, channels=1, cache_dir=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = saccade.predict(sum_model, pyr)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert out.boxes.shape == (4, 4)
    # a full decode would be 6,241 tiles at level 0 and 1.6 GB
    assert pyr.slide.tiles_decoded < 200
    assert grown_mb < 200


def test_predict_names_the_file_and_level_of_a_corrupt_tile(tmp_path, sum_model):
    import saccade

    image = _cluttered(0, 1024)
    path = write_slide(tmp_path / "bad.tif", image, tile=128, compression="jpeg", min_side=1024)
    with tifffile.TiffFile(path) as tif:  # corrupt every tile of level 0
        page = tif.pages[0]
        spans = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    with open(path, "r+b") as f:
        for offset, count in spans:
            f.seek(offset)
            f.write(b"\x00" * count)
    with pytest.raises(ValueError, match=r"'bad.tif'.*level 0"):
        saccade.predict(sum_model, path, slide_cache_dir=False)


def test_an_untiled_image_path_is_predicted_as_before(tmp_path, sum_model):
    from PIL import Image

    import saccade

    image = _cluttered(1, 300)
    Image.fromarray(image).save(tmp_path / "c.png")
    a = saccade.predict(sum_model, tmp_path / "c.png")
    b = saccade.predict(sum_model, image)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.slide is None and a.image_shape == (300, 300) and a.image_scale == 1.0


def test_a_model_that_needs_the_whole_image_refuses_a_slide(tmp_path):
    import saccade
    from saccade.models.registry import create_model

    path = write_slide(tmp_path / "s.tif", smooth_image(600, 500, False), tile=128)
    model = create_model("resnet18-full", {"n_classes": 3})
    with pytest.raises(ValueError, match=r"'s.tif'.* is never read whole.*resnet18-full"):
        saccade.predict(model, path)


# -- a folder of slides ---------------------------------------------------------------------------


def make_slide_tree(root, n=3):
    """ROOT/a and ROOT/b, ``n`` RGB slides each (3000 x 2000, pyramids): a bright block near
    the top left for 'a', near the bottom right for 'b'."""
    for cname, (y, x) in {"a": (300, 400), "b": (1500, 2400)}.items():
        (root / cname).mkdir(parents=True)
        for i in range(n):
            image = np.zeros((2000, 3000, 3), np.uint8)
            image[y + 20 * i : y + 20 * i + 300, x : x + 300] = (200, 120, 60)
            write_slide(root / cname / f"{i}.tif", image, tile=256, compression="deflate")
    return root


def test_a_folder_of_slides_gives_pyramids_not_images(tmp_path):
    import saccade
    from saccade.train.loop import collate

    root = make_slide_tree(tmp_path / "slides")
    ds = saccade.make_dataset("folder", root=root, split="train", cache_dir=tmp_path / "c")
    assert ds.size == 3000 and ds.proxy_size == 64 and len(ds.slides) == 6
    sample = ds[0]
    assert "image" not in sample and isinstance(sample["pyramid"], SlidePyramid)
    assert sample["proxy"].shape == (3, 64, 64)
    batch = collate([ds[0], ds[1]])
    assert isinstance(batch["image"], list) and batch["proxy"].shape == (2, 3, 64, 64)
    # a worker gets the dataset without its open slides, and opens its own
    assert ds._open_slides and not pickle.loads(pickle.dumps(ds))._open_slides
    # a pyramid sent back twice is opened once in the receiving process
    a, b = (pickle.loads(pickle.dumps(sample["pyramid"])) for _ in range(2))
    assert a.slide is b.slide


@pytest.mark.slow  # trains
def test_training_on_a_folder_of_slides(tmp_path):
    import csv
    import json

    import saccade
    from saccade.evaluate.cli import main as evaluate_main
    from saccade.train.cli import parse_args
    from saccade.train.loop import fit

    root = make_slide_tree(tmp_path / "slides")
    cfg, _ = parse_args(
        ["--dataset", "folder", "--root", str(root), "--steps", "2", "--batch-size", "2"]
        + ["--workers", "0", "--val-n", "2", "--test-n", "2", "--out", str(tmp_path / "ck" / "s")]
    )
    assert fit(cfg, command="test")["steps"] == 2
    model = saccade.load(tmp_path / "ck" / "s")
    assert model.config.class_names == ["a", "b"]
    out = tmp_path / "eval.json"
    evaluate_main([str(tmp_path / "ck" / "s"), "--n", "4", "--json", str(out)])
    assert json.loads(out.read_text())["n"] == 2
    pred = saccade.predict(model, root / "a" / "0.tif", slide_cache_dir=False)
    assert pred.slide is not None and pred.image_shape == (2000, 3000)
    assert pred.proxy.shape == (3, 64, 64)
    # predict on each test slide says what evaluate's pass over the test split said
    rows = tmp_path / "rows.csv"
    evaluate_main([str(tmp_path / "ck" / "s"), "--n", "4", "--predictions", str(rows)])
    with rows.open() as f:
        said = list(csv.DictReader(f))
    assert len(said) == 2
    for row in said:
        pred = saccade.predict(model, row["path"], slide_cache_dir=False)
        assert pred.class_name == row["prediction"], row
        assert np.allclose(pred.probs[-1], [float(row[f"prob_{c}"]) for c in "ab"], atol=1e-4)


def test_a_corrupt_slide_in_a_folder_warns_once_and_reads_black(tmp_path):
    import warnings

    import torch

    import saccade
    from saccade.glimpse import glimpse

    root = make_slide_tree(tmp_path / "slides", n=2)
    bad = root / "a" / "0.tif"
    with tifffile.TiffFile(bad) as tif:  # every tile of every level
        spans = [
            (o, c)
            for page in tif.series[0].levels
            for o, c in zip(page.keyframe.dataoffsets, page.keyframe.databytecounts, strict=True)
        ]
    with open(bad, "r+b") as f:
        for offset, count in spans:
            f.seek(offset)
            f.write(b"\xff" * count)
    splits = [
        saccade.make_dataset("folder", root=root, split=s, cache=False) for s in ("train", "test")
    ]
    ds = next(d for d in splits if any(p == bad for p, _ in d.items))
    index = next(i for i, (p, _) in enumerate(ds.items) if p == bad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sample = ds[index]
        crops = glimpse(sample["pyramid"], torch.zeros(2, 3), 32)
        ds[index]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "'0.tif'" in messages[0] and "level" in messages[0]
    assert sample["proxy"].max() == 0 and crops.max() == 0


def test_the_gif_of_a_slide_draws_its_boxes_on_the_thumbnail(tmp_path, sum_model):
    import saccade
    from saccade.export import prediction_record
    from saccade.viz.gif import slide_frames

    image = _cluttered(0, 2528)
    path = write_slide(tmp_path / "c.tif", image, tile=256, compression="deflate")
    on_slide = saccade.predict(sum_model, path, slide_cache_dir=False)
    in_memory = saccade.predict(sum_model, image)
    assert on_slide.image.shape == (1024, 1024) and on_slide.image_scale == 1024 / 2528
    a, b = slide_frames(on_slide), slide_frames(in_memory)
    assert len(a) == len(b) == 4
    # the same picture but for the thumbnail's resampling: the boxes drawn in the same places
    diff = np.abs(np.asarray(a[-1], float) - np.asarray(b[-1], float)).mean()
    assert diff < 0.5  # unscaled boxes: 3.0
    record = prediction_record(on_slide, "ck", {})
    assert record["slide"] == str(path) and record["boxes_shape"] == [2528, 2528]


def test_an_aperio_svs_layout_reads_as_openslide_reads_it(tmp_path):
    """The layout of an Aperio SVS (levels 1x, 4x, 16x as pages, a striped thumbnail between
    them, the 'Aperio' description): tifffile's levels and regions are OpenSlide's, and the
    missing 2x and 8x windows are made from the 1x and 4x ones."""
    import cv2

    image = smooth_image(1500, 2000, True)
    desc = (
        "Aperio Image Library v12.0.15 \r\n2000x1500 [0,0 2000x1500] (256x256) JPEG/RGB "
        "Q=70|AppMag = 20|MPP = 0.5"
    )
    path = tmp_path / "scan.svs"
    args = {"compression": "jpeg", "photometric": "rgb", "description": desc, "metadata": None}
    with tifffile.TiffWriter(path) as tw:
        tw.write(image, tile=(256, 256), **args)
        tw.write(cv2.resize(image, (200, 150), interpolation=cv2.INTER_AREA), **args)
        for w, h in ((500, 375), (125, 93)):
            small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            tw.write(small, tile=(256, 256), **args)
    ours, theirs = Slide(path), Slide(path, backend="openslide")
    assert ours.backend == "tifffile" and theirs.backend == "openslide"
    assert ours.levels == theirs.levels and len(ours.levels) == 3
    for level in range(3):
        np.testing.assert_array_equal(
            ours.read_region(level, 30, 20, 90, 70), theirs.read_region(level, 30, 20, 90, 70)
        )
    pyr = SlidePyramid(ours, cache_dir=False)
    assert [s.downsample for s in pyr.sources] == [1, 4, 16]
    padded = np.zeros((2000, 2000, 3), np.uint8)
    padded[pyr.offset[1] : pyr.offset[1] + 1500] = image
    memory = Pyramid(padded)
    for level in (1, 3):  # 2x from the 1x window, 8x from the 4x one (JPEG's error apart)
        y0 = 600 // 2**level  # inside the slide
        window = pyr.read_window(level, 10, y0, 40, 30).astype(int)
        err = np.abs(window - _window(memory.level(level), 10, y0, 40, 30)).mean()
        assert window.mean() > 50 and err < 2


def test_a_slide_pyramid_follows_its_file_when_it_changes(tmp_path):
    path = tmp_path / "s.tif"
    write_slide(path, np.full((512, 512), 40, np.uint8), tile=128, compression="deflate")
    pyr = SlidePyramid(path, cache_dir=False)
    assert pyr.read_window(2, 0, 0, 8, 8).max() == 40 and pyr.thumbnail(64).max() == 40
    write_slide(path, np.full((256, 1024), 90, np.uint8), tile=128, compression="deflate")
    os.utime(path, ns=(0, 10**18))
    assert pyr.thumbnail(64).shape == (16, 64) and pyr.thumbnail(64).max() == 90
    inside = pyr.read_window(0, 100, 400, 8, 8)  # row 400 of the new square holds the slide
    assert pyr.slide.reopened == 1 and pyr.shape == (1024, 1024)
    assert pyr.image_shape == (256, 1024) and (inside == 90).all()
    assert pyr.thumbnail(64).shape == (16, 64) and pyr.thumbnail(64).max() == 90


@pytest.mark.slow
def test_the_slides_benchmark_on_its_smallest_slide(tmp_path):
    from saccade.bench.slides import bench_slides, slides_summary

    rows = bench_slides(tmp_path, repeats=1, only=["slide-6400-jpeg"])
    slide = next(r for r in rows if r["phase"] == "slide")
    assert slide["side"] == 6400 and slide["sources"] == [1, 2, 4, 8, 16]
    assert 0 < slide["tiles_per_level0_crop"] <= 4  # a 32 px crop touches at most 4 tiles
    # a warm predict, on the opened pyramid, reads its crops from the tile cache: after the
    # warm-up no tile is decoded again (the timings are the benchmark's figures, not a test's)
    assert slide["warm_tiles_decoded"] == 0
    assert {r["what"] for r in rows if r["phase"] == "tile"} >= {"slide source"}
    assert any("peak RSS" in line for line in slides_summary(rows))


def test_predict_refuses_an_untiled_image_too_large_with_how_to_tile(tmp_path, sum_model):
    import saccade

    header_only_png(tmp_path / "big.png", 40000, 30000)
    with pytest.raises(ValueError, match=r"'big.png' is 40000x30000.*tiled \(pyramidal\)"):
        saccade.predict(sum_model, tmp_path / "big.png")


# -- physical scale and background (Slide.mpp, Slide.background) --------------------------------


def _tiled(path, image, **kwargs):
    """``image`` as a one-level tiled TIFF written by tifffile with ``kwargs`` (metadata)."""
    tifffile.imwrite(path, image, tile=(256, 256), compression="zlib", **kwargs)
    return path


def test_mpp_from_the_svs_description_ome_and_resolution_tags(tmp_path):
    image = smooth_image(512, 768, rgb=True)
    svs = "Aperio Image Library v12.0.15 \n768x512 [0,100 768x512] (256x256) J2K|AppMag = 20|MPP = 0.4990|Filename = a"
    cases = {
        "svs": ({"description": svs, "photometric": "rgb"}, (0.499, 0.499)),
        "ome": (
            {
                "ome": True,
                "photometric": "rgb",
                "metadata": {"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.3},
            },
            (0.25, 0.3),
        ),
        "ome-nm": (
            {
                "ome": True,
                "photometric": "rgb",
                "metadata": {
                    "axes": "YXS",
                    "PhysicalSizeX": 250.0,
                    "PhysicalSizeXUnit": "nm",
                    "PhysicalSizeY": 250.0,
                    "PhysicalSizeYUnit": "nm",
                },
            },
            (0.25, 0.25),
        ),
        "cm": (
            {"resolution": (1e4 / 0.5, 1e4 / 0.25), "resolutionunit": "CENTIMETER"},
            (0.5, 0.25),
        ),
        "inch": ({"resolution": (25400 / 0.2, 25400 / 0.2), "resolutionunit": "INCH"}, (0.2, 0.2)),
        "none": ({"resolution": (1, 1), "resolutionunit": "NONE"}, None),
    }
    for name, (kwargs, want) in cases.items():
        with Slide(_tiled(tmp_path / f"{name}.tif", image, **kwargs)) as slide:
            if want is None:
                assert slide.mpp is None, name
            else:
                np.testing.assert_allclose(slide.mpp, want, rtol=1e-6, err_msg=name)
    with Slide(write_slide(tmp_path / "plain.tif", image)) as slide:
        assert slide.mpp is None  # write_slide records no scale


def test_openslide_and_tifffile_read_the_same_mpp(tmp_path):
    image = smooth_image(600, 600, rgb=True)
    path = _tiled(tmp_path / "r.tif", image, resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit=3)
    with Slide(path, backend="openslide") as a, Slide(path, backend="tifffile") as b:
        assert a.backend == "openslide" and b.backend == "tifffile"
        np.testing.assert_allclose(a.mpp, (0.5, 0.5), rtol=1e-6)
        np.testing.assert_allclose(b.mpp, (0.5, 0.5), rtol=1e-6)


def test_background_is_estimated_from_the_border_of_the_coarsest_level(tmp_path):
    rng = np.random.default_rng(0)
    glass = np.full((1024, 1536, 3), (236, 232, 240), np.uint8)
    glass[200:824, 300:1236] = rng.integers(60, 200, (624, 936, 3), dtype=np.uint8)  # tissue
    with Slide(write_slide(tmp_path / "glass.tif", glass, compression="deflate")) as slide:
        assert slide.levels[-1].width < 1536  # read from a coarser level
        np.testing.assert_allclose(slide.background, (236, 232, 240), atol=1)
    dark = np.zeros((512, 512), np.uint8)
    dark[100:400, 100:400] = 200
    with Slide(write_slide(tmp_path / "dark.tif", dark, compression="deflate")) as slide:
        assert slide.background == (0,)


def test_background_of_a_large_coarsest_level_reads_a_few_border_patches(tmp_path):
    path = write_sparse(tmp_path / "big.tif", (6000, 6000), filled={(5, 5): 255}, tile=512)
    with Slide(path, cache_bytes=0) as slide:
        assert slide.background == (0,)
        assert slide.tiles_decoded <= 8  # 8 patches of 64 px at the border, never the level


def test_openslide_background_color_is_parsed():
    from saccade.data.slide_meta import parse_color

    assert parse_color("F0E0D0", 3) == (240, 224, 208)
    assert parse_color("ffffff", 1) == (255,)
    assert parse_color("nonsense", 3) is None and parse_color(None, 3) is None


# -- handles across processes --------------------------------------------------------------------


def _read_all(slide, image, spots, cache: bool) -> bool:
    """Whether every spot of level 0 reads as ``image`` (tiles decoded anew when not ``cache``)."""
    for x, y in spots:
        region = slide.read_region(0, x, y, 96, 96, cache=cache)
        if not np.array_equal(region, image[y : y + 96, x : x + 96]):
            return False
    return True


def _child(slide, image, spots, results) -> None:
    ok = _read_all(slide, image, spots, cache=False)
    results.put((ok, slide._pid == os.getpid()))


def test_a_forked_process_reads_through_its_own_handle(tmp_path):
    import multiprocessing

    image = smooth_image(2048, 2048, rgb=False)
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate", pyramid="none")
    rng = np.random.default_rng(0)
    spots = [tuple(int(v) for v in rng.integers(0, 2048 - 96, 2)) for _ in range(400)]
    with Slide(path, cache_bytes=0) as slide:
        assert _read_all(slide, image, spots[:5], cache=False)  # the parent's handle is open
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [
            context.Process(target=_child, args=(slide, image, spots, results), daemon=True)
            for _ in range(2)
        ]
        for child in children:
            child.start()
        # the parent reads at the same time: a shared file offset would mix the reads
        assert _read_all(slide, image, spots, cache=False)
        outcomes = [results.get(timeout=120) for _ in children]
        for child in children:
            child.join(timeout=30)
            assert child.exitcode == 0
    assert outcomes == [(True, True), (True, True)]
