"""Generate the "marks" example: a folder dataset of large RGB canvases (ImageFolder layout)
whose class is the colour of one small dot that the proxy cannot resolve.

Each canvas (4096² by default) is a smooth, faintly tinted, nearly black ground with ``N_MARKS``
light discs of radius 64 px, each faintly tinted too. Every disc has a dot of radius 8 px at
its centre: grey on all of them but one, whose dot is red, green or blue: the class. Dots
are of one luma (ITU-R 601), so a grayscale view cannot tell them apart; in a 64² proxy a
dot is under 5% of a proxy pixel, a shift of at most 7 levels, below the discs' own random
tints (±10 levels a channel). The discs are the bright blobs the proxy does show: a model
must look at them, one by one, closely enough to see a 16 px dot.

    python scripts/make_folder_example.py --out runs/folder-marks            # 100 + 30 / class
    python scripts/make_folder_example.py --out assets --examples 2          # assets/ examples

Deterministic: canvas i of split s is drawn from the generator seeded with (seed, s, i).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("blue", "green", "red")  # sorted: ImageFolder's class order
#: RGB of each class's dot, chosen with the grey dots' luma (0.299 R + 0.587 G + 0.114 B ~ 150)
DOT_RGB = {"red": (255, 103, 103), "green": (62, 208, 62), "blue": (135, 135, 255)}
GREY_DOT = (150, 150, 150)
DISC_GREY = 200
N_MARKS = 4
DISC_RADIUS = 64
DOT_RADIUS = 12
TINT = 10  # the discs' and the ground's random tint, levels per channel
SPLITS = {"train": 0, "test": 1}


def canvas(rng: np.random.Generator, cls: str, side: int = 4096) -> tuple[np.ndarray, list]:
    """One (side, side, 3) uint8 RGB canvas of class ``cls`` and its marks
    [(x, y, is_the_coloured_one), ...]."""
    # the ground: smooth dark grey 5..15 with a faint per-channel tint, so that the discs
    # are the bright parts of the proxy (on a ground of 25..40 the posterior's cells stayed
    # uniform and a model stayed at chance: 750 steps of 32, one run)
    low = rng.uniform(5, 15, (8, 8, 1)) + rng.uniform(-3, 3, (8, 8, 3))
    low = cv2.resize(low.astype(np.float32), (256, 256), interpolation=cv2.INTER_CUBIC)
    low = np.clip(np.rint(low), 0, 255).astype(np.uint8)
    image = cv2.resize(low, (side, side), interpolation=cv2.INTER_LINEAR)
    scale = side / 4096
    r_disc, r_dot = max(4, round(DISC_RADIUS * scale)), max(1, round(DOT_RADIUS * scale))
    margin = 3 * r_disc
    marks: list[tuple[int, int, bool]] = []
    while len(marks) < N_MARKS:
        x, y = (int(v) for v in rng.integers(margin, side - margin, 2))
        if all((x - a) ** 2 + (y - b) ** 2 > (8 * r_disc) ** 2 for a, b, _ in marks):
            marks.append((x, y, not marks))  # the first is the coloured one
    for x, y, special in marks:
        tint = DISC_GREY + rng.integers(-TINT, TINT + 1, 3)
        cv2.circle(image, (x, y), r_disc, tuple(int(v) for v in tint), -1, cv2.LINE_AA)
        dot = DOT_RGB[cls] if special else GREY_DOT
        cv2.circle(image, (x, y), r_dot, dot, -1, cv2.LINE_AA)
    return image, marks


def write(out: Path, split: str, per_class: int, side: int, seed: int) -> int:
    n = 0
    for c, cls in enumerate(CLASSES):
        folder = out / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, SPLITS[split], c, i])
            image, _ = canvas(rng, cls, side)
            path = folder / f"{cls}-{i:04d}.png"
            cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
            n += 1
    return n


def examples(out: Path, count: int, side: int, seed: int) -> list[Path]:
    """``count`` test canvases (classes in turn) as ``out/folder-marks-SIDE-i.png`` with a
    JSON sidecar (label, class name, the dots as boxes)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        c = i % len(CLASSES)
        rng = np.random.default_rng([seed, SPLITS["test"], c, 10_000 + i])
        image, marks = canvas(rng, CLASSES[c], side)
        path = out / f"folder-marks-{side}-{i}.png"
        cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        r = max(4, round(DISC_RADIUS * side / 4096))
        meta = {
            "dataset": {"name": "folder", "task": "classify", "size": side, "example": i},
            "label": c,
            "class_name": CLASSES[c],
            "boxes": [[x - r, y - r, x + r, y + r] for x, y, special in marks if special],
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        paths.append(path)
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/folder-marks"))
    p.add_argument("--side", type=int, default=4096, help="canvas side (at least 4096)")
    p.add_argument("--train", type=int, default=100, help="training canvases per class")
    p.add_argument("--test", type=int, default=30, help="test canvases per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, help="write this many example PNGs to --out instead")
    args = p.parse_args()
    if args.examples:
        for path in examples(args.out, args.examples, args.side, args.seed):
            print(path)
        return
    n = write(args.out, "train", args.train, args.side, args.seed)
    n += write(args.out, "test", args.test, args.side, args.seed)
    print(f"wrote {n} canvases of {args.side}² to {args.out}")


if __name__ == "__main__":
    main()
