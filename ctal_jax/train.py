"""The main job: source phase, five-shot target phase, scoring and the report.

`train_and_evaluate(config, workdir)` loads both domains, draws the protocol's
windows, trains every requested model over all seeds at once, scores the shared
evaluation set, and writes config.json, input_files.json, metrics.jsonl,
checkpoints, report.json, report.md and figures into the workdir. Labels reach only
the metrics and the known-normal choice of training and calibration windows.
"""

import os
import sys

from absl import logging
import jax
import numpy as np
from sklearn import ensemble

from ctal_jax import checkpoints
from ctal_jax import protocol
from ctal_jax.data import domain as domain_lib
from ctal_jax.data import scaling
from ctal_jax.data import windows as windows_lib
from ctal_jax.evaluation import report as report_lib
from ctal_jax.evaluation import thresholds
from ctal_jax.training import loop
from ctal_jax.training import phases
from ctal_jax.training import steps
from ctal_jax.training import variants as variants_lib

SCALER_FITS = ("unlabeled", "known_normal")


def validate_config(config) -> list[variants_lib.Variant]:
  """Check the fields that have a fixed set of values; return the parsed models."""
  chosen = variants_lib.parse_models(config.models)
  window = window_spec(config)
  if window.stride < window.seq_len:
    logging.warning(
        "config.window.stride=%d < seq_len=%d: windows of one receiver overlap, so evaluation "
        "windows can share flows with the shots and calibration windows.", window.stride, window.seq_len)
  steps.seeds_per_group(config.seeds_per_group, config.seeds)
  if config.negatives not in steps.NEGATIVE_MODES:
    raise ValueError(f"config.negatives={config.negatives!r}; use one of {steps.NEGATIVE_MODES}.")
  if config.target.scaler_fit not in SCALER_FITS:
    raise ValueError(f"config.target.scaler_fit={config.target.scaler_fit!r}; use one of {SCALER_FITS}.")
  if config.threshold.rule not in thresholds.RULES:
    raise ValueError(f"config.threshold.rule={config.threshold.rule!r}; use one of {thresholds.RULES}.")
  for field in ("seeds", "draws", "shots", "calibration"):
    if config[field] < 1:
      raise ValueError(f"config.{field} must be at least 1, got {config[field]}.")
  for phase in ("source", "target"):
    if config[phase].epochs < 1:
      raise ValueError(f"config.{phase}.epochs must be at least 1, got {config[phase].epochs}.")
  return chosen


def window_spec(config) -> windows_lib.WindowSpec:
  window = config.window
  try:
    return windows_lib.WindowSpec(
        seq_len=window.seq_len, stride=window.stride, min_len=window.min_len,
        tail=window.tail, label_rule=window.label_rule)
  except ValueError as error:
    raise ValueError(f"config.window: {error} Set the config.window fields to match.") from None


def resolve_paths(config) -> tuple[str, str, bool]:
  """Return (source, target, is_example): the configured paths, or the example files."""
  if config.source.path and config.target.path:
    return config.source.path, config.target.path, False
  if config.source.path or config.target.path:
    raise ValueError(
        "Set both config.source.path and config.target.path, or neither to use the "
        "built-in example data.")
  from ctal_jax.data import example

  files = example.write_example_data(example.default_cache_folder())
  logging.info("No paths given; using the built-in example data: %s, %s.", files.source, files.target)
  return str(files.source), str(files.target), True


