#!/usr/bin/env bash
# Set up (idempotent), then run the main job on the embedded defaults; extra arguments go to `vulnsteer run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m vulnsteer run "$@"
