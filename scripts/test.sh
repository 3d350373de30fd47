#!/usr/bin/env bash
# Install everything the tests need (from this repo's own files), lint, and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

python -m pip install -q -r requirements-dev.txt
# The browser test drives Debian's Chromium (Playwright's own browser download is not used);
# libturbojpeg0 is for wsidicomizer, with which tests/test_dicom.py makes a DICOM WSI.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
  || ! ldconfig -p | grep -q libturbojpeg.so.0; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium chromium-driver libturbojpeg0
fi

ruff check .
ruff format --check .
# Both cores (pytest-xdist), one test file per worker at a time (--dist loadfile): a module's
# fixtures (a server, a browser, a wheel, a shipped checkpoint's evaluation) are built once.
# (--dist loadgroup does not group under pytest 9.2: pytest-dev/pytest-xdist#1386.)
# Only the plugins the suite uses are loaded (each worker would import every pytest plugin of
# the environment). The 15 slowest tests are listed last. The fast lane:
# bash scripts/test.sh -m "not slow" (docs/testing.md).
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
python -m pytest -p xdist.plugin -q -n 2 --dist loadfile --durations=15 "$@"
