"""Training: ``python -m saccade.train`` (``cli``), the run's settings (``config``), the one
training loop (``loop``) and the objectives it is handed (``objectives``: the model's own
loss; the find term, ``python -m saccade.train.distil``; the reader's, ``python -m
saccade.train.pretrain``)."""

from .cli import main
from .config import PRESETS, TrainConfig
from .loop import Loop, Steps, fit, make_steps, train_one_epoch, train_step
from .objectives import ELBO, FindTerm, ReaderLoss

__all__ = [
    "ELBO",
    "PRESETS",
    "FindTerm",
    "Loop",
    "ReaderLoss",
    "Steps",
    "TrainConfig",
    "fit",
    "main",
    "make_steps",
    "train_one_epoch",
    "train_step",
]
