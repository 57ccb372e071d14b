#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with torch, izkit and its dev extras, and the embedded model.
#
#   bash setup.sh
#
# torch goes in first, pinned, so nothing later pulls a different build. On this project's CPU machines
# torch==2.13.0 is a local CPU wheel. Elsewhere choose the build that fits the machine:
#   IZKIT_TORCH="torch==2.13.0" bash setup.sh                                   # default
#   IZKIT_TORCH_INDEX=https://download.pytorch.org/whl/cpu bash setup.sh        # CPU-only wheel from PyTorch
#   IZKIT_TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash setup.sh      # an NVIDIA GPU (CUDA 12.8)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
TORCH=${IZKIT_TORCH:-torch==2.13.0}
VENV=${IZKIT_VENV:-.venv}

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "izkit needs Python 3.11 or newer, found " + sys.version.split()[0])'

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

echo "== installing $TORCH"
if [ -n "${IZKIT_TORCH_INDEX:-}" ]; then
  pip install -q "$TORCH" --index-url "$IZKIT_TORCH_INDEX"
else
  pip install -q "$TORCH"
fi
echo "== installing izkit with its dev extras"
pip install -q -e ".[dev]"
echo "== preparing the embedded models (converted once, about a minute each; then cached)"
"$VENV/bin/izkit" prepare
echo "== done: run '$VENV/bin/izkit run --task antonyms' or '$VENV/bin/python -m pytest'"
