"""Turn what a user hands over (array, PIL image, file path) into the model's input:
a square (S, S) uint8 grayscale image, bright digits on black, as in training, or, for a
colour model (``channels=3``), a square (S, S, 3) uint8 RGB image.

Checks happen before any decoding work that a hostile file could make expensive: the file's
size is read from the file system and refused above ``MAX_FILE_BYTES`` before a byte is read,
and the pixel count is read from the header and refused above ``MAX_PIXELS`` (a decompression
bomb never gets decoded). Every refusal is a ValueError that names the file (or the array) and
says what is accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

#: the largest image accepted, in pixels (16384 x 16384), checked from the header
MAX_PIXELS = 16384 * 16384
#: the largest image file accepted, in bytes (64 MiB), checked before the file is read
MAX_FILE_BYTES = 64 * 2**20
#: the smallest side accepted, in pixels
MIN_SIDE = 8
#: file types accepted by ``read_image``
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")
#: what a message refusing an image too large to decode whole says to do instead
HOW_TO_TILE = (
    "a larger image must be a tiled (pyramidal) file, read tile by tile (saccade.data.slide): "
    "make one with `python -m saccade.data tile in.png out.tif` (libvips, bounded memory; "
    "pip install pyvips pyvips-binary), with `vips tiffsave in.png out.tif --tile --pyramid "
    "--compression jpeg --bigtiff` or with tifffile (`TiffWriter.write(..., tile=(256, 256), "
    "subifds=...)`; saccade.data.slide.write_slide does it)"
)


def _check_size(h: int, w: int, what: str) -> None:
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{what} is {w}x{h} pixels; accepted: at least {MIN_SIDE} px a side")
    if h * w > MAX_PIXELS:
        raise ValueError(
            f"{what} is {w}x{h} = {h * w:,} pixels; accepted: at most {MAX_PIXELS:,} pixels"
        )


def gray_or_rgb(image, name: str = "image") -> np.ndarray:
    """``image`` as a numpy array, checked to be (H, W) or (H, W, 3) uint8; ValueError naming
    it and its dtype and shape otherwise."""
    image = np.asarray(image)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or image.ndim == 3
        and image.shape[2] != 3
    ):
        raise ValueError(
            f"{name} must be (H, W) or (H, W, 3) uint8, got {image.dtype} {image.shape}"
        )
    return image


def check_channels(channels) -> int:
    """1 (grayscale) or 3 (RGB); ValueError otherwise."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels={channels!r}; accepted: 1 (grayscale) or 3 (RGB)")
    return int(channels)


