#!/usr/bin/env bash
# Install ctal_jax with TPU JAX, check that JAX runs on a TPU, then run and collect configs.
#
# Usage: launch/tpu.sh configs/transfer.py:paper [ENTRY ...]
#        launch/tpu.sh --file=CONFIGS.txt
#
# Entries, RUNS, PYTHON and COMMON_ARGS are described in launch/run_configs.sh.
# INSTALL=0 skips the pip install, and PIP_ARGS adds arguments to it (for example
# `-f URL` of a libtpu release index, when pip finds no libtpu for the JAX version).
#
# Run this on a single-host TPU VM. On a multi-host slice, start it on every host
# with the JAX_COORDINATOR_ADDRESS settings that ctal_jax/distributed.py describes;
# see launch/README.md for what the main job does with them today.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python}"
export PYTHON

if [[ "${INSTALL:-1}" != "0" ]]; then
  "$PYTHON" -m pip install ${PIP_ARGS:-} -e "$repo" 'jax[tpu]'
fi

"$PYTHON" "$repo/launch/check_backend.py" tpu "run this on a TPU VM with jax[tpu] installed."

exec "$repo/launch/run_configs.sh" "$@"
