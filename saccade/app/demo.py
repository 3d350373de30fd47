"""The whole app: ``App`` (the shared state and one object per tab), the Blocks page that
builds each tab in turn (``build_demo``), and the server (``launch``, ``main``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr
import torch

from .. import image_io, viz
from .about import AboutTab
from .compare import CompareTab
from .explore import ExploreTab
from .page import Page, Tab
from .state import CHECKPOINTS, RUNS, State, refused
from .train_tab import TrainTab

#: requests that may wait in the queue (each runs at most two at a time)
QUEUE_SIZE = 64
#: browser sessions whose server-side state Gradio keeps (its default, 10,000, holds a copy of
#: every component's config per session: memory that grew with each new visitor)
SESSIONS_KEPT = 100
DESCRIPTION = (
    "saccade's Gradio app: see where a Variational Saccading model looks, compare learnt and "
    "fixed posterior variance, train a small model, read the results."
)


class App:
    """The app: its shared ``State`` and one object per tab, each holding that state by
    reference. ``App(checkpoints, assets, ...)`` takes ``State``'s arguments.

    A tab's event functions are its object's methods (``app.explore.run(Look(path))``, the
    API's ``/explore``); ``tabs`` is the page's order. A new tab is one module with a class
    like ``AboutTab`` (``page.Tab``) and a line here.
    """

    def __init__(self, *args, **kwargs):
        self.state = State(*args, **kwargs)
        self.explore = ExploreTab(self.state)
        self.compare = CompareTab(self.state)
        self.train = TrainTab(self.state)
        self.about = AboutTab(self.state)
        self.tabs: tuple[Tab, ...] = (self.explore, self.compare, self.train, self.about)


def _theme():
    # System fonts: the default theme would fetch Google Fonts, and the app stays offline.
    return gr.themes.Soft(
        font=[gr.themes.Font("ui-sans-serif"), "system-ui", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "monospace"],
    )


CSS = """
#explore-status, #compare-status { min-height: 1.5em; }
"""


def build_demo(app: App | None = None) -> gr.Blocks:
    """The Blocks app: each of ``app.tabs`` built inside its ``gr.Tab`` (``Tab.build``), then
    the page load that refreshes the checkpoint lists (``Page.wire_load``). The Explore and
    Compare tabs open on their first example already run (computed here, once, at start-up)."""
    app = app or App()
    with gr.Blocks(title="saccade: Variational Saccading") as demo:
        gr.Markdown(
            "# saccade: where does a Variational Saccading model look?\n"
            "A model sees a low-resolution proxy of a large image, decides where to look, takes "
            "a few small full-resolution crops and classifies from them."
        )
        page = Page(app.state, demo)
        for tab in app.tabs:
            with gr.Tab(tab.title, id=tab.id, visible=tab.visible):
                tab.build(page)
        page.wire_load()
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme, CSS and page-load JavaScript (Gradio 6 takes them in
    ``launch``; the script names the trajectory's animation frames, see
    ``viz.PLOTLY_FRAMES_JS``), the default queue for every event (the train event has its own
    limit of 1) and no SSR (no Node)."""
    # One intra-op thread per request: a single image's saccades are small ops, slower on
    # more threads (docs/results.md#one-thread-per-app-request). Threads started later
    # (Gradio's workers) inherit this; training sets its own.
    torch.set_num_threads(int(os.environ.get("SACCADE_APP_THREADS", "1")))
    _refuse_server_paths()
    options = {
        "theme": _theme(),
        "css": CSS,
        "ssr_mode": False,
        "max_file_size": image_io.MAX_FILE_BYTES,  # uploads: the same cap as image_io
        "footer_links": ["api"],
        "js": viz.PLOTLY_FRAMES_JS,  # the trajectory's slider follows Play
        "state_session_capacity": SESSIONS_KEPT,
    }
    # Two events at a time (two cores: each Explore uses one torch thread); up to QUEUE_SIZE
    # requests wait, and past that Gradio answers "Queue is full, please try again" at once
    # rather than holding a connection open (scripts/loadtest.py: 20 sessions, README).
    return demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE).launch(**(options | kwargs))


