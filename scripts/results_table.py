"""Write the README's results table and docs/results.md's learnt-against-fixed table from the
evaluation JSON in assets/ (``python -m saccade.evaluate ... --json assets/eval-*.json``).

    python scripts/results_table.py            # rewrite both tables in place
    python scripts/results_table.py --check    # exit 1 if either is not what the JSON says

Each table sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers; the
numbers of the papers are quoted below, everything else is read from the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

#: (row label, checkpoint stem, baseline stem, the paper's VS, others from the papers)
ROWS = [
    ("cluttered single (10), 100²", "cluttered-single", "cluttered-single", "–", "RAM 89.2%"),
    (
        "cluttered sum (19), 100²",
        "cluttered-sum",
        "cluttered-sum",
        "97.2%",
        "ResNet-18 99.86%, RAM 91%, DRAM 97.5%",
    ),
    (
        "cluttered id (55), 100²",
        "cluttered-id",
        "cluttered-id",
        "95.4%",
        "ResNet-18 97.4%, RAM 93%, DRAM 95%",
    ),
    (
        "cluttered id (55), 2528²",
        "cluttered-id-2528",
        None,
        "95.2%",
        "ResNet-18 on 144 crops 97.3%",
    ),
    (
        "Megapixel majority (10), 1500²",
        "megapixel-majority",
        "megapixel-majority",
        "–",
        # no peer figure: IPS (Bergner et al. 2023) reports Megapixel MNIST, but its table
        # was not checked here, and a figure must name its paper and table
        "–",
    ),
    ("folder-marks (3), 4096² RGB", "folder-marks", None, "–", "–"),
]


def load(name: str) -> dict | None:
    path = ASSETS / f"eval-{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def accuracy(name: str) -> float | None:
    data = load(name)
    return None if data is None else data["accuracy"]


def variant(stem: str, variance: str) -> str:
    """The checkpoint name of a row's variance: cluttered-id-2528 -> cluttered-id-learnt-2528."""
    if stem.endswith("-2528"):
        return f"{stem[: -len('-2528')]}-{variance}-2528"
    return f"{stem}-{variance}"


