"""``python -m saccade.bench --suite readers``: ``saccade.Slide`` against tiffslide and
OpenSlide on the same files, and ``saccade.predict`` on a slide over HTTP and S3 against the
same slide on local disk.

Files (``write_files``, written once into ``--slides-dir``): an RGB "tissue" of side
``side`` (4096 by default: blurred noise on bright glass, so that a JPEG tile costs what a
stained slide's does) as a tiled pyramidal TIFF with JPEG tiles, the same with deflate tiles
(lossless: every reader must give the same pixels), and an SVS-like file (Aperio's
ImageDescription, JPEG tiles, reduced pages), each with 256² tiles and levels halved down to
256 px as separate pages, which all three readers open.

**read_region** (``measure_reads``, one fresh process per file, the readers taking turns
pass by pass): ``repeats`` regions of 256² and of 512² at seeded random level-0 locations,
the same for every reader;

- *cold*: a fresh handle (empty tile caches) reads each region once; *warm*: the same
  handle reads them again (what its tile cache keeps); each the fastest of ``passes`` (5)
  passes, the one least disturbed by the machine's other processes (as ``timeit`` advises;
  ``median_s`` and ``spread_s`` keep the others). The operating system's page cache is not
  dropped: "cold" is a cold handle on a file the kernel may hold, not a cold disk;
- *1 process* reads them in the benchmark's process, *2 workers* through a DataLoader with
  2 workers, each opening its own handle (cold: a pass of fresh workers, their start and
  their opening included; warm: a later pass of the same persistent workers), the regions
  sent back to the main process as a training loop's are. A cold pass of fresh workers is
  mostly their start: ``workers_start_s``, a pass of fresh workers that read nothing;
- regions/s, and MB/s of decoded pixels (size² x 3 bytes, 10^6 B a MB); ``spread_s``: the
  fastest and slowest pass; ``open_s``: opening a handle (the import excluded); ``sha1``: of
  the regions' pixels, equal across readers on the lossless file.

Each reader at its defaults: ``saccade.Slide`` with its 256 MB tile cache, tiffslide (no
tile cache of its own), OpenSlide (its own tile cache per handle). OpenSlide's RGBA regions
are made RGB (its alpha is 255 on these files), which is part of its cost here.

**predict** (``measure_predict``, one fresh process each): ``saccade.predict`` of the
shipped ``cluttered-sum-learnt`` model on a 4096² JPEG pyramid of a cluttered canvas, from
local disk, over HTTP from a Range server on loopback, and over S3 from moto's server on
loopback (``saccade.bench.servers``). *cold*: the process's first predict, its remote
block cache empty (the model already loaded); *warm*: the median of the next ``repeats``
predicts by the same path or URL (each opens the slide again: for a URL its size is asked
again and its blocks come from the disk cache, as a second look at a slide would).

**epoch** (``bench_epoch``): the per-image cost of two training epochs of the default model
on a folder of 4 links to the JPEG file, from local disk and from S3 (HTTP has no listing).

Targets (``readers_summary``): ``saccade.Slide``'s time within 1.2x the faster of tiffslide
and OpenSlide, in every condition of every file both read; remote warm predict within
1.5x local; remote cold predict within 2 s on loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..data.slide_writer import write_svs

#: the readers compared, and what the table calls them
READERS = {"saccade": "saccade.Slide", "tiffslide": "tiffslide", "openslide": "OpenSlide"}
#: region sides, level-0 pixels
SIZES = (256, 512)
#: the files read: name -> how it is written
FILES = {"jpeg": "pyramidal TIFF, JPEG tiles", "deflate": "pyramidal TIFF, deflate tiles"}
FILES["svs"] = "SVS-like (Aperio description), JPEG tiles"
#: the model predicted with, and the side of its slide
CHECKPOINT = "checkpoints/cluttered-sum-learnt"
PREDICT_SIDE = 4096
#: the targets
SLIDE_RATIO, WARM_RATIO, COLD_S = 1.2, 1.5, 2.0


def tissue(side: int, seed: int = 0) -> np.ndarray:
    """(side, side, 3) uint8: bright glass around a block of blurred coloured noise."""
    rng = np.random.default_rng(seed)
    image = np.full((side, side, 3), 235, np.uint8)
    a, b = side // 8, side - side // 8
    block = rng.integers(0, 220, (b - a, b - a, 3), dtype=np.uint8)
    image[a:b, a:b] = cv2.GaussianBlur(block, (5, 5), 0)
    return image


def write_files(
    work_dir: str | os.PathLike, side: int = 4096, predict: bool = True
) -> dict[str, Path]:
    """The read benchmark's files (module docstring) in ``work_dir``, written once: {name:
    path}; and, with ``predict``, "predict": the predict benchmark's slide."""
    from ..data.slide import write_slide

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    paths = {
        name: work / f"tissue-{side}-{name}.{'svs' if name == 'svs' else 'tif'}" for name in FILES
    }
    image = None
    for name, path in paths.items():
        if path.exists():
            continue
        image = tissue(side) if image is None else image
        if name == "svs":
            write_svs(path, image)
        else:
            tmp = write_slide(path.with_suffix(".tmp.tif"), image, 256, name, pyramid="pages")
            os.replace(tmp, path)
    if not predict:
        return paths
    paths["predict"] = work / f"cluttered-{PREDICT_SIDE}-jpeg.tif"
    if not paths["predict"].exists():
        tmp = write_slide(paths["predict"].with_suffix(".tmp.tif"), predict_image(), 256, "jpeg")
        os.replace(tmp, paths["predict"])
    return paths


