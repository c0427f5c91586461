#!/usr/bin/env bash
# Every GPU check in one command, on a machine with an NVIDIA GPU and CuPy
# (pip install '.[gpu,test]'; JAX with CUDA adds the jax.jit comparisons):
#   1. the whole test suite: the `cupy` parameter of the jit_backend fixture and
#      the `cupy`-fixture tests of tests/test_gpu.py run instead of skipping;
#   2. examples/mlp_digits.py trained on CuPy arrays;
#   3. benchmarks/bench_gpu.py, which writes benchmarks/results/gpu_<name>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import sys
from ftrans._device import _gpu_problem
if _gpu_problem():
    sys.exit(f"run_gpu.sh needs a GPU: {_gpu_problem()}")
PY
python -m pytest -q -rs tests/
python examples/mlp_digits.py --gpu
python benchmarks/bench_gpu.py
