"""The shipped checkpoints give the predictions saved in tests/data/predictions.npz (written by
``python scripts/prediction_snapshot.py``): a refactor must not change a number. On the machine
that wrote the snapshot they agree bit for bit; the tolerance only allows another CPU's
float rounding (CI's cores may differ: a crop pixel moved by 4.5e-6 between two Xeons, a
grey level is 4e-3)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("snapshot", ROOT / "scripts/prediction_snapshot.py")
snapshot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snapshot)


@pytest.mark.slow
def test_shipped_predictions_match_the_snapshot():
    saved = np.load(snapshot.SNAPSHOT)
    shipped = sorted((ROOT / "checkpoints").glob("*.json"))  # every checkpoint on disk
    in_snapshot = {k.split("/")[0] for k in saved.files}
    missing = sorted(p.stem for p in shipped if p.stem not in in_snapshot)
    assert not missing, f"{missing} have no snapshot: python scripts/prediction_snapshot.py"
    gone = sorted(in_snapshot - {p.stem for p in shipped})
    assert not gone, f"the snapshot holds {gone}, which are not shipped"
    fresh = snapshot.predictions(shipped)
    assert sorted(fresh) == sorted(saved.files)
    for key in saved.files:
        np.testing.assert_allclose(fresh[key], saved[key], rtol=1e-4, atol=2e-5, err_msg=key)
    # the snapshot is not trivial: every checkpoint's crops move between the two images
    for p in shipped:
        a, b = (saved[f"{p.stem}/{i}/mode/crops"] for i in (0, 1))
        assert not np.array_equal(a, b), p.stem
