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
SEALED = {
    ("data/slide.py", "read_region"),
    ("data/slide.py", "read_regions"),
    ("data/slide.py", "read_downsampled"),
}
#: shared pixel helpers, part of their caller's step
FOLDED = {("glimpse.py", "halve"), ("glimpse.py", "read_padded")}


@dataclass
class Route:
    """What one traced call did. ``steps``: the collapsed module sequence outside the forward
    (the forward one step, ``FORWARD``), each (module, whether a call entered it: False where
    a return came back to it); ``windows``: the same inside the forward, data modules only
    (the glimpse's window reads)."""

    steps: list[tuple[str, bool]]
    windows: list[tuple[str, bool]]

    @property
    def modules(self) -> list[str]:
        return [m for m, _ in self.steps]

    @property
    def entries(self) -> Counter:
        """How many times a call entered each module from another (the forward apart)."""
        return Counter(m for m, by_call in self.steps if by_call)

    @property
    def visits(self) -> Counter:
        """How many times each module appears on the route (entered, or returned to)."""
        return Counter(self.modules)

    @property
    def returns(self) -> int:
        """Returns to a module already left: appearances on the route beyond each module's
        first (a call into it again, or a return to it), the driver (``infer.py``) not
        counted."""
        return sum(n - 1 for m, n in self.visits.items() if m != DRIVER)

    def report(self, title: str) -> str:
        def counts(counter: Counter) -> str:
            return ", ".join(f"{m} {n}" for m, n in sorted(counter.items())) or "none"

        reads = Counter(m for m, by_call in self.windows if by_call and m != FORWARD)
        lines = [
            f"== {title}",
            "route: " + " → ".join(self.modules),
            f"entered (by a call from another module): {counts(self.entries)}",
            f"on the route (entered or returned to): {counts(self.visits)}",
            f"returns to a module already left (not {DRIVER}): {self.returns}",
            f"inside the forward (the glimpse's window reads), entered: {counts(reads)}",
        ]
        return "\n".join(lines)


def trace(fn, *args, fold: bool = True, **kwargs) -> tuple[object, Route]:
    """(fn(*args, **kwargs), its ``Route``). With ``fold``, pixel reading is not a route:
    everything beneath ``Slide.read_region`` (and ``read_regions``, ``read_downsampled``: its
    loop over tiles, the backend's decoding, the padded copy) is that one step of ``data/slide.py``, and the shared pixel helpers
    (``FOLDED``: 2x2 halving, the padded window copy) are part of their caller's step."""
    labels: dict = {}  # frame -> (module or None, inside the forward, folded beneath)
    timeline: list[tuple[str, bool, bool]] = []  # (module, inside the forward, by a call)

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

    def note(frame, by_call: bool) -> None:
        if frame is None:
            return
        module, forward, _ = label(frame)
        if module is None:
            return
        if forward and not module.startswith("data/"):
            module = FORWARD
        if not timeline or timeline[-1][:2] != (module, forward):
            timeline.append((module, forward, by_call))

    def profile(frame, event, arg) -> None:
        if event == "call":
            note(frame, True)
        elif event == "return":
            labels.pop(frame, None)
            note(frame.f_back, False)

    sys.setprofile(profile)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(None)
    steps: list[tuple[str, bool]] = []
    windows: list[tuple[str, bool]] = []
    for module, forward, by_call in timeline:
        if forward:  # the forward's own steps mark where one window read ends
            if not windows or windows[-1][0] != module:
                windows.append((module, by_call))
            module, by_call = FORWARD, False
        if not steps or steps[-1][0] != module:
            steps.append((module, by_call or module == FORWARD))
    return out, Route(steps, windows)


def example(side: int = 2528, pyramid: str = "subifds"):
    """(model, image, slide path): the shipped sum model, a cluttered test canvas resized to
    ``side``² and that canvas written as a tiled TIFF (``pyramid``: its reduced levels, or
    'none') in a temporary folder."""
    import cv2

    model = saccade.load(ROOT / "checkpoints" / "cluttered-sum-learnt")
    canvas = saccade.make_dataset("cluttered", task="sum", split="test", size=100)[0]["image"]
    image = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_LINEAR)
    folder = Path(tempfile.mkdtemp(prefix="trace-route-"))
    path = saccade.data.slide.write_slide(
        folder / "slide.tif", image, tile=256, compression="deflate", pyramid=pyramid
    )
    return model, image, path


def main() -> None:
    import torch

    torch.set_num_threads(1)
    model, image, path = example()
    # a tiled file without a pyramid, over STREAM_PIXELS: its levels are made, then cached
    _, _, flat = example(4608, pyramid="none")
    saccade.predict(model, image)  # imports and lazy set-ups out of the way
    runs = {
        "slide: predict(model, path) (2528² tiled TIFF, its pyramid in the file)": (path, 1),
        "slide: predict(model, path) (4608² tiled TIFF, no pyramid: levels made, cached)": (
            flat,
            2,
        ),
        "in memory: predict(model, array) (2528² uint8)": (image, 0),
    }
    for title, (source, kind) in runs.items():
        routes = {}
        for fold in (True, False):
            with tempfile.TemporaryDirectory() as cache:
                extra = {"slide_cache_dir": cache} if kind else {}
                _, routes[fold] = trace(saccade.predict, model, source, fold=fold, **extra)
                if kind == 2 and fold:  # again, its levels now in the cache
                    _, warm = trace(saccade.predict, model, source, **extra)
        print(routes[True].report(title))
        raw = routes[False]
        print(
            f"unfolded (every tile decode and pixel helper a step): {len(raw.steps)} steps, "
            f"data/slide_pyramid.py entered {raw.entries['data/slide_pyramid.py']}, "
            f"data/slide.py {raw.entries['data/slide.py']}, {raw.returns} returns"
        )
        if kind == 2:
            print(warm.report("the same again, its made levels read from the cache"))
        print()
    for p in (path, flat):
        shutil.rmtree(p.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