def predict_image() -> np.ndarray:
    """The cluttered-sum test canvas 1, upsampled to PREDICT_SIDE² on faint texture (what
    tests/test_remote.py predicts on)."""
    from ..data import make_dataset

    canvas = make_dataset("cluttered", task="sum", split="test", size=100)[1]["image"]
    image = cv2.resize(canvas, (PREDICT_SIDE,) * 2, interpolation=cv2.INTER_LINEAR)
    texture = np.random.default_rng(0).integers(0, 40, image.shape, dtype=np.uint8)
    return np.maximum(image, texture)


class Reader:
    """One open handle of ``reader`` on ``path``: ``read(x, y, size)`` -> (size, size, 3)
    uint8 RGB of level 0 at (x, y)."""

    def __init__(self, reader: str, path: str):
        self.reader = reader
        if reader == "saccade":
            from ..data.slide import Slide

            self.handle = Slide(path)
        elif reader == "tiffslide":
            import tiffslide

            self.handle = tiffslide.TiffSlide(path)
        elif reader == "openslide":
            import openslide

            self.handle = openslide.OpenSlide(path)
        else:
            raise ValueError(f"reader={reader!r}; accepted: {sorted(READERS)}")

    def read(self, x: int, y: int, size: int) -> np.ndarray:
        if self.reader == "saccade":
            return self.handle.read_region(0, x, y, size, size)
        if self.reader == "tiffslide":
            return self.handle.read_region((x, y), 0, (size, size), as_array=True)
        rgba = np.asarray(self.handle.read_region((x, y), 0, (size, size)))
        return np.ascontiguousarray(rgba[..., :3])

    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0."""
        if self.reader == "saccade":
            return self.handle.shape
        w, h = self.handle.dimensions
        return h, w

    def close(self) -> None:
        self.handle.close()


def locations(shape: tuple[int, int], size: int, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` seeded random (x, y) of a size² region inside a level 0 of ``shape``."""
    h, w = shape
    rng = np.random.default_rng([seed, size])
    return [
        (int(x), int(y))
        for x, y in zip(
            rng.integers(0, w - size + 1, n), rng.integers(0, h - size + 1, n), strict=True
        )
    ]


