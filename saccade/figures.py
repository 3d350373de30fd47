"""``python -m saccade.figures``: the paper's comparison figures as PNGs in ``assets/``.

- ``noise-test.png``: test accuracy after T saccades against the proxy noise at test time,
  learnt against fixed variance (from ``assets/eval-*.json``, ``python -m saccade.evaluate``);
- ``noise-train.png``: validation accuracy per epoch of runs trained with different proxy
  noise (from their ``.metrics.jsonl`` logs);
- ``posterior-samples.png``: on one 2528² image, the crops of 16 posterior samples of a
  learnt-variance and of a fixed-variance model, with each model's accuracy when sampling.

The figures are ``saccade.viz``'s (``noise_figure``, ``noise_train_figure``,
``posterior_samples_figure``); this module gathers what they draw and writes the PNGs with
kaleido, which drives the machine's Chromium (a development dependency,
``requirements-dev.txt``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import checkpoint
from .data import make_dataset
from .evaluate.loop import evaluate
from .infer import predict
from .viz.results import noise_figure, noise_train_figure, posterior_samples_figure


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
        results = [(p.stem, json.loads(p.read_text())) for p in args.eval]
        path = args.out / "noise-test.png"
        noise_figure(results).write_image(path)
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
