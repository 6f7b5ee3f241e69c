"""End-to-end tests of the main job, run as a user runs it: `python -m ctal_jax.main`.

Every run is a separate process on the real flow records. A run that compiles its JAX
programs from scratch takes up to a minute on 2 CPU cores, so a few module-scoped runs
serve many checks:

- `smoke_run`: the `smoke` variant (2 draws x 2 seeds) with ctal_vae, vae, ae and iforest.
- `one_seed_run`: the same with one seed and ctal_vae only. `repeat_run`,
  `resumed_run` and `shuffled_run` repeat its config, so they reuse its compiled
  programs through JAX's persistent compilation cache.
- `override_run`: every protocol size overridden, data given as folders.
- `diverged_run`: a target learning rate that makes the loss overflow.
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata

import numpy as np
import polars as pl
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
MAIN_COMMAND = (sys.executable, "-m", "ctal_jax.main")
SMOKE = "--config=configs/transfer.py:smoke"
# The report must show ctal_vae, vae and ae. iforest adds the non-neural path for a few seconds.
SMOKE_MODELS = ("ctal_vae", "vae", "ae", "iforest")
ONE_SEED = ("--config.seeds=1", "--config.models=ctal_vae")
METRICS = (
    "accuracy", "mcc", "sensitivity", "specificity", "precision", "f1",
    "balanced_accuracy", "auroc", "auprc",
)
RUN_TIMEOUT_S = 900


@dataclasses.dataclass
class Run:
  """A finished main job: its workdir, exit code and output."""

  workdir: pathlib.Path
  returncode: int
  stdout: str
  stderr: str

  def read_json(self, name: str):
    return json.loads((self.workdir / name).read_text())

  @property
  def report(self) -> dict:
    return self.read_json("report.json")

  @property
  def config(self) -> dict:
    return self.read_json("config.json")["config"]

  def error_lines(self) -> list[str]:
    return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


def data_args(source, target) -> list[str]:
  return [f"--config.source.path={source}", f"--config.target.path={target}"]


def main_command(workdir, *args) -> list[str]:
  return [*MAIN_COMMAND, *args, f"--workdir={workdir}"]


def run_main(environment: dict, workdir, *args) -> Run:
  result = subprocess.run(
      main_command(workdir, *args), capture_output=True, text=True, cwd=REPO_ROOT,
      env=environment, timeout=RUN_TIMEOUT_S)
  return Run(pathlib.Path(workdir), result.returncode, result.stdout, result.stderr)


def assert_succeeded(run: Run) -> None:
  assert run.returncode == 0, run.stderr[-4000:]
  assert "Traceback" not in run.stderr


def finished_steps(folder: pathlib.Path) -> list[int]:
  """Return the steps Orbax has finished writing; unfinished ones have a temporary name."""
  if not folder.is_dir():
    return []
  return sorted(int(path.name) for path in folder.iterdir() if path.name.isdigit())


def restore_run(workdir: pathlib.Path):
  """Return (config, meta, states) of a workdir's latest target checkpoint."""
  from ml_collections import config_dict

  from ctal_jax import checkpoints
  from ctal_jax import train

  saved = json.loads((workdir / "config.json").read_text())
  config = config_dict.ConfigDict(saved["config"])
  manager = checkpoints.target_manager(str(workdir))
  meta = checkpoints.restore_meta(manager)
  return config, meta, train.restore_target_states(manager, config, meta)


def canonical(value) -> str:
  """Return JSON text that compares NaN equal to NaN and ignores key order."""
  return json.dumps(value, sort_keys=True)


def assert_params_identical(got, expected) -> None:
  import jax

  got_leaves = jax.tree_util.tree_leaves_with_path(got)
  expected_leaves = jax.tree_util.tree_leaves_with_path(expected)
  assert [path for path, _ in got_leaves] == [path for path, _ in expected_leaves]
  for (path, got_leaf), (_, expected_leaf) in zip(got_leaves, expected_leaves):
    assert got_leaf.dtype == expected_leaf.dtype, jax.tree_util.keystr(path)
    assert got_leaf.tobytes() == expected_leaf.tobytes(), jax.tree_util.keystr(path)


def sha256_of(path) -> str:
  return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


# Shared runs.


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict:
  # The persistent compilation cache lets later runs of the same shapes skip most of
  # the JAX compilation. It returns the program a fresh compile would build, so results
  # stay the same.
  cache = tmp_path_factory.mktemp("jax_cache")
  return dict(os.environ, PYTHONPATH=str(REPO_ROOT), JAX_COMPILATION_CACHE_DIR=str(cache))


@pytest.fixture(scope="module")
def real_data_args(real_source_csv, real_target_csv) -> list[str]:
  return data_args(real_source_csv, real_target_csv)


