"""Assemble report.json and report.md from the scores of every model and run.

Headline numbers use only label-free thresholds. Labels enter here to compute
metrics, the per-attack detection rates, the leakage audit, and the oracle rows,
which live in their own section and never among the headline numbers.
"""

import hashlib
import os
import platform
import subprocess

import jax
import numpy as np

from ctal_jax import checkpoints
from ctal_jax.evaluation import metrics as metrics_lib
from ctal_jax.evaluation import thresholds

PAIRED_METRICS = ("auroc", "auprc", "mcc")
LEAK_AUROC = 0.95
REFERENCE = "ctal_vae"
# Epochs of the method's defaults; a run with fewer is reported as a trial.
METHOD_EPOCHS = {"source": 100, "target": 200}


def file_facts(path: str) -> dict:
  """Return a file's path, size and SHA-256."""
  digest = hashlib.sha256()
  with open(path, "rb") as handle:
    for block in iter(lambda: handle.read(1 << 20), b""):
      digest.update(block)
  return {"path": os.path.abspath(path), "size": os.path.getsize(path), "sha256": digest.hexdigest()}


def environment() -> dict:
  """Return package, git commit, library versions and devices of this run."""
  import flax
  import optax
  import polars
  from importlib import metadata

  try:
    version = metadata.version("ctal_jax")
  except metadata.PackageNotFoundError:
    version = "not installed"
  try:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
        capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    commit = None
  return {
      "ctal_jax": version,
      "git_commit": commit,
      "jax": jax.__version__,
      "flax": flax.__version__,
      "optax": optax.__version__,
      "polars": polars.__version__,
      "numpy": np.__version__,
      "python": platform.python_version(),
      "platform": platform.platform(),
      "devices": [str(device) for device in jax.devices()],
  }


def _domain_data(domain, files: list[dict]) -> dict:
  frame = domain.loaded.frame
  attack_flows = int(frame["label"].sum())
  return {
      "files": files,
      "layout": domain.layout.name,
      "cleaning": domain.loaded.record.to_dict(),
      "flows": frame.height,
      "attack_prevalence_flows": attack_flows / frame.height if frame.height else 0.0,
      "windows": {"benign": int((domain.label == 0).sum()), "attack": int((domain.label == 1).sum())},
      "features": len(domain.layout.feature_names),
  }


def _run_metrics(labels, eval_scores, run_thresholds):
  runs = []
  for scores, threshold in zip(eval_scores.reshape(-1, eval_scores.shape[-1]), run_thresholds.ravel()):
    runs.append(metrics_lib.evaluate(labels, scores, threshold))
  return runs


def _per_attack(experiment, eval_scores, run_thresholds) -> dict:
  categories = experiment.target.categories[experiment.evaluation]
  flat_scores = eval_scores.reshape(-1, eval_scores.shape[-1])
  flags = flat_scores > run_thresholds.reshape(-1, 1)
  table = {}
  for index, name in enumerate(experiment.target.category_names):
    windows = categories[:, index]
    if not windows.any():
      continue
    rates = flags[:, windows].mean(axis=1)
    table[name] = {"mean": float(rates.mean()), "std": float(rates.std()), "windows": int(windows.sum()),
                   "runs": rates.tolist()}
  return table


def _oracle(labels, eval_scores) -> dict:
  runs, values = [], []
  for scores in eval_scores.reshape(-1, eval_scores.shape[-1]):
    threshold = metrics_lib.best_mcc_threshold(labels, scores)
    values.append(threshold)
    runs.append(metrics_lib.evaluate(labels, scores, threshold))
  return {"metrics": metrics_lib.summarize(runs),
          "threshold": {"rule": "oracle: best MCC on evaluation labels", "values": values}}


def _paired(models: dict) -> dict:
  if REFERENCE not in models:
    return {}
  reference = models[REFERENCE]["metrics"]
  paired = {}
  for name, entry in models.items():
    if name == REFERENCE:
      continue
    paired[name] = {}
    for metric in PAIRED_METRICS:
      ours = np.asarray(reference[metric]["runs"])
      theirs = np.asarray(entry["metrics"][metric]["runs"])
      difference = ours - theirs
      paired[name][metric] = {
          "mean": float(np.nanmean(difference)),
          "std": float(np.nanstd(difference)),
          "runs": difference.tolist(),
          "ctal_vae_wins": int(np.sum(difference > 0)),
          "ties": int(np.sum(difference == 0)),
          "n_runs": int(difference.size),
      }
  return paired


