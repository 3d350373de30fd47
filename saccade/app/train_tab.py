"""The Train tab (``TrainTab``): train a small model on generated data, on the server's CPU, with live
curves; the checkpoint is this browser session's own, under caps on all sessions' runs."""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import torch

from .. import viz
from .page import KEEP, Page, Tab, list_updates
from .state import LOG, os_reason, refused, session_id
from .widgets import Dropdown, Number, Radio, Slider

#: training tasks offered in the Train tab: (label, "dataset:task")
TRAIN_TASKS = [
    ("cluttered MNIST, single digit (10 classes)", "cluttered:single"),
    ("cluttered MNIST, sum of two digits (19 classes)", "cluttered:sum"),
    ("cluttered MNIST, digit pair (55 classes)", "cluttered:id"),
    ("Megapixel MNIST, majority digit (10 classes)", "megapixel:majority"),
]
MAX_TRAIN_STEPS = 5000
MAX_TRAIN_MINUTES = 15.0


def _safe_run_name(dataset: str, task: str, variance: str, n_saccades: int) -> str:
    """A checkpoint name generated from the settings and the time: never from user text."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"{dataset}-{task}-{variance}-T{int(n_saccades)}-{stamp}"
    return re.sub(r"[^A-Za-z0-9_.-]", "", name)


def _checked(task, size, variance, n_saccades, steps, minutes) -> tuple[int, int, int, float]:
    """The Train tab's settings checked: (canvas side, saccades, steps, minutes) as numbers;
    a refusal naming the first bad one."""
    if task not in dict((v, k) for k, v in TRAIN_TASKS):
        tasks = ", ".join(v for _, v in TRAIN_TASKS)
        raise refused(f"Unknown task: {task!r} is not one of: {tasks}")
    if variance not in ("learnt", "fixed"):
        raise refused(f"Variance mode {variance!r} is not one of: learnt, fixed")
    try:
        steps, minutes = int(steps or 0), float(minutes or 0.0)
        size, n_saccades = int(size), int(n_saccades)
    except (TypeError, ValueError, OverflowError):
        raise refused(
            f"Steps, minutes, canvas side and saccades must be numbers; got {steps!r}, "
            f"{minutes!r}, {size!r} and {n_saccades!r}"
        ) from None
    if not 1 <= steps <= MAX_TRAIN_STEPS:
        raise refused(f"Steps must be between 1 and {MAX_TRAIN_STEPS}; got {steps}")
    if not 0.0 <= minutes <= MAX_TRAIN_MINUTES:
        raise refused(f"Minutes must be between 0 and {MAX_TRAIN_MINUTES:g}; got {minutes}")
    return size, n_saccades, steps, minutes


class TrainOutputs(NamedTuple):
    """What ``TrainTab.run`` yields, in the order of the tab's outputs: the last three are
    the page's ``CheckpointLists``."""

    plot: object  # plotly figure: loss and accuracy so far
    status: str  # Markdown
    checkpoint: object  # the Explore dropdown's update (or gr.skip())
    learnt: object  # the Compare dropdowns' updates
    fixed: object


class DeleteOutputs(NamedTuple):
    """What ``delete_my_runs`` returns."""

    status: str
    checkpoint: dict
    learnt: dict
    fixed: dict


