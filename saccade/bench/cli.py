"""``python -m saccade.bench``: time and peak memory, printed as a table and written as JSON.

The default (``--suite headline``) is the paper's headline on this machine: every model of
``saccade.models`` (VS and the baselines) on cluttered MNIST upsampled from 100² to 8192²
and on Megapixel MNIST, each configuration in a process of its own
(``saccade.bench_config``: data, train, infer and epoch rows), with the ratios against
``resnet18-grid`` at the same side, a markdown table, ``--json`` rows and a log-log chart
(``--plot``, HTML and PNG). A configuration that runs out of memory (``--memory-gb``) or
time (``--time-cap``) is reported as such and the run goes on; a larger side of a model
that failed is skipped. ``--quick`` runs a subset in under a minute.

The other suites time parts: ``glimpse`` (the crop), ``model`` (the VS step at batch 64),
``megapixel`` (Megapixel MNIST's data path against the shipped model), ``step`` (the VS
training step before and after its speed-ups, side by side: ``saccade.bench_step``).

Every row has the keys ``model``, ``dataset``, ``side``, ``phase`` ("crop", "data", "train"
or "infer"), ``ms_per_image`` and ``peak_mb`` (the peak memory above what was held when the
measurement started: resident memory on the CPU, allocated memory on CUDA). Timings are
medians over repeats; compare ratios measured in one run, not figures across machines.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .bench_step import bench_step
from .data import make_dataset
from .glimpse import Pyramid, glimpse
from .models.registry import create_model
from .timing import PeakMemory, step_fns, sync, time_calls


def bench_glimpse(
    sides: list[int], repeats: int = 50, size: int = 32, n_crops: int = 4, device: str = "cpu"
) -> list[dict]:
    """Pyramid build ("data") and ``n_crops`` crops of ``size``^2 from the built pyramid
    ("crop"), on a cluttered 2-MNIST image upsampled to each side."""
    device = torch.device(device)
    rows = []
    gen = torch.Generator().manual_seed(0)
    z = (torch.rand(n_crops, 3, generator=gen) * 2 - 1).to(device)
    for side in tqdm(sides, desc="glimpse", unit="side"):
        options = {"size": min(side, 100), "full_size": side if side > 100 else None}
        image = make_dataset("cluttered", task="sum", split="test", **options)[0]["image"]
        builds, build_mb = [], []
        for _ in range(max(3, repeats // 10)):
            pyramid = None
            with PeakMemory("cpu") as mem_data:
                t = time.perf_counter()
                pyramid = Pyramid(image)
                builds.append(time.perf_counter() - t)
            build_mb.append(mem_data.mb)
        seconds, _, crop_mb = time_calls(
            lambda p=pyramid: glimpse(p, z, size), device, repeats, memory=True
        )
        common = {"model": "glimpse", "dataset": "cluttered", "side": side}
        rows.append(
            common
            | {
                "phase": "data",
                "ms_per_image": 1e3 * statistics.median(builds),
                "peak_mb": max(build_mb),
                "what": "Pyramid build",
            }
        )
        rows.append(
            common
            | {
                "phase": "crop",
                "ms_per_image": 1e3 * seconds,
                "peak_mb": crop_mb,
                "what": f"{n_crops} crops of {size}x{size}",
            }
        )
    return rows


def _bench_model_side(side: int, repeats: int, batch_size: int, device: torch.device) -> list:
    from .train import TrainConfig, collate, model_config

    options = {"size": min(side, 100), "full_size": side if side > 100 else None}
    ds = make_dataset("cluttered", task="sum", split="train", **options)
    batch = collate([ds[i] for i in range(batch_size)])
    torch.manual_seed(0)
    model = create_model("vs", model_config(TrainConfig(), ds)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step, infer_step = step_fns(model, opt, batch, device)

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, _, peak = time_calls(fn, device, repeats, memory=True)
        ms = 1e3 * seconds / batch_size
        rows.append(
            {
                "model": "vs",
                "dataset": "cluttered",
                "side": side,
                "phase": phase,
                "ms_per_image": ms,
                "peak_mb": peak,
                "images_per_s": 1e3 / ms,
                "what": f"batch {batch_size}, T={model.config.n_saccades}",
            }
        )
    return rows


def bench_model(
    sides: list[int], repeats: int = 20, batch_size: int = 64, device: str = "cpu"
) -> list[dict]:
    """The VS model (untrained weights, the default cluttered/sum configuration): one
    training step ("train": forward, backward, AdamW) and one inference pass ("infer") per
    batch of cluttered 2-MNIST images upsampled to each side. Images stay uint8 on the CPU
    and the glimpse reads only the windows it needs, inside the timed step, as in training."""
    rows = []
    for side in tqdm(sides, desc="model", unit="side"):
        rows += _bench_model_side(side, repeats, batch_size, torch.device(device))
    return rows


def _megapixel_model_rows(
    model, ds, samples: list[dict], batch_size: int, repeats: int, device
) -> list[dict]:
    """The "train", "infer" and "loader" rows of ``bench_megapixel`` for one canvas side;
    ``samples``: ``batch_size`` of them, drawn already."""
    from .train import collate

    batch = collate(samples[:batch_size])
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)  # lr 0: the weights stay
    what = f"batch {batch_size}, T={model.config.n_saccades}"
    train_step, infer_step = step_fns(model, opt, batch, device)

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, _, peak = time_calls(fn, device, max(2, repeats // 4), memory=True)
        rows.append(
            {
                "phase": phase,
                "what": what,
                "ms_per_image": 1e3 * seconds / batch_size,
                "peak_mb": peak,
            }
        )
    from .train import compute_threads

    default = torch.get_num_threads()
    # as the process starts, and as ``python -m saccade.train --workers 1`` sets it
    for threads in dict.fromkeys([default, compute_threads(1)]):
        torch.set_num_threads(threads)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=batch_size, collate_fn=collate, num_workers=1
        )
        steps = max(3, repeats // 4)
        batches = iter(loader)
        next(batches)  # the worker's start-up
        t = time.perf_counter()
        for _ in range(steps):
            train_step(next(batches))
        sync(device)
        rows.append(
            {
                "phase": "loader",
                "what": f"training steps fed by 1 DataLoader worker, {threads} torch "
                f"thread(s), {what}",
                "ms_per_image": 1e3 * (time.perf_counter() - t) / (steps * batch_size),
                "peak_mb": float("nan"),
            }
        )
    torch.set_num_threads(default)
    return rows


MEGAPIXEL_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints/megapixel-majority-learnt"


def bench_megapixel(
    sides: list[int],
    repeats: int = 20,
    batch_size: int = 32,
    device: str = "cpu",
    checkpoint: str | Path = MEGAPIXEL_CHECKPOINT,
) -> list[dict]:
    """Megapixel MNIST's data path against its model, per sample, at each canvas side (a
    multiple of the checkpoint's 1500: the model runs through ``model.for_canvas``, the noise
    at its density): "data" rows for drawing the canvas (``render``), the proxy
    (``make_proxy``: INTER_AREA) and batching (``collate``), both in a DataLoader worker;
    "train" and "infer" for the model (the checkpoint's architecture and weights) on a
    collated batch; and "loader" for whole training steps fed by one DataLoader worker, the
    setting of ``scripts/megapixel.sh``: when it is close to "train", training is not
    data-bound."""
    from . import checkpoint as ckpt
    from .data.megapixel import N_NOISE
    from .data.proxy import make_proxy
    from .models.vs import for_canvas
    from .train import collate

    device = torch.device(device)
    base = ckpt.load(checkpoint, device)
    rows = []
    for side in tqdm(sides, desc="megapixel", unit="side"):
        model = base if side == base.config.dataset["size"] else for_canvas(base, side)
        area = (side / base.config.dataset["size"]) ** 2
        ds = make_dataset(
            "megapixel",
            split="train",
            size=side,
            proxy_size=model.config.proxy_size,
            n_noise=round(N_NOISE * area),
            length=10**6,
        )
        common = {"model": "vs", "dataset": "megapixel", "side": side}
        n = max(repeats, batch_size)  # also the distinct samples of the model rows' batch
        timings = {"render": [], "proxy": [], "collate": []}
        samples = []
        for i in range(n):
            t = time.perf_counter()
            r = ds.render(ds.rng(i))
            timings["render"].append(time.perf_counter() - t)
            t = time.perf_counter()
            make_proxy(r.canvas, ds.proxy_size)
            timings["proxy"].append(time.perf_counter() - t)
            samples.append(ds[i])
        for _ in range(3):
            t = time.perf_counter()
            collate(samples[:batch_size])
            timings["collate"].append((time.perf_counter() - t) / min(batch_size, n))
        for what, values in timings.items():
            rows.append(
                common
                | {
                    "phase": "data",
                    "what": what,
                    "ms_per_image": 1e3 * statistics.median(values),
                    "peak_mb": float("nan"),
                }
            )
        rows += [
            common | row
            for row in _megapixel_model_rows(model, ds, samples, batch_size, repeats, device)
        ]
    return rows


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
}

#: the headline's defaults
HEADLINE_SIDES = {"cluttered": [100, 512, 1024, 2528, 4096, 8192], "megapixel": [1500, 3000]}
PHASES = ("data", "train", "infer", "infer-one", "epoch")
QUICK = {"models": ["vs", "resnet18-proxy"], "sides": [100, 512], "datasets": ["cluttered"]}


def _failure(stderr: str, returncode: int) -> str:
    """The status of a configuration whose process failed."""
    text = stderr.lower()
    if "can't allocate memory" in text or "memoryerror" in text or "out of memory" in text:
        return "out of memory"
    if returncode < 0:
        return f"killed by signal {-returncode} (out of memory?)"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "failed: " + (lines[-1][:200] if lines else f"exit status {returncode}")


def run_config(
    model: str,
    dataset: str,
    side: int,
    batch: int,
    device: str,
    time_cap: float,
    memory_gb: float,
    repeats: int = 5,
    epoch_batches: int = 12,
) -> list[dict]:
    """The rows of one configuration, measured in a child process (``saccade.bench_config``)
    whose address space is capped at ``memory_gb`` and whose run time at ``time_cap``
    seconds; on failure one row per phase with the reason as its status."""
    import resource
    import subprocess
    import sys

    args = {
        "model": model,
        "dataset": dataset,
        "side": side,
        "batch": batch,
        "device": device,
        "repeats": repeats,
        "budget_s": time_cap * 0.8,
        "epoch_batches": epoch_batches,
    }

    def cap() -> None:  # in the child, before it starts
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        done = subprocess.run(
            [sys.executable, "-m", "saccade.bench_config", json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=time_cap,
            preexec_fn=cap if device == "cpu" else None,  # CUDA maps more than it uses
        )
        status = None if done.returncode == 0 else _failure(done.stderr, done.returncode)
    except subprocess.TimeoutExpired:
        status = f"over the time cap ({time_cap:.0f} s)"
    if status is None:
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            status = "failed: no result printed"
    common = {"model": model, "dataset": dataset, "side": side, "batch": batch, "device": device}
    return [
        common
        | {"phase": phase, "ms_per_image": None, "peak_mb": None, "params": None, "status": status}
        for phase in PHASES
    ]


def add_ratios(rows: list[dict]) -> None:
    """``vs_grid``: each row's ms per image over resnet18-grid's at the same dataset, side
    and phase; ``peak_vs_grid`` likewise for the train rows' peak memory."""
    grid = {(r["dataset"], r["side"], r["phase"]): r for r in rows if r["model"] == "resnet18-grid"}
    for r in rows:
        g = grid.get((r["dataset"], r["side"], r["phase"]))
        ok = g is not None and r.get("ms_per_image") and g.get("ms_per_image")
        r["vs_grid"] = r["ms_per_image"] / g["ms_per_image"] if ok else None
        ok = g is not None and r.get("peak_mb") and g.get("peak_mb")
        r["peak_vs_grid"] = r["peak_mb"] / g["peak_mb"] if ok else None


def bench_headline(
    models: list[str],
    datasets: list[str],
    sides: dict[str, list[int]],
    batch: int = 4,
    device: str = "cpu",
    time_cap: float = 300.0,
    memory_gb: float = 12.0,
    repeats: int = 5,
    epoch_batches: int = 12,
) -> list[dict]:
    """Every (dataset, side, model) in a process of its own (``run_config``); sides of a
    model above one where it failed are skipped, with that reason."""
    configs = [(d, s, m) for d in datasets for s in sorted(sides[d]) for m in models]
    rows: list[dict] = []
    failed: dict[tuple[str, str], str] = {}
    for dataset, side, model in tqdm(configs, desc="bench", unit="config"):
        if (dataset, model) in failed:
            status = f"skipped: {failed[(dataset, model)]}"
            common = {"model": model, "dataset": dataset, "side": side, "batch": batch}
            rows += [
                common
                | {"phase": p, "ms_per_image": None, "peak_mb": None, "params": None}
                | {"status": status, "device": device}
                for p in PHASES
            ]
            continue
        got = run_config(
            model, dataset, side, batch, device, time_cap, memory_gb, repeats, epoch_batches
        )
        train = next(r for r in got if r["phase"] == "train")
        if train["status"] != "ok":
            failed[(dataset, model)] = f"{train['status']} at side {side}"
        rows += got
    add_ratios(rows)
    return rows


def headline_summary(rows: list[dict]) -> list[str]:
    """The targets of the headline, as lines of text, from the rows that exist."""
    at = {(r["model"], r["dataset"], r["side"], r["phase"]): r for r in rows}
    out = []

    def get(model, side, phase, key="ms_per_image", dataset="cluttered"):
        r = at.get((model, dataset, side, phase))
        return None if r is None or r.get("status") != "ok" else r.get(key)

    vs, grid = get("vs", 2528, "train"), get("resnet18-grid", 2528, "train")
    if vs and grid:
        out.append(
            f"2528² training step per image: VS {vs:.1f} ms, resnet18-grid {grid:.0f} ms: "
            f"{grid / vs:.0f}x faster (target >= 1000x)"
        )
    vs_m, grid_m = (
        get("vs", 2528, "train", "peak_mb"),
        get("resnet18-grid", 2528, "train", "peak_mb"),
    )
    if vs_m and grid_m:
        out.append(
            f"2528² training step peak memory: VS {vs_m:.0f} MB, resnet18-grid {grid_m:.0f} MB: "
            f"{vs_m / grid_m:.1%} (target <= 1%)"
        )
    e100, e2528 = get("vs", 100, "epoch", "epoch_s"), get("vs", 2528, "epoch", "epoch_s")
    if e100 and e2528:
        wait = get("vs", 2528, "epoch", "data_wait")
        out.append(
            f"VS epoch of 60k samples (1 DataLoader worker): {e100:.0f} s at 100², {e2528:.0f} s "
            f"at 2528²: {e2528 / e100:.2f}x (target <= 1.5x; the paper's V100: 120 s); "
            f"at 2528² {wait:.0%} of it waited for data"
        )
    for key, what in (("ms_per_image", "time"), ("peak_mb", "peak memory")):
        lo, hi = get("vs", 100, "train", key), get("vs", 8192, "train", key)
        if lo and hi:
            out.append(f"VS training step {what} at 8192² / 100²: {hi / lo:.2f}x (target <= 1.2x)")
    return out


def _clean(rows: list[dict]) -> list[dict]:
    """JSON-safe rows: NaN becomes null."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    from .models.registry import model_names

    parser = argparse.ArgumentParser(
        prog="python -m saccade.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--suite", choices=["headline", *sorted(SUITES)], default="headline")
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
        "3000; glimpse and model: 100 1024 2528 8192; megapixel suite: 1500 3000)",
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
    else:
        rows = _main_parts(parser, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(rows), indent=1) + "\n")
        print(f"wrote {args.json}")
    return rows


def _main_headline(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[dict]:
    from .models.registry import model_names

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
    from .viz import headline_figure, headline_table

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
        args.sides = [1500, 3000] if args.suite == "megapixel" else [100, 1024, 2528, 8192]
    repeats = args.repeats or 20
    if repeats < 1 or any(s < 28 for s in args.sides):
        parser.error("--repeats must be >= 1 and every side >= 28")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = SUITES[args.suite](args.sides, repeats=repeats, device=args.device)
    print(format_table(rows))
    for r in rows:
        if r["phase"] == "train-after":
            print(f"batch {r['batch']}: the step is {r['speedup']:.2f}x faster than before")
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


if __name__ == "__main__":
    main()