def _leakage(experiment) -> dict:
  """AUROC of each target feature's window mean, on the evaluation windows."""
  target = experiment.target
  flow_index = target.flow_index[experiment.evaluation]
  mask = target.mask[experiment.evaluation]
  values = np.concatenate([target.numeric, target.one_hot], axis=1)
  per_step = np.nan_to_num(np.take(values, np.maximum(flow_index, 0), axis=0))
  means = (per_step * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
  labels = experiment.eval_labels
  features = {}
  for index, name in enumerate(target.layout.feature_names):
    auroc = metrics_lib.ranking(labels, means[:, index])["auroc"]
    features[name] = auroc
  leaks = sorted(
      (name for name, auroc in features.items() if np.isfinite(auroc) and max(auroc, 1 - auroc) > LEAK_AUROC),
      key=lambda name: -max(features[name], 1 - features[name]))
  return {"rule": f"max(AUROC, 1 - AUROC) of the window mean > {LEAK_AUROC}", "features": features,
          "likely_leaks": leaks}


def build_report(config, experiment, states: dict, workdir: str) -> dict:
  """Return the report dict: models, flag_all, paired, per_attack, oracle, leakage, data."""
  labels = experiment.eval_labels
  rule = thresholds.describe(config.threshold.rule, config.threshold.q, config.threshold.k)
  runs = [{"draw": draw.index, "seed": seed} for draw in experiment.draws for seed in range(config.seeds)]

  models, per_attack, oracle = {}, {}, {}
  for name, state in states.items():
    eval_scores = np.asarray(state["eval_scores"], np.float64)
    run_thresholds = np.asarray(state["thresholds"], np.float64)
    models[name] = {
        "metrics": metrics_lib.summarize(_run_metrics(labels, eval_scores, run_thresholds)),
        "threshold": {"rule": rule, "values": run_thresholds.ravel().tolist()},
    }
    per_attack[name] = _per_attack(experiment, eval_scores, run_thresholds)
    oracle[name] = _oracle(labels, eval_scores)

  # Flagging every window: the accuracy a detector must beat on an attack-heavy target.
  flag_all = metrics_lib.ranking(labels, np.zeros(labels.size))
  flag_all.update(metrics_lib.at_threshold(labels, np.ones(labels.size, bool)))
  models["flag_all"] = {
      "metrics": metrics_lib.summarize([{m: flag_all[m] for m in metrics_lib.METRICS}] * len(runs)),
      "threshold": {"rule": "none: every window flagged", "values": []},
  }
  per_attack["flag_all"] = {
      name: {"mean": 1.0, "std": 0.0, "windows": entry["windows"], "runs": [1.0] * len(runs)}
      for name, entry in next(iter(per_attack.values()), {}).items()
  }

  eval_attacks = int(labels.sum())
  return {
      "models": models,
      "paired": _paired(models),
      "per_attack": per_attack,
      "oracle": oracle,
      "leakage": _leakage(experiment),
      "runs": runs,
      "protocol": {
          "seeds": config.seeds, "draws": config.draws, "shots": config.shots,
          "calibration": config.calibration, "negatives": config.negatives,
          "scaler_fit": config.target.scaler_fit, "threshold_rule": rule,
          "source_train_windows": int(experiment.split.train.size),
          "source_held_out_windows": int(experiment.split.held_out.size),
          "source_epochs": config.source.epochs, "target_epochs": config.target.epochs,
          "shorter_than_method": (config.source.epochs < METHOD_EPOCHS["source"]
                                  or config.target.epochs < METHOD_EPOCHS["target"]),
          "connection_type": config.target.connection_type,
          "window": {key: config.window[key] for key in ("seq_len", "stride", "tail", "label_rule")},
      },
      "coverage": {"source": experiment.source.coverage, "target": experiment.target.coverage},
      "data": {
          "example_data": experiment.is_example,
          "source": _domain_data(experiment.source, experiment.input_files["source"]),
          "target": _domain_data(experiment.target, experiment.input_files["target"]),
          "evaluation": {
              "windows": int(labels.size),
              "attack_windows": eval_attacks,
              "attack_prevalence": eval_attacks / labels.size if labels.size else 0.0,
          },
      },
      "environment": environment(),
      "figures": {},
      "workdir": os.path.abspath(workdir),
  }


def write_report(report: dict, workdir: str, labels: np.ndarray, states: dict) -> None:
  """Write figures, report.json and report.md; each file appears complete or not at all.

  `labels` are the evaluation windows' labels and `states` each model's checkpoint
  state, whose `eval_scores` [draws, seeds, windows] and `thresholds` feed the figures.
  """
  from ctal_jax.evaluation import figures
  from ctal_jax.evaluation import markdown

  scores = {name: (np.asarray(state["eval_scores"]), np.asarray(state["thresholds"]))
            for name, state in states.items()}
  report["figures"] = figures.write_figures(report, workdir, labels, scores)
  checkpoints.write_json_atomic(os.path.join(workdir, "report.json"), report)
  path = os.path.join(workdir, "report.md")
  with open(path + ".partial", "w") as handle:
    handle.write(markdown.render(report))
  os.replace(path + ".partial", path)
