"""Export one prediction as a JSON record of every step's numbers (the app's Export writes it
beside the GIF of ``saccade.viz.gif``).

``prediction_record`` is what a notebook or a bug report needs to reproduce the run: z, μ, σ,
the boxes and the class probabilities per step, with the checkpoint and the settings.
"""

from __future__ import annotations

import json

from .infer import Prediction


def prediction_record(prediction: Prediction, checkpoint: str, settings: dict) -> dict:
    """A JSON-ready record of the run: the checkpoint, the settings, and per step z, μ, σ
    (each (scale, x, y)), the crop box in full-resolution pixels and the class
    probabilities; then the final label."""
    steps = [
        {
            "step": t + 1,
            "z": prediction.z[t].tolist(),
            "mu": prediction.mu[t].tolist(),
            "sigma": prediction.sigma[t].tolist(),
            "box": prediction.boxes[t].tolist(),
            "probs": prediction.probs[t].tolist(),
        }
        for t in range(len(prediction.boxes))
    ]
    return {
        "checkpoint": checkpoint,
        "settings": dict(settings),
        "image_shape": list(prediction.image.shape),
        # a slide's path and level-0 (H, W): the boxes are its pixels (image: its thumbnail)
        "slide": getattr(prediction, "slide", None),
        "boxes_shape": list(getattr(prediction, "image_shape", None) or prediction.image.shape[:2]),
        "proxy_shape": list(prediction.proxy.shape),
        "class_names": list(prediction.class_names),
        "steps": steps,
        "label": int(prediction.label),
        "class_name": prediction.class_name,
    }


def prediction_json(prediction: Prediction, checkpoint: str, settings: dict) -> str:
    """``prediction_record`` as indented JSON text."""
    return json.dumps(prediction_record(prediction, checkpoint, settings), indent=1) + "\n"
