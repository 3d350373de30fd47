"""--also-sizes: one model trained at several canvas sides (saccade.train.sides), for real:
imitation steps on zoom canvases of two sides, each batch through the view of its side."""

import json

import pytest
import torch

from saccade.train.config import TrainConfig
from saccade.train.loop import fit, setup
from saccade.train.sides import interleave, parse_sizes


def config(tmp_path, **kw) -> TrainConfig:
    base = dict(
        dataset="zoom", task="ring", size=16384, proxy_size=32, scale_space="log",
        min_scale=48 / 16384, max_scale=0.5, where_grid=8, crop_size=16, hidden=16,
        features=16, n_saccades=3, objective="imitation", also_sizes="32768", batch_size=2,
        train_length=4, epochs=1, val_n=2, test_n=0, workers=0, warmup=1, log_every=1,
        out=str(tmp_path / "run"),
    )  # fmt: skip
    return TrainConfig.from_settings(**(base | kw))


def test_each_side_trains_the_same_weights_through_its_view(tmp_path):
    """The other side's view (--also-layout pixels) is made of the model's own parameters
    (its grid and proxy twice the model's); a batch of the other side's canvases trains the
    model's posterior; an epoch alternates the sides' batches, and each epoch is validated
    at every side."""
    cfg = config(tmp_path, also_layout="pixels")
    run = setup(cfg)
    (side,) = run.sides
    assert side.size == 32768 and side.train_set.side == 32768
    assert side.model.config.where_grid == 16 and side.model.config.proxy_size == 64
    assert side.model.posterior.scale.weight is run.model.posterior.scale.weight
    bn = "proxy_encoder.conv.1.running_mean"
    assert side.model.get_buffer(bn) is run.model.get_buffer(bn)
    assert side.model.prior.cells.weight.shape[0] > run.model.prior.cells.weight.shape[0]
    batch = next(iter(run.loop.batches(0)))
    assert batch["image"][0].shape[0] == 16384
    other = next(b for b in run.loop.batches(0) if b["image"][0].shape[0] == 32768)
    loss, terms = run.loop.objective(other)
    loss.backward()
    assert run.model.posterior.scale.weight.grad.abs().sum() > 0
    sides = [b["image"][0].shape[0] for b in run.loop.batches(0)]
    assert sides == [16384, 32768, 16384, 32768]
    assert run.loop.total_steps == 4

    fit(config(tmp_path, also_layout="pixels", out=str(tmp_path / "fit")))
    events = [
        json.loads(line) for line in (tmp_path / "fit.metrics.jsonl").read_text().splitlines()
    ]
    epoch = next(e for e in events if "val_acc" in e)
    assert 0 <= epoch["val_acc_32768"] <= 1 and epoch["step"] == 4
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved["train"]["also_sizes"] == "32768"


def test_a_shared_layout_view_is_the_model_with_its_crops_kept_in_pixels(tmp_path):
    """A zoom run's default (--also-layout share): the other side's view has the model's
    proxy, grid and prior, the very tensors, and crop sides halved as fractions of a side
    twice as long; the bound's KL, which reads the prior, trains through it."""
    run = setup(config(tmp_path, objective="elbo"))
    (side,) = run.sides
    own, view = run.model.config, side.model.config
    assert (view.where_grid, view.proxy_size) == (own.where_grid, own.proxy_size) == (8, 32)
    assert view.min_scale * 32768 == pytest.approx(own.min_scale * 16384)
    assert side.model.prior.cells.weight is run.model.prior.cells.weight
    assert side.train_set.side == 32768 and side.train_set.proxy_size == 32
    other = next(b for b in run.loop.batches(0) if b["image"][0].shape[0] == 32768)
    loss, terms = run.loop.objective(other)
    loss.backward()
    assert terms["kl"] > 0 and run.model.prior.cells.weight.grad.abs().sum() > 0


def test_the_other_sides_losses_are_weighted(tmp_path):
    """--also-weight 0.01: a batch of the other side trains with its loss times 0.01 (its
    logged terms unweighted); the training side's is its own; 0 or NaN is refused by name."""
    run = setup(config(tmp_path, also_weight=0.01))
    batches = list(run.loop.batches(0))
    own, other = batches[0], batches[1]
    assert other["image"][0].shape[0] == 32768
    torch.manual_seed(0)
    weighted, terms = run.loop.objective(other)
    torch.manual_seed(0)
    plain, plain_terms = run.sides[0].objective(other)
    assert weighted.item() == pytest.approx(0.01 * plain.item(), rel=1e-5)
    assert terms == pytest.approx(plain_terms, rel=1e-5)  # logged as they are
    torch.manual_seed(0)
    mine, _ = run.loop.objective(own)
    torch.manual_seed(0)
    assert mine.item() == pytest.approx(run.loop.objective.objectives[16384](own)[0].item())
    for bad in (0.0, float("nan")):
        with pytest.raises(ValueError, match="also_weight=.* must be a number > 0"):
            config(tmp_path, also_weight=bad)


def test_the_renderer_reaches_every_side_and_the_checkpoint(tmp_path):
    """--zoom-render mean: the canvases of the training side, of the other side and of the
    validation are rendered by area averages, and the checkpoint's spec says so, so that
    ``evaluate`` rebuilds the same canvases; a dataset other than zoom refuses it by name."""
    from saccade.data import dataset_from_spec

    cfg = config(tmp_path, zoom_render="mean", out=str(tmp_path / "mean"))
    run = setup(cfg)
    (side,) = run.sides
    for ds in (run.train_set, run.test_set, side.train_set, side.val_set):
        assert ds[0]["image"].render == "mean"
    fit(cfg)
    spec = json.loads((tmp_path / "mean.json").read_text())["config"]["dataset"]
    assert spec["render"] == "mean" and dataset_from_spec(spec)[0]["image"].render == "mean"
    with pytest.raises(ValueError, match=r"zoom_render='area'.*accepted: \['max', 'mean'\]"):
        config(tmp_path, zoom_render="area")
    with pytest.raises(ValueError, match="zoom_render: dataset='megapixel' has one renderer"):
        TrainConfig.from_settings(dataset="megapixel", task="majority", zoom_render="mean")


def test_bad_sides_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="also_sizes='big'"):
        config(tmp_path, also_sizes="big")
    with pytest.raises(ValueError, match="also_layout='pixels' takes --objective imitation"):
        config(tmp_path, objective="elbo", also_layout="pixels")
    with pytest.raises(ValueError, match="also_layout='round'"):
        config(tmp_path, also_layout="round")
    with pytest.raises(ValueError, match="size=20000"):  # not a whole multiple of 16,384
        setup(config(tmp_path, also_sizes="20000", also_layout="pixels"))
    with pytest.raises(ValueError, match="size=4096.*at least 8192"):  # crops beyond it
        setup(config(tmp_path, also_sizes="4096"))
    assert parse_sizes(None) == () and parse_sizes("16384,65536") == (16384, 65536)


def test_interleave_takes_one_of_each_in_turn_until_all_are_spent():
    assert list(interleave([[1, 2, 3], ["a"], [torch.tensor(0)] * 0])) == [1, "a", 2, 3]
