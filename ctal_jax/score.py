"""Score flow records with a trained run: one row per window and run, with explanations.

    python -m ctal_jax.score --checkpoint=WORKDIR --input=FLOWS.csv --output=scores.csv \
        [--model=ctal_vae] [--run=0|all]

`--checkpoint` is a run's workdir or its `checkpoints/target` folder. The input (a CSV
file or a folder of them) must have the columns of the target data set the run was
trained on. Its label and connection-type columns are optional and ignored, so new
flow records without labels can be scored. It is
cut into windows with the run's window settings and scaled with the run's saved
scaler, and the model's parameters of the chosen run score every window. Nothing is
trained. The output (CSV or Parquet, chosen by the suffix) has one row per window and
run, ordered by run and then by receiver and start time:

- `receiver`, `start_time` (ISO 8601, the window's first flow), `run`, `draw`, `seed`;
- `score`: the reconstruction MSE with z = mu, as in the run's report;
- `threshold`, `flag`: the run's label-free threshold, and `score > threshold`;
- `used_as`: `shot` or `calibration` (or `negative`, with labeled negatives) when the
  run adapted or calibrated on this very window, empty otherwise. A window matches
  when its receiver, start time and flow features all equal those of the saved one;
- `top_feature_1..3`, `top_error_1..3`: the features with the largest squared
  reconstruction error summed over the window's steps, and those sums.

Scoring the run's own target file therefore marks the windows that an evaluation
must leave out. Exits 0 on success, and 2 with a one-line error on invalid input.
"""

import dataclasses
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_dict
import numpy as np
import polars as pl

from ctal_jax import checkpoints
from ctal_jax.data import domain as domain_lib
from ctal_jax.data import layouts
from ctal_jax.data import loading
from ctal_jax.data import scaling
from ctal_jax.data import windows as windows_lib
from ctal_jax.training import phases
from ctal_jax.training import steps
from ctal_jax.training import variants as variants_lib

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A run's workdir, or its checkpoints/target folder.")
_INPUT = flags.DEFINE_string("input", None, "CSV file or folder of CSV files in the run's target layout.")
_OUTPUT = flags.DEFINE_string("output", None, "Output file; the suffix .csv or .parquet sets the format.")
_MODEL = flags.DEFINE_string("model", "ctal_vae", "Model of the run to score with.")
_RUN = flags.DEFINE_string("run", "0", "Run index (draw * seeds + seed), or 'all' for every run.")

OUTPUT_FORMATS = (".csv", ".parquet")
TOP_FEATURES = 3


class ScoreError(ValueError):
  """Invalid command-line input: checkpoint, model, run or output path."""


@dataclasses.dataclass
class Checkpoint:
  """A run's latest target checkpoint step: its folder, manager, meta and config."""

  folder: str
  manager: object
  meta: dict
  config: object

  @property
  def runs(self) -> list[dict]:
    return self.meta["runs"]


def find_target_folder(path: str) -> str:
  """Return the target checkpoint folder of a workdir, a `checkpoints` folder or itself."""
  if not os.path.isdir(path):
    raise ScoreError(f"--checkpoint={path}: no such folder; pass a run's workdir or its checkpoints/target folder.")
  for candidate in (os.path.join(path, "checkpoints", "target"), os.path.join(path, "target")):
    if os.path.isdir(candidate):
      return candidate
  return path


def open_checkpoint(path: str) -> Checkpoint:
  """Open the target checkpoint under `path` read-only and restore its meta."""
  folder = find_target_folder(path)
  manager = checkpoints.read_only_manager(folder)
  step = manager.latest_step()
  if step is None:
    raise ScoreError(
        f"--checkpoint={path}: no target checkpoint found in {folder}; pass the workdir of a "
        "run whose target phase finished at least one model.")
  meta = checkpoints.restore_meta(manager, step)
  if not isinstance(meta, dict) or "completed" not in meta or "target" not in meta:
    raise ScoreError(
        f"--checkpoint={path}: step {step} in {folder} is not a target checkpoint of the main "
        "job; pass the run's workdir or its checkpoints/target folder.")
  logging.info("Checkpoint %s, step %d: models %s, %d runs.", folder, step,
               ", ".join(meta["completed"]), len(meta["runs"]))
  return Checkpoint(folder=folder, manager=manager, meta=meta,
                    config=config_dict.ConfigDict(meta["config"]))


def check_model(checkpoint: Checkpoint, name: str):
  """Return the variant of `name`, after checking that the checkpoint stores its parameters."""
  completed = checkpoint.meta["completed"]
  variant = variants_lib.VARIANTS.get(name.removesuffix("_labeled"))
  neural = [model for model in completed if variants_lib.VARIANTS[model.removesuffix("_labeled")].neural]
  if name not in completed:
    raise ScoreError(
        f"--model={name}: not in the checkpoint; models with parameters there: {', '.join(neural) or 'none'}.")
  if not variant.neural:
    raise ScoreError(
        f"--model={name}: has no parameters in the checkpoint (the Isolation Forest is refitted "
        f"per run); choose one of {', '.join(neural) or 'none'}.")
  return variant