@pytest.fixture(scope="module")
def smoke_run(environment, real_data_args, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("smoke") / "run"
  return run_main(environment, workdir, SMOKE, *real_data_args, f"--config.models={','.join(SMOKE_MODELS)}")


@pytest.fixture(scope="module")
def smoke_restored(smoke_run):
  assert_succeeded(smoke_run)
  return restore_run(smoke_run.workdir)


@pytest.fixture(scope="module")
def smoke_experiment(smoke_restored):
  """The smoke run's data and protocol windows, rebuilt from its config.json."""
  from ctal_jax import train

  config, _, _ = smoke_restored
  return train.Experiment(config)


@pytest.fixture(scope="module")
def one_seed_run(environment, real_data_args, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("one_seed") / "run"
  return run_main(environment, workdir, SMOKE, *real_data_args, *ONE_SEED)


@pytest.fixture(scope="module")
def one_seed_restored(one_seed_run):
  assert_succeeded(one_seed_run)
  return restore_run(one_seed_run.workdir)


@pytest.fixture(scope="module")
def repeat_run(environment, real_data_args, one_seed_run, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("repeat") / "run"
  return run_main(environment, workdir, SMOKE, *real_data_args, *ONE_SEED)


@dataclasses.dataclass
class Interrupted:
  killed_code: int
  steps_at_kill: list[int]
  report_at_kill: bool
  rerun: Run


@pytest.fixture(scope="module")
def resumed_run(environment, real_data_args, one_seed_run, tmp_path_factory) -> Interrupted:
  """Kill a run once its first source checkpoint exists, then rerun the same command."""
  workdir = tmp_path_factory.mktemp("resumed") / "run"
  args = (SMOKE, *real_data_args, *ONE_SEED)
  source_folder = workdir / "checkpoints" / "source" / "ctal_vae"

  log_path = workdir.parent / "killed.log"
  with open(log_path, "w") as log:
    process = subprocess.Popen(
        main_command(workdir, *args), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        env=environment)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not finished_steps(source_folder) and process.poll() is None:
      if time.monotonic() > deadline:
        process.kill()
        process.wait()
        pytest.fail(f"No source checkpoint within {RUN_TIMEOUT_S} s; log: {log_path.read_text()[-2000:]}")
      time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    killed_code = process.wait()

  steps_at_kill = finished_steps(source_folder)
  report_at_kill = (workdir / "report.json").exists()
  rerun = run_main(environment, workdir, *args)
  return Interrupted(killed_code, steps_at_kill, report_at_kill, rerun)


@pytest.fixture(scope="module")
def shuffled_target_dir(real_target_rows, tmp_path_factory) -> pathlib.Path:
  """A folder with the real target CSV, its `Label` permuted among the attack rows only.

  Which rows are benign stays the same, so every window keeps its benign or attack
  label, the draws of benign windows stay the same, and so does everything trained.
  Only the attack names move between attack rows.
  """
  frame = real_target_rows
  attack_rows = np.flatnonzero((frame["Label"] != "Benign").to_numpy())
  labels = frame["Label"].to_numpy().copy()
  labels[attack_rows] = np.random.default_rng(0).permutation(labels[attack_rows])
  shuffled = frame.with_columns(pl.Series("Label", labels))

  folder = tmp_path_factory.mktemp("shuffled")
  shuffled.write_csv(folder / "target_cicflow.csv")
  return folder


@pytest.fixture(scope="module")
def shuffled_run(environment, real_source_csv, shuffled_target_dir, one_seed_run, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("shuffled_run") / "run"
  return run_main(environment, workdir, SMOKE, *data_args(real_source_csv, shuffled_target_dir), *ONE_SEED)


@pytest.fixture(scope="module")
def copied_data(real_source_csv, real_target_csv, tmp_path_factory):
  """Folders holding a copy of each real CSV, to pass folders as paths."""
  root = tmp_path_factory.mktemp("folders")
  source_dir, target_dir = root / "source", root / "target"
  source_dir.mkdir()
  target_dir.mkdir()
  shutil.copy(real_source_csv, source_dir / real_source_csv.name)
  shutil.copy(real_target_csv, target_dir / real_target_csv.name)
  return source_dir, target_dir


# Source and target epochs, draws, shots and seeds overridden; chunks of 2 epochs, as in smoke.
OVERRIDES = {
    "source.epochs": 2,
    "target.epochs": 4,
    "draws": 1,
    "shots": 3,
    "seeds": 1,
    "models": "ctal_vae,iforest",
}


@pytest.fixture(scope="module")
def override_run(environment, copied_data, one_seed_run, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("overrides") / "run"
  overrides = [f"--config.{field}={value}" for field, value in OVERRIDES.items()]
  return run_main(environment, workdir, SMOKE, *data_args(*copied_data), *overrides)


@pytest.fixture(scope="module")
def diverged_run(environment, real_data_args, one_seed_run, tmp_path_factory) -> Run:
  workdir = tmp_path_factory.mktemp("diverged") / "run"
  # Adam moves every trainable weight by about the learning rate on the first step, so
  # the target adaptors reach 1e30 and the reconstruction error overflows float32.
  return run_main(
      environment, workdir, SMOKE, *real_data_args, *ONE_SEED, "--config.target.learning_rate=1e30")


# The smoke run: workdir contents.


@pytest.mark.slow
def test_smoke_run_succeeds(smoke_run):
  assert_succeeded(smoke_run)
  assert "Report written to" in smoke_run.stderr
  assert "Resuming" not in smoke_run.stderr


@pytest.mark.slow
def test_smoke_workdir_files(smoke_run):
  assert_succeeded(smoke_run)
  for name in ("config.json", "metrics.jsonl", "report.json", "report.md"):
    assert (smoke_run.workdir / name).is_file(), name
  for model in ("ctal_vae", "vae", "ae"):
    # The smoke variant trains 4 source epochs and saves a checkpoint every 2.
    assert finished_steps(smoke_run.workdir / "checkpoints" / "source" / model) == [2, 4], model
  # The target checkpoint gets a step after each model.
  assert finished_steps(smoke_run.workdir / "checkpoints" / "target")[-1] == len(SMOKE_MODELS)


@pytest.mark.slow
def test_smoke_config_json(smoke_run, real_source_csv, real_target_csv):
  from ctal_jax import checkpoints

  assert_succeeded(smoke_run)
  saved = smoke_run.read_json("config.json")
  config = saved["config"]

  assert saved["hash"] == checkpoints.config_hash(config)
  assert config["models"] == ",".join(SMOKE_MODELS)
  assert config["seeds"] == 2
  assert config["draws"] == 2
  assert config["source"]["epochs"] == 4
  assert config["target"]["epochs"] == 20
  assert config["source"]["path"] == str(real_source_csv)
  assert config["target"]["path"] == str(real_target_csv)


@pytest.mark.slow
def test_smoke_metrics_jsonl_seed_axis(smoke_run):
  assert_succeeded(smoke_run)
  lines = (smoke_run.workdir / "metrics.jsonl").read_text().splitlines()
  records = [json.loads(line) for line in lines]

  assert records
  for record in records:
    assert record["seeds"] == [0, 1]
    per_seed = {key: value for key, value in record.items() if isinstance(value, list) and key != "seeds"}
    assert {"loss", "rec", "kl", "con", "grad_norm"} <= set(per_seed), record
    for key, value in per_seed.items():
      assert len(value) == 2, (key, record)
      assert all(np.isfinite(value)), (key, record)

  for model in ("ctal_vae", "vae", "ae"):
    source = [r for r in records if r["model"] == model and r["phase"] == "source"]
    target = [r for r in records if r["model"] == model and r["phase"] == "target"]
    assert [r["epoch"] for r in source] == [2, 4], model
    assert all("val_rec" in r for r in source), model
    assert sorted({r["draw"] for r in target}) == [0, 1], model
    assert max(r["epoch"] for r in target) == 20, model


# The smoke run: report.json.


@pytest.mark.slow
def test_report_models_and_metrics(smoke_run):
  assert_succeeded(smoke_run)
  report = smoke_run.report

  assert set(report["models"]) == set(SMOKE_MODELS) | {"flag_all"}
  for name, entry in report["models"].items():
    assert set(METRICS) <= set(entry["metrics"]), name
    for metric in METRICS:
      summary = entry["metrics"][metric]
      assert set(summary) == {"mean", "std", "runs"}, (name, metric)
      assert len(summary["runs"]) == 4, (name, metric)
      assert summary["mean"] == pytest.approx(np.nanmean(summary["runs"])), (name, metric)
      assert summary["std"] == pytest.approx(np.nanstd(summary["runs"])), (name, metric)
    assert set(entry["threshold"]) == {"rule", "values"}, name
  for name in SMOKE_MODELS:
    assert report["models"][name]["threshold"]["rule"] == "quantile(q=0.95)"
    assert len(report["models"][name]["threshold"]["values"]) == 4


@pytest.mark.slow
def test_report_smoke_runs(smoke_run):
  assert_succeeded(smoke_run)
  report = smoke_run.report
  expected = [{"draw": draw, "seed": seed} for draw in range(2) for seed in range(2)]

  assert report["runs"] == expected
  assert report["protocol"]["draws"] == 2
  assert report["protocol"]["seeds"] == 2
  assert report["protocol"]["shots"] == 5
  assert report["protocol"]["calibration"] == 10


@pytest.mark.slow
def test_report_data_files(smoke_run, real_source_csv, real_target_csv):
  assert_succeeded(smoke_run)
  data = smoke_run.report["data"]

  for side, path in (("source", real_source_csv), ("target", real_target_csv)):
    files = data[side]["files"]
    assert len(files) == 1, side
    assert files[0]["path"] == os.path.abspath(path)
    assert files[0]["size"] == path.stat().st_size
    assert files[0]["sha256"] == sha256_of(path)
  assert data["source"]["layout"] == "wustl_iiot_2021"
  assert data["target"]["layout"] == "aci_iot_2023"
  assert data["example_data"] is False


@pytest.mark.slow
def test_report_attack_prevalence(smoke_run, real_source_rows, real_target_rows):
  assert_succeeded(smoke_run)
  data = smoke_run.report["data"]
  source_attacks = (real_source_rows["Target"] == "1").sum()
  target_attacks = (real_target_rows["Label"] != "Benign").sum()

  assert data["source"]["attack_prevalence_flows"] == pytest.approx(source_attacks / real_source_rows.height)
  assert data["target"]["attack_prevalence_flows"] == pytest.approx(target_attacks / real_target_rows.height)
  evaluation = data["evaluation"]
  assert evaluation["attack_prevalence"] == pytest.approx(evaluation["attack_windows"] / evaluation["windows"])
  # Flagging every window scores the attack prevalence as accuracy.
  flag_all = smoke_run.report["models"]["flag_all"]["metrics"]
  assert flag_all["accuracy"]["mean"] == pytest.approx(evaluation["attack_prevalence"])
  assert flag_all["sensitivity"]["mean"] == 1.0
  assert flag_all["specificity"]["mean"] == 0.0


@pytest.mark.slow
def test_report_evaluation_windows(smoke_run, smoke_experiment):
  assert_succeeded(smoke_run)
  data = smoke_run.report["data"]
  target_windows = data["target"]["windows"]["benign"] + data["target"]["windows"]["attack"]
  used = set()
  for draw in smoke_experiment.draws:
    used |= set(draw.shots.tolist()) | set(draw.calibration.tolist())

  assert data["evaluation"]["windows"] == target_windows - len(used)
  assert data["evaluation"]["attack_windows"] == data["target"]["windows"]["attack"]


@pytest.mark.slow
def test_report_coverage(smoke_run):
  assert_succeeded(smoke_run)
  coverage = smoke_run.report["coverage"]

  assert set(coverage) == {"source", "target"}
  for side, entries in coverage.items():
    assert {"flows", "receivers", "attack_flows"} <= set(entries), side
    for key, share in entries.items():
      assert 0 <= share["in_windows"] <= share["total"], (side, key)
  assert coverage["source"]["flows"]["total"] == 3357
  assert coverage["target"]["flows"]["total"] == 9386


@pytest.mark.slow
def test_report_environment(smoke_run):
  assert_succeeded(smoke_run)
  env = smoke_run.report["environment"]
  try:
    version = metadata.version("ctal_jax")
  except metadata.PackageNotFoundError:
    version = "not installed"
  git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
  commit = git.stdout.strip() if git.returncode == 0 else None

  assert env["ctal_jax"] == version
  assert env["git_commit"] == commit
  assert env["jax"] == metadata.version("jax")
  assert env["devices"]
  assert all(isinstance(device, str) for device in env["devices"])


@pytest.mark.slow
def test_paired_differences_per_run(smoke_run):
  assert_succeeded(smoke_run)
  report = smoke_run.report
  reference = report["models"]["ctal_vae"]["metrics"]

  assert set(report["paired"]) == set(report["models"]) - {"ctal_vae"}
  for name, entry in report["paired"].items():
    for metric in ("auroc", "auprc", "mcc"):
      ours = np.array(reference[metric]["runs"])
      theirs = np.array(report["models"][name]["metrics"][metric]["runs"])
      assert entry[metric]["runs"] == pytest.approx((ours - theirs).tolist()), (name, metric)
      assert entry[metric]["ctal_vae_wins"] == int(np.sum(ours > theirs)), (name, metric)
      assert entry[metric]["ties"] == int(np.sum(ours == theirs)), (name, metric)
      assert entry[metric]["n_runs"] == 4, (name, metric)


def report_section(run: Run, title: str) -> str:
  """Return the text of report.md from the `## title` heading to the next heading."""
  text = (run.workdir / "report.md").read_text()
  return text.split(f"## {title}")[1].split("\n## ")[0]


@pytest.mark.slow
def test_report_md_paired_counts(smoke_run):
  assert_succeeded(smoke_run)
  section = report_section(smoke_run, "Paired comparison")

  for name, entry in smoke_run.report["paired"].items():
    row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
    auroc = entry["auroc"]
    losses = auroc["n_runs"] - auroc["ctal_vae_wins"] - auroc["ties"]
    assert f"({auroc['ctal_vae_wins']}/{auroc['ties']}/{losses})" in row, row


@pytest.mark.slow
def test_report_md_marks_trial_run(smoke_run):
  assert_succeeded(smoke_run)
  text = (smoke_run.workdir / "report.md").read_text()
  protocol = smoke_run.report["protocol"]

  assert protocol["shorter_than_method"] is True
  assert f"Training: {protocol['source_epochs']} source and {protocol['target_epochs']} target epochs" in text
  assert "windows of 30 flows per receiver, stride 30" in text
  assert "**Trial run**" in text
  assert "connection type" not in text


# The smoke run against its checkpoint and the window labels.


def raw_window_labels(experiment, real_target_rows):
  """Return each evaluation window's attack names, read from the raw CSV's `Label`."""
  frame = experiment.target.loaded.frame
  raw_labels = real_target_rows["Label"].to_numpy()
  rows = frame["row"].to_numpy()
  windows = []
  for flow_ids in experiment.target.flow_index[experiment.evaluation]:
    names = {raw_labels[rows[flow]] for flow in flow_ids if flow >= 0}
    windows.append(names - {"Benign"})
  return windows


@pytest.mark.slow
def test_eval_labels_match_raw_csv(smoke_experiment, real_target_rows):
  windows = raw_window_labels(smoke_experiment, real_target_rows)
  expected = np.array([1 if names else 0 for names in windows])
  assert np.array_equal(smoke_experiment.eval_labels, expected)


@pytest.mark.slow
def test_per_attack_matches_labels(smoke_run, smoke_restored, smoke_experiment, real_target_rows):
  report = smoke_run.report
  _, _, states = smoke_restored
  windows = raw_window_labels(smoke_experiment, real_target_rows)
  categories = sorted(set().union(*windows))

  for name in SMOKE_MODELS:
    table = report["per_attack"][name]
    assert sorted(table) == categories, name
    scores = states[name]["eval_scores"].reshape(4, -1)
    flags = scores > states[name]["thresholds"].reshape(4, 1)
    for category in categories:
      members = np.array([category in names for names in windows])
      assert table[category]["windows"] == int(members.sum()), (name, category)
      expected = flags[:, members].mean(axis=1)
      assert table[category]["runs"] == pytest.approx(expected.tolist()), (name, category)
  for category in categories:
    assert report["per_attack"]["flag_all"][category]["runs"] == [1.0] * 4


@pytest.mark.slow
def test_metrics_match_checkpoint(smoke_run, smoke_restored, smoke_experiment):
  from ctal_jax.evaluation import metrics

  report = smoke_run.report
  _, meta, states = smoke_restored
  labels = smoke_experiment.eval_labels

  assert meta["completed"] == list(SMOKE_MODELS)
  for name in SMOKE_MODELS:
    scores = np.asarray(states[name]["eval_scores"], np.float64).reshape(4, -1)
    run_thresholds = states[name]["thresholds"].ravel()
    assert scores.shape[1] == labels.size, name
    assert report["models"][name]["threshold"]["values"] == run_thresholds.tolist(), name
    assert np.asarray(meta["thresholds"][name]).ravel().tolist() == run_thresholds.tolist(), name
    for run in range(4):
      expected = metrics.evaluate(labels, scores[run], run_thresholds[run])
      for metric in METRICS:
        got = report["models"][name]["metrics"][metric]["runs"][run]
        assert got == pytest.approx(expected[metric], nan_ok=True), (name, run, metric)


@pytest.mark.slow
def test_thresholds_from_calibration(smoke_run, smoke_restored):
  _, _, states = smoke_restored
  for name in SMOKE_MODELS:
    calibration = np.asarray(states[name]["calibration_scores"], np.float64).reshape(4, -1)
    expected = [np.quantile(row, 0.95) for row in calibration]
    assert calibration.shape[1] == 10, name
    assert states[name]["thresholds"].ravel().tolist() == pytest.approx(expected, rel=1e-12), name


@pytest.mark.slow
def test_oracle_kept_out_of_headline(smoke_run):
  assert_succeeded(smoke_run)
  report = smoke_run.report

  assert set(report["oracle"]) == set(SMOKE_MODELS)
  for name, entry in report["oracle"].items():
    assert entry["threshold"]["rule"].startswith("oracle"), name
    headline = set(report["models"][name]["threshold"]["values"])
    assert not headline & set(entry["threshold"]["values"]), name
  for name, entry in report["models"].items():
    assert "oracle" not in name
    assert "oracle" not in entry["threshold"]["rule"], name


@pytest.mark.slow
def test_report_md_headline_tables(smoke_run):
  assert_succeeded(smoke_run)
  report = smoke_run.report
  text = (smoke_run.workdir / "report.md").read_text()
  headline = text.split("## Detection (threshold-free)")[1].split("## Paired comparison")[0]
  oracle = text.split("## Oracle")[1]

  assert "4 runs per model (2 draws × 2 seeds)" in text
  for name in ("ctal_vae", "vae", "ae", "flag_all"):
    row = next(line for line in headline.splitlines() if line.startswith(f"| `{name}` |"))
    for metric in ("auroc", "auprc"):
      summary = report["models"][name]["metrics"][metric]
      assert f"{summary['mean']:.3f} ± {summary['std']:.3f}" in row, (name, metric)
  # The oracle rows have their own table, after the headline ones.
  assert "oracle" not in headline.lower()
  assert "| `ctal_vae` |" in oracle


@pytest.mark.slow
def test_report_md_coverage(smoke_run):
  assert_succeeded(smoke_run)
  section = report_section(smoke_run, "Coverage")

  for side, entries in smoke_run.report["coverage"].items():
    for key, share in entries.items():
      row = f"| {side} | {key.replace('_', ' ')} | {share['in_windows']:,} of {share['total']:,} |"
      assert row in section, row


# Scoring after a restore in a fresh process.

RESCORE_SCRIPT = """
import json
import sys

import numpy as np
from ml_collections import config_dict

from ctal_jax import checkpoints, train
from ctal_jax.evaluation import thresholds
from ctal_jax.training import phases, steps, variants

workdir, output = sys.argv[1:]
with open(workdir + "/config.json") as handle:
  config = config_dict.ConfigDict(json.load(handle)["config"])
manager = checkpoints.target_manager(workdir)
meta = checkpoints.restore_meta(manager)
experiment = train.Experiment(config)
states = train.restore_target_states(manager, config, meta, experiment)

arrays = {}
for name, state in states.items():
  if "params" not in state:
    continue
  model = phases.build_model(
      config, variants.VARIANTS[name], experiment.source.layout.n_features,
      experiment.target.layout.n_features)
  scores = np.zeros_like(state["eval_scores"])
  refit = np.zeros_like(state["thresholds"])
  for draw in range(config.draws):
    evaluation = experiment.target_windows(draw, experiment.evaluation)
    calibration = experiment.target_windows(draw, experiment.draws[draw].calibration)
    for seed in range(config.seeds):
      params = phases.unstack(phases.unstack(state["params"], draw), seed)
      scores[draw, seed] = steps.evaluate_scores(
          params, model, evaluation["x"], evaluation["mask"], "target", config.score_batch_size)
      calibration_scores = steps.evaluate_scores(
          params, model, calibration["x"], calibration["mask"], "target", config.score_batch_size)
      refit[draw, seed] = thresholds.threshold(calibration_scores, config.threshold.rule, config.threshold.q)
  arrays[name + ".scores"] = scores
  arrays[name + ".thresholds"] = refit
np.savez(output, **arrays)
"""


@pytest.mark.slow
def test_fresh_process_scores_identical(smoke_run, smoke_restored, environment, tmp_path):
  _, _, states = smoke_restored
  output = tmp_path / "rescored.npz"
  result = subprocess.run(
      [sys.executable, "-c", RESCORE_SCRIPT, str(smoke_run.workdir), str(output)],
      capture_output=True, text=True, cwd=REPO_ROOT, env=environment, timeout=RUN_TIMEOUT_S)
  assert result.returncode == 0, result.stderr[-4000:]

  rescored = np.load(output)
  for name in ("ctal_vae", "vae", "ae"):
    assert np.array_equal(rescored[name + ".scores"], states[name]["eval_scores"]), name
    assert np.array_equal(rescored[name + ".thresholds"], states[name]["thresholds"]), name


# Seeds under vmap, determinism, resume and shuffled labels.


@pytest.mark.slow
def test_one_seed_run_report(one_seed_run):
  assert_succeeded(one_seed_run)
  report = one_seed_run.report

  assert report["runs"] == [{"draw": 0, "seed": 0}, {"draw": 1, "seed": 0}]
  assert set(report["models"]) == {"ctal_vae", "flag_all"}
  assert one_seed_run.config["seeds"] == 1
  assert one_seed_run.config["models"] == "ctal_vae"


@pytest.mark.slow
def test_vmapped_seed_matches_single(smoke_restored, one_seed_restored):
  # Seed i trains with fold_in(key(seed), i) whatever the seed count, so seed 0 of a
  # two-seed run repeats the one-seed run, up to float rounding under vmap.
  _, _, two_seeds = smoke_restored
  _, _, one_seed = one_seed_restored
  two_seed_scores = two_seeds["ctal_vae"]["eval_scores"][:, 0]
  one_seed_scores = one_seed["ctal_vae"]["eval_scores"][:, 0]

  assert two_seed_scores.shape == one_seed_scores.shape
  np.testing.assert_allclose(two_seed_scores, one_seed_scores, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      two_seeds["ctal_vae"]["thresholds"][:, 0], one_seed["ctal_vae"]["thresholds"][:, 0], rtol=1e-5)


@pytest.mark.slow
def test_same_config_same_report(one_seed_run, repeat_run):
  assert_succeeded(one_seed_run)
  assert_succeeded(repeat_run)
  first, second = one_seed_run.report, repeat_run.report

  for key in ("models", "per_attack", "oracle", "runs"):
    assert canonical(first[key]) == canonical(second[key]), key


@pytest.mark.slow
def test_same_config_same_params(one_seed_restored, repeat_run):
  assert_succeeded(repeat_run)
  _, _, first = one_seed_restored
  _, _, second = restore_run(repeat_run.workdir)
  assert_params_identical(second["ctal_vae"]["params"], first["ctal_vae"]["params"])


@pytest.mark.slow
def test_killed_run_interrupted(resumed_run):
  assert resumed_run.killed_code == -signal.SIGKILL, "the run finished before the kill"
  assert resumed_run.steps_at_kill
  assert not resumed_run.report_at_kill


@pytest.mark.slow
def test_rerun_resumes_same_report(resumed_run, one_seed_run):
  rerun = resumed_run.rerun
  assert_succeeded(rerun)
  assert_succeeded(one_seed_run)

  assert "Resuming the run in" in rerun.stderr
  # The source phase continues from its checkpoint instead of training epoch 2 again.
  assert "phase=source epoch 2/4" not in rerun.stderr
  for key in ("models", "per_attack", "oracle"):
    assert canonical(rerun.report[key]) == canonical(one_seed_run.report[key]), key


@pytest.mark.slow
def test_rerun_changed_config_rejected(resumed_run, environment, real_data_args):
  assert_succeeded(resumed_run.rerun)
  workdir = resumed_run.rerun.workdir
  saved = (workdir / "config.json").read_text()
  changed = run_main(environment, workdir, SMOKE, *real_data_args, *ONE_SEED, "--config.target.epochs=10")

  assert changed.returncode == 2
  lines = changed.error_lines()
  assert len(lines) == 1, changed.stderr
  assert "config hash" in lines[0]
  assert "target.epochs: 20 -> 10" in lines[0]
  assert "Traceback" not in changed.stderr
  assert (workdir / "config.json").read_text() == saved


@pytest.mark.slow
def test_shuffled_attacks_same_params(shuffled_run, one_seed_restored, shuffled_target_dir, real_target_rows):
  assert_succeeded(shuffled_run)
  shuffled_labels = pl.read_csv(shuffled_target_dir / "target_cicflow.csv", infer_schema=False)["Label"]
  # The permutation moved some attack names, and no benign row changed.
  assert (shuffled_labels != real_target_rows["Label"]).sum() > 0
  assert ((shuffled_labels == "Benign") == (real_target_rows["Label"] == "Benign")).all()

  _, original_meta, original = one_seed_restored
  _, shuffled_meta, shuffled = restore_run(shuffled_run.workdir)
  assert_params_identical(shuffled["ctal_vae"]["params"], original["ctal_vae"]["params"])
  assert shuffled["ctal_vae"]["thresholds"].tobytes() == original["ctal_vae"]["thresholds"].tobytes()
  assert shuffled_meta["thresholds"] == original_meta["thresholds"]
  assert shuffled["ctal_vae"]["eval_scores"].tobytes() == original["ctal_vae"]["eval_scores"].tobytes()


@pytest.mark.slow
def test_shuffled_attacks_same_metrics(shuffled_run, one_seed_run, shuffled_target_dir):
  assert_succeeded(shuffled_run)
  assert_succeeded(one_seed_run)
  # Window labels, and so every metric, stay the same. Only the per-attack table may change.
  assert canonical(shuffled_run.report["models"]) == canonical(one_seed_run.report["models"])
  files = shuffled_run.report["data"]["target"]["files"]
  assert [f["path"] for f in files] == [str(shuffled_target_dir / "target_cicflow.csv")]


# Command-line overrides.


@pytest.mark.slow
def test_overrides_in_config_json(override_run, copied_data):
  assert_succeeded(override_run)
  config = override_run.config
  source_dir, target_dir = copied_data

  assert config["source"]["epochs"] == 2
  assert config["target"]["epochs"] == 4
  assert config["draws"] == 1
  assert config["shots"] == 3
  assert config["seeds"] == 1
  assert config["models"] == "ctal_vae,iforest"
  assert config["source"]["path"] == str(source_dir)
  assert config["target"]["path"] == str(target_dir)


@pytest.mark.slow
def test_overrides_in_report(override_run):
  assert_succeeded(override_run)
  report = override_run.report
  target_windows = sum(report["data"]["target"]["windows"].values())

  assert report["runs"] == [{"draw": 0, "seed": 0}]
  assert report["protocol"]["shots"] == 3
  assert report["protocol"]["draws"] == 1
  assert report["protocol"]["seeds"] == 1
  assert set(report["models"]) == {"ctal_vae", "iforest", "flag_all"}
  for name, entry in report["models"].items():
    for metric in METRICS:
      assert len(entry["metrics"][metric]["runs"]) == 1, (name, metric)
  # One draw of 3 shots and 10 calibration windows leaves the evaluation set.
  assert report["data"]["evaluation"]["windows"] == target_windows - 13
  text = (override_run.workdir / "report.md").read_text()
  assert "1 runs per model (1 draws × 1 seeds); 3 shots and 10 calibration windows per draw" in text


@pytest.mark.slow
def test_overrides_epochs_in_metrics(override_run):
  assert_succeeded(override_run)
  lines = (override_run.workdir / "metrics.jsonl").read_text().splitlines()
  records = [json.loads(line) for line in lines]
  source = [r for r in records if r["phase"] == "source"]
  target = [r for r in records if r["phase"] == "target"]

  assert [r["epoch"] for r in source] == [2]
  assert [r["epoch"] for r in target] == [2, 4]
  assert all(r["seeds"] == [0] for r in records)
  assert all(len(r["loss"]) == 1 for r in records)


@pytest.mark.slow
def test_folder_paths_in_report(override_run, copied_data, real_source_csv, real_target_csv):
  assert_succeeded(override_run)
  data = override_run.report["data"]

  for side, folder, original in zip(("source", "target"), copied_data, (real_source_csv, real_target_csv)):
    files = data[side]["files"]
    assert [f["path"] for f in files] == [str(folder / original.name)], side
    assert files[0]["sha256"] == sha256_of(original), side
    assert files[0]["size"] == original.stat().st_size, side


@pytest.mark.slow
def test_unknown_model_rejected(environment, real_data_args, tmp_path):
  workdir = tmp_path / "run"
  result = run_main(environment, workdir, SMOKE, *real_data_args, "--config.models=ctal_vae,bogus")

  assert result.returncode == 2
  lines = result.error_lines()
  assert len(lines) == 1, result.stderr
  assert "bogus" in lines[0]
  assert "Traceback" not in result.stderr
  assert not workdir.exists()


@pytest.mark.parametrize("args, expected", [
    (("--config.source.epoch=3",), 'unknown config field \'epoch\' in a --config. override. Did you mean "epochs"'),
    (("--config.epochs=3",), "unknown config field 'epochs'"),
    (("--config=configs/transfer.py:quick",), "Unknown config variant 'quick'; use 'smoke' or 'paper'."),
    (("--config=configs/absent.py",), "No such file or directory: 'configs/absent.py'"),
    (("--config.seeds=abc",), "flag --config.seeds=abc: invalid literal for int()"),
    (("--workdirr=x",), "Unknown command line flag 'workdirr'"),
    (("--config.window.tail=fixed",), "config.window: tail must be 'drop' or 'pad', got 'fixed'."),
    (("--config.seeds_per_group=-1",), "config.seeds_per_group=-1 is invalid; use 0"),
])
def test_command_line_error_one_line(environment, tmp_path, args, expected):
  workdir = tmp_path / "run"
  result = run_main(environment, workdir, SMOKE, *args)

  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  lines = result.error_lines()
  assert len(lines) == 1, result.stderr
  assert expected in lines[0]
  assert not workdir.exists()


def test_failed_start_leaves_workdir_usable(environment, tmp_path, real_target_csv):
  workdir = tmp_path / "run"
  runs = [
      run_main(environment, workdir, SMOKE, *data_args(tmp_path / name, real_target_csv))
      for name in ("absent.csv", "also_absent.csv")
  ]

  for run, name in zip(runs, ("absent.csv", "also_absent.csv")):
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.error_lines() == [f"error: {tmp_path / name}: no such file or folder."]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["config"]["source"]["path"] == str(tmp_path / "also_absent.csv")


# Config variants.


def load_config_module():
  spec = importlib.util.spec_from_file_location("transfer_config", REPO_ROOT / "configs" / "transfer.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# Every default of the method, as (config field, value).
METHOD_DEFAULTS = {
    "window.seq_len": 30, "window.stride": 30, "window.min_len": 30, "window.label_rule": "any",
    "model.width": 43, "model.hidden": 64, "model.latent": 16, "model.teacher_forcing": False,
    "loss.rec": 1.0, "loss.kl": 0.01, "loss.con": 0.1, "loss.margin": 0.5, "loss.sigma": 0.05,
    "source.kl_warmup_epochs": 10, "negatives": "synthetic",
    "source.epochs": 100, "source.batch_size": 256, "source.learning_rate": 1e-3, "source.split": 0.8,
    "target.epochs": 200, "target.learning_rate": 1e-3, "shots": 5, "calibration": 10,
    "draws": 5, "seeds": 3, "seed": 0, "threshold.rule": "quantile", "threshold.q": 0.95,
    "threshold.k": 3.0, "target.scaler_fit": "unlabeled", "scaler.floor": 0.01, "scaler.clip": 10.0,
}


def config_value(config, field: str):
  for part in field.split("."):
    config = config[part]
  return config


@pytest.mark.parametrize("variant", [None, "paper"])
def test_config_method_defaults(variant):
  config = load_config_module().get_config(variant)
  for field, value in METHOD_DEFAULTS.items():
    assert config_value(config, field) == value, field


def test_config_connection_types():
  module = load_config_module()
  assert module.get_config("paper").target.connection_type == "wireless"
  assert module.get_config().target.connection_type is None
  assert module.get_config("smoke").target.connection_type is None


def test_config_smoke_variant():
  config = load_config_module().get_config("smoke")
  assert config.draws == 2
  assert config.seeds == 2
  assert config.models == ",".join(load_config_module().MODELS)


def test_config_unknown_variant_raises():
  with pytest.raises(ValueError, match="Unknown config variant 'fast'"):
    load_config_module().get_config("fast")


@pytest.mark.slow
def test_paper_variant_too_few_windows(environment, real_data_args, tmp_path):
  # The wireless rows of the real target file give far fewer benign windows than the
  # `paper` variant's 5 draws x 15 windows plus as many for evaluation, so the run stops.
  result = run_main(environment, tmp_path / "run", "--config=configs/transfer.py:paper", *real_data_args)

  assert result.returncode == 2
  assert "Connection Type is not wireless" in result.stderr
  lines = result.error_lines()
  assert len(lines) == 1, result.stderr
  match = re.search(r"Target has (\d+) benign windows", lines[0])
  assert match, lines[0]
  assert int(match.group(1)) < 150
  assert "5 draws x (5 shots + 10 calibration) = 75 windows" in lines[0]
  assert "need 150" in lines[0]
  assert "Traceback" not in result.stderr


# Divergence.


@pytest.mark.slow
def test_diverged_run_names_culprit(diverged_run):
  assert diverged_run.returncode == 2, diverged_run.stderr[-4000:]
  lines = diverged_run.error_lines()
  assert len(lines) == 1, diverged_run.stderr
  message = lines[0]

  assert "Training diverged" in message
  assert "model=ctal_vae" in message
  assert "phase=target" in message
  assert "seed=0" in message
  assert re.search(r"step=\d+", message), message
  assert "Traceback" not in diverged_run.stderr


@pytest.mark.slow
def test_diverged_run_keeps_checkpoint(diverged_run):
  from ctal_jax import checkpoints

  assert diverged_run.returncode == 2
  workdir = diverged_run.workdir
  manager = checkpoints.source_manager(str(workdir), "ctal_vae")
  meta = checkpoints.restore_meta(manager)

  # The source phase finished before the target phase diverged, and its checkpoint stays.
  assert finished_steps(workdir / "checkpoints" / "source" / "ctal_vae") == [2, 4]
  assert meta == {"epoch": 4, "config_hash": diverged_run.read_json("config.json")["hash"]}
  assert finished_steps(workdir / "checkpoints" / "target") == []
  assert not (workdir / "report.json").exists()


def test_run_epochs_nan_one_seed(tmp_path):
  import jax.numpy as jnp

  from ctal_jax.training import loop, steps

  calls = []

  def chunk_fn(states, data, epoch_ids, keys, hyper):
    # Seed 1's loss turns NaN in the chunk that ends at epoch 4.
    loss = np.ones((2, epoch_ids.size), np.float32)
    if int(epoch_ids[-1]) == 3:
      loss[1, -1] = np.nan
    return states + 1, {"loss": jnp.asarray(loss)}

  writer = loop.MetricsWriter(str(tmp_path / "metrics.jsonl"))
  with pytest.raises(loop.TrainingError) as raised:
    loop.run_epochs(
        chunk_fn, np.zeros(2), {}, None, steps.Hyper.create(), first_epoch=0, epochs=6,
        log_every=2, steps_per_epoch=3, label={"model": "ctal_vae", "phase": "source"},
        writer=writer, seed_ids=[0, 1], on_chunk=lambda states, epoch: calls.append(epoch))

  message = str(raised.value)
  assert "model=ctal_vae phase=source seed=1 step=12 (epoch 4)" in message
  assert "loss nan" in message
  # The chunk that diverged is neither saved nor logged; the one before it is.
  assert calls == [2]
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [record["epoch"] for record in records] == [2]


@pytest.mark.slow
def test_paper_variant_on_example_data(environment, tmp_path):
  # No paths: the run writes the built-in example data into CTAL_CACHE and uses it.
  environment = dict(environment, CTAL_CACHE=str(tmp_path / "cache"))
  result = run_main(
      environment, tmp_path / "run", "--config=configs/transfer.py:paper",
      "--config.models=ctal_vae,iforest", "--config.seeds=1",
      "--config.source.epochs=2", "--config.target.epochs=2")

  assert_succeeded(result)
  data = result.report["data"]
  assert data["example_data"] is True
  assert pathlib.Path(data["target"]["files"][0]["path"]).parent == tmp_path / "cache"
  dropped = data["target"]["cleaning"]["rows_dropped"]
  assert dropped["Connection Type is not wireless"] > 0
  assert data["target"]["windows"]["benign"] >= 150
  assert set(result.report["models"]) == {"ctal_vae", "iforest", "flag_all"}
  text = (tmp_path / "run" / "report.md").read_text()
  assert "built-in example data" in text
  removed = dropped["Connection Type is not wireless"]
  assert f"Target rows: connection type `wireless` only ({removed:,} other rows left out)." in text


def test_config_window_follows_seq_len():
  config = load_config_module().get_config()
  config.window.seq_len = 60
  assert (config.window.stride, config.window.min_len) == (60, 60)

  config.window.stride = 15
  config.window.seq_len = 90
  assert config.window.seq_len == 90
  assert config.window.stride == 15
  assert config.window.min_len == 90


@pytest.mark.slow
def test_no_attack_windows_rejected(environment, real_data_args, tmp_path):
  # The wireless rows of the real target file hold benign windows only.
  result = run_main(
      environment, tmp_path / "run", SMOKE, *real_data_args, "--config.target.connection_type=wireless",
      "--config.draws=1", "--config.models=ctal_vae,iforest")

  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.error_lines()
  assert len(lines) == 1, result.stderr
  assert re.search(r"evaluation set has \d+ benign and 0 attack windows", lines[0]), lines[0]
  assert not (tmp_path / "run" / "report.md").exists()


@pytest.mark.slow
def test_rerun_changed_input_rejected(environment, real_source_csv, real_target_rows, tmp_path):
  target = tmp_path / "target.csv"
  real_target_rows.write_csv(target)
  args = (SMOKE, *data_args(real_source_csv, target), *ONE_SEED, "--config.draws=1",
          "--config.source.epochs=1", "--config.target.epochs=2")
  first = run_main(environment, tmp_path / "run", *args)
  assert_succeeded(first)
  saved = json.loads((tmp_path / "run" / "input_files.json").read_text())
  assert saved["target"][0]["sha256"] == sha256_of(target)

  # The same path now contains other rows, while the config, and so its hash, is unchanged.
  real_target_rows.head(-1).write_csv(target)
  second = run_main(environment, tmp_path / "run", *args)

  assert second.returncode == 2, second.stderr[-3000:]
  lines = second.error_lines()
  assert len(lines) == 1, second.stderr
  assert "the target input files differ from those its checkpoints were trained on" in lines[0]
  assert str(target) in lines[0]
