"""Do the shipped checkpoints predict the same on CUDA as on the CPU? Run it on a machine with
a GPU (the test suite runs where there is none):

    python scripts/cuda_check.py                      # every checkpoints/*.json, 16 images each
    python scripts/cuda_check.py --n 64 --atol 1e-3 checkpoints/cluttered-sum-learnt.json

For each checkpoint, the first ``--n`` images of its own test split (the app's examples for a
folder checkpoint, whose images are not shipped) go through ``saccade.predict`` on the CPU
and on the device, at the checkpoint's T: the class after every step must be the same, and
the probabilities, the posterior's mode (z) and σ must agree within ``--atol``. TF32 is
turned off, so that the device computes in float32 as the CPU does.

Exit status: 0 when every checkpoint agrees, 1 on a mismatch (each one named, with the
largest differences), 2 when the device is not available (e.g. ``--device cuda`` without
CUDA). Needs the library only (no gradio). ``--device cpu`` compares the CPU with itself: a
check of the script where there is no GPU (the test suite runs it so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import saccade  # noqa: E402

FIELDS = ("probs", "z", "sigma")


def images(meta: dict, n: int) -> list[np.ndarray]:
    """The first ``n`` test images of a checkpoint's own dataset (the app's examples of a
    folder checkpoint: its training images are not shipped)."""
    if meta["dataset"] == "folder":
        paths = sorted(ROOT.glob("assets/folder-*.png"))
        return [np.asarray(Image.open(p)) for p in paths[:n]]
    ds = saccade.make_dataset(meta["dataset"], task=meta["task"], split="test", size=meta["size"])
    return [ds[i]["image"] for i in range(min(n, len(ds)))]


def predictions(model: torch.nn.Module, pictures: list[np.ndarray]) -> dict[str, np.ndarray]:
    """{field: (n, ...) array} of ``saccade.predict`` on each picture, on the model's device."""
    out = {f: [] for f in (*FIELDS, "label")}
    for image in pictures:
        p = saccade.predict(model, image)
        for f in FIELDS:
            value = getattr(p, f)
            out[f].append(np.zeros(0) if value is None else np.asarray(value, np.float64))
        out["label"].append(np.asarray(p.probs)[-1].argmax())
    return {f: np.stack(v) for f, v in out.items()}


def compare(name: str, cpu: dict, dev: dict, atol: float) -> list[str]:
    """The mismatches of one checkpoint, one line each (empty when it agrees)."""
    problems = []
    flips = np.flatnonzero(cpu["label"] != dev["label"])
    if len(flips):
        problems.append(
            f"{name}: the class differs on {len(flips)} of {len(cpu['label'])} images "
            f"(image {flips.tolist()[:10]}: cpu {cpu['label'][flips].tolist()[:10]}, "
            f"device {dev['label'][flips].tolist()[:10]})"
        )
    for f in FIELDS:
        if cpu[f].size == 0:  # a model without σ or z (the ResNet baselines)
            continue
        diff = np.abs(cpu[f] - dev[f])
        if not diff.max() <= atol:  # NaN included
            image = int(np.unravel_index(np.nanargmax(diff), diff.shape)[0])
            problems.append(
                f"{name}: {f} differs by up to {diff.max():.3g} (> atol {atol:g}), on image {image}"
            )
    return problems


def check_device(device: str) -> str | None:
    """Why ``device`` cannot be used here, or None."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return f"unknown device {device!r}; accepted: cuda, cuda:N, cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return (
                f"--device {device}: CUDA is not available on this machine (torch "
                f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); run this "
                "script on a machine with an NVIDIA GPU and a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices"
    elif dev.type != "cpu":
        return f"--device {device}: accepted: cuda, cuda:N, cpu"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "checkpoints",
        nargs="*",
        type=Path,
        help="checkpoint JSON files (default: every checkpoints/*.json)",
    )
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    parser.add_argument("--n", type=int, default=16, help="images per checkpoint (default 16)")
    parser.add_argument(
        "--atol",
        type=float,
        default=1e-3,
        help="largest difference allowed in probabilities, z and σ (default 1e-3)",
    )
    args = parser.parse_args(argv)
    why = check_device(args.device)
    if why:
        print(f"cuda_check: {why}", file=sys.stderr)
        return 2
    if args.n < 1:
        parser.error(f"--n {args.n}: must be at least 1")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    paths = args.checkpoints or sorted((ROOT / "checkpoints").glob("*.json"))
    if not paths:
        print("cuda_check: no checkpoints to compare", file=sys.stderr)
        return 1
    problems = []
    for path in paths:
        model = saccade.load(Path(path).with_suffix(""))
        pictures = images(model.meta, args.n)
        cpu = predictions(model.to("cpu"), pictures)
        dev = predictions(model.to(args.device), pictures)
        model.to("cpu")
        found = compare(Path(path).stem, cpu, dev, args.atol)
        largest = max(float(np.abs(cpu[f] - dev[f]).max()) for f in FIELDS if cpu[f].size)
        verdict = "MISMATCH" if found else "same"
        print(
            f"{Path(path).stem}: {verdict} on {len(pictures)} images "
            f"(largest difference {largest:.2g})"
        )
        problems += found
    if problems:
        print(f"\ncuda_check: {args.device} and the CPU disagree:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"cuda_check: {len(paths)} checkpoints predict the same on {args.device} and the CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
