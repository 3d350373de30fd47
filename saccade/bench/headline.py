"""The paper's headline on this machine (``--suite headline``): every model at every side,
each configuration measured in a child process (``saccade.bench.config``), with ratios
against ``resnet18-grid``.
"""

from __future__ import annotations

import json
import math

from tqdm import tqdm

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
    """The rows of one configuration, measured in a child process (``saccade.bench.config``)
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
            [sys.executable, "-m", "saccade.bench.config", json.dumps(args)],
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
