"""The folder dataset's data cost with and without the pyramid cache, the peak memory of
training on 8192² photos, and the cache's disk footprint.

    OMP_NUM_THREADS=1 python scripts/folder_bench.py --out runs/folder-bench [--json PATH]

For each side (1024, 4096, 8192) it writes ``--n`` RGB canvases of the marks example
(``scripts/make_folder_example.py``) as PNGs, then reads every sample twice through
``saccade.train.collate`` exactly as a training DataLoader worker does for the example's
model (crop side 0.05..0.08 of the image, k = 32: the crops read pyramid level
``finest_level`` and coarser): epoch 1 builds the cache, epoch 2 is the figure (ms per
sample). Without the cache every epoch decodes the PNG, pads and resizes, builds the pyramid
and the proxy. Peak RSS: a child process trains 4 steps of batch 8 on the 8192² images and
validates on one test image (1 torch thread, no DataLoader worker), with and without the
cache, after a first pass has built it; the peak resident memory (``VmHWM``) of that process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]
import make_folder_example as example  # noqa: E402

import saccade  # noqa: E402
from saccade.glimpse import finest_level  # noqa: E402
from saccade.train.loop import collate  # noqa: E402

MIN_SCALE, K = 0.05, 32


def write_images(root: Path, side: int, n: int) -> None:
    for i in range(n):
        cls = example.CLASSES[i % 2]
        path = root / cls / f"{i}.png"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        image, _ = example.canvas(np.random.default_rng([7, side, i]), cls, side)
        cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])


def epoch_ms(ds, first: int) -> float:
    t = time.perf_counter()
    for i in range(len(ds)):
        collate([ds[i]], first_level=first)
    return (time.perf_counter() - t) * 1000 / len(ds)


def data_cost(root: Path, side: int, cache_dir: Path) -> dict:
    first = finest_level(side, MIN_SCALE, K)
    row = {"side": side, "first_level": first}
    for cached in (False, True):
        ds = saccade.make_dataset(
            "folder",
            root=root,
            split="train",
            size=side,
            holdout=0.01,
            proxy_size=64,
            cache=cached,
            cache_dir=cache_dir,
            levels_from=first,
        )
        e1 = epoch_ms(ds, first)
        e2 = epoch_ms(ds, first)
        key = "cache" if cached else "no_cache"
        row[f"{key}_epoch1_ms"], row[f"{key}_epoch2_ms"] = round(e1, 1), round(e2, 1)
        if cached:
            images = sum(p.stat().st_size for p, _ in ds.items)
            row["images_mb"] = round(images / 1e6, 1)
            row["cache_mb"] = round(ds.pyramid_cache.nbytes() / 1e6, 1)
            row["cache_over_images"] = round(ds.pyramid_cache.nbytes() / images, 3)
            raw = side * side * 3 * len(ds)
            row["decoded_mb"] = round(raw / 1e6, 1)
            row["n"] = len(ds)
    return row


CHILD = """
import sys, torch
torch.set_num_threads(1)
from saccade.train import TrainConfig, fit
cfg = TrainConfig.from_settings(dataset="folder", root=sys.argv[1], size=8192, holdout=0.01, proxy_size=64,
    where_grid=16, min_scale=0.05, max_scale=0.08, batch_size=8, steps=4, epochs=1,
    workers=0, val_n=1, test_n=0, out=sys.argv[2], cache=sys.argv[3] == "1",
    cache_dir=sys.argv[4], log_every=1)
fit(cfg)
# VmHWM: this process's own peak (ru_maxrss would include the parent's, kept across exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(int(hwm.split()[1]))
"""


def peak_rss_mb(root: Path, out: Path, cached: bool, cache_dir: Path) -> float:
    args = [str(root), str(out / "rss"), "1" if cached else "0", str(cache_dir)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    )
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/folder-bench"))
    p.add_argument("--sides", type=int, nargs="+", default=[1024, 4096, 8192])
    p.add_argument("--n", type=int, default=8, help="images per side")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    rows = []
    for side in args.sides:
        root = args.out / f"images-{side}"
        write_images(root, side, args.n)
        rows.append(data_cost(root, side, args.out / f"cache-{side}"))
        print(json.dumps(rows[-1]), flush=True)
    result = {"data": rows}
    if 8192 in args.sides:
        root = args.out / "images-8192"
        # the test image the children validate on is cached too: the cached child then
        # decodes nothing (the uncached one decodes everything it reads)
        test = saccade.make_dataset(
            "folder", root=root, split="test", size=8192, holdout=0.01, proxy_size=64,
            cache_dir=args.out / "cache-8192", levels_from=finest_level(8192, MIN_SCALE, K),
        )  # fmt: skip
        for i in range(len(test)):
            test[i]
        rss = {}
        for cached in (True, False):
            rss["cache" if cached else "no_cache"] = peak_rss_mb(
                root, args.out, cached, args.out / "cache-8192"
            )
        result["train_peak_rss_mb_8192"] = rss
        print(json.dumps(rss), flush=True)
    result["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("\n| side | no cache, ms/sample | cache, ms/sample | cache / PNGs on disk |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['side']}² | {r['no_cache_epoch2_ms']} | {r['cache_epoch2_ms']} | "
            f"{r['cache_over_images']:.2f} ({r['cache_mb']} / {r['images_mb']} MB) |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
