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

What is refused is said, not hidden: ``scan_images`` returns the ``Listing`` of the files
offered and of the files refused, each with its reason (``LINK_OUT``: a symlink whose target
lies outside DIR; ``NOT_IMAGE``: not an image or slide, by its suffix or its content;
``UNREADABLE``: empty, truncated, corrupt, or not permitted), and ``Listing.note`` says how
many of each, as the app prints at start-up and shows under its listing.

``follow_links=True`` (the app's ``--images-follow-links``, an administrator's opt-in) offers
symlinks that lead out of DIR, files and folders alike: a chosen name is still refused with a
``..``, an absolute path, a NUL byte or a hidden part, but where its links lead is accepted.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
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


#: why a file is refused (``Refused.reason``, ``Listing.refused``)
LINK_OUT = "a link out of DIR"
NOT_IMAGE = "not an image or slide"
UNREADABLE = "unreadable"
#: the format messages of ``_describe`` (and of the slide reader) that mean "not an image"
_NOT_IMAGE_MESSAGES = ("recognise its format", "in a format nothing here reads", "not accepted")


class Refused(ValueError):
    """A server image refused: the message names it; ``reason`` is LINK_OUT, NOT_IMAGE,
    UNREADABLE, or "" (a bad name: NUL, absolute, '..', hidden, missing)."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


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


@dataclass
class Listing:
    """What a walk of DIR found: ``files`` offered (sorted by name) and ``refused``: (name
    relative to DIR, reason: LINK_OUT, NOT_IMAGE or UNREADABLE), sorted by name."""

    files: list[ImageFile] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many files were refused for each reason (only the reasons that occur)."""
        return dict(Counter(reason for _, reason in self.refused))

    def note(self, follow_links_flag: str = "--images-follow-links") -> str:
        """One sentence: "3 files under DIR were refused: a link out of DIR: 2 (e.g. 'a.svs';
        offered with --images-follow-links); unreadable: 1 (e.g. 'b.tif')."; "" when none."""
        if not self.refused:
            return ""
        parts = []
        for reason, n in sorted(self.counts().items()):
            example = next(name for name, r in self.refused if r == reason)
            extra = f"; offered with {follow_links_flag}" if reason == LINK_OUT else ""
            parts.append(f"{reason}: {n} (e.g. {example!r}{extra})")
        n = len(self.refused)
        were = "files under DIR were" if n > 1 else "file under DIR was"
        return f"{n} {were} refused: " + "; ".join(parts) + "."


def list_images(
    root: str | os.PathLike,
    max_files: int = MAX_FILES,
    max_depth: int = MAX_DEPTH,
    cache_dir: str | os.PathLike | None = None,
    follow_links: bool = False,
) -> list[ImageFile]:
    """The readable images and slides under ``root``, sorted by name: ``scan_images(...)
    .files``."""
    return scan_images(root, max_files, max_depth, cache_dir, follow_links).files


def scan_images(
    root: str | os.PathLike,
    max_files: int = MAX_FILES,
    max_depth: int = MAX_DEPTH,
    cache_dir: str | os.PathLike | None = None,
    follow_links: bool = False,
) -> Listing:
    """The ``Listing`` of ``root``: a walk at most ``max_depth`` folders deep that skips
    hidden files and folders and the cache folder (``cache_dir``, default the slide cache
    ``default_cache_dir()``, when it lies under ``root``), offers the readable images and
    slides, and refuses, with their reason, symlinks that leave ``root`` (unless
    ``follow_links``: then links to files and folders out of ``root`` are followed), files
    that are not images or slides and unreadable files; it stops after ``max_files``
    candidate files (or ``MAX_ENTRIES`` directory entries). Empty when ``root`` is not a
    folder."""
    from .slide_pyramid import default_cache_dir

    base = Path(root).resolve()
    if not base.is_dir():
        return Listing()
    skip = Path(cache_dir or default_cache_dir()).resolve()
    found: list[ImageFile] = []
    refused: list[tuple[str, str]] = []
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
            name = path.relative_to(base).as_posix()
            try:
                is_link = entry.is_symlink()
                link_out = is_link and not path.resolve().is_relative_to(base)
                is_dir = entry.is_dir()  # a link's target
            except (OSError, RuntimeError):  # a link loop, a folder not permitted
                refused.append((name, UNREADABLE))
                continue
            if link_out and not follow_links:
                refused.append((name, LINK_OUT))
                examined += path.suffix.lower() in SUFFIXES  # counted as it always was
                continue
            if is_dir:
                # a link to a folder inside DIR is skipped: that folder is walked itself
                inside_link = is_link and not link_out
                if depth < max_depth and not _skipped_folder(entry.name) and path != skip:
                    if not inside_link:
                        subfolders.append((path, depth + 1))
                continue
            if path.suffix.lower() not in SUFFIXES:
                refused.append((name, NOT_IMAGE))
                continue
            examined += 1
            try:
                found.append(describe(base, name, follow_links))
            except Refused as e:
                refused.append((name, e.reason or UNREADABLE))
        stack.extend(reversed(subfolders))
    return Listing(sorted(found, key=lambda f: f.name), sorted(refused))


def resolve(root: str | os.PathLike, name, follow_links: bool = False) -> Path:
    """The file that ``name`` (relative to ``root``, as ``list_images`` gives it) is, inside
    ``root``; ``Refused`` (a ValueError) naming ``name`` when it is empty, holds a NUL byte,
    is absolute, has a ``..``, hidden or cache part, resolves outside ``root`` (a symlink out
    of it; accepted with ``follow_links``), or is not a file. Readability is ``describe``'s
    check."""
    if not isinstance(name, str) or not name.strip():
        raise Refused(f"server image {name!r}: no image chosen; accepted: a listed name")
    if "\x00" in name:
        raise Refused(f"server image {name!r}: a name with a NUL byte is refused")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise Refused(
            f"server image {name!r}: an absolute path is refused; accepted: a name inside the "
            "server's image folder"
        )
    if ".." in parts:
        raise Refused(f"server image {name!r}: a name with '..' is refused")
    if any(_skipped_folder(p) for p in parts):
        raise Refused(f"server image {name!r}: hidden and cache files are not offered")
    base = Path(root).resolve()
    try:
        path = (base / Path(*parts)).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise Refused(f"server image {name!r} cannot be resolved ({e})") from None
    if not path.is_relative_to(base) and not follow_links:
        raise Refused(
            f"server image {name!r} is outside the server's image folder (a symlink out of "
            "it?); refused (the server offers links out of its folder only when started with "
            "--images-follow-links)",
            LINK_OUT,
        )
    if not path.is_file():
        raise Refused(f"server image {name!r} does not exist in the server's image folder")
    return path


def describe(root: str | os.PathLike, name, follow_links: bool = False) -> ImageFile:
    """``name``'s ``ImageFile`` (``resolve``, then its header read); ``Refused`` (a
    ValueError) naming it when it is not a readable image or slide."""
    path = resolve(root, name, follow_links)
    stat = path.stat()
    found = _describe(str(path), stat.st_size, stat.st_mtime_ns)
    if isinstance(found, str):
        reason = NOT_IMAGE if any(m in found for m in _NOT_IMAGE_MESSAGES) else UNREADABLE
        raise Refused(f"server image {name!r} is not a readable image or slide: {found}", reason)
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
