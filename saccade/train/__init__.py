"""Training: ``python -m saccade.train`` (``cli``), the run's settings (``config``), the loop
(``loop``) and the crop encoder's pre-training (``pretrain``: ``python -m
saccade.train.pretrain``, a "reader")."""

from .cli import main
from .config import PRESETS, TrainConfig
from .loop import fit

__all__ = ["PRESETS", "TrainConfig", "fit", "main"]
