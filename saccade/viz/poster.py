"""The seed poster's two figures, from training runs' metric events (issue 34).

- ``learnt_fixed_figure``: validation accuracy against epoch, learnt against fixed variance,
  the mean over seeds with a min–max band (*Learnt vs. Fixed Variance*);
- ``noisy_proxy_figure``: validation accuracy per epoch of runs trained with a fixed proxy
  noise, each at its own noise (*Effect of Noisy Proxy Distribution*);
- ``seed_summary`` / ``learnt_fixed_verdict`` / ``learnt_fixed_markdown``: the numbers behind
  the first, per seed and per mode, and what they say (which converges faster, which ends
  higher, by how much against the seed-to-seed spread);
- ``noise_rows`` / ``noise_markdown``: the converged numbers of the second.

A run is its list of metric events, the JSON lines of ``NAME.metrics.jsonl`` that
``python -m saccade.train`` writes: per-step events, one event per epoch (with ``epoch``,
``val_acc``, ``val_acc_train_noise``), and a last one with ``test_accuracy``. Accuracies are
fractions in [0, 1] here and percentages in the figures and tables. Nothing here reads files.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

#: one colour per variance mode
MODE_COLOURS = {"learnt": "#1f77b4", "fixed": "#d62728"}

#: the last epochs whose mean validation accuracy is a run's converged number
LAST_EPOCHS = 3


def epoch_events(events: list[dict]) -> list[dict]:
    """The per-epoch events of a run (those with ``val_acc``), one per epoch in epoch order;
    an epoch logged twice (a run resumed after a kill) keeps its last event."""
    by_epoch = {int(e["epoch"]): e for e in events if "val_acc" in e and "epoch" in e}
    return [by_epoch[k] for k in sorted(by_epoch)]


def test_accuracy(events: list[dict]) -> float | None:
    """The run's final ``test_accuracy`` (its last event that has one), or None."""
    found = [e["test_accuracy"] for e in events if "test_accuracy" in e]
    return float(found[-1]) if found else None


def own_noise_acc(event: dict) -> float:
    """An epoch event's validation accuracy at the run's own proxy noise."""
    return float(event.get("val_acc_train_noise", event["val_acc"]))


def seed_band(seeds: list[list[dict]]) -> dict[str, np.ndarray]:
    """Validation accuracy per epoch over seeds: {``epoch``, ``mean``, ``sd``, ``min``,
    ``max``, ``n``}, each (E,) over the epochs that any seed reached (``n``: how many seeds
    reached it); accuracies as fractions."""
    curves = [{int(e["epoch"]): float(e["val_acc"]) for e in epoch_events(s)} for s in seeds]
    epochs = sorted({k for c in curves for k in c})
    vals = [[c[k] for c in curves if k in c] for k in epochs]
    return {
        "epoch": np.array(epochs),
        "mean": np.array([np.mean(v) for v in vals]),
        "sd": np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in vals]),
        "min": np.array([np.min(v) for v in vals]),
        "max": np.array([np.max(v) for v in vals]),
        "n": np.array([len(v) for v in vals]),
    }


