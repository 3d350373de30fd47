"""Packaging: the wheel carries the bundled MNIST and declares the library's dependencies, with
the app's and the tests' as extras; the library itself never imports them.

The wheel is built from a copy of the sources (pyproject.toml, LICENSE, saccade/) in a
temporary folder, so the checkout gets no build/ or *.egg-info. The full install is a manual
check (about 45 s with torch's local wheel, too long for the suite): ``python -m venv V &&
V/bin/pip install .``, then from another directory ``V/bin/python -c "import saccade;
m = saccade.load('CHECKOUT/checkpoints/cluttered-sum-learnt'); ..."`` loads and predicts
without gradio or plotly installed."""

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds a wheel and runs a fresh Python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".saccade-cache")
    shutil.copytree(ROOT / "saccade", src / "saccade", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + [str(src), "-w", str(out)],
        check=True,
        timeout=120,
    )
    (path,) = out.glob("saccade-*.whl")
    return zipfile.ZipFile(path)


def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def requirements(wheel) -> dict[str, list[Requirement]]:
    """The wheel's Requires-Dist by extra ("" for the library's own)."""
    out: dict[str, list[Requirement]] = {}
    for line in metadata(wheel).get_all("Requires-Dist"):
        req = Requirement(line)
        extra = ""
        if req.marker is not None:
            extra = str(req.marker).split("==")[-1].strip(" \"'")
        out.setdefault(extra, []).append(req)
    return out


def pins(path: Path) -> dict[str, str]:
    """name -> the version a requirements file pins with ==."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.split("[")[0].strip().lower()] = version.strip()  # moto[server]: moto
    return out


def test_the_wheel_carries_the_package_and_its_data(wheel):
    names = set(wheel.namelist())
    for data in ("mnist_train.npz", "mnist_test.npz", "LICENSE-MNIST.md"):
        assert f"saccade/data/{data}" in names
    for module in ("__init__.py", "glimpse.py", "models/vs.py", "app/__init__.py"):
        assert f"saccade/{module}" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_the_wheel_declares_the_dependencies(wheel):
    reqs = requirements(wheel)
    assert set(reqs) == {"", "app", "test", "remote", "dicom", "tile"}
    own = {r.name: r for r in reqs[""]}
    assert set(own) == {
        "torch",
        "numpy",
        "pillow",
        "opencv-python-headless",
        "safetensors",
        "tqdm",
        "tifffile",
        "imagecodecs",
        "openslide-python",
        "openslide-bin",
    }
    assert {r.name for r in reqs["app"]} == {"gradio", "plotly"}
    assert {r.name for r in reqs["test"]} == {
        "pytest",
        "pytest-xdist",
        "playwright",
        "ruff",
        "kaleido",
        "moto",
        "wsidicomizer",
        "tiffslide",
    }
    assert {r.name for r in reqs["dicom"]} == {"pydicom", "wsidicom"}
    assert {r.name for r in reqs["remote"]} == {"fsspec", "s3fs", "aiohttp"}
    assert {r.name for r in reqs["tile"]} == {"pyvips", "pyvips-binary"}
    # torch is bounded on both sides: 2.13.0 (the CPU build here) yes, a later CUDA one no
    torch = own["torch"].specifier
    assert torch.contains("2.13.0") and torch.contains("2.13.0+cpu", prereleases=False)
    assert not torch.contains("2.14.0") and not torch.contains("2.12.0")
    # every range holds the version requirements*.txt pins
    pinned = pins(ROOT / "requirements.txt") | pins(ROOT / "requirements-dev.txt")
    for req in [r for group in reqs.values() for r in group]:
        if req.name in pinned:
            assert req.specifier.contains(pinned[req.name]), (req, pinned[req.name])
    assert set(pinned) <= {r.name for group in reqs.values() for r in group}


def test_the_library_imports_neither_the_app_nor_the_figures(tmp_path):
    code = (
        "import sys, saccade\n"
        f"m = saccade.load({str(ROOT / 'checkpoints' / 'cluttered-sum-learnt')!r})\n"
        "s = saccade.make_dataset('cluttered', task='sum', split='test')[0]\n"
        "out = saccade.predict(m, s['image'])\n"
        "assert out.probs.shape == (4, 19), out.probs.shape\n"
        "print(sorted({'gradio', 'plotly', 'kaleido'} & set(sys.modules)))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
