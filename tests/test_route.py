"""The route ``saccade.predict`` takes through saccade's modules on a slide
(``scripts/trace_route.py``, run under ``sys.setprofile``): as straight as the in-memory one,
source → proxy → glimpse → boxes, so that it cannot silently grow back into the back and forth
it was (slide_pyramid.py entered 10 times by calls, 35 times on the route, 66 returns to a
module already left, on a 2528² slide; docs in the script)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import saccade
from saccade.data import slide_pyramid
from saccade.data.slide import write_slide

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("trace_route", ROOT / "scripts/trace_route.py")
trace_route = importlib.util.module_from_spec(spec)
sys.modules["trace_route"] = trace_route  # its dataclass looks its module up
spec.loader.exec_module(trace_route)

PYRAMID, SLIDE, CACHE = "data/slide_pyramid.py", "data/slide.py", "data/cache.py"


@pytest.fixture(scope="module")
def model():
    return saccade.load(ROOT / "checkpoints" / "cluttered-sum-learnt")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    canvas = saccade.make_dataset("cluttered", task="sum", split="test", size=100)[1]["image"]
    return cv2.resize(canvas, (1024, 1024), interpolation=cv2.INTER_LINEAR)


def _calls_into(route, module: str) -> list[int]:
    """Where on the route a call entered ``module`` (indices into ``route.steps``)."""
    return [i for i, (m, by_call) in enumerate(route.steps) if m == module and by_call]


def test_the_slide_path_enters_each_data_module_once_per_step(tmp_path, model, image):
    path = write_slide(tmp_path / "s.tif", image, tile=128, compression="deflate")
    out, route = trace_route.trace(saccade.predict, model, str(path), slide_cache_dir=False)
    assert out.slide == str(path) and out.boxes.shape == (model.config.n_saccades, 4)
    forward = route.modules.index(trace_route.FORWARD)
    # slide_pyramid.py: opened, its proxy read (before the saccades), the boxes read after
    calls = _calls_into(route, PYRAMID)
    assert len(calls) == 3, route.report("slide")
    assert sum(i < forward for i in calls) == 2
    # slide.py: the file opened, the proxy's pixels, the zooms' and thumbnail's pixels
    assert len(_calls_into(route, SLIDE)) == 3, route.report("slide")
    assert route.visits[PYRAMID] <= 7 and route.visits[SLIDE] <= 7, route.report("slide")
    assert route.returns <= 17, route.report("slide")
    assert CACHE not in route.visits  # its pyramid is in the file: nothing made
    # inside the forward each window read enters slide_pyramid.py, and the file, once
    reads = [m for m, by_call in route.windows if by_call and m != trace_route.FORWARD]
    assert reads.count(PYRAMID) >= model.config.n_saccades
    # (+ 2: the slide's background, estimated once per opening where a window first falls
    # past its edge: slide.py asks slide_meta.py, which reads its border through slide.py)
    assert reads.count(SLIDE) <= reads.count(PYRAMID) + 2, reads
    # the in-memory path, for comparison, never enters the slide modules
    _, memory = trace_route.trace(saccade.predict, model, image)
    assert not {PYRAMID, SLIDE} & set(memory.visits)
    assert memory.returns <= route.returns


def test_made_levels_enter_the_cache_once_when_they_are_in_it(tmp_path, model, image, monkeypatch):
    """A tiled file without a pyramid, over STREAM_PIXELS (lowered here): its levels are made
    by one pass (one call into slide.py) and stored; the next predict loads them in one call."""
    monkeypatch.setattr(slide_pyramid, "STREAM_PIXELS", 256 * 256)
    path = write_slide(
        tmp_path / "flat.tif", image, tile=128, compression="deflate", pyramid="none"
    )
    cache = tmp_path / "cache"
    cold_out, cold = trace_route.trace(saccade.predict, model, str(path), slide_cache_dir=cache)
    warm_out, warm = trace_route.trace(saccade.predict, model, str(path), slide_cache_dir=cache)
    np.testing.assert_array_equal(cold_out.boxes, warm_out.boxes)
    for route in (cold, warm):
        assert len(_calls_into(route, PYRAMID)) == 3, route.report("flat")
    # cold: opened, the levels made in one pass, cache key, proxy, boxes
    assert len(_calls_into(cold, SLIDE)) == 5, cold.report("cold")
    # warm: the cache opened and its entry loaded; slide.py: opened, cache key, proxy, boxes
    assert len(_calls_into(warm, CACHE)) == 2, warm.report("warm")
    assert len(_calls_into(warm, SLIDE)) == 4, warm.report("warm")
