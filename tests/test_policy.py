"""The where-policies of the ablations, and evaluate --policy."""

import numpy as np
import pytest
import torch

from saccade.evaluate.metrics import auroc
from saccade.evaluate.policies import make_policy
from saccade.glimpse import scale_to_fraction

G = 4


def _state(bright: list[tuple[int, int, float]]):
    saliency = torch.zeros(1, G, G)
    for r, c, v in bright:
        saliency[0, r, c] = v
    mode = torch.tensor([[0.5, 0.9, -0.9]])
    return mode, saliency


def _cell(z: torch.Tensor) -> tuple[int, int]:
    col = int(((z[0, 1] + 1) / 2 * G).floor())
    row = int(((z[0, 2] + 1) / 2 * G).floor())
    return row, col


def test_brightness_visits_the_brightest_uncovered_cells_in_turn():
    mode, saliency = _state([(1, 2, 1.0), (3, 0, 0.8), (0, 0, 0.3)])
    policy = make_policy("brightness")
    seen = torch.zeros(1, G, G)
    visited = []
    for t in range(3):
        z = policy(t, mode, seen, saliency)
        assert z[0, 0] == mode[0, 0]  # the model's own scale
        r, c = _cell(z)
        visited.append((r, c))
        seen[0, r, c] = 1.0
    assert visited == [(1, 2), (3, 0), (0, 0)]


def test_random_stays_inside_the_image_and_is_reproducible():
    mode = torch.tensor([[1.0, 0.0, 0.0]]).expand(500, 3)
    seen = saliency = torch.zeros(500, G, G)
    a = make_policy("random", min_scale=0.15, max_scale=0.3, seed=1)(0, mode, seen, saliency)
    b = make_policy("random", min_scale=0.15, max_scale=0.3, seed=1)(0, mode, seen, saliency)
    assert torch.equal(a, b)
    half = scale_to_fraction(torch.tensor(1.0), 0.15, 0.3)
    assert a[:, 1:].abs().max() <= 1 - half + 1e-6
    assert a[:, 1:].std() > 0.3  # spread over the image, not stuck in one place


def test_oracle_centres_the_digits_in_turn():
    # listed bottom first: the oracle still goes top to bottom, not in the generator's order
    boxes = [np.array([[60, 60, 80, 90], [10, 20, 30, 40]], np.float32)]
    policy = make_policy("oracle", boxes, [(100, 100)])
    mode, saliency = _state([])
    seen = torch.zeros(1, G, G)
    z = [policy(t, mode, seen, saliency)[0].tolist() for t in range(3)]
    assert z[0] == pytest.approx([0.5, -0.6, -0.4])
    assert z[1] == pytest.approx([0.5, 0.4, 0.5])
    assert z[2] == z[0]


def test_bad_policy_names():
    with pytest.raises(ValueError, match="policy='clever'"):
        make_policy("clever")
    with pytest.raises(ValueError, match="ground-truth boxes"):
        make_policy("oracle")
    assert make_policy("learnt") is None


def test_auroc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 300).astype(float)  # many ties
    positive = rng.random(300) < score / 6
    pos, neg = score[positive], score[~positive]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert auroc(score, positive) == pytest.approx(pairs, abs=1e-12)
    assert auroc(score, np.zeros(300, bool)) is None
    assert auroc(np.arange(4.0), np.array([False, False, True, True])) == 1.0
