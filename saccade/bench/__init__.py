"""Benchmarks: ``python -m saccade.bench`` (``cli``): the paper's headline (``headline``, one
configuration per child process: ``config``), the parts (``parts``: the glimpse, the model,
Megapixel MNIST's data path), the training step (``step``) and the timing helpers
(``timing``)."""

from .cli import main

__all__ = ["main"]
