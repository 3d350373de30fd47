"""``python -m saccade.bench``: the headline run writes every field, per configuration in its
own process, and reports a failing configuration instead of stopping."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from saccade import bench
from saccade.bench import headline
from saccade.glimpse import Pyramid, finest_level, glimpse
from saccade.train.loop import collate, first_level_for

FIELDS = {"model", "dataset", "side", "phase", "ms_per_image", "peak_mb", "params", "batch"}
FIELDS |= {"status", "device"}


@pytest.mark.slow
def test_quick_headline_writes_valid_json_with_every_field(tmp_path, capsys):
    out = tmp_path / "b.json"
    rows = bench.main(["--quick", "--json", str(out), "--plot", str(tmp_path / "chart")])
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert len(data) == len(rows) == 2 * 2 * len(headline.PHASES)  # 2 models x 2 sides
    for row in data:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert row["status"] == "ok", row
        assert row["device"] == "cpu" and row["batch"] == 4 and row["params"] > 0
        assert row["ms_per_image"] > 0
    train = [r for r in data if r["phase"] == "train"]
    assert all(r["peak_mb"] > 0 for r in train)
    epoch = [r for r in data if r["phase"] == "epoch"]
    assert all(r["epoch_s"] == pytest.approx(r["ms_per_image"] * 60) for r in epoch)
    assert all(0 <= r["data_wait"] <= 1 for r in epoch)
    vs = {r["phase"]: r for r in data if r["model"] == "vs" and r["side"] == 512}
    assert "pyramid levels" in vs["data"]["what"]  # the worker builds the levels crops read
    assert "| cluttered | 512 | resnet18-proxy |" in printed
    assert (tmp_path / "chart.html").stat().st_size > 1000
    # the PNG (kaleido, through Chromium): a real 1100 x 500 picture, not a blank one
    png = tmp_path / "chart.png"
    assert f"wrote {png}" in printed and png.stat().st_size > 10_000
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (1100, 500)
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # lines, markers, text
    assert (pixels.min(-1) > 240).mean() > 0.3  # mostly white ground around the plot


def test_a_failing_configuration_is_reported_and_the_run_goes_on():
    # 0.3 GB of address space cannot even import torch: the child fails, the run goes on,
    # and the larger side of the same model is skipped with the reason
    rows = headline.bench_headline(
        ["resnet18-proxy"], ["cluttered"], {"cluttered": [100, 256]}, memory_gb=0.3
    )
    assert len(rows) == 2 * len(headline.PHASES)
    first = [r for r in rows if r["side"] == 100]
    assert all(r["status"] != "ok" and r["ms_per_image"] is None for r in first)
    assert all(r["status"].startswith("skipped: ") for r in rows if r["side"] == 256)
    assert "at side 100" in rows[-1]["status"]


def test_time_cap_is_a_status_not_a_crash():
    rows = headline.run_config("vs", "cluttered", 100, 4, "cpu", time_cap=0.5, memory_gb=12)
    assert {r["status"] for r in rows} == {"over the time cap (0 s)"} or all(
        "time cap" in r["status"] for r in rows
    )


def test_ratios_against_the_grid_baseline():
    rows = [
        {"model": "resnet18-grid", "dataset": "c", "side": 9, "phase": "train"}
        | {"ms_per_image": 1000.0, "peak_mb": 400.0},
        {"model": "vs", "dataset": "c", "side": 9, "phase": "train"}
        | {"ms_per_image": 2.0, "peak_mb": 4.0},
        {"model": "vs", "dataset": "c", "side": 10, "phase": "train"}
        | {"ms_per_image": 2.0, "peak_mb": 4.0},
    ]
    headline.add_ratios(rows)
    assert rows[1]["vs_grid"] == pytest.approx(0.002) and rows[1]["peak_vs_grid"] == 0.01
    assert rows[2]["vs_grid"] is None  # no grid row at that side
    lines = headline.headline_summary(
        [r | {"side": 2528, "dataset": "cluttered", "status": "ok"} for r in rows[:2]]
    )
    assert lines[0].endswith("500x faster (target >= 1000x)")
    assert "1.0% (target <= 1%)" in lines[1]


def test_workers_send_only_the_levels_crops_read(tmp_path):
    """A cropping model at 2528² gets pyramids from level 3 (133 kB, not 6.4 MB), and its
    crops from them equal the crops from the whole image."""
    import torch

    from saccade.data import make_dataset
    from tests.helpers import small_model

    model = small_model()
    ds = make_dataset("cluttered", task="sum", split="train", full_size=2528, length=2)
    first = first_level_for(model, 2528)
    assert first == finest_level(2528, 0.15, 32) == 3
    batch = collate([ds[0], ds[1]], first)
    assert all(p.nbytes < 140_000 for p in batch["image"])
    z = torch.tensor([[-1.0, 0.1, -0.2], [1.0, -0.5, 0.3]])
    full = glimpse([Pyramid(ds[0]["image"]), Pyramid(ds[1]["image"])], z, 32, 0.15, 0.3)
    assert torch.equal(glimpse(batch["image"], z, 32, 0.15, 0.3), full)
    with pytest.raises(ValueError, match="level 2 of this 2528x2528 pyramid was dropped"):
        batch["image"][0].level(2)
    assert not math.isnan(float(np.asarray(batch["proxy"]).mean()))
