"""What the zoom benchmark's proxy shows of its cues, per canvas side (docs/zoom.md, "What the
proxy shows"): on the first N test canvases (default 100), the share of cues whose box on the
128² proxy holds a pixel darker than their region's grey (the black square under the digit or
mark, where one of a proxy pixel's samples lands on it) and the share that hold a pixel
brighter than it (the cue's strokes).

    python scripts/zoom_proxy_marks.py [--n 100] [--proxy-size 128] [--render max|mean]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import saccade
from saccade.data.zoom import DEFAULT_RENDER, RENDERS

SIDES = (16384, 32768, 65536, 131072)
#: a pixel differs from its region's grey by more than this, on the proxy's [0, 1] scale
MARGIN = 0.5 / 255


def marks(side: int, n: int, proxy_size: int, render: str = DEFAULT_RENDER) -> tuple[float, float]:
    """(share of cues with a darker pixel, share with a brighter one) on the proxy."""
    ds = saccade.make_dataset(
        "zoom", split="test", size=side, seed=0, proxy_size=proxy_size, render=render
    )
    f = proxy_size / side
    dark = bright = cues = 0
    for i in range(n):
        s = ds[i]
        p = s["proxy"]
        for cue, region in zip(s["cue_boxes"], s["region_boxes"], strict=True):
            x0, y0 = (int(v * f) for v in cue[:2])
            x1, y1 = (math.ceil(v * f) for v in cue[2:])
            r0, q0, r1, q1 = (int(v * f) for v in region)
            values, counts = np.unique(p[q0:q1, r0:r1], return_counts=True)
            grey = values[np.argmax(counts)]  # the region's own grey: its most common value
            patch = p[y0:y1, x0:x1]
            dark += bool(patch.min() < grey - MARGIN)
            bright += bool(patch.max() > grey + MARGIN)
            cues += 1
    return dark / cues, bright / cues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="test canvases per side")
    parser.add_argument("--proxy-size", type=int, default=128, help="the proxy's side")
    parser.add_argument(
        "--render", default=DEFAULT_RENDER, choices=RENDERS, help="the canvases' renderer"
    )
    args = parser.parse_args()
    print(
        "| canvas side | cues with the dark square on the proxy | cues brighter than their region |"
    )
    print("|---|---|---|")
    for side in SIDES:
        dark, bright = marks(side, args.n, args.proxy_size, args.render)
        print(f"| {side:,}² | {dark:.0%} | {bright:.0%} |")


if __name__ == "__main__":
    main()
