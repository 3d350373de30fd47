"""The exported trajectory as an animated GIF a teacher can put on a slide: one frame per
saccade, the image with the path, the crop boxes and the ground truth on the left, that
step's full-resolution region and k×k crop on the right, and the prediction so far."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..looked_at import covered_after
from .images import channels_last, downscale

#: the frame's size: the image panel is SIDE × SIDE, the right column PANEL wide
SIDE = 640
PANEL = 320
MARGIN = 16
TITLE = 40
STEP_RGB = (255, 127, 14)  # the current crop box and the path (viz.STEP_COLOUR)
PAST_RGB = (180, 110, 40)
TRUTH_RGB = {True: (44, 160, 44), False: (214, 39, 40)}  # looked at by this step / not yet


def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def _rgb(image: np.ndarray) -> Image.Image:
    a = np.asarray(channels_last(image))
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def _dashed_rect(draw: ImageDraw.ImageDraw, box, colour, width=3, dash=10) -> None:
    x0, y0, x1, y1 = box
    for a, b, horizontal, at in (
        (x0, x1, True, y0),
        (x0, x1, True, y1),
        (y0, y1, False, x0),
        (y0, y1, False, x1),
    ):
        pos = a
        while pos < b:
            end = min(pos + dash, b)
            line = [(pos, at), (end, at)] if horizontal else [(at, pos), (at, end)]
            draw.line(line, fill=colour, width=width)
            pos += 2 * dash


def slide_frames(prediction, truth: np.ndarray | None = None, crop_size: int | None = None):
    """The GIF's frames (PIL images, one per saccade) of a ``saccade.predict`` output.

    Args:
        prediction: with ``image``, ``boxes`` (T, 4), ``zooms``, ``crops``, ``probs``,
            ``class_names``.
        truth: optional (n, 4) ground-truth boxes (pixels of ``prediction.image``), drawn
            dashed: green once a crop up to that step looked at the digit, red until then
            (``saccade.looked_at.covered_after``; needs ``crop_size``).
    """
    image = prediction.image
    h, w = image.shape[:2]
    f = SIDE / max(h, w)
    background = _rgb(downscale(image, SIDE)).resize((round(w * f), round(h * f)))
    # boxes are pixels of the input; of a slide, level-0 pixels (image is its thumbnail)
    boxes = np.asarray(prediction.boxes, dtype=np.float64) * getattr(prediction, "image_scale", 1.0)
    T = len(boxes)
    seen = None
    if truth is not None and len(truth) and crop_size:
        truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
        seen = covered_after(truth, boxes, int(crop_size))  # (T, n)
    width = MARGIN * 3 + SIDE + PANEL
    height = TITLE + SIDE + MARGIN
    big, small = _font(22), _font(16)
    # drawn clipped to the picture, as the trajectory figure does: a crop past a rectangular
    # slide's border reaches into its virtual padding, which would cover the title here
    centres = np.clip((boxes[:, :2] + boxes[:, 2:]) / 2, 0, [w, h]) * f + [MARGIN, TITLE]
    boxes = np.clip(boxes, 0, [w, h, w, h])
    frames = []
    for t in range(T):
        frame = Image.new("RGB", (width, height), (255, 255, 255))
        frame.paste(background, (MARGIN, TITLE))
        draw = ImageDraw.Draw(frame)
        if seen is not None:
            for i, b in enumerate(truth):
                _dashed_rect(draw, b * f + [MARGIN, TITLE] * 2, TRUTH_RGB[bool(seen[t, i])])
        for i in range(t):
            draw.rectangle(list(boxes[i] * f + [MARGIN, TITLE] * 2), outline=PAST_RGB, width=1)
        if t:
            draw.line([tuple(c) for c in centres[: t + 1]], fill=STEP_RGB, width=3)
        draw.rectangle(list(boxes[t] * f + [MARGIN, TITLE] * 2), outline=STEP_RGB, width=4)
        label = int(np.argmax(prediction.probs[t]))
        p = float(prediction.probs[t, label])
        title = f"step {t + 1} of {T}: predicts {prediction.class_names[label]} (p = {p:.2f})"
        draw.text((MARGIN, 8), title, fill=(0, 0, 0), font=big)
        x = 2 * MARGIN + SIDE
        region = _rgb(prediction.zooms[t])
        fit = min(PANEL / region.width, (SIDE // 2 - 24) / region.height)
        region = region.resize(
            (max(1, round(region.width * fit)), max(1, round(region.height * fit)))
        )
        draw.text((x, TITLE - 2), "full-resolution region", fill=(60, 60, 60), font=small)
        frame.paste(region, (x, TITLE + 18))
        crop = _rgb(prediction.crops[t]).resize((PANEL // 2 + 60,) * 2, Image.NEAREST)
        k = int(np.asarray(prediction.crops).shape[-1])
        y = TITLE + SIDE // 2 + 10
        draw.text((x, y), f"the {k}×{k} crop the network saw", fill=(60, 60, 60), font=small)
        frame.paste(crop, (x, y + 20))
        frames.append(frame)
    return frames


def slide_gif(prediction, truth=None, crop_size=None, frame_ms: int = 1000) -> bytes:
    """``slide_frames`` as an animated GIF, looping forever; ≥ 800 px wide whatever the
    image's size."""
    frames = slide_frames(prediction, truth, crop_size)
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