def read_image(path: str | os.PathLike, channels: int = 1) -> np.ndarray:
    """Read an image file as an (H, W) uint8 grayscale array, or (H, W, 3) RGB with
    ``channels=3`` (not yet squared).

    Accepts PNG, JPEG, TIFF (tiled ones too), WebP, BMP and GIF (an animated one gives its
    first frame), in grayscale, RGB, RGBA (alpha composited on black), palette, CMYK, 16-bit
    or float; an EXIF orientation is applied (the pixels come out as a viewer shows them).
    Raises ValueError naming the file for an empty, text or truncated file, another format, a
    file over ``MAX_FILE_BYTES`` (checked before reading) or a size out of range (checked from
    the header, before decoding).
    """
    channels = check_channels(channels)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file {str(path)!r} does not exist or is not a file")
    accepted = f"accepted: an image file ({', '.join(FORMATS)})"
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"file {path.name!r} is empty (0 bytes); {accepted}")
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"file {path.name!r} is {size:,} bytes; accepted: at most {MAX_FILE_BYTES:,} bytes "
            f"({MAX_FILE_BYTES / 2**20:g} MiB) decoded whole; {HOW_TO_TILE}"
        )
    Image.MAX_IMAGE_PIXELS = None  # we check the size ourselves, before decoding
    try:
        with Image.open(path) as im:
            if im.format not in FORMATS:
                raise ValueError(
                    f"image file {path.name!r} is {im.format}; accepted: {', '.join(FORMATS)}"
                )
            if im.height * im.width > MAX_PIXELS:
                raise ValueError(
                    f"image file {path.name!r} is {im.width}x{im.height} = "
                    f"{im.height * im.width:,} pixels; accepted: at most {MAX_PIXELS:,} pixels "
                    f"decoded whole; {HOW_TO_TILE}"
                )
            _check_size(im.height, im.width, f"image file {path.name!r}")
            frame = next(ImageSequence.Iterator(im))  # first frame of an animation
            frame.load()
            ImageOps.exif_transpose(frame, in_place=True)  # as a viewer shows it
            what = f"image file {path.name!r}"
            return pil_to_gray(frame, what) if channels == 1 else pil_to_rgb(frame)
    except UnidentifiedImageError:
        raise ValueError(f"file {path.name!r} is not an image{_sniff(path)}; {accepted}") from None
    except (OSError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        raise ValueError(f"image file {path.name!r} is truncated or corrupt ({e})") from None


def _sniff(path: Path) -> str:
    """What a file Pillow cannot identify seems to hold, as a clause for the message:
    ": it holds HTML", ": it holds text", ": its PNG header says 0x0 pixels", or ""."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if min(w, h) < MIN_SIDE:
            return f": its PNG header says {w}x{h} pixels (at least {MIN_SIDE} px a side needed)"
        return ": its PNG header cannot be read"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<svg")):
        return ": it holds HTML or XML"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return ": it holds text"


def pil_to_gray(im: Image.Image, what: str = "image") -> np.ndarray:
    """A PIL image of any mode as (H, W) uint8 grayscale; alpha is composited on black.
    ``what`` names the image in a refusal (e.g. "image file 'x.tif'")."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return array_to_gray(np.asarray(im), what)
    return np.asarray(_on_black(im).convert("L"), dtype=np.uint8)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode as (H, W, 3) uint8 RGB; alpha is composited on black, a gray
    or 16-bit image is repeated over the three channels."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F", "L", "1"):
        return np.repeat(pil_to_gray(im)[:, :, None], 3, axis=2)
    return np.asarray(_on_black(im).convert("RGB"), dtype=np.uint8)


def _on_black(im: Image.Image) -> Image.Image:
    """A palette or alpha image composited on black (RGBA); any other image as it is."""
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode not in ("RGBA", "LA", "PA"):
        return im
    rgba = im.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)


def array_to_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array of any integer, bool or float dtype
    as (H, W, 3) uint8 (scaled as ``array_to_gray``; alpha composited on black; a gray image
    repeated over the channels)."""
    a = np.asarray(image)
    if a.ndim == 2 or a.ndim == 3 and a.shape[2] == 1:
        return np.repeat(array_to_gray(a)[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(
            f"image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {a.shape}"
        )
    _check_size(a.shape[0], a.shape[1], "image")
    rgb = np.stack([array_to_gray(a[:, :, c]) for c in range(3)], 2)
    if a.shape[2] == 4:
        alpha = array_to_gray(a[:, :, 3]).astype(np.float32)[:, :, None] / 255.0
        rgb = np.rint(rgb * alpha).astype(np.uint8)
    return rgb


def array_to_gray(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array of any integer, bool or float dtype
    as (H, W) uint8. Floats up to 1.0 are taken as [0, 1], others as [0, 255]; integers above
    255 are scaled by their dtype's maximum (16-bit images). NaN or infinite values are refused
    (ValueError naming ``what``)."""
    a = np.asarray(image)
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
        bad = ~np.isfinite(a)
        if bad.any():
            n_nan = int(np.isnan(a).sum())
            raise ValueError(
                f"{what} has {n_nan:,} NaN and {int(bad.sum()) - n_nan:,} infinite values; "
                "accepted: finite numbers only"
            )
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        if a.shape[2] == 1:
            a = a[:, :, 0]
        else:
            alpha = a[:, :, 3:4].astype(np.float64) / _full_scale(a) if a.shape[2] == 4 else 1.0
            rgb = a[:, :, :3].astype(np.float64) * alpha
            a = rgb @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L"
            a = a.astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else a
    if a.ndim != 2:
        raise ValueError(
            f"{what} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {a.shape}"
        )
    _check_size(a.shape[0], a.shape[1], what)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        scale = 255.0 / _full_scale(a)
        return np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    raise ValueError(f"{what} dtype {a.dtype} is not supported; accepted: integer, bool or float")