def readme_table() -> str:
    head = (
        "| task (classes), image side | VS learnt σ | VS fixed σ | VS, paper | `resnet18-proxy` "
        "| `resnet18-full` | `ram` | `ats` | others, paper |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for label, stem, base, paper, others in ROWS:
        cells = [
            label,
            pct(accuracy(variant(stem, "learnt"))),
            pct(accuracy(variant(stem, "fixed"))),
        ]
        cells.append(paper)
        for model in ("resnet18-proxy", "resnet18-full", "ram", "ats"):
            cells.append(pct(accuracy(f"baseline-{model}-{base}")) if base else "–")
        cells.append(others)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sigma_step(data: dict, noise: str, step: int) -> float | None:
    try:
        return data["sigma"][noise]["mean_per_step"][step]
    except (KeyError, IndexError, TypeError):
        return None


def pair_table() -> str:
    """Learnt against fixed variance, per cluttered task: accuracy at T, at 2T, with crops
    at posterior samples, σ of the crop centre at the step that finds the last digit, clean
    and at noise 0.3, and the policy ablation at T."""
    head = (
        "| checkpoint | at T | at 2T | best ≤ T | sampled | σ clean | σ noise 0.3 | ratio "
        "| oracle | brightness | random | digits looked at |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for task, step in (("single", 0), ("sum", 1), ("id", 1)):
        for v in ("learnt", "fixed"):
            name = f"cluttered-{task}-{v}"
            data = load(name)
            if data is None:
                continue
            T = data["model_saccades"]
            per = data["per_saccade"]
            sampled = accuracy(f"{name}-sample")
            clean, noisy = sigma_step(data, "0.0", step), sigma_step(data, "0.3", step)
            ratio = "–" if not clean or noisy is None else f"{noisy / clean:.2f}x"
            cells = [
                f"`{name}`",
                pct(per[T - 1]),
                pct(per[2 * T - 1]) if len(per) >= 2 * T else "–",
                pct(max(per[:T])),
                pct(sampled),
                "–" if clean is None else f"{clean:.3f}",
                "–" if noisy is None else f"{noisy:.3f}",
                ratio,
            ]
            cells += [
                pct(accuracy(f"{name}-policy-{p}")) for p in ("oracle", "brightness", "random")
            ]
            cells.append(pct(data.get("localisation", {}).get("covered")))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ranking(data: dict) -> str:
    """The step-1 ranking AUROC of ``evaluate --localisation`` (digit cells against distractor
    cells), or "–"."""
    ranking = (data.get("localisation") or {}).get("ranking")
    return "–" if not ranking else f"{ranking['auroc']:.3f}"


def megapixel_table() -> str:
    """Megapixel MNIST at 1500² (and the learnt model at 3000²): accuracy after 1, 5, T and
    2T saccades, the share of digits looked at after T and the first step's ranking AUROC,
    for the learnt and fixed models, the distillation stage alone, and the learnt model's
    crops placed by each policy (the oracle: on the five digits)."""
    head = (
        "| where the crops go | after 1 | 5 | 10 (T) | 20 saccades | digits looked at after T "
        "| step-1 ranking AUROC |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    rows = [
        ("the learnt posterior, learnt σ", "megapixel-majority-learnt"),
        ("the learnt posterior, fixed σ", "megapixel-majority-fixed"),
        (
            "distillation stage 1 alone (2,000 canvases; its first step taught, nothing else "
            "trained)",
            "megapixel-distil",
        ),
        (
            "distillation stages 1 and 2 alone (+ 4,000 canvases, targets cubed)",
            "megapixel-distil-sharp",
        ),
        (
            "distillation stages 1, 2 and 2b alone (+ 8,000 other canvases)",
            "megapixel-distil-more",
        ),
        ("brightness (a heuristic)", "megapixel-majority-learnt-policy-brightness"),
        ("random", "megapixel-majority-learnt-policy-random"),
        (
            "oracle (the five digits in turn), the model's own crop scale",
            "megapixel-majority-learnt-policy-oracle",
        ),
        (
            "oracle, the reader and the evidence sum before any training (50 px crops; 1,000)",
            "megapixel-reader-oracle",
        ),
        ("the learnt posterior, learnt σ, on 3000² canvases", "megapixel-majority-learnt-3000"),
    ]
    for label, name in rows:
        data = load(name)
        if data is None:
            continue
        per, T = data["per_saccade"], data["model_saccades"]
        at = [per[i - 1] if len(per) >= i else None for i in (1, 5, T, 2 * T)]
        covered = data.get("localisation", {}).get("per_saccade", [])
        looked = covered[T - 1] if len(covered) >= T else None
        cells = [label] + [pct(v) for v in at[:2]] + [f"**{pct(at[2])}**", pct(at[3]), pct(looked)]
        cells.append(_ranking(data) if data.get("policy") in (None, "learnt") else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def megapixel_targets_table() -> str:
    """The learnt and fixed Megapixel models against the other targets: accuracy at T at the
    posterior's mode and at its samples (``--sample``), where the sampled crop centres land,
    and accuracy at proxy noise 0.1; and the last distillation stage alone."""
    head = (
        "| checkpoint | at T, mode | at T, sampled | sampled centres inside the image "
        "| at T, proxy noise 0.1 |\n|---|---|---|---|---|"
    )
    lines = [head]
    for name in (
        "megapixel-majority-learnt",
        "megapixel-majority-fixed",
        "megapixel-distil-sharp",
        "megapixel-distil-more",
    ):
        mode, sampled = load(name), load(f"{name}-sample")
        if mode is None:
            continue
        T = mode["model_saccades"]
        noisy = mode["noise"].get("0.1", [])
        inside = (sampled or {}).get("centres_inside", {}).get("0.0")
        cells = [
            f"`{name}`",
            pct(mode["accuracy"]),
            pct(sampled["accuracy"]) if sampled else "–",
            pct(inside),
            pct(noisy[T - 1] if len(noisy) >= T else None),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: (file, marker, the function that writes the table); a file may hold several tables
TABLES = [
    (ROOT / "README.md", "results", readme_table),
    (ROOT / "README.md", "megapixel", megapixel_table),
    (ROOT / "docs/results.md", "pairs", pair_table),
    (ROOT / "docs/results.md", "megapixel-results", megapixel_table),
    (ROOT / "docs/results.md", "megapixel-targets", megapixel_targets_table),
]


def replaced(text: str, marker: str, table: str) -> str:
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"error: the markers {begin} ... {end} are missing")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for path, marker, make in TABLES:
        text = path.read_text()
        new = replaced(text, marker, make())
        if new != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(
            f"stale tables in {', '.join(dict.fromkeys(stale))}: run python scripts/results_table.py"
        )
        return 1
    print("up to date" if args.check else f"rewrote {', '.join(dict.fromkeys(stale)) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
