#!/usr/bin/env bash
# The GPU check in one go (benchmarks/speed/gpu_check.py says what it runs): under ten minutes on one GPU.
# From the repository root on the GPU machine: bash benchmarks/speed/gpu_check.sh [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/speed/gpu_check.py --device cuda "$@"
