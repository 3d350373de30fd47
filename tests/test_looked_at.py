"""``saccade.looked_at``: the rule (50% of the digit box inside one crop, 12 of its samples
across the digit) and the coverage helpers, on known boxes."""

import numpy as np
import pytest

from saccade.looked_at import (
    COVER_FRACTION,
    MIN_SAMPLES,
    box_coverage,
    covered,
    covered_after,
    looked_at,
)


def test_box_coverage_numbers():
    truth = np.array([[0, 0, 10, 10], [100, 100, 110, 120]], float)
    crops = np.array([[5, 0, 15, 10], [0, 0, 200, 200], [50, 50, 60, 60]], float)
    cov = box_coverage(truth, crops)
    assert cov.shape == (2, 3)
    np.testing.assert_allclose(cov, [[0.5, 1.0, 0.0], [0.0, 1.0, 0.0]])
    # the rule: at least half of the digit's box inside one crop box
    assert covered(truth, crops[:1], 32).tolist() == [True, False]
    assert covered(truth, crops[2:], 32).tolist() == [False, False]
    assert covered(truth, np.array([[4, 0, 14, 10]], float), 32).tolist() == [True, False]
    assert covered(truth, np.array([[6, 0, 16, 10]], float), 32).tolist() == [False, False]


def test_a_digit_squeezed_into_a_blob_is_not_looked_at():
    # A 20-pixel digit wholly inside a 450-pixel crop of 32 samples spans 1.4 samples: it is
    # inside, but not looked at; a 40-pixel crop (16 samples across it) looks at it.
    truth = np.array([[500, 500, 514, 520]], float)
    blob = np.array([[300, 300, 750, 750]], float)
    sharp = np.array([[490, 490, 530, 530]], float)
    assert box_coverage(truth, blob)[0, 0] == 1.0
    assert covered(truth, blob, 32).tolist() == [False]
    assert covered(truth, sharp, 32).tolist() == [True]


def test_covered_after_accumulates_over_the_crops():
    digits = [[10, 10, 30, 30], [60, 60, 80, 90]]  # areas 400 and 600
    crops = [
        [0, 0, 19, 40],  # digit 0: 9 x 20 = 180 < 50% of 400
        [0, 0, 20, 40],  # digit 0: 10 x 20 = 200, exactly 50%: covered
        [65, 55, 100, 100],  # digit 1: 15 x 30 = 450 = 75%
        [-50, -50, 0, 0],  # nothing
    ]
    got = covered_after(digits, crops, 32)
    assert got.tolist() == [[False, False], [True, False], [True, True], [True, True]]
    assert covered_after(digits, crops, 32, fraction=0.8)[-1].tolist() == [False, False]
    assert covered_after(digits, crops[:1], 32, fraction=0.45).tolist() == [[True, False]]


def test_the_rule_is_half_the_box_and_twelve_samples():
    assert (COVER_FRACTION, MIN_SAMPLES) == (0.5, 12)
    truth = np.array([[0, 0, 12, 6]], float)  # longer side 12 px
    # a 32-pixel crop of 32 samples: 12 samples across the digit, exactly enough
    assert looked_at(truth, np.array([[0, 0, 32, 32]], float), 32).tolist() == [[True]]
    assert looked_at(truth, np.array([[0, 0, 33, 33]], float), 32).tolist() == [[False]]
    assert looked_at(truth, np.array([[0, 0, 33, 33]], float), 32, min_samples=11).tolist() == [
        [True]
    ]
    with pytest.raises(ValueError, match="crop_size"):
        looked_at(truth, truth, 0)
