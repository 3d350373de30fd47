"""``python -m saccade.data tile IN OUT`` (``saccade.data.tile``): an untiled image made a tiled
pyramidal TIFF through libvips, read back as a slide pixel for pixel, its errors, the folder
dataset's warning that names it, and its memory bounded on a large PNG."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import saccade
from saccade.data import tile as tile_module
from saccade.data.__main__ import main
from saccade.data.slide import Slide, is_slide
from tests.helpers import png_with_header

pyvips = pytest.importorskip("pyvips")
ROOT = Path(__file__).resolve().parents[1]


def test_a_png_becomes_a_pyramid_read_back_exactly(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (700, 900, 4), np.uint8)
    rgba[..., 3] = np.where(rng.random((700, 900)) < 0.5, 255, 0)  # opaque or clear
    Image.fromarray(rgba).save(tmp_path / "in.png")
    assert not is_slide(tmp_path / "in.png")
    main(["tile", str(tmp_path / "in.png"), str(tmp_path / "out.tif")]
         + ["--compression", "deflate", "--tile", "128"])  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    out = tmp_path / "out.tif"
    assert is_slide(out)
    with Slide(out) as slide:
        assert slide.tiled and slide.shape == (700, 900)
        assert [round(lv.downsample) for lv in slide.levels] == [1, 2, 4, 8]  # 700 -> 87
        level0 = slide.read_region(0, 0, 0, 900, 700)
        # alpha on black, as the folder dataset reads it; deflate is lossless
        expected = np.where(rgba[..., 3:] == 255, rgba[..., :3], 0)
        assert np.array_equal(level0, expected)
        # level 1: 2x2 means of level 0
        level1 = slide.read_region(1, 0, 0, 450, 350).astype(float)
        means = expected.reshape(350, 2, 450, 2, 3).mean((1, 3))
        assert np.abs(level1 - means).max() <= 1.0
    # 16-bit gray keeps its high byte; the JPEG default reads back close
    gray16 = (np.arange(300 * 400).reshape(300, 400) % 65536).astype(np.uint16) * 7
    Image.fromarray(gray16).save(tmp_path / "deep.png")
    tile_module.tile(tmp_path / "deep.png", tmp_path / "deep.tif", compression="lzw")
    with Slide(tmp_path / "deep.tif") as slide:
        assert np.array_equal(slide.read_region(0, 0, 0, 400, 300), (gray16 >> 8).astype(np.uint8))


def test_errors_name_the_input(tmp_path, capsys):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    cases = [
        ([str(tmp_path / "missing.png"), str(tmp_path / "o.tif")], "is not a file"),
        ([str(tmp_path / "a.png"), str(tmp_path / "o.png")], "must be a TIFF path"),
        ([str(tmp_path / "a.png"), str(tmp_path / "o.tif"), "--tile", "100"], "multiple of 16"),
        ([str(tmp_path / "a.png"), str(tmp_path / "o.tif"), "--quality", "0"], "quality=0"),
        ([str(tmp_path / "notes.txt"), str(tmp_path / "o.tif")], "libvips cannot convert"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message) as info:
            main(["tile", *argv])
        assert str(info.value.code).startswith("error: ")
    assert not (tmp_path / "o.tif").exists() and not list(tmp_path.glob(".*part"))
    main(["tile", str(tmp_path / "a.png"), str(tmp_path / "o.tif")])
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        main(["tile", str(tmp_path / "a.png"), str(tmp_path / "o.tif")])
    main(["tile", str(tmp_path / "a.png"), str(tmp_path / "o.tif"), "--overwrite"])
    with pytest.raises(SystemExit, match="is IN"):
        main(["tile", str(tmp_path / "o.tif"), str(tmp_path / "o.tif"), "--overwrite"])


def test_the_folder_warning_says_how_to_make_a_pyramid(tmp_path):
    root = tmp_path / "d"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / c / f"{i}.png")
    (root / "a" / "scan.png").write_bytes(png_with_header(20_000, 20_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saccade.make_dataset("folder", root=root, cache=False)
    (message,) = [str(w.message) for w in caught if "scan.png" in str(w.message)]
    assert "20000x20000 is over" in message
    assert "python -m saccade.data tile scan.png scan.tif" in message


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_png(tmp_path):
    """A 16,000² RGB PNG (768 MB decoded): the conversion's peak memory grows by far less."""
    n = 16_000
    xy = pyvips.Image.xyz(n, n)
    image = ((xy[0] ^ xy[1]) & 255).cast("uchar").bandjoin([(xy[0] & 255).cast("uchar")] * 2)
    image.pngsave(str(tmp_path / "big.png"), compression=1)
    script = (
        "import resource, sys\n"
        "from saccade.data.__main__ import main\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "main(['tile', sys.argv[1], sys.argv[2]])\n"
        "print('grew_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big.png"), str(tmp_path / "big.tif")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    grew = int(proc.stdout.split("grew_kib")[1]) * 1024
    decoded = n * n * 3
    assert grew < 0.25 * decoded, f"grew {grew / 2**20:.0f} MiB for {decoded / 2**20:.0f} MiB"
    with Slide(tmp_path / "big.tif") as slide:
        assert slide.shape == (n, n) and len(slide.levels) >= 6
        x = np.arange(1000, 1100)
        row = slide.read_region(0, 1000, 5000, 100, 1)[0]  # JPEG: close to the pattern
        assert np.abs(row[:, 1].astype(int) - (x & 255)).mean() < 8
