"""``python -m saccade.data preview --out DIR``: write sample PNGs of each generator;
``python -m saccade.data zoom --out DIR --n N --size SIDE --seed S``: zoom canvases as
pyramidal TIFFs; ``python -m saccade.data tile IN OUT``: a large image as a pyramid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from . import make_dataset, tile
from .zoom import DEFAULT_RENDER, RENDERS

#: (file stem, dataset name, options) of the previews
PREVIEWS = [
    ("cluttered-sum-100", "cluttered", {"task": "sum", "size": 100}),
    ("cluttered-single-100", "cluttered", {"task": "single", "size": 100}),
    ("cluttered-sum-2528", "cluttered", {"task": "sum", "size": 100, "full_size": 2528}),
    ("megapixel-majority-1500", "megapixel", {"task": "majority", "size": 1500}),
]


def preview(out: Path, count: int, split: str, seed: int) -> list[Path]:
    """Write ``count`` samples of each preview generator as lossless PNGs, plus a JSON sidecar
    per image with its label, class name and ground-truth boxes. Returns the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, name, options in PREVIEWS:
        ds = make_dataset(name, split=split, seed=seed, **options)
        for i in range(count):
            sample = ds[i]
            path = out / f"{stem}-{i}.png"
            cv2.imwrite(str(path), sample["image"], [cv2.IMWRITE_PNG_COMPRESSION, 9])
            meta = {
                "dataset": ds.spec.to_dict() | {"index": i},
                "label": sample["label"],
                "class_name": ds.class_names[sample["label"]],
                "digits": sample["digits"].tolist(),
                "boxes": np.round(sample["boxes"], 2).tolist(),
            }
            path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m saccade.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="write sample PNGs (+ JSON labels) of each generator")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--count", type=int, default=1, help="samples per generator (default 1)")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--seed", type=int, default=0)
    tile.add_command(sub)
    z = sub.add_parser(
        "zoom",
        help="write zoom canvases (saccade.data.zoom) as pyramidal TIFFs, OUT/CLASS/zoom-I.tif",
    )
    z.add_argument("--out", type=Path, required=True, help="output folder")
    z.add_argument("--n", type=int, default=10, help="canvases (default 10)")
    z.add_argument("--size", type=int, default=32768, help="canvas side (default 32768)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--split", default="test", choices=["train", "test"])
    z.add_argument(
        "--render",
        default=DEFAULT_RENDER,
        choices=RENDERS,
        help="how a coarse pixel composites its samples: max (the default, the first version: "
        "a thin cue vanishes from the coarse levels) or mean (the area average of level 0); "
        "docs/zoom.md, 'What the proxy shows'",
    )
    args = parser.parse_args(argv)
    if args.command == "tile":
        return tile.run(args)
    if args.command == "zoom":
        from .zoom import write_zoom_folder

        try:
            paths = write_zoom_folder(
                args.out, args.n, args.size, args.seed, args.split, args.render
            )
        except ValueError as e:
            parser.error(str(e))
        for path in paths:
            print(path)
        return None
    if args.count < 1:
        parser.error("--count must be >= 1")
    for path in preview(args.out, args.count, args.split, args.seed):
        print(path)


if __name__ == "__main__":
    main()
