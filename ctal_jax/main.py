"""Train and evaluate CTAL-VAE and its baselines; see configs/transfer.py for usage."""

import logging as std_logging
import sys

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


def _flag_error_message(error: Exception) -> str:
  """Return one line for a command-line error of absl or ml_collections."""
  text = str(error)
  if isinstance(error, AttributeError):
    # ml_collections reports an unknown override as an AttributeError around a
    # KeyError, whose text is the field name in quotes and maybe a suggestion.
    inner = error.args[0] if error.args else error
    text = str(inner.args[0] if isinstance(inner, KeyError) and inner.args else inner)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if isinstance(error, AttributeError):
    name = lines[0].strip("'\"") if lines else "?"
    hint = f" {' '.join(lines[1:])}" if len(lines) > 1 else ""
    return (f"unknown config field {name!r} in a --config. override.{hint} "
            "configs/transfer.py lists the fields, e.g. --config.source.epochs=10.")
  if isinstance(error, OSError):
    return f"the config file could not be loaded: {lines[-1]}."
  if any(line.startswith("Traceback") for line in lines):
    # A config file that failed to load: its last line is the exception.
    return f"{lines[0].rstrip(':')}: {lines[-1]}"
  return " ".join(lines)


def parse_flags(argv: list[str]) -> list[str]:
  """Parse the command line; exit 2 with a one-line error instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as error:
    message = _flag_error_message(error).rstrip(". ")
    print(f"error: {message}. Run with --helpfull to list the flags.", file=sys.stderr)
    raise SystemExit(2) from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}.")
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
  config = _CONFIG.value
  try:
    # The config file loads lazily, on the first access to a field.
    config.get("models")
  except OSError as error:
    print(f"error: {_flag_error_message(error)}", file=sys.stderr)
    raise SystemExit(2) from None
  distributed.maybe_initialize_distributed()
  train.main_with_errors(config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
