"""A few optimizer steps of ``train``, ``distil`` and ``pretrain`` give the weights saved in
tests/data/training.npz (written by ``python scripts/training_snapshot.py`` before the
training loop was refactored): a change of the loop that moves a number fails here.

On the machine that wrote the snapshot the weights agree bit for bit. Another CPU rounds
floats differently (a crop pixel moved by 4.5e-6 between two Xeons), and three AdamW steps
can turn such a difference into a whole step of lr on a weight whose gradient is about 0
(the update is m / √v); so each tensor must agree to 1e-5, except for at most 0.5% of its
elements, which may differ by at most 3 steps of the largest learning rate (2e-3)."""

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("training", ROOT / "scripts/training_snapshot.py")
snapshot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snapshot)


def test_training_steps_match_the_snapshot():
    saved = np.load(snapshot.SNAPSHOT)
    fresh = snapshot.weights()
    assert sorted(fresh) == sorted(saved.files)
    assert {k.split("/")[0] for k in fresh} == set(snapshot.RUNS)
    for key in saved.files:
        a, b = fresh[key], saved[key]
        assert a.shape == b.shape, key
        off = np.abs(a - b) > 1e-5 + 1e-4 * np.abs(b)
        assert off.mean() <= 0.005, f"{key}: {off.sum()} of {off.size} elements moved"
        assert np.abs(a - b).max() <= 3 * 2e-3 + 1e-5, key


def test_the_snapshot_holds_trained_weights():
    """Each run's weights differ from a fresh model of the same seed (the steps did
    something), so a loop that stopped stepping would fail the test above."""
    import torch

    from saccade.train.pretrain import Reader, ReaderConfig

    saved = np.load(snapshot.SNAPSHOT)
    torch.manual_seed(0)
    init = Reader(ReaderConfig()).state_dict()
    key = "crop_encoder.net.0.weight"
    assert not np.allclose(saved[f"pretrain/{key}"], init[key].numpy(), atol=1e-6)
