#!/usr/bin/env bash
# The test suite against the newest releases of every dependency instead of constraints.txt, in a fresh venv
# (default: a temporary folder). Prints which pinned packages moved, then runs the tests; use it to see whether
# a new transformers, nnsight or torch release breaks something before updating constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-$(mktemp -d)/venv}"
python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
PYTHON="$PY" VULNSTEER_CONSTRAINTS="" bash scripts/setup.sh --dev
"$PY" - <<'PYEOF'
import importlib.metadata as md
moved = []
for line in open("constraints.txt"):
    if line.startswith("#") or "==" not in line:
        continue
    name, pinned = line.strip().split("==")
    try:
        now = md.version(name)
    except md.PackageNotFoundError:
        continue
    if now.split("+")[0] != pinned.split("+")[0]:
        moved.append(f"{name} {pinned} -> {now}")
print("newest releases differ from constraints.txt in: " + ("; ".join(moved) if moved else "nothing"))
PYEOF
PYTHON="$PY" exec bash -c '"$PYTHON" -m ruff check && "$PYTHON" -m mypy && "$PYTHON" -m pytest'
