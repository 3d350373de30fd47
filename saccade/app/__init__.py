"""saccade's Gradio app: see where a Variational Saccading model looks, compare learnt and
fixed posterior variance, train a small model, read the results.

    python app.py                 # http://127.0.0.1:7860, offline, models from checkpoints/

One module per tab (``explore``, ``compare``, ``train_tab``, ``about``), each with one class
(``ExploreTab``, ...) that holds the shared ``State`` by reference, has the event functions
that tab calls as its methods, and a ``build(page)`` that makes its components and wires its
own events; ``state`` holds what they share (checkpoints, caches, sessions, refusals, and
``Look``, one Explore or Compare request), ``page`` what a page being built shares (the
checkpoint lists), ``widgets`` the pieces written once, ``demo`` the ``App``, the page and the
server. Every computation is a ``saccade.*`` call and every figure comes from ``saccade.viz``.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .demo import App, build_demo, launch, main  # noqa: E402
from .state import Look, State  # noqa: E402

__all__ = ["App", "Look", "State", "build_demo", "launch", "main"]
