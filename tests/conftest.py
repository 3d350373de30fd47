"""Shared fixtures: small checkpoints and free ports, safe under ``pytest -n 2`` (each worker
has its own ``tmp_path`` and ports; nothing is written into the repository). The shared
helpers that are not fixtures are in ``tests/helpers.py``."""

import os

import pytest
import torch

import saccade
from tests.helpers import free_port as _free_port
from tests.helpers import small_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist each worker is one process of the N: the cores are shared between them
# (2 torch threads in each of 2 workers would oversubscribe 2 cores).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, (os.cpu_count() or 2) // _WORKERS)
torch.set_num_threads(THREADS)


@pytest.fixture(autouse=True)
def _torch_threads():
    """A test that changes torch's thread count (the training CLI and the app set their own)
    gives it back: a worker left at 2 threads beside another at 1 on 2 cores ran the next
    tests up to 17x slower (OpenMP threads waiting for a core)."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def free_port():
    """A function giving a TCP port on 127.0.0.1 that nothing listens on now, each call a
    fresh one (session scope, so that module fixtures that start servers can use it)."""
    return _free_port


@pytest.fixture
def checkpoint_path(tmp_path):
    """A saved untrained cluttered/sum checkpoint; returns its path without suffix."""
    path = tmp_path / "ckpt" / "tiny"
    saccade.save(small_model(), path, {"test_accuracy": 0.0})
    return path
