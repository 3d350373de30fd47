"""An epoch's cost per image on a folder of slides, against the slides' size.

    python scripts/slide_epoch.py --slides-dir /tmp/benchslides

Makes two folders of links to the slides ``python -m saccade.bench --suite slides`` wrote
(class ``a``: the JPEG slide, ``b``: the deflate one, 4 links each), one of the 6,400²
slides and one of the 102,400² ones, and reads every training sample 4 times, as an epoch
does: ``collate`` of the sample (its proxy from the slide) and the forward pass of
``checkpoints/cluttered-sum-learnt`` with its 4 crops read from the slide. Prints the
medians per image of the last pass (the slides' tiles are in the tile cache by then).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).parent.parent)]
import saccade  # noqa: E402
from saccade.train.loop import collate  # noqa: E402


def epoch_ms(root: Path, model, passes: int = 4) -> tuple[float, float]:
    """(data, forward) median ms per image of the last of ``passes`` over ``root``."""
    ds = saccade.make_dataset(
        "folder", root=root, split="train", channels=1, proxy_size=32, cache=False
    )
    for _ in range(passes):
        data, forward = [], []
        for i in range(len(ds)):
            t0 = time.perf_counter()
            batch = collate([ds[i]])
            t1 = time.perf_counter()
            with torch.no_grad():
                model(batch["image"], batch["proxy"], 4)
            data.append(t1 - t0)
            forward.append(time.perf_counter() - t1)
    return 1e3 * statistics.median(data), 1e3 * statistics.median(forward)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides-dir", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = saccade.load("checkpoints/cluttered-sum-learnt")
    with tempfile.TemporaryDirectory() as tmp:
        for side in (6400, 102400):
            root = Path(tmp) / str(side)
            for cname, comp in (("a", "jpeg"), ("b", "deflate")):
                (root / cname).mkdir(parents=True)
                for i in range(4):
                    (root / cname / f"{i}.tif").symlink_to(
                        args.slides_dir.resolve() / f"slide-{side}-{comp}.tif"
                    )
            data, forward = epoch_ms(root, model)
            print(f"{side}²: data {data:.2f} ms, forward with its crops {forward:.2f} ms per image")


if __name__ == "__main__":
    main()