class Experiment:
  """Everything the models share: domains, protocol windows, scaled arrays."""

  def __init__(self, config):
    self.config = config
    spec = window_spec(config)
    source_path, target_path, self.is_example = resolve_paths(config)
    self.source = domain_lib.load_domain(source_path, spec)
    self.target = domain_lib.load_domain(
        target_path, spec, connection_type=config.target.connection_type)
    # Path, size and SHA-256 of every input file, for the report and the resume check.
    self.input_files = {
        side: [report_lib.file_facts(path) for path in domain.loaded.record.files]
        for side, domain in (("source", self.source), ("target", self.target))}

    # Protocol: which windows each phase may see.
    self.split = protocol.split_source(self.source.label, config.source.split, config.seed)
    self.draws = protocol.draw_target(
        self.target.label, config.draws, config.shots, config.calibration, config.seed)
    self.negatives = self._labeled_negatives()
    self.evaluation = protocol.evaluation_windows(
        self.target.n_windows, self.draws, extra=list(self.negatives.values()))
    self.eval_labels = self.target.label[self.evaluation]
    protocol.check_evaluation_labels(self.eval_labels)

    # Scaling, fitted without labels (source: its benign training windows).
    floor, clip = config.scaler.floor, config.scaler.clip
    source_flows = self.source.flows_of(self.split.train)
    self.source_scaler = scaling.fit_scaler(
        self.source.numeric[source_flows], self.source.layout.features, floor=floor, clip=clip)
    self.target_scalers = self._fit_target_scalers(floor, clip)

    self.source_train = self._source_data(self.split.train)
    self.source_held_out = self._source_data(self.split.held_out)
    if config.negatives == "labeled":
      self.source_train["other_x"], self.source_train["other_mask"] = self._source_attacks()

  def _labeled_negatives(self) -> dict[int, np.ndarray]:
    if self.config.negatives != "labeled":
      return {}
    return protocol.draw_attack_windows(
        self.target.label, self.config.draws, self.config.shots, self.config.seed)

  def _fit_target_scalers(self, floor: float, clip: float) -> list[scaling.Scaler]:
    features = self.target.layout.features
    if self.config.target.scaler_fit == "unlabeled":
      scaler = scaling.fit_scaler(self.target.numeric, features, floor=floor, clip=clip)
      return [scaler] * len(self.draws)
    scalers = []
    for draw in self.draws:
      known = np.concatenate([draw.shots, draw.calibration])
      flows = self.target.flows_of(known)
      scalers.append(scaling.fit_scaler(self.target.numeric[flows], features, floor=floor, clip=clip))
    return scalers

  def _source_data(self, window_ids: np.ndarray) -> dict:
    return {
        "x": self.source.scaled_windows(self.source_scaler, window_ids),
        "mask": self.source.mask[window_ids],
    }

  def _source_attacks(self):
    attacks = np.flatnonzero(self.source.label == 1)
    if attacks.size == 0:
      raise protocol.ProtocolError("negatives='labeled' needs source attack windows, and the source has none.")
    return self.source.scaled_windows(self.source_scaler, attacks), self.source.mask[attacks]

  def target_windows(self, draw: int, window_ids: np.ndarray) -> dict:
    return {
        "x": self.target.scaled_windows(self.target_scalers[draw], window_ids),
        "mask": self.target.mask[window_ids],
    }

  def shots(self, draw: int) -> dict:
    data = self.target_windows(draw, self.draws[draw].shots)
    if self.config.negatives == "labeled":
      negatives = self.target_windows(draw, self.negatives[draw])
      data["other_x"], data["other_mask"] = negatives["x"], negatives["mask"]
    return data

  def _draw_windows(self, draw: protocol.Draw) -> dict[str, list]:
    """Return the keys of the target windows one draw trained or calibrated on, by role."""
    roles = {"shot": draw.shots, "calibration": draw.calibration}
    if draw.index in self.negatives:
      roles["negative"] = self.negatives[draw.index]
    return {role: [list(key) for key in self.target.window_keys(ids)] for role, ids in roles.items()}

  def metadata(self) -> dict:
    """Return what scoring new data needs besides parameters: layouts, features, scalers."""
    def domain_meta(domain):
      layout = domain.layout
      return {
          "layout": layout.name,
          "feature_names": list(layout.feature_names),
          "protocols": [[code, name] for code, name in layout.protocols],
          "category_names": list(domain.category_names),
      }

    return {
        "source": dict(domain_meta(self.source), scaler=self.source_scaler.to_dict()),
        "target": dict(
            domain_meta(self.target),
            scalers=[scaler.to_dict() for scaler in self.target_scalers],
            connection_type=self.config.target.connection_type,
            draw_windows=[self._draw_windows(draw) for draw in self.draws],
        ),
        "window": dict(self.config.window.to_dict()),
    }


