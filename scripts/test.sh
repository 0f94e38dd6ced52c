#!/usr/bin/env bash
# Set up with test dependencies (idempotent), then run the whole test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec "${PYTHON:-python3}" -m pytest "$@"
