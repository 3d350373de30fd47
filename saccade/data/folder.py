"""``make_dataset("folder", root=PATH, split=...)``: your own images in ImageFolder layout.

    ROOT/CLASS_A/*.png|jpg|jpeg|tif|tiff|webp|bmp      one subfolder per class
    ROOT/CLASS_B/...
or, with a given split:
    ROOT/train/CLASS_A/...   ROOT/test/CLASS_A/...

or, with ``labels=CSV`` (``--labels``; ``saccade.data.labels``), any tree (a flat folder of
slides, a folder of folders) and a table of ``slide,label`` rows, optionally with a ``split``
or ``fold`` column (``fold=K`` holds fold K out as the test split); the classes are then the
sorted labels, and rows or files that do not match are one warning.

Class names are the sorted subfolder names (of ``train/`` with a given split); folders and
files whose names start with a dot are ignored (the cache, ``.saccade-cache``, lives there).
Without ``train/`` and ``test/``, a seeded hold-out fraction of each class is the test split
(``holdout``, ``holdout_seed``; the same files whatever the training seed, so evaluation never
sees a training image).

Each image is read through ``saccade.image_io.read_image`` (PNG, JPEG, TIFF including tiled
ones, WebP, BMP; EXIF orientation applied; any mode converted to ``channels``: 1 grayscale or
3 RGB, alpha on black), then made a square of side ``size``: **padded with black to a
centred square of its longer side, then resized to ``size``** (area averaging when it
shrinks, bilinear when it grows). Mixed sizes and modes therefore all become (size, size)
or (size, size, 3) uint8, and crops, being fractions of the side, span the same share of
every image. ``size`` defaults to the longest side among all the images of both splits (read
from their headers), so that nothing is shrunk. Images with a side under ``MIN_SIDE`` pixels
are refused (they cannot hold a crop's detail).

**Slides** (tiled TIFF, BigTIFF, OME-TIFF, SVS, and the formats OpenSlide reads:
``saccade.data.slide.is_slide``) are never decoded, padded or resized: a slide's sample has
no ``image`` but a ``pyramid`` (``saccade.data.slide_pyramid.SlidePyramid``, the virtual
square of its native pixels) and the proxy from its coarsest level at least the proxy's side.
Each process (DataLoader worker, DDP rank) opens its own handles, at most ``OPEN_SLIDES`` at
once, each with a tile cache of ``SLIDE_CACHE_BYTES``. ``size`` (the side the other images
are resized to) defaults to the longest side of the untiled images, or of the slides when
there are only slides. The 268-megapixel cap of ``saccade.image_io`` stays for untiled
files; it does not apply to slides.

**A bucket** (``root="s3://bucket/slides/"``, ``gs://...``; ``file://`` is a local path): its
files are listed once (``saccade.data.remote.RemoteTree``: one paged listing, not a request
per folder) and walked as a local tree is, with or without ``labels``; every file is a slide,
read by range requests (``saccade.data.remote``), and one with an untiled image's suffix
(``.png``, ``.jpg``, ...) is skipped, counted in the warning. http(s):// has no listing and is
refused. Made levels are cached in ``saccade.data.slide_pyramid.default_cache_dir()`` unless
``cache_dir`` says.

**Physical scale** (``mpp=M``, ``--mpp``): every slide is read at M µm per pixel, whatever its
own magnification (``Slide.mpp``; ``default_mpp`` for a slide whose file records none, else a
ValueError naming it), as a **virtual canvas of a fixed side in µm** (``canvas_um``, default:
the largest slide's longer side in µm, over both splits, so that no slide is cut): each slide
centred in it, the rest a virtual pad of its background. Every sample's square is then
``canvas_um / M`` pixels (``size``), and a crop, a fraction of it, covers the same tissue in
every slide. Nothing is resampled ahead: ``SlidePyramid`` reads each window from the level
nearest its spacing. Untiled images record no scale here: with ``mpp`` they are skipped.

**Dark on bright** (``invert=True``, ``--invert``): every input is read as its negative
(255 - pixels: images, their cache entries, slides' windows and proxies), so that a model
sees bright ink on dark, as the shipped ones were trained; the spec (and so the checkpoint)
records it, and ``saccade.predict`` inverts what it is given in the same way.

The spec records ``side_range``: the smallest and largest longer side of the training
split's inputs as the model reads them (a slide's native side, ``size`` for the others), what
``saccade.infer.input_warnings`` compares an image with.

Bad input: a missing or empty root, or a class without a readable image, raises ValueError
naming it. Files with an image suffix whose header cannot be read (not an image, another
format, a size out of ``image_io``'s range) are skipped, with one warning listing them.

A sample: ``label``, ``proxy`` ((p, p) or (3, p, p) float32, noise included), ``path``, no
``boxes`` (localisation metrics skip it), and either ``image`` (the (size, size[, 3]) uint8
image: a read-only memory map of the cache, or decoded) or, when the cache serves only levels
from ``levels_from`` > 0 on (what the crops of a training model read), no ``image`` and a
``pyramid`` (``saccade.Pyramid`` of memory-mapped levels) instead. With the cache on, a
sample also has ``pyramid``; ``collate`` and ``evaluate`` use it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .. import image_io
from ..glimpse import Pyramid, max_level_of
from . import dicom, remote
from .base import DatasetSpec, sample_rng
from .cache import DEFAULT_DIR, PyramidCache
from .labels import read_labels
from .mnist import check_split
from .proxy import add_noise, check_noise, make_proxy
from .slide import Slide, is_slide
from .slide_meta import check_mpp
from .slide_pyramid import SlidePyramid, default_cache_dir

#: file suffixes read as images (case-insensitive); the last ones are slide formats
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".btf", ".svs")
SUFFIXES += (".ndpi", ".mrxs", ".scn", ".bif", ".czi", ".vms", ".svslide")
#: the suffixes a file of a remote folder (``s3://...``) is read with, as a slide
SLIDE_SUFFIXES = (".tif", ".tiff") + SUFFIXES[SUFFIXES.index(".btf") :]
#: a remote folder's slide headers read at once while listing it
REMOTE_HEADERS = 16
#: slides a process keeps open at once (the least recently read is closed)
OPEN_SLIDES = 8
#: the tile cache of each open slide, bytes
SLIDE_CACHE_BYTES = 32 * 2**20
#: the smallest image side accepted, in pixels
MIN_SIDE = 32
#: how an image becomes the model's square (part of the cache key)
RESIZE_RULE = "pad-centre-black,area-down,linear-up"


@dataclass
class FolderSpec(DatasetSpec):
    """``DatasetSpec`` plus what rebuilds a folder dataset (saved in checkpoints)."""

    root: str = ""
    channels: int = 3
    holdout: float = 0.2
    holdout_seed: int = 0
    class_names: list[str] = field(default_factory=list)
    cache: bool = True
    cache_dir: str | None = None
    levels_from: int = 0
    labels: str | None = None
    fold: int | None = None
    # [min, max] longer side of the training split's inputs as the model read them: a slide's
    # native side, ``size`` for the others (resized to it); what predict's warnings compare with
    side_range: list[int] | None = None
    # the physical scale slides are read at (µm per pixel; None: their own pixels), the scale
    # of a slide that records none, the canvas's side in µm; inputs read as their negative
    mpp: float | None = None
    default_mpp: float | None = None
    canvas_um: float | None = None
    invert: bool = False


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))


def _image_files(folder: Path) -> list[Path]:
    """The images and slides under ``folder`` (hidden ones left out): files of ``SUFFIXES``,
    and folders of DICOM ``.dcm`` instances, each one slide (``saccade.data.dicom``)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if (p.is_file() and p.suffix.lower() in SUFFIXES or dicom.is_dicom_folder(p))
        and all(_visible(q) for q in p.relative_to(folder).parents if q != Path("."))
        and _visible(p)
    )


