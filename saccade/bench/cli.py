"""``python -m saccade.bench``: time and peak memory, printed as a table and written as JSON.

The default (``--suite headline``) is the paper's headline on this machine: every model of
``saccade.models`` (VS and the baselines) on cluttered MNIST upsampled from 100² to 8192²
and on Megapixel MNIST, each configuration in a process of its own
(``saccade.bench.config``: data, train, infer and epoch rows), with the ratios against
``resnet18-grid`` at the same side, a markdown table, ``--json`` rows and a log-log chart
(``--plot``, HTML and PNG). A configuration that runs out of memory (``--memory-gb``) or
time (``--time-cap``) is reported as such and the run goes on; a larger side of a model
that failed is skipped. ``--quick`` runs a subset in under a minute.

The other suites time parts: ``glimpse`` (the crop), ``model`` (the VS step at batch 64),
``megapixel`` (Megapixel MNIST's data path against the shipped model), ``step`` (the VS
training step before and after its speed-ups, side by side: ``saccade.bench.step``),
``slides`` (predicting from generated gigapixel slides on disk against the same model on an
image in memory: ``saccade.bench.slides``; ``--slides-dir`` keeps the generated files),
``zoom`` (the zoom benchmark's canvases at 16,384² to 131,072²: drawing a sample, the VS
training step, and what reading every tile would cost: ``saccade.bench.zoom``),
``readers`` (read_region of ``saccade.Slide`` against tiffslide and OpenSlide, and predict
over HTTP and S3 from servers on loopback: ``saccade.bench.readers``; ``--sides`` its one
side, ``--repeats`` its regions).

Every row has the keys ``model``, ``dataset``, ``side``, ``phase`` ("crop", "data", "train"
or "infer"), ``ms_per_image`` and ``peak_mb`` (the peak memory above what was held when the
measurement started: resident memory on the CPU, allocated memory on CUDA). Timings are
medians over repeats; compare ratios measured in one run, not figures across machines.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..data.zoom import DEFAULT_RENDER, RENDERS
from .headline import HEADLINE_SIDES, QUICK, _clean, bench_headline, headline_summary
from .parts import bench_glimpse, bench_megapixel, bench_model
from .step import bench_step
from .zoom import ZOOM_SIDES, bench_zoom, one_level


def format_table(rows: list[dict]) -> str:
    """A markdown table of the rows."""
    keys = ["model", "dataset", "side", "phase", "ms_per_image", "peak_mb", "what"]
    keys += sorted({k for r in rows for k in r} - set(keys))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SUITES = {
    "glimpse": bench_glimpse,
    "model": bench_model,
    "megapixel": bench_megapixel,
    "step": bench_step,
    "zoom": bench_zoom,
}


def main(argv: list[str] | None = None) -> list[dict]:
    from ..models.registry import model_names

    parser = argparse.ArgumentParser(
        prog="python -m saccade.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite", choices=["headline", "slides", "readers", *sorted(SUITES)], default="headline"
    )
    parser.add_argument(
        "--slides-dir",
        type=Path,
        help="slides: where the generated slides are written once and reused (default: a "
        "folder in the system's temporary directory)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help=f"headline: models to run (default all: {', '.join(model_names())})",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=sorted(HEADLINE_SIDES),
        help="headline: datasets (default both)",
    )
    parser.add_argument(
        "--sides",
        type=int,
        nargs="+",
        default=None,
        help="image sides (headline: cluttered 100 512 1024 2528 4096 8192, megapixel 1500 "
        "3000; glimpse and model: 100 1024 2528 8192; megapixel suite: 1500 3000; zoom: "
        "16384 32768 65536 131072)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"headline: a subset for tests, under a minute ({QUICK})",
    )
    parser.add_argument("--batch", type=int, default=4, help="headline: images per step (4)")
    parser.add_argument(
        "--time-cap", type=float, default=300.0, help="headline: seconds per configuration (300)"
    )
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=12.0,
        help="headline: address-space cap per configuration on the CPU, GB (12)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per row")
    parser.add_argument(
        "--zoom-reader",
        metavar="CHECKPOINT",
        help="zoom: also the one-level (IPS-style) bound, read by this zoom model's reader "
        "(e.g. checkpoints/stages/zoom-imitate) on --zoom-canvases test canvases of the "
        "smallest side",
    )
    parser.add_argument(
        "--zoom-render",
        choices=RENDERS,
        default=DEFAULT_RENDER,
        help="zoom: the canvases' renderer (saccade.data.zoom.RENDERS; default max)",
    )
    parser.add_argument(
        "--zoom-canvases", type=int, default=500, help="zoom, with --zoom-reader: canvases (500)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", type=Path, help="write the rows as a JSON list here")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="STEM",
        help="headline: write the log-log chart to STEM.html and, with kaleido, STEM.png",
    )
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but CUDA is not available")
    if args.suite == "headline":
        rows = _main_headline(parser, args)
    elif args.suite == "slides":
        from .slides import bench_slides, slides_summary

        rows = bench_slides(args.slides_dir, repeats=args.repeats or 10)
        print(format_table(rows))
        print("\n".join(slides_summary(rows)))
    elif args.suite == "readers":
        from .readers import bench_readers, readers_summary, readers_table

        side = args.sides[0] if args.sides else 4096
        rows = bench_readers(args.slides_dir, repeats=args.repeats or 16, side=side)
        print(readers_table(rows))
        print("\n".join(readers_summary(rows)))
    else:
        rows = _main_parts(parser, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(rows), indent=1) + "\n")
        print(f"wrote {args.json}")
    return rows


def _main_headline(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[dict]:
    from ..models.registry import model_names

    models = args.models or (QUICK["models"] if args.quick else model_names())
    unknown = sorted(set(models) - set(model_names()))
    if unknown:
        parser.error(f"--models {unknown} unknown; accepted: {model_names()}")
    datasets = args.datasets or (QUICK["datasets"] if args.quick else sorted(HEADLINE_SIDES))
    if args.sides:
        sides = {d: args.sides for d in datasets}
    elif args.quick:
        sides = {d: QUICK["sides"] for d in datasets}
    else:
        sides = HEADLINE_SIDES
    if any(s < 32 for d in datasets for s in sides[d]):
        parser.error("every side must be >= 32")
    if args.batch < 1 or args.time_cap <= 0 or args.memory_gb <= 0:
        parser.error("--batch, --time-cap and --memory-gb must be positive")
    repeats = args.repeats or (2 if args.quick else 5)
    rows = bench_headline(
        models,
        datasets,
        sides,
        batch=args.batch,
        device=args.device,
        time_cap=args.time_cap,
        memory_gb=args.memory_gb,
        repeats=repeats,
        epoch_batches=4 if args.quick else 12,
    )
    from ..viz.benchmark import headline_figure, headline_table

    print(headline_table(rows))
    print()
    for line in headline_summary(rows):
        print(line)
    if args.plot:
        fig = headline_figure(rows)
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        html = args.plot.with_suffix(".html")
        fig.write_html(html, include_plotlyjs="cdn")
        print(f"wrote {html}")
        try:
            fig.write_image(args.plot.with_suffix(".png"), width=1100, height=500)
            print(f"wrote {args.plot.with_suffix('.png')}")
        except Exception as e:  # kaleido missing or its browser unavailable
            print(f"no PNG written ({type(e).__name__}: {e})")
    return rows


def _main_parts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[dict]:
    if args.sides is None:
        defaults = {"megapixel": [1500, 3000], "zoom": ZOOM_SIDES}
        args.sides = defaults.get(args.suite, [100, 1024, 2528, 8192])
    repeats = args.repeats or 20
    if repeats < 1 or any(s < 28 for s in args.sides):
        parser.error("--repeats must be >= 1 and every side >= 28")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    options = {"render": args.zoom_render} if args.suite == "zoom" else {}
    rows = SUITES[args.suite](args.sides, repeats=repeats, device=args.device, **options)
    if args.suite == "zoom" and args.zoom_reader:
        tiles = [r for r in rows if r["model"] == "tile-grid"]  # timed once, by bench_zoom
        rows += one_level(args.zoom_reader, min(args.sides), n=args.zoom_canvases, tiles=tiles)
    print(format_table(rows))
    for r in rows:
        if r["phase"] == "train-after":
            print(f"batch {r['batch']}: the step is {r['speedup']:.2f}x faster than before")
    train = {r["side"]: r["ratio"] for r in rows if r["phase"] == "train" and "ratio" in r}
    if len(train) > 1:
        print(
            f"\ntraining step per image at side {max(train)} / side {min(train)}: "
            f"{train[max(train)]:.2f}x"
        )
    crop = {r["side"]: r["ms_per_image"] for r in rows if r["phase"] == "crop"}
    if len(crop) > 1:
        lo, hi = min(crop), max(crop)
        print(f"\ncrop time at side {hi} / side {lo}: {crop[hi] / crop[lo]:.2f}x")
    for side in sorted({r["side"] for r in rows if r["phase"] == "loader"}):
        at = {(r["phase"], r["what"]): r["ms_per_image"] for r in rows if r["side"] == side}
        data = {what: ms for (phase, what), ms in at.items() if phase == "data"}
        train = next(ms for (phase, _), ms in at.items() if phase == "train")
        fed = {w: ms for (phase, w), ms in at.items() if phase == "loader"}
        print(
            f"\nside {side}: data {sum(data.values()):.1f} ms per sample ("
            + ", ".join(f"{k} {v:.1f}" for k, v in data.items())
            + f"), model training step {train:.1f} ms per sample: data is "
            f"{sum(data.values()) / (sum(data.values()) + train):.0%} of the work"
        )
        for what, ms in fed.items():
            print(
                f"  {what.split(', batch')[0]}: {ms:.1f} ms per sample ({ms / train:.2f}x the model alone)"
            )
    return rows
