"""Write (or check) tests/data/training.npz: the weights after a few optimizer steps of each
training command, on a fixed seed:

- ``train``: ``saccade.train.loop.fit``, a small VS model on cluttered sum (3 steps);
- ``distil``: ``saccade.train.distil.distil``, the Megapixel where-network's first step taught
  by the shipped Megapixel reader (3 steps);
- ``pretrain``: ``saccade.train.pretrain.train_reader``, a digit reader (4 steps).

``tests/test_training_snapshot.py`` runs the same three again and compares every tensor: a
refactor of the training loop must not change a number.

    python scripts/training_snapshot.py            # rewrite the snapshot (after a deliberate change)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saccade.train.config import PRESETS, TrainConfig  # noqa: E402

SNAPSHOT = ROOT / "tests" / "data" / "training.npz"
#: the optimizer steps of each run (small: the snapshot runs in CI's fast lane)
STEPS = {"train": 3, "distil": 3, "pretrain": 4}


def _train(out: Path) -> dict[str, torch.Tensor]:
    from saccade.train.loop import fit

    cfg = TrainConfig.from_settings(
        task="sum", crop_size=8, hidden=16, features=16, n_saccades=3, batch_size=8,
        steps=STEPS["train"], warmup=2, workers=0, val_n=8, test_n=0, log_every=1,
        out=str(out / "train"),
    )  # fmt: skip
    return fit(cfg)["model"].state_dict()


def _distil(out: Path) -> dict[str, torch.Tensor]:
    from saccade.train.distil import distil

    settings = PRESETS["megapixel"] | {
        "reader": str(ROOT / "checkpoints" / "readers" / "megapixel"),
        "find_power": 3.0,
        "train_length": 4 * STEPS["distil"],
        "batch_size": 4,
        "epochs": 1,
        "warmup": 2,
        "workers": 0,
        "val_n": 2,
        "test_n": 0,
        "log_every": 1,
        "out": str(out / "distil"),
    }
    cfg = TrainConfig.from_settings(**settings)
    distil(cfg, candidates=16, target_side=45.0, command="snapshot", resume=False)
    from saccade import load

    return load(out / "distil").state_dict()


def _pretrain(out: Path) -> dict[str, torch.Tensor]:
    from saccade.train.pretrain import ReaderConfig, train_reader

    cfg = ReaderConfig(epochs=1, train_n=64 * STEPS["pretrain"], test_n=100, batch_size=64)
    model, _ = train_reader(cfg, quiet=True)
    return model.state_dict()


RUNS = {"train": _train, "distil": _distil, "pretrain": _pretrain}


def weights() -> dict[str, np.ndarray]:
    """{RUN/tensor name: array} after the runs of ``STEPS``, on one thread."""
    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in RUNS.items():
            for key, value in run(Path(tmp)).items():
                if value.is_floating_point():
                    out[f"{name}/{key}"] = value.detach().float().cpu().numpy()
    return out


if __name__ == "__main__":
    w = weights()
    np.savez_compressed(SNAPSHOT, **w)
    print(f"wrote {SNAPSHOT} ({len(w)} tensors)", file=sys.stderr)