def _refuse_server_paths() -> bool:
    """Gradio refuses a file path that an API client sends in place of an upload (a path on
    the server, e.g. ``{"path": "/etc/x.png"}``) with ``InvalidPathError``, but prints a
    traceback and tells the client nothing (``"error": null``). Make it a refused request like
    the others: a message, one ``refused:`` line in the log. Only inputs (``check_in_upload_
    folder``) are changed; Gradio's own check still decides. False when this Gradio has no
    such check to wrap (it then behaves as before)."""
    from gradio import processing_utils
    from gradio.exceptions import InvalidPathError

    check = getattr(processing_utils, "_check_allowed", None)
    if check is None or getattr(check, "refuses_quietly", False):
        return False

    def checked(path, check_in_upload_folder):
        try:
            return check(path, check_in_upload_folder)
        except InvalidPathError:
            if not check_in_upload_folder:  # an output of the app: Gradio's error stands
                raise
            raise refused(
                f"Cannot use the file {Path(str(path)).name!r}: it is a path on the server, not "
                "an upload; accepted: an uploaded file"
            ) from None

    checked.refuses_quietly = True
    processing_utils._check_allowed = checked
    return True


def _limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc's ``mallopt(M_ARENA_MAX, arenas)``, as ``MALLOC_ARENA_MAX`` would set it: with
    an arena per worker thread, freed image buffers stayed in the process
    (docs/results.md#two-malloc-arenas). False where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, int(arenas)))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def _trim_malloc_every(seconds: float = 10.0) -> bool:
    """A daemon thread that calls glibc's ``malloc_trim(0)`` every ``seconds``: the freed
    buffers of finished requests (images, PNGs, figures' JSON) go back to the system instead
    of staying in the process's heap. False where there is no glibc."""
    import ctypes
    import ctypes.util
    import threading
    import time

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return False

    def loop():
        while True:
            time.sleep(seconds)
            trim(0)

    threading.Thread(target=loop, name="malloc-trim", daemon=True).start()
    return True


def main(argv: list[str] | None = None) -> None:
    if "MALLOC_ARENA_MAX" not in os.environ:  # before Gradio starts its threads
        _limit_malloc_arenas()
    _trim_malloc_every()
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS)
    parser.add_argument(
        "--runs",
        type=Path,
        default=RUNS,
        help="where the Train tab writes (one folder per browser session; env SACCADE_RUNS_DIR)",
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        default=os.environ.get("SACCADE_NO_TRAIN", "").lower() in ("1", "true", "yes"),
        help="turn the Train tab off, e.g. on a Space that only demonstrates "
        "(env SACCADE_NO_TRAIN=1)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=os.environ.get("SACCADE_IMAGES") or None,
        metavar="DIR",
        help="a folder of the server's own slides and large images that Explore lists and "
        "runs on (read tile by tile, never uploaded; nothing outside DIR is opened; "
        "env SACCADE_IMAGES)",
    )
    parser.add_argument(
        "--images-follow-links",
        action="store_true",
        help="with --images: also offer symlinks that lead out of DIR (files and folders), for "
        "an administrator who links slides in from elsewhere; off by default",
    )
    args = parser.parse_args(argv)
    if args.images is not None and not args.images.is_dir():
        parser.error(f"--images {str(args.images)!r} is not a folder")
    the_app = App(
        args.checkpoints,
        runs=args.runs,
        allow_train=not args.no_train,
        images=args.images,
        images_follow_links=args.images_follow_links,
    )
    if args.images is not None:  # what the listing offers, and what it refused and why
        listing = the_app.state.server_listing()
        print(f"--images {args.images}: {len(listing.files)} files offered. {listing.note()}")
    demo = build_demo(the_app)
    the_app.explore.warm()
    launch(demo, server_name=args.host, server_port=args.port)
