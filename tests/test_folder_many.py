"""A folder of 5,000 slides (issue 35's bad input): listing it and reading the first batch
keep open files bounded (each slide's header is read and closed; at most ``OPEN_SLIDES``
stay open for reading), the listing's memory a few KB per slide and its time linear."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

import saccade
from saccade.data import folder
from saccade.data.slide import write_slide

pytestmark = pytest.mark.slow  # lists 5,000 files (about 10 s)


def slide_tree(root, n: int):
    """ROOT/a and ROOT/b, n/2 tiny slides each (48 x 64 gray, 16² deflate tiles): one file
    written per class, the others hard links to it (copies where links are refused)."""
    rng = np.random.default_rng(0)
    for cname in "ab":
        (root / cname).mkdir(parents=True)
        first = write_slide(
            root / cname / "0.tif", rng.integers(0, 255, (48, 64), np.uint8), 16, "deflate"
        )
        for i in range(1, n // 2):
            try:
                os.link(first, root / cname / f"{i}.tif")
            except OSError:
                (root / cname / f"{i}.tif").write_bytes(first.read_bytes())
    return root


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


class FilesWatch:
    """The most files this process held open while the ``with`` block ran (sampled)."""

    def __enter__(self):
        self.peak, self._stop = open_files(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, open_files())
            time.sleep(0.0005)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def listed(root) -> tuple[object, float]:
    t0 = time.perf_counter()
    ds = saccade.make_dataset("folder", root=root, split="train", cache=False)
    return ds, time.perf_counter() - t0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_a_folder_of_5000_slides_lists_and_reads_in_bounded_files_memory_and_time(tmp_path):
    few = slide_tree(tmp_path / "few", 500)
    many = slide_tree(tmp_path / "many", 5000)
    _, few_s = listed(few)
    before = open_files()
    with FilesWatch() as watch:
        ds, many_s = listed(many)
    assert len(ds.items) == 4000 and len(ds.slides) == 5000 and not ds.skipped
    # each header is read and closed: never more than a file or two open at once
    assert watch.peak <= before + 2, (before, watch.peak)
    # linear: the 5,000 take about 10x the 500 (not 100x), a few ms a slide
    assert many_s / 5000 < 3 * few_s / 500 + 1e-3, (few_s, many_s)
    assert many_s / 5000 < 0.02, many_s

    tracemalloc.start()
    try:
        listed(many)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5000 * 4096, f"{peak / 2**20:.1f} MB to list 5,000 slides"

    # the first batches: 64 samples of 64 slides, at most OPEN_SLIDES of them open
    with FilesWatch() as watch:
        for i in range(64):
            ds[i]
    assert len(ds._open_slides) == folder.OPEN_SLIDES
    assert watch.peak <= before + folder.OPEN_SLIDES + 2, (before, watch.peak)