def learnt_fixed_figure(
    groups: dict[str, list[list[dict]]],
    title: str = "Learnt vs. fixed variance, cluttered MNIST id, 2528×2528",
) -> go.Figure:
    """Validation accuracy against epoch, one line per variance mode (the mean over its
    seeds) inside a band from the seeds' minimum to their maximum, each seed thin and dotted.

    Args:
        groups: {mode ("learnt", "fixed"): [one run's metric events per seed]}.
        title: the figure's title.

    Traces per mode, in order: ``"{mode} min"``, ``"{mode} max"`` (the band, filled to the
    min), each seed's ``"{mode} seed i"``, then ``"{mode} (mean of n seeds)"``.
    """
    fig = go.Figure()
    for mode, seeds in groups.items():
        if not seeds:
            continue
        colour = MODE_COLOURS.get(mode, "#7f7f7f")
        band = seed_band(seeds)
        x = band["epoch"].tolist()
        for edge, fill in (("min", None), ("max", "tonexty")):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=(100 * band[edge]).tolist(),
                    mode="lines",
                    line={"width": 0, "color": colour},
                    fill=fill,
                    fillcolor=_rgba(colour, 0.2),
                    name=f"{mode} {edge}",
                    legendgroup=mode,
                    showlegend=False,
                    hovertemplate=f"{mode} {edge} over seeds: %{{y:.1f}}%<extra></extra>",
                )
            )
        for i, events in enumerate(seeds):
            ev = epoch_events(events)
            fig.add_trace(
                go.Scatter(
                    x=[int(e["epoch"]) for e in ev],
                    y=[100 * float(e["val_acc"]) for e in ev],
                    mode="lines",
                    line={"width": 1, "color": colour, "dash": "dot"},
                    opacity=0.5,
                    name=f"{mode} seed {i}",
                    legendgroup=mode,
                    showlegend=False,
                    hovertemplate=f"{mode} seed {i}: %{{y:.1f}}%<extra></extra>",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=(100 * band["mean"]).tolist(),
                mode="lines+markers",
                line={"width": 3, "color": colour},
                name=f"{mode} (mean of {len(seeds)} seed{'s' * (len(seeds) != 1)})",
                legendgroup=mode,
                hovertemplate=f"{mode} mean: %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        title={"text": title, "x": 0.02},
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy (%)"},
        legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom"},
        width=720,
        height=440,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    """'#rrggbb' as 'rgba(r, g, b, alpha)'."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _first_epoch_at(events: list[dict], level: float) -> int | None:
    """The first epoch whose validation accuracy reaches ``level``, or None."""
    return next((int(e["epoch"]) for e in epoch_events(events) if e["val_acc"] >= level), None)


def _stats(values: list[float]) -> dict:
    """mean, sd (n-1; 0 for one value), min, max and spread (max - min) of the values."""
    a = np.array(values, dtype=float)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
        "spread": float(a.max() - a.min()),
    }


def seed_summary(groups: dict[str, list[list[dict]]], level: float = 0.9) -> dict:
    """The numbers of ``learnt_fixed_figure``, per seed and per mode.

    Args:
        groups: {mode: [one run's metric events per seed]}.
        level: the validation accuracy whose first epoch measures how fast a run converges.

    Returns:
        {``level``, ``seeds``: [{mode, seed, epochs, final_val, test, epoch_at_level,
        mean_val}], ``modes``: {mode: {``n``, ``final_val``, ``test``, ``mean_val``: the
        ``_stats`` over its seeds, ``epoch_at_level``: the mean epoch of the seeds that
        reached it}}}. ``mean_val`` is the mean validation accuracy over a run's epochs (the
        area under its curve: higher is faster, at equal epochs); ``test`` is None for a mode
        whose runs did not finish.
    """
    seeds, modes = [], {}
    for mode, runs in groups.items():
        rows = []
        for i, events in enumerate(runs):
            ev = epoch_events(events)
            if not ev:
                continue
            rows.append(
                {
                    "mode": mode,
                    "seed": i,
                    "epochs": int(ev[-1]["epoch"]),
                    "final_val": float(ev[-1]["val_acc"]),
                    "test": test_accuracy(events),
                    "epoch_at_level": _first_epoch_at(events, level),
                    "mean_val": float(np.mean([e["val_acc"] for e in ev])),
                }
            )
        if not rows:
            continue
        seeds += rows
        tests = [r["test"] for r in rows if r["test"] is not None]
        reached = [r["epoch_at_level"] for r in rows if r["epoch_at_level"] is not None]
        modes[mode] = {
            "n": len(rows),
            "final_val": _stats([r["final_val"] for r in rows]),
            "test": _stats(tests) if tests else None,
            "mean_val": _stats([r["mean_val"] for r in rows]),
            "epoch_at_level": float(np.mean(reached)) if reached else None,
            "reached_level": len(reached),
        }
    return {"level": level, "seeds": seeds, "modes": modes}


def _compare(modes: dict, key: str, a: str = "learnt", b: str = "fixed") -> dict | None:
    """The difference of the two modes' means of ``key`` against the larger of their
    seed-to-seed spreads (max - min): {``diff`` (a - b), ``spread``, ``beyond``,
    ``one_seed``}, or None when a mode has no value."""
    sa, sb = modes.get(a, {}).get(key), modes.get(b, {}).get(key)
    if not sa or not sb:
        return None
    spread = max(sa["spread"], sb["spread"])
    diff = sa["mean"] - sb["mean"]
    one_seed = modes[a]["n"] < 2 or modes[b]["n"] < 2
    return {"diff": diff, "spread": spread, "beyond": abs(diff) > spread, "one_seed": one_seed}


def learnt_fixed_verdict(summary: dict) -> str:
    """What ``seed_summary``'s numbers say, in plain words: which mode converges faster (the
    mean validation accuracy over the epochs), which ends higher (test accuracy, or the last
    validation accuracy before the test), each difference against the seed-to-seed spread.
    A mode is said to be better only when the difference exceeds the spread."""
    modes = summary["modes"]
    if "learnt" not in modes or "fixed" not in modes:
        have = ", ".join(f"{m} ({_seeds(v['n'])})" for m, v in modes.items()) or "no run"
        return f"Only {have} so far: no learnt-against-fixed comparison yet."
    parts = []
    n = f"{_seeds(modes['learnt']['n'], 'learnt')} and {_seeds(modes['fixed']['n'], 'fixed')}"
    for key, what in (("mean_val", "converges faster"), ("test", "ends higher")):
        c = _compare(modes, key)
        if c is None and key == "test":
            key, c = "final_val", _compare(modes, "final_val")
        if c is None:
            continue
        measure = {
            "mean_val": "mean validation accuracy over the epochs",
            "test": "test accuracy",
            "final_val": "last validation accuracy",
        }[key]
        d, s = 100 * c["diff"], 100 * c["spread"]
        leader = "learnt" if c["diff"] > 0 else "fixed"
        if c["one_seed"]:
            parts.append(
                f"{measure}: {leader} by {abs(d):.1f} points, one seed of a mode: no spread "
                "to judge it against"
            )
        elif c["beyond"]:
            parts.append(
                f"{leader} {what} ({measure} {abs(d):.1f} points higher, more than the "
                f"seed-to-seed spread of {s:.1f})"
            )
        else:
            parts.append(
                f"neither {what} beyond the seeds' spread ({measure}: {leader} by "
                f"{abs(d):.1f} points, within the spread of {s:.1f})"
            )
    return f"Over {n}: " + "; ".join(parts) + "."


def _seeds(n: int, mode: str = "") -> str:
    """'1 seed', '3 seeds', '3 learnt seeds'."""
    return f"{n} {mode + ' ' if mode else ''}seed{'s' * (n != 1)}"


def _pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def _cell(stats: dict | None, n: int, digits: int = 1) -> str:
    """A mode's ``_stats`` as 'mean% ± sd (spread s)' in points; the mean alone for one seed."""
    if stats is None:
        return "–"
    mean = f"{100 * stats['mean']:.{digits}f}%"
    if n < 2:
        return mean
    return f"{mean} ± {100 * stats['sd']:.{digits}f} (spread {100 * stats['spread']:.{digits}f})"


def learnt_fixed_markdown(summary: dict) -> str:
    """``seed_summary`` as a markdown table: one row per seed, then each mode's mean, sd and
    spread (max - min), then ``learnt_fixed_verdict``."""
    level = summary["level"]
    head = (
        "| mode | seed | epochs | last val. acc. | test acc. | mean val. acc. | "
        f"epoch at {100 * level:.0f}% |\n|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in summary["seeds"]:
        rows.append(
            f"| {r['mode']} | {r['seed']} | {r['epochs']} | {_pct(r['final_val'])} | "
            f"{_pct(r['test'], 2)} | {_pct(r['mean_val'])} | {r['epoch_at_level'] or '–'} |"
        )
    for mode, m in summary["modes"].items():
        at = m["epoch_at_level"]
        rows.append(
            f"| **{mode}**, mean ± sd | {_seeds(m['n'])} | | {_cell(m['final_val'], m['n'])} | "
            f"{_cell(m['test'], m['n'], 2)} | {_cell(m['mean_val'], m['n'])} | "
            f"{'–' if at is None else f'{at:.1f}'} ({m['reached_level']}/{m['n']}) |"
        )
    return head + "\n".join(rows) + "\n\n" + learnt_fixed_verdict(summary)


#: one colour per training run of ``noisy_proxy_figure``, from the least noise to the most
NOISE_COLOURS = ["#08306b", "#2171b5", "#6baed6", "#c6dbef"]


def noisy_proxy_figure(
    runs: dict[str, list[dict]],
    title: str = "Effect of a noisy proxy: validation accuracy at each run's own noise",
) -> go.Figure:
    """Validation accuracy per epoch, one line per run, at the proxy noise it trains with
    (``val_acc_train_noise``), darker for less noise.

    Args:
        runs: {label, e.g. "noise 0.1": the run's metric events}, from the least noise to
            the most.
        title: the figure's title.
    """
    fig = go.Figure()
    for i, (label, events) in enumerate(runs.items()):
        ev = epoch_events(events)
        fig.add_trace(
            go.Scatter(
                x=[int(e["epoch"]) for e in ev],
                y=[100 * own_noise_acc(e) for e in ev],
                mode="lines+markers",
                line={"width": 2, "color": NOISE_COLOURS[min(i, len(NOISE_COLOURS) - 1)]},
                name=label,
            )
        )
    fig.update_layout(
        title={"text": title, "x": 0.02},
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy at the run's noise (%)"},
        legend={"title": {"text": "more noise ↓"}},
        width=720,
        height=440,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def noise_rows(runs: dict[str, list[dict]], last: int = LAST_EPOCHS) -> list[dict]:
    """The converged numbers of ``noisy_proxy_figure``, one row per run: {``run``,
    ``epochs``, ``last_mean`` (the mean validation accuracy at the run's noise over its last
    ``last`` epochs), ``last_epochs`` (how many were averaged), ``final``, ``best``, ``rise``
    (the last epoch's minus the one before: near 0 when converged), ``test`` (the final
    test accuracy, a clean proxy; None if the run has none)}."""
    rows = []
    for label, events in runs.items():
        acc = [own_noise_acc(e) for e in epoch_events(events)]
        if not acc:
            continue
        tail = acc[-last:]
        rows.append(
            {
                "run": label,
                "epochs": len(acc),
                "last_mean": float(np.mean(tail)),
                "last_epochs": len(tail),
                "final": acc[-1],
                "best": max(acc),
                "rise": acc[-1] - acc[-2] if len(acc) > 1 else None,
                "test": test_accuracy(events),
            }
        )
    return rows


def noise_markdown(rows: list[dict]) -> str:
    """``noise_rows`` as a markdown table."""
    out = [
        "| run | epochs | mean of the last epochs (at its noise) | last epoch | best | "
        "last rise | test acc. (clean proxy) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rise = "–" if r["rise"] is None else f"{100 * r['rise']:+.1f}"
        out.append(
            f"| {r['run']} | {r['epochs']} | {_pct(r['last_mean'])} (last {r['last_epochs']}) "
            f"| {_pct(r['final'])} | {_pct(r['best'])} | {rise} | {_pct(r['test'], 2)} |"
        )
    return "\n".join(out)


def noise_verdict(rows: list[dict]) -> str:
    """What ``noise_rows`` say in one sentence: each run's converged accuracy at its own noise
    (the mean of its last epochs) and whether it still rose at the last epoch."""
    if not rows:
        return "No noisy-proxy run yet."
    each = ", ".join(f"{r['run']}: {_pct(r['last_mean'])}" for r in rows)
    rising = [r["run"] for r in rows if r["rise"] is not None and r["rise"] > 0.01]
    k = max(r["last_epochs"] for r in rows)
    tail = (
        f" Still rising by more than a point at the last epoch: {', '.join(rising)}."
        if rising
        else " None rose by more than a point at its last epoch."
    )
    order = sorted(rows, key=lambda r: r["last_mean"], reverse=True)
    ranked = " > ".join(r["run"] for r in order)
    return (
        f"Validation accuracy at each run's own noise, mean of the last {k} epochs: {each} "
        f"(ranked {ranked}).{tail}"
    )
