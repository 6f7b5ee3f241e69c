#!/usr/bin/env bash
# Install ctal_jax with CUDA JAX, check that JAX runs on a GPU, then run and collect configs.
#
# Usage: launch/gpu.sh configs/transfer.py:paper [ENTRY ...]
#        launch/gpu.sh --file=CONFIGS.txt
#
# Entries, RUNS, PYTHON and COMMON_ARGS are described in launch/run_configs.sh.
# INSTALL=0 skips the pip install (for a second call in the same environment), and
# PIP_ARGS adds arguments to it.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python}"
export PYTHON

if [[ "${INSTALL:-1}" != "0" ]]; then
  # The `cuda` extra of pyproject.toml pulls jax[cuda12], CUDA libraries included.
  "$PYTHON" -m pip install ${PIP_ARGS:-} -e "$repo[cuda]"
fi

"$PYTHON" "$repo/launch/check_backend.py" gpu "check the NVIDIA driver and the jax[cuda12] install."

exec "$repo/launch/run_configs.sh" "$@"