def _score_runs(experiment: Experiment, model, per_draw_params, seeds: int) -> dict:
  """Score calibration and evaluation windows for every (draw, seed); arrays [D, S, ...]."""
  config = experiment.config
  calibration, evaluation = [], []
  for draw, params in enumerate(per_draw_params):
    cal_data = experiment.target_windows(draw, experiment.draws[draw].calibration)
    eval_data = experiment.target_windows(draw, experiment.evaluation)
    cal_row, eval_row = [], []
    for seed in range(seeds):
      seed_params = phases.unstack(params, seed)
      cal_row.append(steps.evaluate_scores(
          seed_params, model, cal_data["x"], cal_data["mask"], "target", config.score_batch_size))
      eval_row.append(steps.evaluate_scores(
          seed_params, model, eval_data["x"], eval_data["mask"], "target", config.score_batch_size))
    calibration.append(cal_row)
    evaluation.append(eval_row)
  return {"calibration_scores": np.asarray(calibration), "eval_scores": np.asarray(evaluation)}


def run_neural(experiment: Experiment, variant, context_args: dict, source_states: dict) -> dict:
  """Train one neural model's phases and score it; returns its checkpoint state."""
  config = experiment.config
  model = phases.build_model(
      config, variant, experiment.source.layout.n_features, experiment.target.layout.n_features)
  context = phases.PhaseContext(variant=variant, model=model, **context_args)

  source_params = None
  if variant.source_phase:
    owner = variant.source_of or variant.name
    if owner not in source_states:
      owner_context = phases.PhaseContext(
          variant=variants_lib.VARIANTS[owner], model=model, **context_args)
      source_states[owner] = phases.train_source(
          owner_context, experiment.source_train, experiment.source_held_out)
    source_params = source_states[owner]["params"]

  trainer = phases.TargetTrainer(context, config.window.seq_len)
  per_draw = [trainer.adapt(source_params, experiment.shots(draw.index), draw.index)
              for draw in experiment.draws]
  state = jax.tree.map(lambda *leaves: np.stack(leaves), *jax.device_get(per_draw))
  state["step"] = np.asarray(config.target.epochs, np.int64)
  state.update(_score_runs(experiment, model, [s["params"] for s in per_draw], config.seeds))
  return state


def run_iforest(experiment: Experiment) -> dict:
  """Fit an Isolation Forest per (draw, seed) on all target windows, without labels."""
  config = experiment.config
  calibration, evaluation = [], []
  for draw in experiment.draws:
    every = experiment.target_windows(draw.index, np.arange(experiment.target.n_windows))
    flat = every["x"].reshape(every["x"].shape[0], -1)
    cal_row, eval_row = [], []
    for seed in range(config.seeds):
      forest = ensemble.IsolationForest(
          n_estimators=config.iforest_trees, random_state=config.seed * 1000 + seed)
      forest.fit(flat)
      # score_samples is high for normal windows; negate it so that high means anomalous.
      cal_row.append(-forest.score_samples(flat[draw.calibration]))
      eval_row.append(-forest.score_samples(flat[experiment.evaluation]))
    calibration.append(cal_row)
    evaluation.append(eval_row)
  return {"calibration_scores": np.asarray(calibration), "eval_scores": np.asarray(evaluation)}


def _thresholds(config, calibration_scores: np.ndarray) -> np.ndarray:
  rule = config.threshold
  return np.array([
      [thresholds.threshold(scores, rule.rule, rule.q, rule.k) for scores in row]
      for row in calibration_scores
  ])


def train_and_evaluate(config, workdir: str) -> dict:
  """Run the whole protocol for every model in `config.models`; return report.json's dict."""
  chosen = validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  config_dict = config.to_dict()
  digest = checkpoints.config_hash(config_dict)
  resumed = checkpoints.guard_workdir(workdir, config_dict)
  if resumed:
    logging.info("Resuming the run in %s from its checkpoints.", workdir)
  writer = loop.MetricsWriter(os.path.join(workdir, "metrics.jsonl"))

  # Data and protocol.
  experiment = Experiment(config)
  logging.info(
      "Protocol: %d source training windows, %d held out; %d draws of %d shots + %d "
      "calibration windows; %d evaluation windows (%d attack).",
      experiment.split.train.size, experiment.split.held_out.size, len(experiment.draws),
      config.shots, config.calibration, experiment.evaluation.size, int(experiment.eval_labels.sum()))

  checkpoints.guard_input_files(workdir, experiment.input_files, resumed)

  # Earlier progress of this run.
  manager = checkpoints.target_manager(workdir)
  meta = checkpoints.restore_meta(manager) or {}
  states = {}
  if meta.get("completed"):
    states = restore_target_states(manager, config, meta, experiment)
    logging.info("Target phase already done for: %s.", ", ".join(meta["completed"]))

  context_args = dict(
      config=config, keys=phases.seed_keys(config.seed, config.seeds), workdir=workdir,
      writer=writer, config_hash=digest)
  source_states = {}
  for variant in chosen:
    name = variants_lib.report_name(variant, config.negatives)
    if name in states:
      continue
    logging.info("Model %s: start.", name)
    if variant.neural:
      states[name] = run_neural(experiment, variant, context_args, source_states)
    else:
      states[name] = run_iforest(experiment)
    states[name]["thresholds"] = _thresholds(config, states[name]["calibration_scores"])
    checkpoints.save(manager, len(states), states, target_meta(config, digest, experiment, states))
  manager.wait_until_finished()

  # Report.
  report = report_lib.build_report(config, experiment, states, workdir)
  report_lib.write_report(report, workdir, experiment.eval_labels, states)
  return report


