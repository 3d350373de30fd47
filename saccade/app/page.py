"""What the tabs of one page share while it is built: the app's ``State``, the Blocks page,
and the checkpoint dropdowns that a page load and a finished training refresh.

A tab is a ``Tab``: a ``title``, an ``id``, the shared ``State`` it holds (``tab.state``) and a
``build(page)`` that makes its components and wires its own events; ``saccade.app.demo``
lists the tabs in page order and builds each inside its ``gr.Tab``.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import gradio as gr

from .state import KEEP, State, session_id


class CheckpointLists(NamedTuple):
    """The page's checkpoint dropdowns, in one order (their components, values or updates):
    Explore's, of every variance mode, then Compare's learnt- and fixed-variance ones."""

    checkpoint: object
    learnt: object
    fixed: object


#: the variance mode each of ``CheckpointLists`` offers (None: every mode)
VARIANCES = CheckpointLists(None, "learnt", "fixed")


def list_updates(state: State, session: str, values) -> CheckpointLists:
    """Each checkpoint dropdown's update for ``session`` (``State.list_update``): ``values``
    holds, per dropdown, the name to choose (the first listed when it is not), or ``KEEP``."""
    return CheckpointLists(
        *(state.list_update(session, v, value) for v, value in zip(VARIANCES, values, strict=True))
    )


class Tab(abc.ABC):
    """One tab of the page (``saccade.app.App.tabs`` lists them): it holds the app's shared
    state by reference, and its event functions are its methods."""

    title: ClassVar[str]  # the tab's label
    id: ClassVar[str]  # ``gr.Tab``'s id; its components' elem_ids begin with it
    visible: bool = True  # False: the tab is on the page but hidden

    def __init__(self, state: State):
        self.state = state

    @abc.abstractmethod
    def build(self, page: Page) -> None:
        """The tab's components and events, made inside its ``gr.Tab``."""


class Page:
    """One page being built: each tab's ``build`` gets it. Explore and Compare put their
    checkpoint dropdowns in ``lists`` (``add_list``); the Train tab, built after them,
    updates them; ``wire_load`` (after every tab) refreshes them when a page loads."""

    def __init__(self, state: State, demo: gr.Blocks):
        self.state = state
        self.demo = demo  # a tab that refreshes its own components on load uses demo.load
        self._lists: dict[str, object] = {}

    def add_list(self, field: str, dropdown) -> None:
        """``dropdown`` is the page's ``CheckpointLists`` field ``field``."""
        if field not in CheckpointLists._fields:
            raise ValueError(f"{field!r} is not one of: {', '.join(CheckpointLists._fields)}")
        self._lists[field] = dropdown

    @property
    def lists(self) -> CheckpointLists:
        """The checkpoint dropdowns; ValueError naming those no tab built yet."""
        missing = [f for f in CheckpointLists._fields if f not in self._lists]
        if missing:
            raise ValueError(f"no tab built the checkpoint list(s) {', '.join(missing)} yet")
        return CheckpointLists(**self._lists)

    def on_load(self, current, learnt, fixed, request: gr.Request | None = None):
        """When a page loads: the checkpoint lists as they are on disk now (the shipped ones
        and this session's own), keeping the current choices. Returns ``CheckpointLists``."""
        return list_updates(self.state, session_id(request), (current, learnt, fixed))

    def wire_load(self) -> None:
        """Wire ``on_load`` to the page's load event."""
        lists = list(self.lists)
        self.demo.load(self.on_load, inputs=lists, outputs=lists, api_visibility="private")


__all__ = ["KEEP", "CheckpointLists", "Page", "Tab", "VARIANCES", "list_updates"]
