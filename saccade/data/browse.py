"""The images a server offers from its own disk (``python app.py --images DIR``): listed by a
bounded walk of DIR, and a user's choice resolved to a file inside DIR or refused.

A choice is a name relative to DIR, as ``list_images`` gives it (``"scans/a.svs"``). It is
never used as a path unchecked: ``resolve`` refuses a NUL byte, an absolute path, a ``..``
part, a hidden part or the cache folder, then resolves the name (``Path.resolve``: symlinks
followed) and refuses a result outside ``DIR.resolve()`` (a symlink out of DIR), then a file
that is not a readable image or slide. Each refusal is a ValueError naming the input, never
the server's absolute paths.

Slides (``saccade.data.slide.is_slide``: tiled TIFF, SVS, OME-TIFF, the formats OpenSlide
reads) are described from their headers, ordinary images from Pillow's header: nothing is
decoded to list a folder.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from .cache import DEFAULT_DIR
from .slide import Slide, is_slide

#: the walk's bounds: image files described, folder levels below DIR
MAX_FILES = 500
MAX_DEPTH = 4
#: directory entries the walk looks at, of any kind, before it stops
MAX_ENTRIES = 20_000
#: the suffixes listed: ordinary images and the slide formats
SUFFIXES = frozenset(
    ".png .jpg .jpeg .tif .tiff .webp .bmp .gif "  # Pillow (tiled TIFFs are slides)
    ".btf .tf8 .svs .ndpi .mrxs .scn .vms .vmu .bif .svslide .czi".split()
)


@dataclass(frozen=True)
class ImageFile:
    """One listed file: ``name`` relative to DIR (``/``-separated), its level-0 size, and
    whether it is read as a slide (tile by tile) or decoded whole; ``path``, the resolved
    file, is for the server's own use (never shown)."""

    name: str
    width: int
    height: int
    slide: bool
    path: Path = field(default=Path(), repr=False, compare=False)

    @property
    def label(self) -> str:
        """Dropdown text: "scans/a.svs (40,000×30,000 px, slide)"."""
        kind = "slide" if self.slide else "image"
        return f"{self.name} ({self.width:,}×{self.height:,} px, {kind})"


def _skipped_folder(name: str) -> bool:
    """Hidden folders and the pyramid cache's (``.saccade-cache``, hidden too)."""
    return name.startswith(".") or name == DEFAULT_DIR


def list_images(
    root: str | os.PathLike,
    max_files: int = MAX_FILES,
    max_depth: int = MAX_DEPTH,
    cache_dir: str | os.PathLike | None = None,
) -> list[ImageFile]:
    """The readable images and slides under ``root``, sorted by name: a walk at most
    ``max_depth`` folders deep that skips hidden files and folders, the cache folder
    (``cache_dir``, default the slide cache ``default_cache_dir()``, when it lies under
    ``root``), symlinks that leave ``root``, and unreadable files; it stops after
    ``max_files`` image files (or ``MAX_ENTRIES`` directory entries). [] when ``root`` is
    not a folder."""
    from .slide_pyramid import default_cache_dir

    base = Path(root).resolve()
    if not base.is_dir():
        return []
    skip = Path(cache_dir or default_cache_dir()).resolve()
    found: list[ImageFile] = []
    seen = examined = 0
    stack = [(base, 0)]
    while stack and examined < max_files and seen < MAX_ENTRIES:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES or examined >= max_files:
                break
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth and not _skipped_folder(entry.name) and path != skip:
                    subfolders.append((path, depth + 1))
                continue
            if path.suffix.lower() not in SUFFIXES:
                continue
            examined += 1
            name = path.relative_to(base).as_posix()
            try:
                found.append(describe(base, name))
            except ValueError:
                continue  # unreadable, or a symlink out of root: not offered
        stack.extend(reversed(subfolders))
    return sorted(found, key=lambda f: f.name)


def resolve(root: str | os.PathLike, name) -> Path:
    """The file that ``name`` (relative to ``root``, as ``list_images`` gives it) is, inside
    ``root``; ValueError naming ``name`` when it is empty, holds a NUL byte, is absolute,
    has a ``..``, hidden or cache part, resolves outside ``root`` (a symlink out of it), or
    is not a file. Readability is ``describe``'s check."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"server image {name!r}: no image chosen; accepted: a listed name")
    if "\x00" in name:
        raise ValueError(f"server image {name!r}: a name with a NUL byte is refused")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(
            f"server image {name!r}: an absolute path is refused; accepted: a name inside the "
            "server's image folder"
        )
    if ".." in parts:
        raise ValueError(f"server image {name!r}: a name with '..' is refused")
    if any(_skipped_folder(p) for p in parts):
        raise ValueError(f"server image {name!r}: hidden and cache files are not offered")
    base = Path(root).resolve()
    try:
        path = (base / Path(*parts)).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ValueError(f"server image {name!r} cannot be resolved ({e})") from None
    if not path.is_relative_to(base):
        raise ValueError(
            f"server image {name!r} is outside the server's image folder (a symlink out of "
            "it?); refused"
        )
    if not path.is_file():
        raise ValueError(f"server image {name!r} does not exist in the server's image folder")
    return path


def describe(root: str | os.PathLike, name) -> ImageFile:
    """``name``'s ``ImageFile`` (``resolve``, then its header read); ValueError naming it
    when it is not a readable image or slide."""
    path = resolve(root, name)
    stat = path.stat()
    found = _describe(str(path), stat.st_size, stat.st_mtime_ns)
    if isinstance(found, str):
        raise ValueError(f"server image {name!r} is not a readable image or slide: {found}")
    slide, width, height = found
    return ImageFile(str(name).replace("\\", "/"), width, height, slide, path)


@functools.lru_cache(maxsize=2048)
def _describe(path: str, size: int, mtime_ns: int) -> tuple[bool, int, int] | str:
    """(is a slide, width, height) from the file's header, or why it cannot be read;
    cached by the file's size and time."""
    if size == 0:
        return "it is empty (0 bytes)"
    try:
        if is_slide(path):
            with Slide(path, cache_bytes=0) as slide:
                h, w = slide.shape
            return True, int(w), int(h)
        Image.MAX_IMAGE_PIXELS = None  # as image_io.read_image: only the header is read here
        with Image.open(path) as im:
            return False, int(im.width), int(im.height)
    except ValueError as e:
        return str(e)
    except Exception as e:  # Pillow's UnidentifiedImageError, a truncated header
        if type(e).__name__ == "UnidentifiedImageError":
            return "neither Pillow nor the slide readers recognise its format"
        return f"its header cannot be read ({type(e).__name__})"
