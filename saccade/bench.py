"""``python -m saccade.bench``: time and peak memory, printed as a table and written as JSON.

Every row has the keys ``model``, ``dataset``, ``side``, ``phase`` ("crop", "data", "train"
or "infer"), ``ms_per_image`` and ``peak_mb`` (the peak memory above what was held when the
measurement started: resident memory on the CPU, allocated memory on CUDA). Timings are
medians over repeats; compare ratios measured in one run, not figures across machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .data import make_dataset
from .glimpse import Pyramid, glimpse
from .models.registry import create_model


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """Context manager measuring peak memory growth, in MB, inside the block.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the peak resident set size (VmHWM),
    reset on entry through ``/proc/self/clear_refs`` (Linux); where that is unavailable,
    ``mb`` is NaN rather than a made-up number.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.start = _proc_status_kb("VmRSS") * 1024
            except OSError:
                self.start = None
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        elif self.start is not None:
            self.mb = max(0, _proc_status_kb("VmHWM") * 1024 - self.start) / 2**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
        seconds, crop_mb = _timed(glimpse, repeats, device, pyramid, z, size)
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


def _timed(fn, repeats: int, device: torch.device, *args) -> tuple[float, float]:
    """(median seconds, peak MB) of ``repeats`` calls of ``fn(*args)`` after a warm-up call."""
    fn(*args)
    times = []
    with PeakMemory(device) as mem:
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            fn(*args)
            _sync(device)
            times.append(time.perf_counter() - t)
    return statistics.median(times), mem.mb


def _bench_model_side(side: int, repeats: int, batch_size: int, device: torch.device) -> list:
    from .model import loss
    from .train import TrainConfig, collate, model_config

    options = {"size": min(side, 100), "full_size": side if side > 100 else None}
    ds = make_dataset("cluttered", task="sum", split="train", **options)
    batch = collate([ds[i] for i in range(batch_size)])
    torch.manual_seed(0)
    model = create_model("vs", model_config(TrainConfig(), ds)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    proxy, labels = batch["proxy"].to(device), batch["label"].to(device)

    def train_step():
        model.train()
        total, _ = loss(model(batch["image"], proxy), labels, proxy)
        opt.zero_grad()
        total.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        model.eval()
        model(batch["image"], proxy)

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, peak = _timed(fn, repeats, device)
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
    from .model import loss
    from .train import collate

    batch = collate(samples[:batch_size])
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)  # lr 0: the weights stay
    what = f"batch {batch_size}, T={model.config.n_saccades}"

    def train_step(b=batch):
        model.train()
        proxy = b["proxy"].to(device)
        total, _ = loss(model(b["image"], proxy), b["label"].to(device), proxy)
        opt.zero_grad()
        total.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        model.eval()
        model(batch["image"], batch["proxy"].to(device))

    rows = []
    for phase, fn in (("train", train_step), ("infer", infer_step)):
        seconds, peak = _timed(fn, max(2, repeats // 4), device)
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
        _sync(device)
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
    from .model import for_canvas
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


SUITES = {"glimpse": bench_glimpse, "model": bench_model, "megapixel": bench_megapixel}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m saccade.bench",
        description="Benchmark saccade: prints a markdown table, optionally writes JSON rows.",
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="glimpse")
    parser.add_argument(
        "--sides",
        type=int,
        nargs="+",
        default=None,
        help="image sides (default 100 1024 2528 8192; megapixel: 1500 3000)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per row")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", type=Path, help="write the rows as a JSON list here")
    args = parser.parse_args(argv)
    if args.sides is None:
        args.sides = [1500, 3000] if args.suite == "megapixel" else [100, 1024, 2528, 8192]
    if args.repeats < 1 or any(s < 28 for s in args.sides):
        parser.error("--repeats must be >= 1 and every side >= 28")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but CUDA is not available")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = SUITES[args.suite](args.sides, repeats=args.repeats, device=args.device)
    print(format_table(rows))
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
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {args.json}")
    return rows


if __name__ == "__main__":
    main()