def _header(path: Path) -> tuple[int, int] | tuple[int, int, str, tuple | None] | str:
    """(width, height) from the header, (width, height, "slide", mpp) for a slide (mpp: its
    ``Slide.mpp``, or None), or why the file cannot be used. A file of a remote folder is a slide (opened by range requests)."""
    if isinstance(path, remote.RemotePath) and path.suffix not in SLIDE_SUFFIXES:
        return f"an untiled {path.suffix} image: a remote folder is read as slides only"
    if is_slide(path):
        try:
            with Slide(path, cache_bytes=0) as slide:
                h, w = slide.shape
                mpp = slide.mpp
        except ValueError as e:
            return f"not a readable slide ({e})"
        if min(w, h) < MIN_SIDE:
            return f"{w}x{h} is smaller than {MIN_SIDE} px a side (a crop needs detail)"
        return w, h, "slide", mpp
    Image.MAX_IMAGE_PIXELS = None  # image_io's own cap is checked instead
    try:
        with Image.open(path) as im:
            if im.format not in image_io.FORMATS:
                return f"{im.format} is not accepted"
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"not a readable image ({type(e).__name__})"
    if min(w, h) < MIN_SIDE:
        return f"{w}x{h} is smaller than {MIN_SIDE} px a side (a crop needs detail)"
    if w * h > image_io.MAX_PIXELS:
        return (
            f"{w}x{h} is over {image_io.MAX_PIXELS:,} pixels, too large to decode whole: make "
            f"it a tiled pyramid, read tile by tile as a slide, with `python -m saccade.data "
            f"tile {path.name} {path.stem}.tif` (libvips, bounded memory)"
        )
    return w, h