def target_meta(config, digest: str, experiment: Experiment, states: dict) -> dict:
  """JSON part of a target checkpoint: config, data description and thresholds."""
  meta = experiment.metadata()
  meta.update(
      config=config.to_dict(),
      config_hash=digest,
      completed=list(states),
      runs=[{"draw": draw.index, "seed": seed} for draw in experiment.draws for seed in range(config.seeds)],
      threshold_rule=thresholds.describe(config.threshold.rule, config.threshold.q, config.threshold.k),
      thresholds={name: state["thresholds"].tolist() for name, state in states.items()},
      evaluation_windows=int(experiment.evaluation.size),
  )
  return meta


def target_state_shape(config, name: str, experiment_meta: dict, n_eval: int):
  """Return the abstract (shape-only) checkpoint state of one model, via `jax.eval_shape`."""
  variant = variants_lib.VARIANTS[name.removesuffix("_labeled")]
  draws, seeds = config.draws, config.seeds
  shapes = {
      "calibration_scores": jax.ShapeDtypeStruct((draws, seeds, config.calibration), np.float32),
      "eval_scores": jax.ShapeDtypeStruct((draws, seeds, n_eval), np.float32),
      "thresholds": jax.ShapeDtypeStruct((draws, seeds), np.float64),
  }
  if variant.name == "iforest":
    shapes["calibration_scores"] = jax.ShapeDtypeStruct((draws, seeds, config.calibration), np.float64)
    shapes["eval_scores"] = jax.ShapeDtypeStruct((draws, seeds, n_eval), np.float64)
    return shapes

  source_width = len(experiment_meta["source"]["feature_names"])
  target_width = len(experiment_meta["target"]["feature_names"])
  model = phases.build_model(config, variant, source_width, target_width)
  context = phases.PhaseContext(
      config=config, variant=variant, model=model, keys=phases.seed_keys(config.seed, seeds),
      workdir="", writer=loop.MetricsWriter(None), config_hash="")
  trainer = phases.TargetTrainer(context, config.window.seq_len)

  def one_draw():
    params = trainer.initial_params(None, 0)
    return jax.vmap(lambda p: steps.state_from_params(p, trainer.optimizer))(params)

  per_draw = jax.eval_shape(one_draw)
  stacked = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct((draws,) + leaf.shape, leaf.dtype), per_draw)
  stacked.update(shapes)
  stacked["step"] = jax.ShapeDtypeStruct((), np.int64)
  return stacked


def restore_target_states(manager, config, meta: dict, experiment=None, names=None) -> dict:
  """Restore finished models' checkpoint states from the latest target step.

  `names` selects some of the finished models (default: all of them), and only
  their arrays are read.
  """
  names = list(meta["completed"] if names is None else names)
  n_eval = meta["evaluation_windows"]
  abstract = {name: target_state_shape(config, name, meta, n_eval) for name in names}
  partial = set(names) != set(meta["completed"])
  restored = checkpoints.restore_state(manager, manager.latest_step(), abstract, partial=partial)
  return {name: jax.tree.map(np.asarray, restored[name]) for name in names}


def main_with_errors(config, workdir: str) -> None:
  """Run `train_and_evaluate`; exit 2 with a one-line message on invalid input or config."""
  from ctal_jax.data import loading

  expected = (loading.DataError, protocol.ProtocolError, checkpoints.ResumeError, loop.TrainingError, ValueError)
  try:
    train_and_evaluate(config, workdir)
  except expected as error:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2) from None
  logging.info("Report written to %s.", os.path.join(workdir, "report.md"))