class _Regions:
    """A map-style dataset of regions for a DataLoader: item i is region ``where[i]``, read
    by a handle that each worker opens on its first item (``Reader``)."""

    def __init__(self, reader: str, path: str, where: list[tuple[int, int]], size: int):
        self.reader, self.path, self.where, self.size = reader, path, where, size
        self._handle: Reader | None = None

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._handle is None:
            self._handle = Reader(self.reader, self.path)
        return self._handle.read(*self.where[i], self.size)


class _Nothing:
    """A dataset of ``n`` items that reads nothing: a pass of it is the workers' start."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _seconds(run, *args) -> float:
    """The seconds ``run(*args)`` takes."""
    t0 = time.perf_counter()
    run(*args)
    return time.perf_counter() - t0


def _read_all(handle: Reader, where: list[tuple[int, int]], size: int) -> list[np.ndarray]:
    return [handle.read(x, y, size) for x, y in where]


def _drain(loader) -> None:
    for _ in loader:
        pass


def measure_reads(
    path: str,
    repeats: int,
    readers: tuple[str, ...] = tuple(READERS),
    workers: int = 2,
    passes: int = 5,
) -> list[dict]:
    """In this (fresh) process: the read_region rows of every reader on ``path`` (module
    docstring). The readers take turns, pass by pass, so that a change of the machine's load
    falls on all of them alike. Each cold figure is the fastest of ``passes`` passes (each
    with fresh handles, or fresh workers), each warm one the fastest of ``passes`` passes
    after a first one."""
    import torch

    torch.set_num_threads(1)
    shape = {}
    for r in readers:  # imported before anything is timed
        handle = Reader(r, path)
        shape[r] = handle.shape()
        handle.close()
    open_s = {r: [] for r in readers}
    for _ in range(passes):
        for r in readers:
            t0 = time.perf_counter()
            Reader(r, path).close()
            open_s[r].append(time.perf_counter() - t0)
    procs = f"{workers} worker" + ("s" if workers != 1 else "")
    rows = []
    for size in SIZES:
        where = locations(shape[readers[0]], size, repeats)
        times: dict[tuple[str, str, str], list[float]] = {}

        def add(key: tuple[str, str, str], seconds: float, times=times) -> None:
            times.setdefault(key, []).append(seconds)

        for _ in range(passes):
            for r in readers:  # a fresh handle: its caches empty
                handle = Reader(r, path)
                add((r, "1 process", "cold"), _seconds(_read_all, handle, where, size))
                handle.close()
        handles = {r: Reader(r, path) for r in readers}
        pixels = {r: _read_all(h, where, size) for r, h in handles.items()}  # fills caches
        for _ in range(passes):  # the same handle again
            for r, h in handles.items():
                add((r, "1 process", "warm"), _seconds(_read_all, h, where, size))
        for h in handles.values():
            h.close()
        datasets = {r: _Regions(r, path, where, size) for r in readers}
        for _ in range(passes):  # fresh workers, each opening its own handle
            for r in readers:
                loader = torch.utils.data.DataLoader(
                    datasets[r], batch_size=None, num_workers=workers
                )
                add((r, procs, "cold"), _seconds(_drain, loader))
        loaders = {
            r: torch.utils.data.DataLoader(
                datasets[r], batch_size=None, num_workers=workers, persistent_workers=True
            )
            for r in readers
        }
        for loader in loaders.values():  # the first pass starts and warms them
            _drain(loader)
        for _ in range(passes):  # the same workers and handles
            for r, loader in loaders.items():
                add((r, procs, "warm"), _seconds(_drain, loader))
        del loaders
        start = []  # what fresh workers cost before they read anything
        for _ in range(passes):
            nothing = _Nothing(len(where))
            loader = torch.utils.data.DataLoader(nothing, batch_size=None, num_workers=workers)
            start.append(_seconds(_drain, loader))
        for (r, procs_, mode), seconds in times.items():
            best, n = min(seconds), len(where)
            digest = hashlib.sha1(b"".join(np.ascontiguousarray(p).tobytes() for p in pixels[r]))
            row = {
                "reader": READERS[r],
                "procs": procs_,
                "size": size,
                "mode": mode,
                "s": best,
                "regions_per_s": n / best,
                "mb_per_s": n * size * size * 3 / 1e6 / best,
                "median_s": statistics.median(seconds),
                "spread_s": [min(seconds), max(seconds)],
                "open_s": statistics.median(open_s[r]),
                "regions": n,
                "passes": passes,
                "sha1": digest.hexdigest(),
            }
            if procs_ != "1 process" and mode == "cold":
                row["workers_start_s"] = min(start)
            rows.append(row)
    return rows


def measure_predict(where: str, checkpoint: str, repeats: int) -> dict:
    """In this (fresh) process: ``saccade.predict`` on ``where`` (a path or a URL), the first
    (cold) and the median of the next ``repeats`` (warm), the model loaded beforehand."""
    import torch

    import saccade

    torch.set_num_threads(1)
    model = saccade.load(checkpoint)
    t0 = time.perf_counter()
    first = saccade.predict(model, where, slide_cache_dir=False)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        again = saccade.predict(model, where, slide_cache_dir=False)
        warm.append(time.perf_counter() - t0)
    return {
        "cold_s": cold,
        "warm_s": statistics.median(warm),
        "label": int(first.label),
        "same_as_cold": bool(np.array_equal(first.probs, again.probs)),
    }


def _child(kind: str, env: dict | None = None, **kwargs):
    """``measure_<kind>(**kwargs)`` in a fresh Python process; its result."""
    cmd = [sys.executable, "-m", "saccade.bench.readers", kind, json.dumps(kwargs)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_reads(
    paths: dict[str, Path],
    repeats: int,
    readers: tuple[str, ...] = tuple(READERS),
    workers: int = 2,
    passes: int = 5,
) -> list[dict]:
    """The read_region rows of every reader on every file (a fresh process per file)."""
    from tqdm import tqdm

    rows = []
    for name in tqdm(FILES, desc="read_region", unit="file"):
        got = _child(
            "reads",
            path=str(paths[name]),
            repeats=repeats,
            readers=list(readers),
            workers=workers,
            passes=passes,
        )
        rows.extend({"phase": "read_region", "file": name} | r for r in got)
    return rows


def bench_predict(path: Path, repeats: int, checkpoint: str = CHECKPOINT) -> list[dict]:
    """The predict rows: the slide at ``path`` from local disk, over HTTP and over S3."""
    from .servers import range_server, s3_server

    rows = []
    with tempfile.TemporaryDirectory() as blocks:

        def run(where_name: str, where: str) -> None:
            env = os.environ | {"SACCADE_REMOTE_CACHE": os.path.join(blocks, where_name)}
            got = _child("predict", env=env, where=where, checkpoint=checkpoint, repeats=repeats)
            rows.append({"phase": "predict", "file": "predict", "where": where_name} | got)

        run("local", str(path))
        with range_server(path.parent) as url:
            run("http", f"{url}/{path.name}")
        with s3_server() as s3:
            s3.upload("bench", {f"slides/{path.name}": path})
            run("s3", f"s3://bench/slides/{path.name}")
    return rows


def bench_epoch(
    path: Path, work: Path, samples: int = 32, epochs: int = 2, workers: int = 2
) -> list[dict]:
    """The per-image cost of training epochs (``python -m saccade.train``: the default
    model, ``samples`` a epoch, batches of 8, ``workers`` DataLoader workers) on a folder of
    2 classes of 2 slides (links to ``path``), from local disk and from S3 (moto on
    loopback), a fresh process and an empty block cache each: one row per epoch (the first
    opens every slide and fetches its blocks; each epoch starts fresh workers)."""
    from .servers import s3_server

    folder = work / "epoch-folder"
    for cname in "ab":
        (folder / cname).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            link = folder / cname / f"{i}{path.suffix}"
            if not link.exists():
                try:
                    os.link(path, link)
                except OSError:
                    link.write_bytes(path.read_bytes())
    rows = []
    with tempfile.TemporaryDirectory() as tmp, s3_server() as s3:
        s3.upload(
            "bench",
            {f"epoch/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*.tif"))},
        )
        for where, root in (("local", str(folder)), ("s3", "s3://bench/epoch/")):
            out = Path(tmp) / f"epoch-{where}"
            args = ["--dataset", "folder", "--root", root, "--train-length", str(samples)]
            args += ["--batch-size", "8", "--epochs", str(epochs), "--workers", str(workers)]
            args += ["--val-n", "2", "--test-n", "0", "--cache-dir", str(Path(tmp) / "levels")]
            env = os.environ | {"SACCADE_REMOTE_CACHE": str(Path(tmp) / f"blocks-{where}")}
            cmd = [sys.executable, "-m", "saccade.train", *args, "--out", str(out)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"training from {root} failed:\n{done.stderr[-3000:]}")
            history = json.loads(Path(f"{out}.json").read_text())["history"]
            for event in history:
                rows.append(
                    {
                        "phase": "epoch",
                        "file": "epoch",
                        "where": where,
                        "epoch": event["epoch"],
                        "epoch_s": event["epoch_s"],
                        "per_image_ms": 1e3 * event["epoch_s"] / samples,
                        "samples": samples,
                    }
                )
    return rows


def bench_readers(
    slides_dir: str | os.PathLike | None = None,
    repeats: int = 16,
    side: int = 4096,
    workers: int = 2,
    passes: int = 5,
    checkpoint: str = CHECKPOINT,
) -> list[dict]:
    """Write the files (once) and measure: the read_region rows (``repeats`` regions of each
    size, ``passes`` passes), then the predict rows (``repeats // 4`` warm predicts)."""
    slides_dir = Path(slides_dir or Path(tempfile.gettempdir()) / "saccade-bench-readers")
    paths = write_files(slides_dir, side)
    rows = bench_reads(paths, repeats, workers=workers, passes=passes)
    rows += bench_predict(paths["predict"], max(1, repeats // 4), checkpoint)
    rows += bench_epoch(paths["jpeg"], slides_dir, workers=workers)
    return rows


def readers_table(rows: list[dict]) -> str:
    """Markdown tables: regions/s (MB/s) per file, region, cold/warm and processes, a column
    per reader; then predict's cold and warm seconds per place."""
    reads = [r for r in rows if r["phase"] == "read_region"]
    readers = [name for name in READERS.values() if any(r["reader"] == name for r in reads)]
    lines = [
        "| file | region | pass | processes | "
        + " | ".join(f"{n} regions/s (MB/s)" for n in readers)
        + " |"
    ]
    lines.append("|" + "---|" * (4 + len(readers)))
    keys = sorted(
        {(r["file"], r["size"], r["mode"], r["procs"]) for r in reads},
        key=lambda k: (list(FILES).index(k[0]), k[1], k[3], k[2]),
    )
    by = {(r["file"], r["size"], r["mode"], r["procs"], r["reader"]): r for r in reads}
    for key in keys:
        cells = []
        for name in readers:
            r = by.get((*key, name))
            cells.append(f"{r['regions_per_s']:.0f} ({r['mb_per_s']:.0f})" if r else "-")
        f, size, mode, procs = key
        lines.append(f"| {f} | {size}² | {mode} | {procs} | " + " | ".join(cells) + " |")
    if not reads:
        lines = []
    pred = [r for r in rows if r["phase"] == "predict"]
    if pred:
        lines += ["", "| predict from | cold s | warm s | label |", "|---|---|---|---|"]
        for r in pred:
            lines.append(f"| {r['where']} | {r['cold_s']:.3f} | {r['warm_s']:.3f} | {r['label']} |")
    epochs = [r for r in rows if r["phase"] == "epoch"]
    if epochs:
        lines += ["", "| training from | epoch | s | ms per image |", "|---|---|---|---|"]
        for r in epochs:
            lines.append(
                f"| {r['where']} | {r['epoch']} | {r['epoch_s']:.2f} | {r['per_image_ms']:.1f} |"
            )
    return "\n".join(lines).strip("\n")


def readers_summary(rows: list[dict]) -> list[str]:
    """The targets against the rows, a line each: met or missed, by how much."""
    lines = []
    reads = [r for r in rows if r["phase"] == "read_region"]
    by = {(r["file"], r["size"], r["mode"], r["procs"], r["reader"]): r for r in reads}
    ours, others = READERS["saccade"], [READERS["tiffslide"], READERS["openslide"]]
    for f in FILES:
        ratios = {}
        for (file, size, mode, procs, reader), r in by.items():
            if file != f or reader != ours:
                continue
            theirs = [by.get((file, size, mode, procs, o)) for o in others]
            if any(t is None for t in theirs):
                continue
            ratios[f"{size}² {mode} {procs}"] = r["s"] / min(t["s"] for t in theirs)
        if not ratios:
            continue
        missed = {k: v for k, v in ratios.items() if v > SLIDE_RATIO}
        lines.append(
            f"{f}: saccade.Slide's time / the faster of tiffslide and OpenSlide's: "
            f"{min(ratios.values()):.2f}-{max(ratios.values()):.2f}x over {len(ratios)} conditions "
            f"(target <= {SLIDE_RATIO}x each: "
            + (
                "met"
                if not missed
                else "missed in " + ", ".join(f"{k} {v:.3f}x" for k, v in missed.items())
            )
            + ")"
        )
    start = [r["workers_start_s"] for r in reads if "workers_start_s" in r]
    cold = [r["s"] for r in reads if "workers_start_s" in r]
    if start:
        lines.append(
            f"a cold pass of fresh workers takes {1e3 * statistics.median(cold):.0f} ms (the "
            f"median over readers and sizes), of which their start, reading nothing, "
            f"{1e3 * statistics.median(start):.0f} ms"
        )
    sha = {}
    for r in reads:
        sha.setdefault((r["file"], r["size"]), set()).add(r["sha1"])
    for f in FILES:
        same = [len(v) == 1 for (file, _), v in sha.items() if file == f]
        if same:
            lines.append(
                f"{f}: the readers' regions are {'the same pixels' if all(same) else 'not the same pixels'}"
            )
    pred = {r["where"]: r for r in rows if r["phase"] == "predict"}
    if "local" in pred:
        local = pred["local"]
        for where in ("http", "s3"):
            if where not in pred:
                continue
            r = pred[where]
            ratio = r["warm_s"] / local["warm_s"]
            lines.append(
                f"predict over {where}: warm {r['warm_s']:.3f} s = {ratio:.2f}x local's "
                f"{local['warm_s']:.3f} s (target <= {WARM_RATIO}x: {'met' if ratio <= WARM_RATIO else 'missed'}); "
                f"cold {r['cold_s']:.2f} s (target <= {COLD_S:g} s: {'met' if r['cold_s'] <= COLD_S else 'missed'}; "
                f"local cold {local['cold_s']:.2f} s)"
            )
    epochs = {(r["where"], r["epoch"]): r for r in rows if r["phase"] == "epoch"}
    for (where, epoch), r in sorted(epochs.items()):
        local = epochs.get(("local", epoch))
        if where != "local" and local is not None:
            lines.append(
                f"training from {where}, epoch {epoch}: {r['per_image_ms']:.1f} ms per image = "
                f"{r['per_image_ms'] / local['per_image_ms']:.2f}x local's "
                f"{local['per_image_ms']:.1f} ms (no target)"
            )
    return lines


if __name__ == "__main__":
    kind, kwargs = sys.argv[1], json.loads(sys.argv[2])
    result = measure_reads(**kwargs) if kind == "reads" else measure_predict(**kwargs)
    print(json.dumps(result))
