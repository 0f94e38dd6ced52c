#!/usr/bin/env bash
# Idempotent set-up of vulnsteer into the current Python (>= 3.11). Usage: scripts/setup.sh [--dev]
# torch is pinned to the exact CPU release only when absent: a looser spec would pull a multi-GB CUDA
# build from PyPI, and an already installed torch (CPU or GPU) is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vulnsteer needs Python >= 3.11")'
pip() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }
if ! "$PY" -c 'import torch' 2>/dev/null; then
  pip "torch==2.13.0"
fi
if [ "${1:-}" = "--dev" ]; then
  pip -e ".[dev]"
else
  pip -e .
fi
