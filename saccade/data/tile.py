"""``python -m saccade.data tile IN OUT``: make a large untiled image (a 30,000² PNG, a striped
TIFF, a JPEG) a tiled pyramidal TIFF, which saccade reads tile by tile as a slide
(``saccade.data.slide``), in bounded memory.

Why: an untiled file is decoded whole, so the folder dataset and the app refuse one over
``saccade.image_io.MAX_PIXELS``; ``write_slide`` needs the whole image in memory (a 30,000²
PNG peaked at 2.9 GB, after Pillow's ``DecompressionBombError``). libvips (``pyvips`` and the
``pyvips-binary`` wheel: the ``tile`` extra) streams the file instead: it decodes rows as the
writer needs them and builds the pyramid's levels as it goes, so memory depends on the width
and the tile size, not on the image's area.

The output: a BigTIFF, tiles of ``tile`` px, JPEG at quality 90 by default (``compression``:
jpeg, deflate, lzw or none; deflate and lzw are lossless), reduced levels as further pages
(halved by 2x2 means, down to one tile), the layout ``vips tiffsave --tile --pyramid`` writes
and OpenSlide reads as a generic tiled TIFF. Alpha is composited on black (as the folder
dataset reads alpha), 16-bit samples keep their 8 high bits.
"""

from __future__ import annotations

import os
from pathlib import Path

#: compressions accepted (libvips' names)
COMPRESSIONS = ("jpeg", "deflate", "lzw", "none")
#: suffixes OUT may have: a TIFF
OUT_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")


def _pyvips():
    try:
        import pyvips
    except (ImportError, OSError) as e:  # OSError: the wheel's libvips cannot be loaded
        raise ValueError(
            "tile needs libvips through pyvips: pip install pyvips pyvips-binary (or pip "
            f"install 'saccade[tile]'); {type(e).__name__}: {e}"
        ) from None
    return pyvips


def tile(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    tile_size: int = 256,
    compression: str = "jpeg",
    quality: int = 90,
    overwrite: bool = False,
) -> Path:
    """Write ``src`` (any image libvips reads) as a tiled pyramidal TIFF at ``dst``.

    Args:
        src: the input image file.
        dst: the output, a .tif/.tiff/.btf path; refused if it exists unless ``overwrite``.
        tile_size: tile side in pixels, a multiple of 16 in [64, 4096].
        compression: jpeg, deflate, lzw or none.
        quality: JPEG quality in [1, 100].

    Returns the output's path. ValueError names a bad argument, an unreadable input and what
    libvips said.
    """
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise ValueError(f"IN {str(src)!r} is not a file")
    if dst.suffix.lower() not in OUT_SUFFIXES:
        raise ValueError(f"OUT {str(dst)!r} must be a TIFF path; accepted suffixes: {OUT_SUFFIXES}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"OUT {str(dst)!r} is IN: write the pyramid to another file")
    if dst.exists() and not overwrite:
        raise ValueError(f"OUT {str(dst)!r} exists; pass --overwrite to replace it")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression={compression!r}; accepted: {COMPRESSIONS}")
    if not (isinstance(tile_size, int) and 64 <= tile_size <= 4096 and tile_size % 16 == 0):
        raise ValueError(f"tile={tile_size!r} must be a multiple of 16 in [64, 4096]")
    if not (isinstance(quality, int) and 1 <= quality <= 100):
        raise ValueError(f"quality={quality!r} must be an integer in [1, 100]")
    pyvips = _pyvips()
    try:
        image = pyvips.Image.new_from_file(str(src), access="sequential")
        if image.format != "uchar":  # 16-bit (or float) samples: the 8 high bits
            image = image.cast("uchar", shift=True) if image.format == "ushort" else image
            image = image.cast("uchar") if image.format != "uchar" else image
        if image.hasalpha():
            image = image.flatten(background=0)  # alpha on black, as the folder dataset reads
        if image.bands not in (1, 3):
            image = image[0] if image.bands < 3 else image[:3]
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.part")
        image.tiffsave(
            str(tmp),
            tile=True,
            tile_width=tile_size,
            tile_height=tile_size,
            pyramid=True,
            compression=compression,
            Q=quality,
            bigtiff=True,
        )
        os.replace(tmp, dst)
    except pyvips.Error as e:
        Path(dst.with_name(f".{dst.name}.part")).unlink(missing_ok=True)
        first = str(e).strip().splitlines()
        raise ValueError(f"libvips cannot convert {src.name!r}: {' '.join(first[:3])}") from None
    return dst


def add_command(sub) -> None:
    """The ``tile`` subcommand of ``python -m saccade.data`` (``sub``: its subparsers)."""
    p = sub.add_parser(
        "tile",
        help="make a large untiled image a tiled pyramidal TIFF (libvips, bounded memory)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("input", type=Path, metavar="IN", help="the image file (PNG, JPEG, TIFF, ...)")
    p.add_argument("output", type=Path, metavar="OUT", help="the pyramidal TIFF to write")
    p.add_argument("--tile", type=int, default=256, help="tile side in pixels (256)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="jpeg", help="(jpeg)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (90)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args) -> None:
    """Run the parsed ``tile`` command: one line naming what was written, or a one-line
    ``error: ...`` exit."""
    try:
        out = tile(
            args.input, args.output, args.tile, args.compression, args.quality, args.overwrite
        )
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    from .slide import Slide

    with Slide(out, cache_bytes=0) as slide:
        h, w = slide.shape
        levels = len(slide.levels)
    print(f"wrote {out} ({w:,}×{h:,} px, {levels} levels, tiles of {args.tile} px)")
