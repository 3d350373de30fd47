"""Write (or check) tests/data/predictions.npz: each shipped checkpoint's predictions on two
of its own test images, at T saccades, posterior mode and a posterior sample, clean proxy and
noise 0.2. ``tests/test_snapshot.py`` compares a fresh run with it bit for bit, so that a
refactor that changes any number is caught.

    python scripts/prediction_snapshot.py            # rewrite the snapshot (after a retrain)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import saccade  # noqa: E402

SNAPSHOT = ROOT / "tests" / "data" / "predictions.npz"
FIELDS = ("probs", "mu", "sigma", "z", "boxes", "crops")


def images(meta: dict) -> list[np.ndarray]:
    """Two test images of a checkpoint's own dataset (the app's examples for a folder model)."""
    if meta["dataset"] == "folder":
        return [np.asarray(Image.open(p)) for p in sorted(ROOT.glob("assets/folder-*-4096-*.png"))]
    # the zoom benchmark's renderer, where the checkpoint's spec names one
    render = meta.get("config", {}).get("dataset", {}).get("render")
    options = {"render": render} if render else {}
    ds = saccade.make_dataset(
        meta["dataset"], task=meta["task"], split="test", size=meta["size"], **options
    )
    return [ds[i]["image"] for i in range(2)]


def predictions(checkpoints: list[Path]) -> dict[str, np.ndarray]:
    """{NAME/image/setting/field: array} for every checkpoint in ``checkpoints``."""
    torch.set_num_threads(1)
    out = {}
    settings = {"mode": {}, "sample": {"sample": True, "seed": 3}, "noise": {"proxy_noise": 0.2}}
    for path in checkpoints:
        model = saccade.load(path.with_suffix(""))
        for i, image in enumerate(images(model.meta)):
            for setting, kw in settings.items():
                p = saccade.predict(model, image, **kw)
                for f in FIELDS:
                    out[f"{path.stem}/{i}/{setting}/{f}"] = np.asarray(getattr(p, f))
    return out


if __name__ == "__main__":
    cks = sorted((ROOT / "checkpoints").glob("*.json"))
    np.savez_compressed(SNAPSHOT, **predictions(cks))
    print(f"wrote {SNAPSHOT} ({len(cks)} checkpoints)", file=sys.stderr)
