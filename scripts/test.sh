#!/usr/bin/env bash
# Install everything the tests need (from this repo's own files), lint, and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

python -m pip install -q -r requirements-dev.txt
# The browser test drives Debian's Chromium (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium chromium-driver
fi

ruff check .
ruff format --check .
# Both cores (pytest-xdist): tests that share a server, a browser or a checkpoint's
# evaluation carry an xdist_group mark and run on one worker. The 15 slowest are listed last.
# Only the plugins the suite uses are loaded (not every pytest plugin the environment has:
# each worker would import them). The fast lane: bash scripts/test.sh -m "not slow"
# (docs/testing.md).
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
python -m pytest -p xdist.plugin -q -n 2 --dist loadgroup --durations=15 "$@"
