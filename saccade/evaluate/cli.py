"""``python -m saccade.evaluate CHECKPOINT``: test accuracy after each saccade, under proxy noise.

The test split is rebuilt from the checkpoint's JSON (the dataset spec the model was trained
on, split "test", seed 0: the same images as the training run's ``test_accuracy``). One
forward pass of T saccades per image gives the class after every saccade (anytime
prediction), so the accuracy after 1..T saccades costs one pass per noise level. The model
uses the posterior's mode as z_t (the most probable cell, its mean offset, μ_s) unless
``--sample`` draws z_t ~ q(z_t | ·). ``--policy`` replaces where the model looks by an ablation
(``saccade.evaluate.policies``: brightness, random, oracle) to measure what the learnt choice is worth.

Proxy noise: Gaussian noise of std LEVEL (a fraction of the intensity range) is added to the
proxy only, as in ``saccade.make_proxy``; the crops still read the clean full-resolution
image, so the noise tests where the model decides to look. Level 0 is always evaluated.

Localisation (``--localisation``): a ground-truth digit counts as *covered* after t saccades
when at least 50% of the area of its ink box (``sample["boxes"]``) lies inside one of the
first t crop windows (``saccade.z_to_box`` of the z each crop used) and that crop resolves it:
the box's longer side spans at least 12 of the crop's k samples (``saccade.looked_at``;
a digit squeezed into a blob is not counted). Reported as the fraction of all digits of the
evaluated samples. ``localisation.ranking`` measures the first step's cell choice: the AUROC of
log π for the cells holding a digit against the cells holding only a distractor blob (a noise
stroke, a clutter fragment: ``saccade.evaluate.metrics.blob_cells``), pooled over the images and
within each image.

Output: a markdown table on stdout (rows: proxy noise; columns: saccades) and, with
``--json PATH``, a JSON object: ``checkpoint``, ``model`` ("vs"), ``dataset``, ``task``,
``size`` (full-resolution side), ``variance``, ``n``, ``n_saccades``, ``model_saccades``,
``sample``, ``seed``, ``policy``, ``accuracy`` (no noise, after the checkpoint's own number of
saccades), ``sigma`` ({level: {``median``, ``mean`` (over images and steps),
``median_per_step``, ``mean_per_step``, ``auroc_error_per_step``, ``auroc_error`` (the first
step's)}}: the posterior σ of the crop centre, and the AUROC of σ as a predictor of the
model's own error after T saccades),
``crop_side`` (quantiles of crop side / image side at no noise, and ``median_px``, ``min_px``,
``max_px``: the crop sides in each image's own pixels (a slide's level-0 pixels, another
image's square as the model reads it), with ``image_side_min`` and ``image_side_max``, and
``median_px_per_step``: a zoom's chain of scales; for a model read at a physical scale
(``--mpp``), the same in µm: ``mpp``, ``median_um``, ``min_um``, ``max_um``,
``median_um_per_step``, ``image_side_um_min``, ``image_side_um_max``), ``centres_inside`` ({level:
the fraction of the crop centres of steps 1..T inside the image}: with ``--sample``, where the
posterior's draws land),
``per_saccade`` (no noise, after 1..T), ``noise`` ({level: per-saccade list}, each level
written as ``str(float(level))``, e.g. "0.1"), ``time_s`` and, if asked, ``localisation``
({``min_overlap``, ``min_samples``, ``digits``, ``covered`` (no noise, after the checkpoint's own number of
saccades), ``per_saccade``, ``noise``, ``first_found`` ({``median_step``: the first step
whose crop looked at every box of an image, the median over the images that got there;
``never``: the share that did not})}).

Per-image results: the JSON has ``auroc_per_class`` ({class: the one-vs-rest AUROC of its
probability after T saccades, no noise; null for a class absent from, or alone in, the
images}), ``auroc`` (two classes: the binary AUROC, the second class the positive; else
null) and ``auroc_saccades`` (T). ``--predictions PATH`` writes one CSV row per test image:
``index``, ``path`` (empty for generated data), ``label``, ``prediction`` and ``prob_CLASS``
per class, after T saccades (``saccade.evaluate.predictions``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import checkpoint
from ..data.zoom import RENDERS
from ..infer import check_saccades
from ..models.vs import LAYOUTS, canvas_layout
from .loop import DEFAULT_NOISE, evaluate, evaluation_dataset, larger_canvas
from .policies import POLICIES
from .predictions import Predictions
from .report import format_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m saccade.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", help="checkpoint path, e.g. checkpoints/NAME")
    parser.add_argument("--n", type=int, default=5000, help="first N test samples (5000)")
    parser.add_argument(
        "--noise",
        type=float,
        nargs="+",
        default=list(DEFAULT_NOISE),
        metavar="LEVEL",
        help="proxy-noise stds in [0, 1] (0 0.1 0.2 0.4); 0 is always included",
    )
    parser.add_argument(
        "--saccades",
        type=int,
        metavar="T",
        help="T, saccades per image (default: the checkpoint's; up to its max_saccades)",
    )
    parser.add_argument(
        "--localisation",
        action="store_true",
        help="also report the fraction of digits looked at: >= 50%% of the box inside a crop "
        "that resolves it (the box spans >= 12 of the crop's samples)",
    )
    parser.add_argument("--sample", action="store_true", help="draw z from the posterior")
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="learnt",
        help="where to look: the model's posterior (learnt) or an ablation: the brightest "
        "uncovered proxy cell (brightness), uniform (random), the ground-truth digits "
        "(oracle), the posterior's locations with the crop scale pinned at its largest "
        "(scale-max) or smallest (scale-min), or its choice with its local cells over the "
        "last crop masked (proxy-cells: a model trained with --refine-grid)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the posterior draws")
    parser.add_argument(
        "--full-size",
        type=int,
        metavar="SIDE",
        help="evaluate on the test images upsampled to this side (e.g. 2528)",
    )
    parser.add_argument(
        "--canvas",
        type=int,
        metavar="SIDE",
        help="megapixel or zoom: evaluate on canvases of this side, the objects at their "
        "trained size in pixels (e.g. 3000 for a 1500 megapixel model, 65536 for a 32768 zoom "
        "model); see saccade.models.vs.for_canvas",
    )
    parser.add_argument(
        "--canvas-layout",
        choices=LAYOUTS,
        help="with --canvas: what else keeps its size. share: the proxy and the grid of cells "
        "keep their share of the side (the default for zoom, whose regions scale with the "
        "side); pixels: they keep their pixels, so the proxy grows (the default for "
        "megapixel)",
    )
    parser.add_argument(
        "--zoom-render",
        choices=RENDERS,
        help="zoom: render the test canvases with this renderer (default: the checkpoint's; "
        "a checkpoint saved before the option: max); docs/zoom.md, 'What the proxy shows'",
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, metavar="B", help="images per forward pass (128)"
    )
    parser.add_argument(
        "--root",
        metavar="PATH",
        help="folder datasets: read the test split from this folder instead of the root the "
        "checkpoint recorded (the same layout, e.g. after moving the data); a local folder or "
        "a bucket's (s3://bucket/slides/, gs://...)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="write the results as a JSON object here"
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        metavar="CSV",
        help="write one row per test image here: index, path, label, prediction and the "
        "class probabilities after T saccades (prob_CLASS)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        model = checkpoint.load(args.checkpoint)
        if args.canvas_layout is not None and args.canvas is None:
            raise ValueError("--canvas-layout goes with --canvas SIDE")
        spec = model.config.dataset or {}
        options = {"root": args.root} if args.root else {}
        if args.zoom_render is not None:
            if spec.get("name") != "zoom":
                raise ValueError(f"--zoom-render: this model was trained on {spec.get('name')!r}")
            options["render"] = args.zoom_render
        if args.canvas is not None:
            if args.full_size is not None:
                raise ValueError("--canvas and --full-size cannot be combined")
            layout = args.canvas_layout or canvas_layout(spec)
            model, dataset = larger_canvas(model, args.canvas, layout, **options)
        else:
            dataset = evaluation_dataset(model, args.full_size, **options)
        T = args.saccades if args.saccades is not None else model.config.n_saccades
        T = check_saccades(T, model)
        rows = Predictions(model.config.class_names, T)
        result = evaluate(
            model,
            n=args.n,
            noise_levels=args.noise,
            n_saccades=args.saccades,
            localisation=args.localisation,
            batch_size=args.batch_size,
            device=args.device,
            sample=args.sample,
            seed=args.seed,
            dataset=dataset,
            progress=True,
            policy=args.policy,
            on_clean_pass=rows,
        )
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    found = rows.aurocs()
    result = {
        "checkpoint": str(args.checkpoint),
        **result,
        "auroc": found["auroc"],
        "auroc_per_class": found["per_class"],
        "auroc_saccades": found["n_saccades"],
    }
    if args.canvas is not None:
        result["canvas_layout"] = layout
    if args.predictions:
        result["predictions"] = str(rows.write_csv(args.predictions))
    print(format_report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    if args.predictions:
        print(f"wrote {args.predictions} ({len(rows.labels)} rows)")
