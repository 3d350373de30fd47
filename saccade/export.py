"""Export one prediction: an animated GIF of the crop trajectory with the zooms, and a JSON
record of every step's numbers.

``trajectory_gif(prediction)`` draws frame t as the image (downscaled) with the boxes of steps
1..t (the current one solid, the earlier ones thin) beside the full-resolution region of step
t, enlarged, under a line of text: step, predicted class and its probability. Pillow writes
the GIF (one frame per step, looping). ``prediction_record`` is what a notebook or a bug
report needs to reproduce the run: z, μ, σ, the boxes and the class probabilities per step,
with the checkpoint and the settings.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image, ImageDraw

from .image_io import downscale
from .infer import Prediction

#: the image panel's longer side and the zoom panel's side, in GIF pixels
IMAGE_SIDE = 384
ZOOM_SIDE = 192
TEXT_HEIGHT = 18
CURRENT = (255, 127, 14)  # the current crop (the app's step colour)
PAST = (150, 150, 150)


def _frame(background: Image.Image, scale: float, prediction: Prediction, t: int) -> Image.Image:
    """Frame t (0-based): the image with boxes 0..t, the zoom of box t, a caption."""
    w, h = background.size
    frame = Image.new("RGB", (w + ZOOM_SIDE, max(h, ZOOM_SIDE) + TEXT_HEIGHT), (255, 255, 255))
    frame.paste(background, (0, TEXT_HEIGHT))
    draw = ImageDraw.Draw(frame)
    for i in range(t + 1):
        x0, y0, x1, y1 = (float(v) * scale for v in prediction.boxes[i])
        box = (x0, y0 + TEXT_HEIGHT, x1, y1 + TEXT_HEIGHT)
        draw.rectangle(box, outline=CURRENT if i == t else PAST, width=3 if i == t else 1)
    zoom = Image.fromarray(np.asarray(prediction.zooms[t], np.uint8)).convert("RGB")
    zoom = zoom.resize((ZOOM_SIDE, ZOOM_SIDE), Image.Resampling.NEAREST)
    frame.paste(zoom, (w, TEXT_HEIGHT))
    probs = prediction.probs[t]
    best = int(probs.argmax())
    caption = (
        f"step {t + 1}/{len(prediction.boxes)}: "
        f"{prediction.class_names[best]} (p = {float(probs[best]):.2f})"
    )
    draw.text((4, 3), caption, fill=(0, 0, 0))
    return frame


def trajectory_gif(prediction: Prediction, frame_ms: int = 700) -> bytes:
    """An animated GIF of the trajectory: one frame per saccade, looping forever."""
    image = prediction.image
    small = downscale(image, IMAGE_SIDE)
    # boxes are pixels of the input; of a slide, level-0 pixels (image is its thumbnail)
    scale = small.shape[1] / image.shape[1] * getattr(prediction, "image_scale", 1.0)
    background = Image.fromarray(small).convert("RGB")
    frames = [_frame(background, scale, prediction, t) for t in range(len(prediction.boxes))]
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=int(frame_ms),
        loop=0,
        disposal=1,
    )
    return buf.getvalue()


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