def _headers(paths: list[Path]) -> list:
    """``_header`` of each path; those of a remote folder ``REMOTE_HEADERS`` at a time (in
    threads: each is a request or two, waiting on the network)."""
    if not any(isinstance(p, remote.RemotePath) for p in paths):
        return [_header(p) for p in paths]
    with ThreadPoolExecutor(REMOTE_HEADERS) as pool:
        return list(pool.map(_header, paths))


class FolderDataset(torch.utils.data.Dataset):
    """One split of an ImageFolder tree (module docstring). ``len`` is the number of images
    of the split, or ``length`` (indices cycle over the images)."""

    name = "folder"
    task = "classify"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        size: int | None = None,
        channels: int = 3,
        proxy_size: int | None = None,
        proxy_noise: float = 0.0,
        seed: int = 0,
        holdout: float = 0.2,
        holdout_seed: int = 0,
        length: int | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        levels_from: int = 0,
        class_names: list[str] | None = None,
        task: str = "classify",
        full_size: int | None = None,
        labels: str | os.PathLike | None = None,
        fold: int | None = None,
        side_range: list[int] | None = None,
        mpp: float | None = None,
        default_mpp: float | None = None,
        canvas_um: float | None = None,
        invert: bool = False,
    ):
        if root is None:
            raise ValueError("dataset 'folder' needs root=PATH (one subfolder per class)")
        # the spec keeps the root as given: a relative one (runs/folder-marks) stays valid
        # in another clone of the repository
        self.root_arg = str(root)
        if remote.is_url(root) and remote.RemotePath(str(root)).protocol == "file":
            root = str(root).split("://", 1)[1]
        if remote.is_url(root):  # a bucket's folder: walked from one listing (remote.RemoteTree)
            self.root = remote.RemoteTree(str(root)).root
        else:
            self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ValueError(f"root={str(root)!r} is not a folder")
        if task != "classify":
            raise ValueError(f"task={task!r}: a folder dataset's task is 'classify'")
        self.split = check_split(split)
        self.channels = image_io.check_channels(channels)
        self.proxy_noise = check_noise(proxy_noise)
        self.seed = int(seed)
        if not 0.0 < float(holdout) < 1.0:
            raise ValueError(f"holdout={holdout!r} must be in (0, 1)")
        self.holdout, self.holdout_seed = float(holdout), int(holdout_seed)
        self.levels_from = int(levels_from)
        self._open_slides: OrderedDict[Path, SlidePyramid] = OrderedDict()
        self.mpp = None if mpp is None else check_mpp(mpp, "mpp (--mpp)")
        self.default_mpp = (
            None if default_mpp is None else check_mpp(default_mpp, "default_mpp (--default-mpp)")
        )
        if self.mpp is None and (default_mpp is not None or canvas_um is not None):
            raise ValueError(
                f"default_mpp={default_mpp!r}, canvas_um={canvas_um!r} need mpp=M (--mpp): "
                "the scale slides are read at"
            )
        self.canvas_um = None if canvas_um is None else float(canvas_um)
        self.invert = bool(invert)

        self.labels = None if labels is None else str(labels)
        self.fold = None if fold is None else int(fold)
        self.label_problems: list[str] = []
        if labels is None:
            if fold is not None:
                raise ValueError(f"fold={fold!r} needs labels=CSV with a fold column")
            names = self._find_classes(class_names)
            entries = self._folder_entries(names)
        else:
            names, entries = self._label_entries(class_names)
        per_class, sides = self._scan(names, entries)
        if self.mpp is not None:
            sides = [self._set_canvas(per_class)]
        self.items = self._split_items(names, per_class, self.split)
        self._set_sizes(size, full_size, proxy_size, sides, length)
        # side_range (a spec's) is recomputed from the files: the same files give the same
        train_items = (
            self.items if self.split == "train" else self._split_items(names, per_class, "train")
        )
        read = [
            self._sides[p] if p in self.slides and self.mpp is None else self.size
            for p, _ in train_items
        ]
        self.side_range = [min(read), max(read)]
        self._open_cache(cache, cache_dir)

    def _find_classes(self, class_names: list[str] | None) -> list[str]:
        """The class names: the sorted subfolders (of ``train/`` with a given split), checked
        against ``class_names`` (a checkpoint's); sets ``given_split`` and ``_class_names``."""
        given = (self.root / "train").is_dir() and (self.root / "test").is_dir()
        self.given_split = given
        class_root = self.root / "train" if given else self.root
        dirs = _class_dirs(class_root)
        if not dirs:
            raise ValueError(
                f"root={self.root_arg!r} has no class subfolders (ImageFolder layout: one "
                "subfolder of images per class)"
            )
        names = [d.name for d in dirs]
        self._set_classes(names, class_names, "the folder's classes", f"root={self.root_arg!r} has")
        if given:
            split_root = self.root / self.split
            extra = sorted({d.name for d in _class_dirs(split_root)} - set(names))
            if extra:
                raise ValueError(f"{split_root} has classes {extra} that train/ does not have")
        return names

    def _set_classes(self, names: list[str], class_names, what: str, where: str) -> None:
        """Keep ``names`` as the classes: ValueError unless they are the checkpoint's
        ``class_names`` (when given) and at least two."""
        if class_names is not None and list(class_names) != names:
            raise ValueError(f"{what} {names} are not the checkpoint's {list(class_names)}")
        if len(names) < 2:
            raise ValueError(f"{where} one class ({names[0]!r}); need >= 2")
        self._class_names = names

    def _folder_entries(self, names: list[str]) -> list[tuple[Path, int, str]]:
        """(path, label, "SPLIT/CLASS") of every candidate file of every class folder of both
        splits ("/CLASS" without a given split)."""
        entries = []
        for split_name in ("train", "test") if self.given_split else (None,):
            base = self.root / split_name if split_name else self.root
            for label, cname in enumerate(names):
                for path in _image_files(base / cname) if (base / cname).is_dir() else []:
                    entries.append((path, label, f"{split_name or ''}/{cname}"))
        return entries

    def _label_entries(
        self, class_names: list[str] | None
    ) -> tuple[list[str], list[tuple[Path, int, str]]]:
        """The class names and the (path, label, "SPLIT/CLASS") of the files that
        ``labels`` (a CSV, ``saccade.data.labels``) lists, anywhere under the root; what
        does not fit is one warning. Sets ``given_split`` (the CSV has a split or fold)."""
        table = read_labels(self.labels, self.root, _image_files(self.root), self.fold)
        if table.problems:
            warnings.warn(
                f"labels {self.labels}: " + "; ".join(table.problems),
                RuntimeWarning,
                stacklevel=3,  # the caller of FolderDataset(...)
            )
        self.label_problems = table.problems
        names = table.class_names
        self._set_classes(names, class_names, "the labels' classes", f"labels={self.labels!r} name")
        self.given_split = any(split is not None for _, _, split in table.entries)
        entries = [
            (path, names.index(label), f"{split or ''}/{label}")
            for path, label, split in table.entries
        ]
        return names, entries

    def _scan(
        self, names: list[str], entries: list[tuple[Path, int, str]]
    ) -> tuple[dict[str, list[tuple[Path, int]]], list[int]]:
        """The candidate files ``entries`` ((path, label, "SPLIT/CLASS")), read by their
        header: the readable ones as {"SPLIT/CLASS": [(path, label)]} ("/CLASS" without a
        given split), and their longer sides (which set the default size; each file's in
        ``_sides``). The unreadable ones are skipped, in ``skipped``, with one warning."""
        skipped: list[str] = []
        per_class: dict[str, list[tuple[Path, int]]] = {}
        sides, slide_sides = [], []
        self.slides: set[Path] = set()
        self._sides: dict[Path, int] = {}
        self._mpps: dict[Path, tuple[float, float] | None] = {}
        heads = _headers([path for path, _, _ in entries])
        for (path, label, key), head in zip(entries, heads, strict=True):
            if self.mpp is not None and not isinstance(head, str) and len(head) == 2:
                head = (
                    "an untiled image records no physical scale here: with mpp (--mpp) only "
                    f"slides are read (make it one: python -m saccade.data tile {path.name} "
                    f"{path.stem}.tif)"
                )
            if isinstance(head, str):
                skipped.append(f"{path.relative_to(self.root)} ({head})")
                continue
            if len(head) == 4:  # a slide: read natively, never resized
                self.slides.add(path)
                self._mpps[path] = head[3]
                slide_sides.append(max(head[:2]))
            else:
                sides.append(max(head))
            self._sides[path] = max(head[:2])
            per_class.setdefault(key, []).append((path, label))
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable file(s) under {self.root}: "
                + "; ".join(skipped),
                RuntimeWarning,
                stacklevel=3,  # the caller of FolderDataset(...)
            )
        self.skipped = skipped
        return per_class, sides or slide_sides

    def _set_canvas(self, per_class: dict[str, list[tuple[Path, int]]]) -> int:
        """With ``mpp``: each slide's scale (``_slide_mpp``, checked: a slide without one
        and no ``default_mpp``, or with an absurd one, is a ValueError naming it), the canvas
        (``canvas_um``, default: the largest slide's longer side in µm) and its side in
        pixels at ``mpp``, returned."""
        missing, absurd = [], []
        self._slide_mpp: dict[Path, float] = {}
        for path in (p for files in per_class.values() for p, _ in files):
            found = self._mpps.get(path)
            if found is None and self.default_mpp is None:
                missing.append(str(path.relative_to(self.root)))
                continue
            value = self.default_mpp if found is None else (found[0] + found[1]) / 2
            try:
                self._slide_mpp[path] = check_mpp(value, "its MPP")
            except ValueError:
                absurd.append(f"{path.relative_to(self.root)} ({value:g} µm per pixel)")
        if missing:
            raise ValueError(
                f"mpp={self.mpp:g}: {len(missing)} slide(s) under {self.root} record no "
                f"physical scale (no MPP in their metadata): {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}; give their scale with --default-mpp "
                "(default_mpp=), or train without --mpp"
            )
        if absurd:
            raise ValueError(
                f"{len(absurd)} slide(s) under {self.root} record an MPP outside (0, 100] µm "
                f"per pixel: {', '.join(absurd[:5])}"
            )
        if self.canvas_um is None:
            self.canvas_um = max(self._sides[p] * m for p, m in self._slide_mpp.items())
        return max(1, round(self.canvas_um / self.mpp))

    def _split_items(
        self, names: list[str], per_class: dict[str, list[tuple[Path, int]]], split: str
    ) -> list[tuple[Path, int]]:
        """The (path, label) pairs of ``split``, class by class: the split's own folder (or
        the labels' split or fold), or the hold-out share of each class (``_holdout``);
        ValueError for a class with none."""
        items: list[tuple[Path, int]] = []
        for cname in names:
            if self.given_split:
                files = per_class.get(f"{split}/{cname}", [])
                where = self.root / split / cname
            else:
                files = self._holdout(per_class.get(f"/{cname}", []), split)
                where = self.root / cname
            if self.labels is not None:
                where = f"the rows of {self.labels} found under {self.root}"
                where += f" (fold {self.fold} held out)" if self.fold is not None else ""
            if not files:
                raise ValueError(
                    f"class {cname!r} has no readable image for split {split!r} in {where}"
                )
            items.extend(files)
        return items

    def _set_sizes(self, size, full_size, proxy_size, sides: list[int], length) -> None:
        """``size`` (default: the longest side found), ``side``, ``proxy_size`` (default 64
        from 1024 px on, else 32) and ``length`` (default: the number of images), checked."""
        self.size = int(size) if size is not None else max(sides)
        if self.mpp is not None and self.size != max(sides):
            warnings.warn(
                f"size={size} is ignored with mpp={self.mpp:g}: every slide is read as a "
                f"canvas of {self.canvas_um:g} µm, {max(sides)} px a side at that scale",
                RuntimeWarning,
                stacklevel=3,
            )
            self.size = max(sides)
        elif self.slides and size is not None and self.size != max(sides):
            self._warn_size_and_slides()
        if full_size is not None and int(full_size) != self.size:
            raise ValueError(f"full_size={full_size!r}: a folder dataset's side is its size")
        if self.size < MIN_SIDE:
            raise ValueError(f"size={size!r} must be at least {MIN_SIDE}")
        self.side = self.size
        if proxy_size is None:
            proxy_size = 64 if self.size >= 1024 else 32
        if not 4 <= int(proxy_size) <= self.size:
            raise ValueError(f"proxy_size={proxy_size!r} must be between 4 and size {self.size}")
        self.proxy_size = int(proxy_size)
        self.length = int(length) if length is not None else len(self.items)
        if self.length < 1:
            raise ValueError(f"length={length!r} must be a positive integer")

    def _warn_size_and_slides(self) -> None:
        """``size`` does not resize a slide: say so, with the slides' own sides."""
        native = sorted(self._sides[p] for p in self.slides)
        untiled = len(self._sides) - len(native)
        span = f"{native[0]}" if native[0] == native[-1] else f"{native[0]} to {native[-1]}"
        applies = (
            f"it resizes only the {untiled} untiled image(s)"
            if untiled
            else "this folder holds only slides, so it changes no crop"
        )
        warnings.warn(
            f"size={self.size} is ignored for the {len(native)} slide(s) under {self.root}: "
            f"a slide is read at its native size ({span} px a side) and a crop is a fraction "
            f"of each slide's side; {applies}",
            RuntimeWarning,
            stacklevel=4,  # the caller of FolderDataset(...)
        )

    def _open_cache(self, cache: bool, cache_dir: str | os.PathLike | None) -> None:
        """``pyramid_cache``: the ``saccade.data.cache.PyramidCache`` keyed by what makes a
        sample, or None with the cache off."""
        self.use_cache = bool(cache)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.pyramid_cache: PyramidCache | None = None
        if self.use_cache:
            directory = Path(cache_dir) if cache_dir is not None else self.root / DEFAULT_DIR
            if cache_dir is None and isinstance(self.root, remote.RemotePath):
                directory = default_cache_dir()  # a slide's made levels, on local disk
            self.pyramid_cache = PyramidCache(
                directory,
                {
                    "size": self.size,
                    "channels": self.channels,
                    "proxy_size": self.proxy_size,
                    "resize": RESIZE_RULE,
                }
                | ({"invert": True} if self.invert else {}),
            )

    def _holdout(self, files: list[tuple[Path, int]], split: str) -> list[tuple[Path, int]]:
        """This split's share of one class: a seeded permutation of its files, the first
        ceil(holdout * n) of them the test split (at least one, unless the class has one
        image; then it goes to train)."""
        n = len(files)
        order = np.random.default_rng([self.holdout_seed, n]).permutation(n)
        n_test = min(max(1, math.ceil(self.holdout * n)), n - 1) if n > 1 else 0
        chosen = order[:n_test] if split == "test" else order[n_test:]
        return [files[i] for i in sorted(chosen)]

    # -- the interface of GeneratedDataset ---------------------------------------------------

    @property
    def n_classes(self) -> int:
        return len(self._class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def spec(self) -> FolderSpec:
        return FolderSpec(
            self.name,
            self.task,
            self.split,
            self.size,
            self.side,
            self.proxy_size,
            self.proxy_noise,
            self.seed,
            self.length,
            root=self.root_arg,
            channels=self.channels,
            holdout=self.holdout,
            holdout_seed=self.holdout_seed,
            class_names=self.class_names,
            cache=self.use_cache,
            cache_dir=self.cache_dir,
            levels_from=self.levels_from,
            labels=self.labels,
            fold=self.fold,
            side_range=list(self.side_range),
            mpp=self.mpp,
            default_mpp=self.default_mpp,
            canvas_um=self.canvas_um,
            invert=self.invert,
        )

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of sample ``index``; stream 1 draws the proxy noise."""
        return sample_rng(self.seed, self.split, index, stream)

    # -- reading ------------------------------------------------------------------------------

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """One file as the model's input: (size, size) or (size, size, 3) uint8, by the rule
        of the module docstring."""
        image = image_io.read_image(path, self.channels)
        if self.invert:  # before the black padding: the pad is as dark as the inverted ground
            image = 255 - image
        image = image_io.to_square(image)
        side = image.shape[0]
        if side != self.size:
            interp = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
            out = cv2.resize(image, (self.size, self.size), interpolation=interp)
            image = out.reshape((self.size, self.size) + image.shape[2:])
        return np.ascontiguousarray(image)

    def __getstate__(self) -> dict:
        """Pickled (to a DataLoader worker), without open slides: each process opens its own."""
        return dict(self.__dict__, _open_slides=OrderedDict())

    def slide_pyramid(self, path: Path) -> SlidePyramid:
        """The open ``SlidePyramid`` of a slide of this dataset (opened on first use; at most
        OPEN_SLIDES kept; a slide that changed on disk is reopened by its ``Slide``)."""
        pyramid = self._open_slides.get(path)
        if pyramid is None:
            cache = self.pyramid_cache
            cache_dir = cache.directory if cache is not None and cache.enabled else False
            slide = Slide(path, cache_bytes=SLIDE_CACHE_BYTES)
            # a corrupt tile warns once, naming the file, and reads black: training goes on
            pyramid = SlidePyramid(
                slide,
                self.channels,
                cache_dir,
                errors="warn",
                invert=self.invert,
                mpp=self.mpp,  # None without --mpp, and then so are the other two
                canvas_um=self.canvas_um,
                default_mpp=self.default_mpp,
            )
            self._open_slides[path] = pyramid
            while len(self._open_slides) > OPEN_SLIDES:
                _, old = self._open_slides.popitem(last=False)
                old.slide.close()
        self._open_slides.move_to_end(path)
        return pyramid

    def __getitem__(self, index: int) -> dict:
        if not 0 <= int(index) < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        path, label = self.items[int(index) % len(self.items)]
        if path in self.slides:
            pyramid = self.slide_pyramid(path)
            proxy = pyramid.proxy(self.proxy_size)
            return {
                "label": int(label),
                "path": str(path),
                "pyramid": pyramid,
                "proxy": add_noise(proxy, self.proxy_noise, self.rng(index, 1)),
            }
        first = min(self.levels_from, max_level_of((self.size, self.size)))
        sample: dict = {"label": int(label), "path": str(path)}
        cache = self.pyramid_cache
        cache = cache if cache is not None and cache.enabled else None
        relpath = path.relative_to(self.root).as_posix()
        hit = None
        if cache is not None:
            stat = os.stat(path)
            hit = cache.load(relpath, stat, first)
        if hit is not None:
            proxy, levels, shape = hit
            sample["pyramid"] = Pyramid.from_levels(shape, levels)
            if first == 0:
                sample["image"] = levels[0]
        else:
            image = self.read(path)
            proxy = make_proxy(image, self.proxy_size)
            sample["image"] = image
            if cache is not None:
                pyramid = Pyramid(image)
                cache.store(relpath, stat, proxy, pyramid.levels, first)
                sample["pyramid"] = pyramid
        sample["proxy"] = add_noise(proxy, self.proxy_noise, self.rng(index, 1))
        return sample
