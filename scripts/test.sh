#!/usr/bin/env bash
# Set up with test dependencies (idempotent), lint and type-check, then run the whole test suite;
# extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
PY="${PYTHON:-python3}"
"$PY" -m ruff check
"$PY" -m mypy
exec "$PY" -m pytest "$@"
