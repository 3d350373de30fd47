"""Shared fixtures: small models and checkpoints that make the tests fast on 2 CPU cores."""

import os

import pytest
import torch

import saccade
from saccade.train.config import TrainConfig
from saccade.train.loop import model_config

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)


def small_model(task: str = "sum", variance: str = "learnt", seed: int = 0, **cfg):
    """An untrained model for cluttered/``task`` at 100x100."""
    torch.manual_seed(seed)
    ds = saccade.make_dataset("cluttered", task=task, split="train")
    config = model_config(TrainConfig(task=task, variance=variance, **cfg), ds)
    return saccade.VariationalSaccader(config)


@pytest.fixture
def checkpoint_path(tmp_path):
    """A saved untrained cluttered/sum checkpoint; returns its path without suffix."""
    path = tmp_path / "ckpt" / "tiny"
    saccade.save(small_model(), path, {"test_accuracy": 0.0})
    return path
