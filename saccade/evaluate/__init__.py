"""Evaluation: ``python -m saccade.evaluate`` (``cli``), the loop (``loop.evaluate``), the
report it prints (``report``) and the where-policies it compares (``policies``)."""

from .cli import main
from .loop import evaluate

__all__ = ["evaluate", "main"]