def _full_scale(a: np.ndarray) -> float:
    """The value that means 'white' for an array: 255 unless its values exceed that."""
    if np.issubdtype(a.dtype, np.integer) and a.max(initial=0) > 255:
        return float(np.iinfo(a.dtype).max)
    if np.issubdtype(a.dtype, np.floating) and a.max(initial=0.0) <= 1.0:
        return 1.0
    return 255.0


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average an (H, W) uint8 image so its longer side is at most ``max_side``
    (a copy is never made when it already fits)."""
    h, w = image.shape[:2]
    f = max_side / max(h, w)
    if f >= 1:
        return image
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def to_square(image: np.ndarray) -> np.ndarray:
    """Pad an (H, W) or (H, W, C) image with black to a centred (S, S[, C]) square,
    S = max(H, W)."""
    h, w = image.shape[:2]
    if h == w:
        return image
    s = max(h, w)
    out = np.zeros((s, s) + image.shape[2:], image.dtype)
    y, x = (s - h) // 2, (s - w) // 2
    out[y : y + h, x : x + w] = image
    return out


def to_model_image(image, channels: int = 1) -> np.ndarray:
    """Any accepted input (array, tensor, PIL image, path) -> square (S, S) uint8 grayscale,
    or (S, S, 3) uint8 RGB with ``channels=3`` (a colour checkpoint's input)."""
    channels = check_channels(channels)
    if isinstance(image, (str, os.PathLike)):
        gray = read_image(image, channels)
    elif isinstance(image, Image.Image):
        _check_size(image.height, image.width, "image")
        gray = pil_to_gray(image) if channels == 1 else pil_to_rgb(image)
    elif hasattr(image, "__array__"):
        a = np.asarray(image)
        gray = array_to_gray(a) if channels == 1 else array_to_rgb(a)
    else:
        raise ValueError(
            f"image must be a numpy array, a PIL image or a file path; got {type(image).__name__}"
        )
    return to_square(gray)


# ----------------------------------------------------------------------------- ground truth
# The generated examples in ``assets/`` each have a JSON sidecar (written by
# ``python -m saccade.data preview``) with the label and the digits' boxes. A copy of an example
# (an upload, or the copy Gradio makes of an example file) is recognised by its content.


def file_digest(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The JSON sidecar of an image file (same name, ``.json``), or None when there is none or
    it is not a valid sidecar (needs ``label``, ``class_name`` and ``boxes`` as (n, 4))."""
    meta_path = Path(path).with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        boxes = np.asarray(meta["boxes"], dtype=np.float64).reshape(-1, 4)
        meta["boxes"] = boxes
        meta["label"] = int(meta["label"])
        meta["class_name"] = str(meta["class_name"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


def sidecar_index(folder: str | os.PathLike) -> dict[str, Path]:
    """sha256 digest -> path of each image in ``folder`` that has a valid JSON sidecar."""
    index = {}
    for path in sorted(Path(folder).glob("*")):
        if path.suffix.lower() in (".png", ".tif", ".tiff", ".bmp", ".webp") and read_sidecar(path):
            index[file_digest(path)] = path
    return index


def find_sidecar(path: str | os.PathLike, index: dict[str, Path]) -> dict | None:
    """The sidecar of the example that ``path`` is a byte-identical copy of, or None.
    ``index`` comes from ``sidecar_index``; the result adds ``example`` (the example's path)."""
    try:
        example = index.get(file_digest(path))
    except OSError:
        return None
    if example is None:
        return None
    meta = read_sidecar(example)
    return None if meta is None else meta | {"example": example}
