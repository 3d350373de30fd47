"""``python -m saccade.figures``: the paper's comparison figures as PNGs in ``assets/``.

- ``noise-test.png``: test accuracy after T saccades against the proxy noise at test time,
  learnt against fixed variance (from ``assets/eval-*.json``, ``python -m saccade.evaluate``);
- ``noise-train.png``: validation accuracy per epoch of runs trained with different proxy
  noise (from their ``.metrics.jsonl`` logs);
- ``posterior-samples.png``: on one 2528² image, the crops of 16 posterior samples of a
  learnt-variance and of a fixed-variance model, with each model's accuracy when sampling.

``--poster`` draws the seed poster's two figures from the training logs of
``scripts/poster.sh`` (``assets/logs/poster-*.metrics.jsonl``; ``--logs`` for another
folder), each as PNG and HTML, and their numbers as ``poster-summary.json``:

- ``poster-learnt-fixed-2528.png``: validation accuracy against epoch, learnt against fixed
  variance on cluttered id at 2528², the mean over the seeds with a min–max band (the logs
  ``poster-id-{learnt,fixed}-2528-s{SEED}``);
- ``poster-noisy-proxy.png``: validation accuracy per epoch of the runs trained with a fixed
  proxy noise, at each run's own noise (``poster-sum-noise-{NOISE}``), with the mean of the
  last epochs and the test accuracy in ``poster-summary.json``;
- ``poster-posterior-samples-2528.png``: 16 posterior samples of
  ``checkpoints/cluttered-id-learnt-2528`` and ``cluttered-id-fixed-2528`` on one 2528² test
  image (when both exist; ``--poster-samples`` for others), with each model's accuracy when
  sampling read from ``assets/eval-NAME-sample.json`` (``python -m saccade.evaluate --sample``)
  if there is one.

It also rewrites the two tables of docs/results.md between ``<!-- poster-learnt-fixed:begin
-->`` and ``<!-- poster-learnt-fixed:end -->`` (and ``poster-noisy-proxy``) with the new
numbers (``--docs``; a page without the markers is left alone).

The figures are ``saccade.viz``'s (``noise_figure``, ``noise_train_figure``,
``posterior_samples_figure``); this module gathers what they draw and writes the PNGs with
kaleido, which drives the machine's Chromium (a development dependency,
``requirements-dev.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import numpy as np

from . import checkpoint
from .data import make_dataset
from .evaluate.loop import evaluate
from .infer import predict
from .viz import poster
from .viz.results import noise_figure, noise_train_figure, posterior_samples_figure

#: the logs of scripts/poster.sh: learnt against fixed at 2528², and the noisy proxy
LEARNT_FIXED_LOG = re.compile(r"poster-id-(learnt|fixed)-2528-s(\d+)\.metrics\.jsonl")
NOISE_LOG = re.compile(r"poster-sum-noise-(\d+(?:\.\d+)?)\.metrics\.jsonl")

#: the two 2528² checkpoints of the side-by-side posterior samples
POSTER_SAMPLES = ("checkpoints/cluttered-id-learnt-2528", "checkpoints/cluttered-id-fixed-2528")


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
    parser.add_argument(
        "--poster",
        action="store_true",
        help="the poster's two figures from --logs (and the 2528² posterior samples)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=Path("assets/logs"),
        help="folder of the poster runs' NAME.metrics.jsonl (with --poster)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=Path("docs/results.md"),
        help="the page whose poster tables --poster rewrites (between its markers)",
    )
    parser.add_argument(
        "--poster-samples",
        nargs=2,
        metavar="CHECKPOINT",
        default=list(POSTER_SAMPLES),
        help="the learnt and the fixed checkpoint of poster-posterior-samples-2528.png",
    )
    args = parser.parse_args(argv)
    if not (args.eval or args.runs or args.samples or args.poster):
        parser.error("nothing to draw: give --eval, --runs, --samples or --poster")
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
            runs[label] = read_events(Path(file))
        path = args.out / "noise-train.png"
        noise_train_figure(runs).write_image(path)
        written.append(path)
    if args.samples:
        path = args.out / "posterior-samples.png"
        samples_figure(args.samples, args.full_size, n=args.n).write_image(path)
        written.append(path)
    if args.poster:
        written += write_poster(args.logs, args.out, args.poster_samples, args.docs)
    return written


def read_events(path: Path) -> list[dict]:
    """The metric events of one ``NAME.metrics.jsonl`` (one JSON object a line)."""
    events = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {i}: not JSON ({e.msg})") from None
        if not isinstance(event, dict):
            raise ValueError(f"{path}, line {i}: expected a JSON object")
        events.append(event)
    return events


def poster_runs(logs: Path) -> tuple[dict[str, list[list[dict]]], dict[str, list[dict]]]:
    """The poster runs' logs in ``logs``: ({mode: [events per seed, by seed]}, {"noise X":
    events, by noise}); a missing seed or noise is simply absent."""
    seeds: dict[str, dict[int, list[dict]]] = {"learnt": {}, "fixed": {}}
    noise: dict[float, tuple[str, list[dict]]] = {}
    for path in sorted(logs.glob("poster-*.metrics.jsonl")):
        if m := LEARNT_FIXED_LOG.fullmatch(path.name):
            seeds[m[1]][int(m[2])] = read_events(path)
        elif m := NOISE_LOG.fullmatch(path.name):
            noise[float(m[1])] = (f"noise {m[1]}", read_events(path))
    groups = {mode: [runs[k] for k in sorted(runs)] for mode, runs in seeds.items() if runs}
    return groups, dict(noise[k] for k in sorted(noise))


def write_poster(logs: Path, out: Path, samples: list[str], docs: Path | None = None) -> list[Path]:
    """The poster's figures (PNG and HTML) and ``poster-summary.json`` from the logs in
    ``logs``, the 2528² posterior samples when both ``samples`` checkpoints exist, and the
    tables of ``docs`` between its poster markers (``DOC_TABLES``) when it has them."""
    if not logs.is_dir():
        raise ValueError(f"--logs {logs}: not a folder")
    groups, noise = poster_runs(logs)
    if not groups and not noise:
        raise ValueError(f"--logs {logs}: no poster-*.metrics.jsonl (bash scripts/poster.sh)")
    written = []
    summary: dict = {"logs": str(logs)}
    if groups:
        fig = poster.learnt_fixed_figure(groups)
        written += _write_figure(fig, out / "poster-learnt-fixed-2528")
        summary["learnt_fixed"] = poster.seed_summary(groups)
        summary["learnt_fixed"]["verdict"] = poster.learnt_fixed_verdict(summary["learnt_fixed"])
        summary["learnt_fixed"]["markdown"] = poster.learnt_fixed_markdown(summary["learnt_fixed"])
    if noise:
        written += _write_figure(poster.noisy_proxy_figure(noise), out / "poster-noisy-proxy")
        rows = poster.noise_rows(noise)
        summary["noisy_proxy"] = {
            "rows": rows,
            "verdict": poster.noise_verdict(rows),
            "markdown": poster.noise_markdown(rows),
        }
    if all(all(f.is_file() for f in checkpoint.paths(name)) for name in samples):
        accs = [_sample_accuracy(out, name) for name in samples]
        path = out / "poster-posterior-samples-2528.png"
        samples_figure(samples, 2528, accuracies=accs).write_image(path)
        written.append(path)
    path = out / "poster-summary.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    written.append(path)
    if docs is not None and docs.is_file() and rewrite_tables(docs, summary, out):
        written.append(docs)
    return written


#: docs/results.md's poster tables: marker -> key of poster-summary.json
DOC_TABLES = {
    "poster-learnt-fixed": (
        "learnt_fixed",
        "poster-learnt-fixed-2528.png",
        "Validation accuracy per epoch, learnt against fixed variance, cluttered id at 2528², "
        "mean over seeds with a min-max band",
    ),
    "poster-noisy-proxy": (
        "noisy_proxy",
        "poster-noisy-proxy.png",
        "Validation accuracy per epoch of cluttered sum models trained with proxy noise 0, "
        "0.1 and 0.3, each at its own noise",
    ),
}


def rewrite_tables(page: Path, summary: dict, figures: Path) -> bool:
    """Replace the text between each ``<!-- MARKER:begin -->`` and ``<!-- MARKER:end -->`` of
    ``page`` by the figure (linked from ``figures``, relative to the page) and the summary's
    markdown (``DOC_TABLES``); a marker whose part the summary lacks is left as it is.
    Returns whether the page changed."""
    text = new = page.read_text()
    for marker, (key, png, alt) in DOC_TABLES.items():
        begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
        if key not in summary or begin not in new or end not in new.split(begin, 1)[1]:
            continue
        head, rest = new.split(begin, 1)
        tail = rest.split(end, 1)[1]
        link = Path(os.path.relpath(figures.resolve() / png, page.resolve().parent)).as_posix()
        body = f"![{alt}]({link})\n\n{summary[key]['markdown']}"
        new = f"{head}{begin}\n{body}\n{end}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def _write_figure(fig, stem: Path) -> list[Path]:
    """``fig`` as STEM.png and STEM.html (plotly.js from its CDN, as the bench's HTML)."""
    png, html = stem.with_suffix(".png"), stem.with_suffix(".html")
    fig.write_image(png)
    fig.write_html(html, include_plotlyjs="cdn")
    return [png, html]


def _sample_accuracy(assets: Path, name: str) -> float | None:
    """The accuracy when sampling of checkpoint ``name`` from ``assets/eval-NAME-sample.json``
    (``python -m saccade.evaluate NAME --sample --json ...``), or None if there is none."""
    path = assets / f"eval-{Path(name).name}-sample.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return float(data["accuracy"]) if data.get("sample") else None


def samples_figure(names: list[str], full_size: int, n: int = 1000, accuracies: list | None = None):
    """16 posterior samples of each checkpoint on the first test image at ``full_size``,
    with each model's accuracy when sampling: ``accuracies`` (one per checkpoint, None for
    unknown) or else measured on ``n`` test images."""
    panels = {}
    image = None
    for i, name in enumerate(names):
        model = checkpoint.load(name)
        spec = model.config.dataset
        if image is None:
            ds = make_dataset(spec["name"], task=spec["task"], split="test", full_size=full_size)
            image = ds[0]["image"]
        if accuracies is None:
            acc = evaluate(model, n=n, noise_levels=[], sample=True)["accuracy"]
        else:
            acc = accuracies[i]
        panels[f"{Path(name).name} ({model.config.variance})"] = (sample_boxes(model, image), acc)
    return posterior_samples_figure(image, panels)


if __name__ == "__main__":
    main()
