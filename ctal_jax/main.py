"""Train and evaluate CTAL-VAE and its baselines; see configs/transfer.py for usage."""

import logging as std_logging

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from ctal_jax import distributed
from ctal_jax import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/transfer.py or configs/transfer.py:smoke.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for config.json, metrics, checkpoints and the report.")
flags.mark_flags_as_required(["config", "workdir"])


def _quiet_libraries(record) -> bool:
  """Keep warnings of Orbax and JAX, drop their per-save and per-backend info lines."""
  noisy = "/orbax/" in record.pathname or "/jax/_src/" in record.pathname
  return record.levelno >= std_logging.WARNING or not noisy


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}.")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
  distributed.maybe_initialize_distributed()
  train.main_with_errors(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