def select_runs(checkpoint: Checkpoint, run: str) -> list[int]:
  """Parse `--run`: one run index, or `all`."""
  count = len(checkpoint.runs)
  if run == "all":
    return list(range(count))
  try:
    index = int(run)
  except ValueError:
    raise ScoreError(f"--run={run}: expected a run index or 'all'.") from None
  if not 0 <= index < count:
    raise ScoreError(
        f"--run={index}: out of range; the checkpoint has {count} runs "
        f"({checkpoint.config.draws} draws x {checkpoint.config.seeds} seeds), indices 0 to {count - 1}.")
  return [index]


def check_output(path: str) -> str:
  """Return the output format suffix, after checking that the folder exists."""
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in OUTPUT_FORMATS:
    raise ScoreError(f"--output={path}: unknown format {suffix or '(no suffix)'!r}; use a .csv or .parquet file name.")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise ScoreError(f"--output={path}: folder {folder} does not exist; create it first.")
  return suffix


def check_input(path: str) -> None:
  """Fail fast on a missing, empty or binary input, before the checkpoint is opened."""
  for file in loading.expand_paths(path):
    loading.read_header(file)


def load_windows(checkpoint: Checkpoint, path: str):
  """Load the input in the run's target layout and cut it with the run's window settings."""
  target = checkpoint.meta["target"]
  loaded = loading.load(path, connection_type=target.get("connection_type"), labels=False)
  # Without labels, the releases of one data set look alike, and they share the
  # features, so the check compares the data set and the feature list.
  trained = layouts.get_layout(target["layout"])
  if loaded.layout.dataset != trained.dataset:
    raise loading.DataError(
        f"{path}: layout {loaded.layout.name} ({loaded.layout.dataset}), but the run was trained on "
        f"target layout {target['layout']} ({trained.dataset}); score files of that data set.")
  if list(loaded.layout.feature_names) != list(target["feature_names"]):
    raise loading.DataError(
        f"{path}: the features of layout {loaded.layout.name} differ from those saved with the run; "
        "the checkpoint was written by a different version of the layout.")

  spec = windows_lib.WindowSpec(**checkpoint.meta["window"])
  domain = domain_lib.build_domain(loaded, spec)
  if domain.n_windows == 0:
    raise loading.DataError(no_window_message(path, domain, spec))
  return domain


def no_window_message(path: str, domain, spec) -> str:
  counts = np.bincount(domain.receiver_codes) if domain.receiver_codes.size else np.zeros(1, int)
  return (
      f"{path}: no window to score: {domain.receiver_codes.size} flows from {np.count_nonzero(counts)} "
      f"receivers, at most {int(counts.max())} for one receiver, but a window needs {spec.shortest} "
      f"flows of one receiver (seq_len={spec.seq_len}); give more flows per receiver.")


def restore_params(checkpoint: Checkpoint, name: str):
  """Restore one model's stacked parameters [draws, seeds, ...] from the checkpoint."""
  # Imported here because train.py imports scikit-learn, which adds seconds to every
  # start, including those that end at an input check.
  from ctal_jax import train

  logging.info("Restoring the parameters of %s from %s.", name, checkpoint.folder)
  states = train.restore_target_states(
      checkpoint.manager, checkpoint.config, checkpoint.meta, names=[name])
  return states[name]["params"]


def top_features(errors: np.ndarray, names: list[str], count: int = TOP_FEATURES) -> dict[str, list]:
  """Return the `count` features with the largest summed squared error of each window.

  `errors` [windows, steps, features] are squared step-feature errors.
  """
  per_feature = errors.astype(np.float64).sum(axis=1)
  count = min(count, per_feature.shape[1])
  order = np.argsort(-per_feature, axis=1, kind="stable")[:, :count]
  columns = {}
  for rank in range(count):
    chosen = order[:, rank]
    columns[f"top_feature_{rank + 1}"] = [names[index] for index in chosen]
    columns[f"top_error_{rank + 1}"] = per_feature[np.arange(chosen.size), chosen].tolist()
  return columns


def used_as(checkpoint: Checkpoint, draw: int, keys: list[tuple]) -> list[str | None]:
  """Return the role each window had in the run's draw: shot, calibration, negative or None."""
  saved = checkpoint.meta["target"].get("draw_windows")
  if saved is None:
    return [None] * len(keys)
  roles = {tuple(key): role for role, role_keys in saved[draw].items() for key in role_keys}
  return [roles.get(key) for key in keys]


