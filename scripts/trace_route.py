"""The route ``saccade.predict`` takes through saccade's modules, on a slide and on an array.

    python scripts/trace_route.py            # a generated 2528² slide, the shipped sum model

Runs ``predict`` under ``sys.setprofile`` and records, at each call and return, the saccade
module then running (the innermost frame in the ``saccade`` package; library frames count as
the saccade module that called them). Consecutive events in one module collapse into one
step. Everything beneath the model's forward (``saccade/models/*``) is one step,
``(forward)``: the glimpse's window reads inside it are counted apart (``windows``), since
each window is one read of the image source, on either path.

Printed for each path: the route (the steps, ``infer.py`` the driver between them), how many
times each module is entered, and how many **returns to a module already left** there are:
the entries beyond each module's first, ``infer.py`` not counted (predict is the driver, it
is returned to after every step by construction). ``tests/test_route.py`` holds the slide
path to its figure.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import saccade  # noqa: E402

PACKAGE = str(Path(saccade.__file__).resolve().parent) + "/"
#: what the forward's subtree is shown as in the route
FORWARD = "(forward)"
#: the driver, not counted in the returns
DRIVER = "infer.py"
#: a read of pixels: everything beneath it is this one step (the loop over tiles)
SEALED = {("data/slide.py", "read_region"), ("data/slide.py", "read_regions")}
#: shared pixel helpers, part of their caller's step
FOLDED = {("glimpse.py", "halve"), ("glimpse.py", "read_padded")}


@dataclass
class Route:
    """What one traced call did: ``steps`` the collapsed module sequence outside the forward
    (the forward one step, ``FORWARD``), ``windows`` the collapsed sequence of data modules
    entered inside the forward (the glimpse's window reads)."""

    steps: list[str]
    windows: list[str]

    @property
    def entries(self) -> Counter:
        """How many times each module is entered on the route (the forward's reads apart)."""
        return Counter(self.steps)

    @property
    def returns(self) -> int:
        """Entries beyond each module's first, the driver (``infer.py``) not counted."""
        return sum(n - 1 for m, n in self.entries.items() if m != DRIVER)

    def report(self, title: str) -> str:
        entries = ", ".join(f"{m} {n}" for m, n in sorted(self.entries.items()))
        reads = Counter(self.windows)
        lines = [
            f"== {title}",
            "route: " + " → ".join(self.steps),
            f"entered: {entries}",
            f"returns to a module already left (not {DRIVER}): {self.returns}",
            "inside the forward (the glimpse's window reads): "
            + (", ".join(f"{m} {n}" for m, n in sorted(reads.items())) or "no data module"),
        ]
        return "\n".join(lines)


def trace(fn, *args, fold: bool = True, **kwargs) -> tuple[object, Route]:
    """(fn(*args, **kwargs), its ``Route``). With ``fold``, pixel reading is not a route:
    everything beneath ``Slide.read_region`` (its loop over tiles: the backend's decoding,
    the padded copy) is that one step of ``data/slide.py``, and the shared pixel helpers
    (``FOLDED``: 2x2 halving, the padded window copy) are part of their caller's step."""
    labels: dict = {}  # frame -> (module or None, inside the forward, folded beneath)
    timeline: list[tuple[str, bool]] = []

    def label(frame) -> tuple[str | None, bool, bool]:
        known = labels.get(frame)
        if known is not None:
            return known
        parent = (None, False, False) if frame.f_back is None else label(frame.f_back)
        code = frame.f_code
        name = code.co_filename
        if fold and parent[2]:
            known = parent  # beneath a read: the read's step
        elif name.startswith(PACKAGE):
            module = name[len(PACKAGE) :]
            # frames called from a model's frame are the forward's (a model's own frame is
            # the forward's first step, counted as FORWARD)
            forward = parent[1] or module.startswith("models/")
            if fold and (module, code.co_name) in FOLDED and parent[0] is not None:
                known = (parent[0], parent[1], True)
            else:
                sealed = fold and (module, code.co_name) in SEALED
                known = (module, forward, sealed)
        else:
            known = parent
        labels[frame] = known
        return known

    def note(frame) -> None:
        if frame is None:
            return
        module, forward, _ = label(frame)
        if module is None:
            return
        step = (FORWARD, True) if forward and not module.startswith("data/") else (module, forward)
        if not timeline or timeline[-1] != step:
            timeline.append(step)

    def profile(frame, event, arg) -> None:
        if event == "call":
            note(frame)
        elif event == "return":
            labels.pop(frame, None)
            note(frame.f_back)

    sys.setprofile(profile)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(None)
    steps: list[str] = []
    windows: list[str] = []
    for module, forward in timeline:
        if forward and module != FORWARD:
            if not windows or windows[-1] != module:
                windows.append(module)
            module = FORWARD
        if not steps or steps[-1] != module:
            steps.append(module)
    return out, Route(steps, windows)


def example(side: int = 2528):
    """(model, image, slide path): the shipped sum model, a cluttered test canvas resized to
    ``side``² and that canvas written as a tiled pyramidal TIFF in a temporary folder."""
    import cv2

    model = saccade.load(ROOT / "checkpoints" / "cluttered-sum-learnt")
    canvas = saccade.make_dataset("cluttered", task="sum", split="test", size=100)[0]["image"]
    image = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_LINEAR)
    folder = Path(tempfile.mkdtemp(prefix="trace-route-"))
    path = saccade.data.slide.write_slide(folder / "slide.tif", image, tile=256)
    return model, image, path


def main() -> None:
    import torch

    torch.set_num_threads(1)
    model, image, path = example()
    saccade.predict(model, image)  # imports and lazy set-ups out of the way
    runs = {
        f"slide: predict(model, {path.name!r}) (2528², tiled TIFF)": (str(path), True),
        "in memory: predict(model, array) (2528² uint8)": (image, False),
    }
    for title, (source, is_slide) in runs.items():
        routes = {}
        for fold in (True, False):
            with tempfile.TemporaryDirectory() as cache:
                extra = {"slide_cache_dir": cache} if is_slide else {}
                _, routes[fold] = trace(saccade.predict, model, source, fold=fold, **extra)
        print(routes[True].report(title))
        raw = routes[False]
        print(
            f"unfolded (every tile decode and pixel helper a step): {len(raw.steps)} steps, "
            f"data/slide_pyramid.py entered {raw.entries['data/slide_pyramid.py']}, "
            f"{raw.returns} returns"
        )
        print()
    shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
