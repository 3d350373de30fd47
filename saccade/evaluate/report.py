"""The markdown report of a ``saccade.evaluate.evaluate`` result, as ``python -m
saccade.evaluate`` prints it: the accuracy after each saccade at each proxy-noise level, the
posterior σ and its AUROC, the crop sides (in µm too for a model read at a physical scale:
``crop_side_um``) and the localisation."""

from __future__ import annotations

from ..looked_at import MIN_SAMPLES


def _table(rows: dict[str, list[float]], own_t: int) -> list[str]:
    """Markdown rows: one per noise level, one column per saccade count."""
    T = len(next(iter(rows.values())))
    head = [f"{t}" + (" (trained)" if t == own_t else "") for t in range(1, T + 1)]
    lines = ["| proxy noise | " + " | ".join(head) + " |", "|---:|" + "---:|" * T]
    for key, values in rows.items():
        lines.append(f"| {key} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return lines


#: the keys in pixels of a result's ``crop_side`` that ``crop_side_um`` gives in µm too
PIXEL_KEYS = (
    "median_px",
    "min_px",
    "max_px",
    "median_px_per_step",
    "image_side_min",
    "image_side_max",
)


def crop_side_um(side: dict | None, mpp: float | None) -> dict | None:
    """A result's ``crop_side`` with its pixel figures in µm beside them, for a model that
    reads every image at ``mpp`` µm per pixel (``--mpp``: its pixels are those of the virtual
    canvas, each ``mpp`` µm): ``mpp``, ``median_um``, ``min_um``, ``max_um``,
    ``median_um_per_step``, ``image_side_um_min`` and ``image_side_um_max``. ``side`` as it
    is when ``mpp`` is None or it has no pixel figures (None stays None)."""
    if side is None or mpp is None or "median_px" not in side:
        return side
    mpp = float(mpp)
    out = dict(side, mpp=mpp)
    for key in ("median", "min", "max"):
        out[f"{key}_um"] = side[f"{key}_px"] * mpp
    out["median_um_per_step"] = [v * mpp for v in side["median_px_per_step"]]
    out["image_side_um_min"] = side["image_side_min"] * mpp
    out["image_side_um_max"] = side["image_side_max"] * mpp
    return out


def _crop_pixels(side: dict) -> str:
    """The crop sides in each image's own pixels, e.g. " (median 14649 px, 9000 to 20000 px;
    the images are 51200 px a side)", and in µm where the result has them (``crop_side_um``):
    " (at 0.5 µm per pixel: median 570 px = 285 µm, ...; the canvas is 800 px = 400 µm a
    side)"; "" for a result without them."""
    if "median_px" not in side:
        return ""
    lo, hi = side["image_side_min"], side["image_side_max"]
    if "median_um" in side:

        def both(key: str) -> str:
            return f"{side[key + '_px']:.0f} px = {side[key + '_um']:,.0f} µm"

        canvas = f"{lo} px = {side['image_side_um_min']:,.0f} µm"
        if lo != hi:
            canvas = f"{lo} to {hi} px = {side['image_side_um_min']:,.0f} to "
            canvas += f"{side['image_side_um_max']:,.0f} µm"
        return (
            f" (at {side['mpp']:g} µm per pixel: median {both('median')}, {both('min')} to "
            f"{both('max')}; the canvas is {canvas} a side)"
        )
    images = f"{lo} px a side" if lo == hi else f"{lo} to {hi} px a side"
    return (
        f" (in each image's pixels: median {side['median_px']:.0f} px, {side['min_px']:.0f} to "
        f"{side['max_px']:.0f} px; the images are {images})"
    )


def _aurocs(result: dict) -> list[str]:
    """The AUROC lines: the binary one, else one-vs-rest per class (at most 10 named)."""
    per_class = result.get("auroc_per_class")
    if not per_class:
        return []
    T = result.get("auroc_saccades", result["n_saccades"])

    def text(value):
        return "n/a" if value is None else f"{value:.3f}"

    if result.get("auroc") is not None or len(per_class) == 2:
        positive = list(per_class)[1]
        return ["", f"AUROC after {T} saccades ({positive!r} positive): {text(result['auroc'])}"]
    shown = list(per_class.items())[:10]
    more = f", ... ({len(per_class)} classes)" if len(per_class) > 10 else ""
    return [
        "",
        f"One-vs-rest AUROC per class after {T} saccades: "
        + ", ".join(f"{name} {text(v)}" for name, v in shown)
        + more,
    ]


def format_report(result: dict) -> str:
    """The markdown report of an ``evaluate`` result: accuracy table, then localisation."""
    how = "posterior samples" if result["sample"] else "posterior mode"
    if result.get("policy", "learnt") != "learnt":
        how = f"{result['policy']} policy instead of the posterior"
    how = f"{result['variance']} variance, {how}"
    if result.get("model", "vs") != "vs":
        how = f"model {result['model']}"
    where = f"{result['dataset']}/{result['task']} at {result['size']} px"
    side = result.get("crop_side") or {}
    sides = (side.get("image_side_min"), side.get("image_side_max"))
    if None not in sides and sides != (result["size"], result["size"]):
        # slides keep their own sides, whatever the spec's size
        lo, hi = sides
        where = f"{result['dataset']}/{result['task']} ({lo} to {hi} px a side)"
    elif "mpp" in side:  # a canvas of a physical side, whatever each slide's magnification
        where += f" ({side['image_side_um_min']:,.0f} µm at {side['mpp']:g} µm per pixel)"
    lines = [
        f"Test accuracy after 1..{result['n_saccades']} saccades on the first {result['n']} "
        f"test images of {where} ({how}):",
        "",
        *_table(result["noise"], result["model_saccades"]),
    ]
    if result.get("sigma"):
        lines += [
            "",
            "Posterior σ of the crop centre (the mean of its x and y σ), mean over the test "
            "images after 1..T saccades, and the AUROC of the first step's σ as a predictor "
            "of the model's error:",
            "",
            "| proxy noise | "
            + " | ".join(f"σ step {t + 1}" for t in range(result["n_saccades"]))
            + " | AUROC |",
            "|---:|" + "---:|" * (result["n_saccades"] + 1),
        ]
        for key, st in result["sigma"].items():
            au = "n/a" if st["auroc_error"] is None else f"{st['auroc_error']:.3f}"
            steps = " | ".join(f"{v:.4f}" for v in st["mean_per_step"])
            lines.append(f"| {key} | {steps} | {au} |")
    side = result.get("crop_side")
    if side:
        lines += [
            "",
            f"Crop side / image side: min {side['min']:.3f}, 5% {side['p5']:.3f}, median "
            f"{side['median']:.3f}, 95% {side['p95']:.3f}, max {side['max']:.3f}"
            + _crop_pixels(side),
        ]
    lines += _aurocs(result)
    loc = result.get("localisation")
    if loc is not None:
        lines += [
            "",
            f"Localisation: fraction of the {loc['digits']} ground-truth digits looked at (at "
            f"least {loc['min_overlap']:.0%} of the ink box inside one crop, its longer side "
            f"spanning at least {loc.get('min_samples', MIN_SAMPLES)} of the crop's samples), "
            "after 1..T saccades:",
            "",
            *_table(loc["noise"], result["model_saccades"]),
        ]
        rank = loc.get("ranking")
        if rank:
            lines += [
                "",
                f"Where the first step looks: the posterior ranks a cell holding a digit above "
                f"a cell holding only a distractor blob at AUROC {rank['auroc']:.3f} (pooled; "
                f"{rank['auroc_per_image']:.3f} within an image; {rank['digit_cells']} digit "
                f"and {rank['distractor_cells']} distractor cells)",
            ]
    return "\n".join(lines)