def score_run(checkpoint: Checkpoint, model, params, domain, run: int, model_name: str,
              keys: list[tuple]) -> pl.DataFrame:
  """Score every window of `domain` with one run's parameters; one row per window."""
  draw, seed = checkpoint.runs[run]["draw"], checkpoint.runs[run]["seed"]
  target = checkpoint.meta["target"]
  scaler = scaling.Scaler.from_dict(target["scalers"][draw])
  x = domain.scaled_windows(scaler)
  run_params = phases.unstack(phases.unstack(params, draw), seed)
  scores, errors = steps.evaluate_scores(
      run_params, model, x, domain.mask, "target", checkpoint.config.score_batch_size, with_errors=True)

  threshold = float(checkpoint.meta["thresholds"][model_name][draw][seed])
  scores = scores.astype(np.float64)
  start = pl.Series(domain.start_time.astype("datetime64[us]"))
  frame = pl.DataFrame({
      "receiver": domain.receiver.astype(str),
      "start_time": start.dt.to_string("%Y-%m-%dT%H:%M:%S%.f"),
      "run": np.full(scores.size, run, np.int64),
      "draw": np.full(scores.size, draw, np.int64),
      "seed": np.full(scores.size, seed, np.int64),
      "score": scores,
      "threshold": np.full(scores.size, threshold),
      "flag": scores > threshold,
      "used_as": pl.Series(used_as(checkpoint, draw, keys), dtype=pl.String),
  })
  frame = frame.with_columns(**{
      name: pl.Series(values) for name, values in top_features(errors, target["feature_names"]).items()})
  logging.info("Run %d (draw %d, seed %d): %d of %d windows flagged (threshold %.4g); %d windows "
               "were the run's shots or calibration windows.", run, draw, seed, int(frame["flag"].sum()),
               frame.height, threshold, frame["used_as"].is_not_null().sum())
  return frame


def write_table(frame: pl.DataFrame, path: str, suffix: str) -> None:
  """Write CSV or Parquet through a temporary file in the same folder, then rename it."""
  partial = path + ".partial"
  if suffix == ".csv":
    frame.write_csv(partial)
  else:
    frame.write_parquet(partial)
  os.replace(partial, path)


def score(checkpoint_path: str, input_path: str, output_path: str, model_name: str = "ctal_vae",
          run: str = "0") -> pl.DataFrame:
  """Score `input_path` with a run's model, write `output_path` and return the rows.

  Raises:
    ScoreError: on a missing or invalid checkpoint, model, run or output path.
    loading.DataError: on input that cannot be read, has another layout, or has no window.
  """
  suffix = check_output(output_path)
  check_input(input_path)
  checkpoint = open_checkpoint(checkpoint_path)
  variant = check_model(checkpoint, model_name)
  runs = select_runs(checkpoint, run)
  domain = load_windows(checkpoint, input_path)

  params = restore_params(checkpoint, model_name)
  target = checkpoint.meta["target"]
  model = phases.build_model(
      checkpoint.config, variant, len(checkpoint.meta["source"]["feature_names"]),
      len(target["feature_names"]))
  if "draw_windows" not in target:
    logging.warning("The checkpoint does not list the windows its runs adapted and calibrated on, "
                    "so the used_as column stays empty.")
  keys = domain.window_keys()
  frames = [score_run(checkpoint, model, params, domain, index, model_name, keys) for index in runs]

  frame = pl.concat(frames)
  write_table(frame, output_path, suffix)
  logging.info("Wrote %d rows (%d windows x %d runs) to %s.", frame.height, domain.n_windows, len(runs), output_path)
  return frame


def _quiet_libraries(record) -> bool:
  """Drop JAX and Orbax info lines, and Orbax's warning that the folder is read-only."""
  if "/orbax/" in record.pathname and "read only" in record.getMessage():
    return False
  noisy = "/orbax/" in record.pathname or "/jax/_src/" in record.pathname
  return record.levelno >= std_logging.WARNING or not noisy


def main(argv) -> int:
  if len(argv) > 1:
    print(f"error: unexpected arguments {' '.join(argv[1:])}; pass --checkpoint, --input and --output.",
          file=sys.stderr)
    return 2
  missing = [f"--{flag.name}" for flag in (_CHECKPOINT, _INPUT, _OUTPUT) if not flag.value]
  if missing:
    print(f"error: missing {', '.join(missing)}; usage: python -m ctal_jax.score --checkpoint=DIR "
          "--input=PATH --output=FILE [--model=ctal_vae] [--run=0|all]", file=sys.stderr)
    return 2
  try:
    score(_CHECKPOINT.value, _INPUT.value, _OUTPUT.value, _MODEL.value, _RUN.value)
  except ValueError as error:
    # DataError, ScoreError and ScalerError are ValueErrors, and so is the error of
    # saved window settings that this version of the code rejects.
    message = " ".join(str(error).split())
    print(f"error: {message}", file=sys.stderr)
    return 2
  return 0


def run():
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_quiet_libraries)
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
  run()
