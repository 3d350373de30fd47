"""Per-image results of an evaluation: one row per test image (``Predictions``), the CSV
``python -m saccade.evaluate --predictions PATH`` writes, and the AUROC of each class
(``class_aurocs``), the figure a binary pathology task is judged by.

A row holds the image's ``index`` in the test split, its ``path`` (empty for generated data,
which has no file), its ``label`` and ``prediction`` (class names) and the class
probabilities after T saccades, one column ``prob_CLASS`` per class: the softmax of the
model's logits after T saccades of the no-noise pass, what ``saccade.predict(model, image,
n_saccades=T).probs[-1]`` gives for the same image.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from .metrics import auroc


def class_aurocs(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    """The one-vs-rest AUROC of each class and, with two classes, the binary AUROC.

    Args:
        probs: (N, C) class probabilities.
        labels: (N,) true class indices in [0, C).
        class_names: the C class names (the keys of ``per_class``).

    Returns:
        ``{"per_class": {name: AUROC of probs[:, c] for telling class c from the rest, or
        None when the images hold no example of c, or only c}, "auroc": the binary AUROC
        (class 1, ``class_names[1]``, the positive; with two classes it equals both
        one-vs-rest values) or None when there are not two classes}``.
    """
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] != len(class_names) or len(labels) != len(probs):
        raise ValueError(
            f"probs of shape {probs.shape} must be (N, {len(class_names)}) for {len(labels)} labels"
        )
    per_class = {name: auroc(probs[:, c], labels == c) for c, name in enumerate(class_names)}
    binary = per_class[class_names[1]] if len(class_names) == 2 else None
    return {"per_class": per_class, "auroc": binary}


class Predictions:
    """Collects one row per image from ``evaluate``'s no-noise passes (pass the instance as
    ``on_clean_pass``), after ``T`` saccades."""

    def __init__(self, class_names: list[str], T: int):
        self.class_names, self.T = list(class_names), int(T)
        self.indices: list[int] = []
        self.paths: list[str] = []
        self.labels: list[int] = []
        self.probs: list[np.ndarray] = []  # per batch (B, C)

    def __call__(self, indices: range, samples: list[dict], trace) -> None:
        """One batch: its indices in the split, its samples, the trace (logits (steps, B, C))."""
        logits = trace.logits[self.T - 1].float()  # (B, C)
        self.probs.append(torch.softmax(logits, -1).cpu().numpy())
        self.indices.extend(int(i) for i in indices)
        self.paths.extend(str(s.get("path", "")) for s in samples)
        self.labels.extend(int(s["label"]) for s in samples)

    def probabilities(self) -> np.ndarray:
        """(N, C) class probabilities after T saccades, in the order of the images."""
        n_classes = len(self.class_names)
        return np.concatenate(self.probs) if self.probs else np.zeros((0, n_classes))

    def aurocs(self) -> dict:
        """``class_aurocs`` of the collected images, plus ``n_saccades`` (T)."""
        found = class_aurocs(self.probabilities(), np.array(self.labels), self.class_names)
        return {"n_saccades": self.T, **found}

    def write_csv(self, path: str | os.PathLike) -> Path:
        """Write the rows (module docstring) to ``path`` (its folder is made); returns it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        probs = self.probabilities()
        names = self.class_names
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "path", "label", "prediction"] + [f"prob_{c}" for c in names])
            for i, row in enumerate(probs):
                writer.writerow(
                    [self.indices[i], self.paths[i], names[self.labels[i]], names[row.argmax()]]
                    + [f"{p:.6f}" for p in row]
                )
        return path
