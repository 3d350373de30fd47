"""``python -m saccade.figures``: the paper's comparison figures as PNGs in ``assets/``.

- ``noise-test.png``: test accuracy after T saccades against the proxy noise at test time,
  learnt against fixed variance (from ``assets/eval-*.json``, ``python -m saccade.evaluate``);
- ``noise-train.png``: validation accuracy per epoch of runs trained with different proxy
  noise (from their ``.metrics.jsonl`` logs);
- ``posterior-samples.png``: on one 2528² image, the crops of 16 posterior samples of a
  learnt-variance and of a fixed-variance model, with each model's accuracy when sampling.

Each figure is a plain plotly figure (the About tab can show them as they are); the PNGs
are written with kaleido, which drives the machine's Chromium (a development dependency,
``requirements-dev.txt``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import checkpoint
from .data import make_dataset
from .evaluate import evaluate
from .infer import predict
from .viz import downscale

COLOURS = {"learnt": "#d62728", "fixed": "#1f77b4"}


def noise_test_figure(results: dict[str, dict]) -> go.Figure:
    """Accuracy after T saccades against test-time proxy noise, one line per evaluation.

    Args:
        results: {name: ``evaluate`` result}; each has ``noise`` ({level: per-saccade}),
            ``model_saccades`` and ``variance``.
    """
    fig = go.Figure()
    for name, r in results.items():
        T = r["model_saccades"]
        levels = sorted(r["noise"], key=float)
        fig.add_trace(
            go.Scatter(
                x=[float(k) for k in levels],
                y=[100 * r["noise"][k][T - 1] for k in levels],
                mode="lines+markers",
                name=f"{name} ({r['variance']})",
                line={"color": COLOURS.get(r["variance"]), "dash": "solid"},
            )
        )
    fig.update_layout(
        title={"text": "Test accuracy against proxy noise at test time", "x": 0.02},
        xaxis={"title": "proxy noise (std, fraction of the intensity range)"},
        yaxis={"title": "test accuracy after T saccades (%)"},
        width=720,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def noise_train_figure(runs: dict[str, list[dict]]) -> go.Figure:
    """Validation accuracy per epoch, one line per training run, at the proxy noise the run
    trains with.

    Args:
        runs: {label: the run's metric events (``NAME.metrics.jsonl``)}; the events with
            ``val_acc_train_noise`` (or else ``val_acc``) are drawn.
    """
    fig = go.Figure()
    for label, events in runs.items():
        val = [e for e in events if "val_acc" in e]
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] for e in val],
                y=[100 * e.get("val_acc_train_noise", e["val_acc"]) for e in val],
                mode="lines+markers",
                name=label,
            )
        )
    fig.update_layout(
        title={"text": "Validation accuracy per epoch, by training proxy noise", "x": 0.02},
        xaxis={"title": "epoch", "dtick": 1},
        yaxis={"title": "validation accuracy (%)"},
        width=720,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def posterior_samples_figure(
    image: np.ndarray, panels: dict[str, tuple[np.ndarray, float | None]]
) -> go.Figure:
    """Crop boxes of posterior samples drawn over the image, one panel per model.

    Args:
        image: (S, S) uint8, full resolution (drawn downscaled).
        panels: {title: (boxes (n, T, 4) in full-resolution pixels, accuracy when sampling
            or None)}.
    """
    small = downscale(image, 512)
    f = small.shape[0] / image.shape[0]
    titles = [t if a is None else f"{t}: {100 * a:.1f}% sampling" for t, (_, a) in panels.items()]
    fig = make_subplots(1, len(panels), subplot_titles=titles, horizontal_spacing=0.04)
    palette = ["#e41a1c", "#ff7f00", "#ffff33", "#4daf4a", "#377eb8", "#984ea3", "#f781bf"]
    for col, (boxes, _) in enumerate(panels.values(), start=1):
        fig.add_trace(go.Heatmap(z=small[::-1], colorscale="gray", showscale=False), 1, col)
        for sample in boxes:
            for t, (x0, y0, x1, y1) in enumerate(sample):
                ys = small.shape[0] - np.array([y0, y0, y1, y1, y0]) * f
                fig.add_trace(
                    go.Scatter(
                        x=np.array([x0, x1, x1, x0, x0]) * f,
                        y=ys,
                        mode="lines",
                        line={"color": palette[t % len(palette)], "width": 1},
                        opacity=0.6,
                        showlegend=False,
                    ),
                    1,
                    col,
                )
        fig.update_xaxes(range=[0, small.shape[1]], visible=False, row=1, col=col)
        fig.update_yaxes(
            range=[0, small.shape[0]], visible=False, scaleanchor=f"x{col}", row=1, col=col
        )
    fig.update_layout(
        width=420 * len(panels),
        height=470,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        title={"text": "16 posterior samples (colour: saccade 1, 2, 3, ...)", "x": 0.02},
    )
    return fig


def sample_boxes(
    model, image: np.ndarray, n: int = 16, n_saccades: int | None = None, proxy_noise: float = 0.0
) -> np.ndarray:
    """(n, T, 4) crop boxes of n posterior samples (seeds 0..n-1) on one image."""
    return np.stack(
        [
            predict(model, image, n_saccades, proxy_noise, seed=s, sample=True).boxes
            for s in range(n)
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m saccade.figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("assets"), help="folder of the PNGs")
    parser.add_argument(
        "--eval",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="evaluate results for noise-test.png (learnt and fixed)",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        metavar="LABEL=METRICS",
        help="training logs for noise-train.png, e.g. 'noise 0.1=assets/logs/x.metrics.jsonl'",
    )
    parser.add_argument(
        "--samples",
        nargs=2,
        metavar="CHECKPOINT",
        help="a learnt and a fixed checkpoint for posterior-samples.png",
    )
    parser.add_argument(
        "--full-size", type=int, default=2528, help="side of the image of posterior-samples"
    )
    parser.add_argument(
        "--n", type=int, default=1000, help="test images for the accuracy when sampling"
    )
    args = parser.parse_args(argv)
    try:
        import kaleido  # noqa: F401  (plotly's PNG export)
    except ImportError:
        raise SystemExit(
            "error: writing PNGs needs kaleido: pip install -r requirements-dev.txt"
        ) from None
    try:
        written = _write(args)
    except (OSError, ValueError) as e:  # a missing or malformed file named on the command line
        raise SystemExit(f"error: {e}") from None
    for path in written:
        print(f"wrote {path}")


def _write(args: argparse.Namespace) -> list[Path]:
    """Write the figures the arguments ask for; returns their paths."""
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    if args.eval:
        results = {p.stem.removeprefix("eval-"): json.loads(p.read_text()) for p in args.eval}
        path = args.out / "noise-test.png"
        noise_test_figure(results).write_image(path)
        written.append(path)
    if args.runs:
        runs = {}
        for item in args.runs:
            label, sep, file = item.partition("=")
            if not sep:
                raise ValueError(f"--runs {item!r}: expected LABEL=METRICS_FILE")
            lines = Path(file).read_text().splitlines()
            runs[label] = [json.loads(line) for line in lines if line.strip()]
        path = args.out / "noise-train.png"
        noise_train_figure(runs).write_image(path)
        written.append(path)
    if args.samples:
        panels = {}
        image = None
        for name in args.samples:
            model = checkpoint.load(name)
            spec = model.config.dataset
            if image is None:
                ds = make_dataset(
                    spec["name"], task=spec["task"], split="test", full_size=args.full_size
                )
                image = ds[0]["image"]
            acc = evaluate(model, n=args.n, noise_levels=[], sample=True)["accuracy"]
            panels[f"{Path(name).name} ({model.config.variance})"] = (
                sample_boxes(model, image),
                acc,
            )
        path = args.out / "posterior-samples.png"
        posterior_samples_figure(image, panels).write_image(path)
        written.append(path)
    return written


if __name__ == "__main__":
    main()
