"""Checkpoints: round trip, listing, and clear errors for bad files."""

import json

import pytest
import torch

import saccade
from saccade.checkpoint import load_matching, paths
from tests.helpers import small_model


def test_round_trip_keeps_weights_and_config(checkpoint_path):
    model = saccade.load(checkpoint_path)
    again = saccade.load(str(checkpoint_path) + ".json")  # a suffix is accepted too
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    original = small_model()
    assert all(torch.equal(original.state_dict()[k], v) for k, v in model.state_dict().items())
    meta = model.meta
    for key in ("model", "dataset", "task", "size", "variance", "n_saccades", "test_accuracy"):
        assert key in meta
    assert (meta["model"], meta["dataset"], meta["task"], meta["size"]) == (
        "vs",
        "cluttered",
        "sum",
        100,
    )
    assert model.config.class_names == [str(i) for i in range(19)]
    weights, _ = paths(checkpoint_path)
    assert weights.stat().st_size < 10 * 2**20  # shippable without LFS


def test_list_checkpoints_skips_invalid(checkpoint_path):
    (checkpoint_path.parent / "junk.json").write_text("{not json")
    listed = saccade.list_checkpoints(checkpoint_path.parent)
    assert [c["name"] for c in listed] == ["tiny"]
    assert listed[0]["path"] == str(checkpoint_path)


def test_truncated_weights_are_rejected_naming_the_file(checkpoint_path):
    weights, _ = paths(checkpoint_path)
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"tiny\.safetensors are truncated or corrupt"):
        saccade.load(checkpoint_path)
    weights.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"tiny\.safetensors"):
        saccade.load(checkpoint_path)


def test_corrupt_or_foreign_json_is_rejected(checkpoint_path):
    _, config = paths(checkpoint_path)
    good = config.read_text()
    config.write_text(good[:50])
    with pytest.raises(ValueError, match=r"tiny\.json is not valid JSON"):
        saccade.load(checkpoint_path)
    config.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a saccade checkpoint"):
        saccade.load(checkpoint_path)


def test_config_that_does_not_match_the_weights(checkpoint_path):
    _, config = paths(checkpoint_path)
    meta = json.loads(config.read_text())
    meta["config"]["n_classes"] = 55
    meta["config"]["class_names"] = [str(i) for i in range(55)]
    config.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not match its config"):
        saccade.load(checkpoint_path)


def test_missing_checkpoint():
    with pytest.raises(ValueError, match="does not exist"):
        saccade.load("checkpoints/no-such-model")


def test_load_matching_skips_the_differently_shaped_head(checkpoint_path):
    single = small_model(task="single", seed=1)
    copied = load_matching(single, checkpoint_path)
    assert "crop_encoder.net.0.weight" in copied
    assert not any(k.startswith("classifier.head.2") for k in copied)