class TrainTab(Tab):
    """The Train tab: its event functions and ``build``."""

    title, id = "Train", "train"

    @property
    def visible(self) -> bool:
        """False where the server turned training off (``State.allow_train``)."""
        return self.state.allow_train

    def run(
        self,
        task="cluttered:single",
        size=100,
        variance="learnt",
        n_saccades=4,
        steps=200,
        minutes=0.0,
        progress=gr.Progress(),  # noqa: B008 (Gradio's documented way to ask for progress)
        request: gr.Request | None = None,
    ):
        """Train tab (a generator): run ``saccade.train.fit`` in a thread and yield the live
        curves; at the end the new checkpoint appears in this session's Explore and Compare
        dropdowns (and in no other session's). It is written to ``runs/SESSION/``, then the
        caps on all sessions' runs are applied (``prune_runs``). Three phases:
        ``train_config`` (check the settings), ``_stream`` (train, yield curves) and
        ``_finish`` (report, clean up, update the page's checkpoint lists).

        Yields: ``TrainOutputs``.
        """
        session = session_id(request)
        cfg, name, folder = self.train_config(
            task, size, variance, n_saccades, steps, minutes, session
        )
        history: list[dict] = []
        result = yield from self._stream(cfg, name, int(steps), progress, history)
        yield self._finish(result, name, folder, session, history)

    def train_config(self, task, size, variance, n_saccades, steps, minutes, session):
        """The Train tab's settings checked and made a ``TrainConfig`` (the dataset's preset,
        the tab's choices, the app's fixed options), with the run's generated name and its
        session folder (created). Refuses bad settings with a message naming them."""
        from ..train.config import PRESETS, TrainConfig

        if not self.state.allow_train:
            raise refused("Training is turned off on this server.")
        size, n_saccades, steps, minutes = _checked(
            task, size, variance, n_saccades, steps, minutes
        )
        dataset, task_name = task.split(":")
        name = _safe_run_name(dataset, task_name, variance, n_saccades)
        folder = self.state.runs / session
        # the settings measured for the dataset (e.g. megapixel's grid, crop sizes, pooling);
        # the tab's own choices win, and another canvas side gets the dataset's own proxy
        preset = dict(PRESETS.get(dataset, {}))
        if "size" in preset and int(size) != preset["size"]:
            preset.pop("proxy_size", None)
        settings = preset | {
            "dataset": dataset,
            "task": task_name,
            "size": int(size),
            "variance": variance,
            "n_saccades": int(n_saccades),
            "steps": steps,
            "minutes": minutes or None,
            "out": str(folder / name),
            "seed": 0,
        }
        try:
            cfg = TrainConfig.from_settings(**(settings | self.state.train_options))
        except (TypeError, ValueError) as e:
            raise refused(f"Bad training settings: {e}") from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a read-only or full disk
            raise refused(
                f"Cannot train: the server cannot write trained checkpoints ({os_reason(e)})."
            ) from None
        return cfg, name, folder

    def _stream(self, cfg, name: str, steps: int, progress, history: list[dict]):
        """Run ``fit(cfg)`` in a thread; yield ``TrainOutputs`` with the curves so far (at
        most one a second, and at each validation), move the progress bar, append every
        event to ``history``. Returns ``fit``'s result: {"metrics": ...} or {"error": e}."""
        from ..train.loop import fit

        events: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            torch.set_num_threads(os.cpu_count() or 1)  # this thread only; see ``launch``
            try:
                result["metrics"] = fit(cfg, callback=events.put)
            except Exception as e:  # reported to the user by ``_finish``
                result["error"] = e
            finally:
                events.put(None)

        threading.Thread(target=work, name=f"train-{name}", daemon=True).start()
        progress(0.0, desc="building the dataset and model")
        last = 0.0
        total = steps  # until the first event says the run's own count (its epochs may cap it)
        while (event := events.get()) is not None:
            history.append(dict(event))
            total = max(1, int(event.get("total_steps") or total))
            if "step" in event:  # the final test event has none: the bar stays full
                step = int(event["step"])
                done = " (evaluating)" if step >= total else ""
                progress(min(step / total, 1.0), desc=f"step {step}/{total}{done}")
            if time.monotonic() - last > 1.0 or "val_acc" in event:
                last = time.monotonic()
                skip = gr.skip()
                status = self._train_status(name, event, total)
                yield TrainOutputs(viz.training_figure(history), status, skip, skip, skip)
        return result

    def _finish(self, result: dict, name: str, folder: Path, session: str, history) -> tuple:
        """The run's last ``TrainOutputs``: its test accuracy, the caps applied, the new
        checkpoint in this session's lists; a failed run is reported (a full or read-only
        disk refused with its reason, half-written files removed)."""
        if "error" in result:
            e = result["error"]
            if isinstance(e, OSError):  # a full disk, a read-only folder: say so, keep serving
                for tmp in folder.glob(f"{name}*.tmp"):  # half-written files
                    tmp.unlink(missing_ok=True)
                raise refused(
                    f"Training stopped: the server could not save {name} ({os_reason(e)}). "
                    "Nothing was added to your checkpoints; try again later."
                )
            raise gr.Error(f"Training failed: {type(e).__name__}: {e}")
        metrics = result.get("metrics") or {}
        acc = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
        n_test = self.state.train_options.get("test_n")
        acc_text = (
            f", test accuracy {acc:.1%} on {n_test} test images"
            if isinstance(acc, (int, float))
            else ""
        )
        for extra in folder.glob(f"{name}.state.*"):  # resuming is not offered in the app
            self._unlink(extra)
        removed = self.prune_runs(keep=folder / name)
        note = f" The caps removed {len(removed)} older run(s)." if removed else ""
        return TrainOutputs(
            viz.training_figure(history),
            f"Saved **{name}**{acc_text}. It is in your Explore and Compare lists (this "
            f"browser session only).{note}",
            *list_updates(self.state, session, (name, KEEP, KEEP)),
        )

    def run_files(self) -> list[tuple[float, int, Path]]:
        """(modification time, bytes, base path) of every app-trained checkpoint, oldest first."""
        out = []
        for weights in self.state.runs.glob("*/*.safetensors"):
            if weights.name.endswith(".state.safetensors"):
                continue
            base = weights.with_suffix("")
            files = [f for f in base.parent.glob(f"{base.name}.*") if f.is_file()]
            out.append((weights.stat().st_mtime, sum(f.stat().st_size for f in files), base))
        return sorted(out, key=lambda r: (r[0], str(r[2])))

    def prune_runs(self, keep: Path | None = None) -> list[Path]:
        """Delete the oldest app-trained checkpoints (all sessions) until at most
        ``State.max_runs`` remain and they take at most ``State.max_runs_mb``; never ``keep`` (the run
        just finished). Returns the base paths deleted."""
        runs = self.run_files()
        removed = []
        total = sum(size for _, size, _ in runs)
        for _, size, base in runs:
            over = len(runs) - len(removed) > self.state.max_runs
            over = over or total > self.state.max_runs_mb * 2**20
            if not over:
                break
            if keep is not None and base == keep:
                continue
            if self._delete_run(base):
                removed.append(base)
                total -= size
        return removed

    @staticmethod
    def _unlink(path: Path) -> bool:
        """Delete a file; False (and one log line) where the file system refuses."""
        try:
            path.unlink(missing_ok=True)
            return True
        except OSError as e:
            LOG.warning("cannot delete %s: %s", path.name, os_reason(e))
            return False

    @staticmethod
    def _delete_run(base: Path) -> bool:
        """Delete a checkpoint's files; False when one of them could not be deleted."""
        return all([TrainTab._unlink(f) for f in base.parent.glob(f"{base.name}.*")])

    def delete_my_runs(self, request: gr.Request | None = None):
        """Train tab: delete every checkpoint this session trained.

        Returns: ``DeleteOutputs``."""
        session = session_id(request)
        mine = [m for m in self.state.list_checkpoints(session) if m.get("owner") == session]
        kept = [m["name"] for m in mine if not self._delete_run(Path(m["path"]))]
        note = (
            f" The server's disk refused to delete {len(kept)}: {', '.join(kept)}." if kept else ""
        )
        return DeleteOutputs(
            f"Deleted {len(mine) - len(kept)} checkpoint(s) you trained.{note}",
            *list_updates(self.state, session, (None, None, None)),
        )

    @staticmethod
    def on_train_task(task: str):
        """The canvas side that goes with a task: 100 for cluttered MNIST, 1500 for Megapixel."""
        return gr.update(value=1500 if str(task).startswith("megapixel") else 100)

    @staticmethod
    def _train_status(name: str, event: dict, total: int | None = None) -> str:
        """One status line; ``total`` is the run's step count, for the epoch-end events that
        do not carry it."""
        total = event.get("total_steps") or total
        step = f"step {event.get('step')}" + (f"/{total}" if total else "")
        parts = [f"Training **{name}**: {step}"]
        for key in ("loss", "ce", "kl", "train_acc", "val_acc"):
            if isinstance(event.get(key), (int, float)):
                parts.append(f"{key} {event[key]:.3f}")
        return " · ".join(parts)

    # -- the page ------------------------------------------------------------------------

    def build(self, page: Page) -> None:
        """The Train tab's components and events (inside ``gr.Tab``); a finished run (or a
        deletion) updates the page's checkpoint lists (``Page.lists``: the tabs before this
        one made them)."""
        gr.Markdown(
            "Train a small model on generated data, on this machine's CPU. **One training "
            "runs at a time** (concurrency limit 1): a second request waits in the queue. "
            f"Budget: at most {MAX_TRAIN_STEPS} steps or {MAX_TRAIN_MINUTES:g} minutes.\n\n"
            "**Your checkpoints are yours.** A model trained here is saved under a generated "
            "name and listed in this browser session only, after the shipped checkpoints, "
            "which the app never changes. Trained checkpoints of all visitors together are "
            f"capped at {self.state.max_runs} and {self.state.max_runs_mb:g} MB; past that the "
            "oldest are deleted. Delete yours at any time with the button below."
        )
        inputs, run = self._settings()
        status = gr.Markdown(elem_id="train-status")
        plot = gr.Plot(show_label=False, elem_id="train-plot")  # the label covered a title
        delete = gr.Button("Delete the checkpoints I trained", elem_id="train-delete")
        task, size = inputs[:2]
        task.change(self.on_train_task, inputs=[task], outputs=[size], api_visibility="private")
        run.click(
            self.run,
            inputs=inputs,
            outputs=list(TrainOutputs(plot, status, *page.lists)),
            api_name="train",
            concurrency_limit=1,
            concurrency_id="train",
        )
        delete.click(
            self.delete_my_runs,
            outputs=list(DeleteOutputs(status, *page.lists)),
            api_visibility="private",
        )

    @staticmethod
    def _settings():
        """The task, canvas side, variance mode, saccades, steps and minutes (``run``'s
        inputs, in order) and the Train button."""
        with gr.Row():
            task = Dropdown(TRAIN_TASKS, value="cluttered:single", label="Dataset and task")
            size = Number(
                value=100,
                precision=0,
                minimum=28,
                maximum=4096,
                label="Canvas side (px)",
                elem_id="train-size",
            )
            variance = Radio(["learnt", "fixed"], value="learnt", label="Posterior variance")
            n = Slider(1, 8, value=4, step=1, label="Saccades T")
        with gr.Row():
            steps = Number(
                value=200,
                precision=0,
                minimum=1,
                maximum=MAX_TRAIN_STEPS,
                label="Steps",
                elem_id="train-steps",
            )
            minutes = Number(
                value=0,
                minimum=0,
                maximum=MAX_TRAIN_MINUTES,
                label="Minutes (0 = steps only; otherwise stops at whichever comes first)",
            )
            run = gr.Button("Train", variant="primary", elem_id="train-run")
        return [task, size, variance, n, steps, minutes], run
