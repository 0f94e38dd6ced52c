#!/usr/bin/env bash
# What a GPU user runs (docs/BENCHMARKS.md): the tiny-model test suite with CUDA as the device, then
# forward throughput on CUDA for a model of the default model's shape built from a config (no download).
#
#   bash benchmarks/gpu_check.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no usable CUDA: install a CUDA build of torch')"
python -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
VULNSTEER_TEST_DEVICE=cuda python -m pytest -q -m 'not real_model' "$@"
python benchmarks/gpu_throughput.py --device cuda
