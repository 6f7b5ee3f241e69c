"""End-to-end tests of `python -m ctal_jax.score` against a tiny trained run.

One module fixture trains the main job once (ctal_vae and iforest, one draw, one
seed, a few epochs) in a subprocess. Every scoring call then runs in a fresh
process, as a user would run it, and three calls run at a time to save wall time.
"""

import concurrent.futures
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import polars as pl
import pytest

from ctal_jax import checkpoints
from ctal_jax import train

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OVERRIDES = (
    "--config.models=ctal_vae,iforest", "--config.seeds=1", "--config.draws=1",
    "--config.source.epochs=2", "--config.target.epochs=4",
)
TOP_COLUMNS = [f"top_{kind}_{rank}" for rank in (1, 2, 3) for kind in ("feature", "error")]


def _env() -> dict:
  return dict(os.environ, PYTHONPATH=REPO_ROOT, JAX_PLATFORMS="cpu")


def _score_command(checkpoint, input_path, output, *extra) -> list[str]:
  return [sys.executable, "-m", "ctal_jax.score", f"--checkpoint={checkpoint}",
          f"--input={input_path}", f"--output={output}", *extra]


def _run(command) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, real_source_csv, real_target_csv) -> str:
  """Train the tiny run once; return its workdir."""
  folder = str(tmp_path_factory.mktemp("score_run") / "run")
  command = [
      sys.executable, "-m", "ctal_jax.main", "--config=configs/transfer.py:smoke",
      f"--workdir={folder}", f"--config.source.path={real_source_csv}",
      f"--config.target.path={real_target_csv}", *TINY_OVERRIDES,
  ]
  result = _run(command)
  assert result.returncode == 0, result.stderr[-3000:]
  return folder


@pytest.fixture(scope="module")
def expected(workdir) -> dict:
  """What the run stored: eval scores and threshold of run 0, and the evaluation windows."""
  with open(os.path.join(workdir, "config.json")) as handle:
    config = ml_collections.ConfigDict(json.load(handle)["config"])
  experiment = train.Experiment(config)
  manager = checkpoints.read_only_manager(os.path.join(workdir, "checkpoints", "target"))
  meta = checkpoints.restore_meta(manager)
  state = train.restore_target_states(manager, config, meta, names=["ctal_vae"])["ctal_vae"]

  target = experiment.target
  windows = pl.DataFrame({
      "receiver": target.receiver.astype(str),
      "start_us": target.start_time.astype(np.int64),
  }).with_columns(occurrence=pl.int_range(pl.len()).over("receiver", "start_us"))
  evaluation = windows[experiment.evaluation].with_columns(
      stored_score=pl.Series(state["eval_scores"][0, 0].astype(np.float64)))
  return {
      "n_windows": target.n_windows,
      "evaluation": evaluation,
      "threshold": float(state["thresholds"][0, 0]),
      "feature_names": set(meta["target"]["feature_names"]),
  }


@pytest.fixture(scope="module")
def calls(workdir, tmp_path_factory, real_source_csv, real_target_csv, real_target_rows,
          rerelease_target_dir) -> dict:
  """Run every scoring call, valid and invalid; return name -> (result, output path)."""
  folder = tmp_path_factory.mktemp("score_calls")
  empty_dir = folder / "no_checkpoint"
  empty_dir.mkdir()
  (folder / "empty.csv").write_bytes(b"")
  (folder / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
  few_rows = folder / "few_rows.csv"
  real_target_rows.head(20).write_csv(few_rows)
  unlabeled = folder / "unlabeled.csv"
  real_target_rows.drop("Label", "Connection Type").write_csv(unlabeled)

  target_folder = os.path.join(workdir, "checkpoints", "target")
  out = lambda name: str(folder / name)
  cases = {
      "csv": (workdir, real_target_csv, out("scores.csv"), "--run=all"),
      "parquet": (target_folder, real_target_csv, out("scores.parquet"), "--run=0", "--model=ctal_vae"),
      "unlabeled": (workdir, unlabeled, out("unlabeled.csv"), "--run=all"),
      "rerelease": (workdir, rerelease_target_dir, out("rerelease.csv"), "--run=all"),
      "missing_file": (workdir, folder / "absent.csv", out("x.csv")),
      "binary_file": (workdir, folder / "binary.csv", out("x.csv")),
      "empty_file": (workdir, folder / "empty.csv", out("x.csv")),
      "wrong_layout": (workdir, real_source_csv, out("x.csv")),
      "unknown_model": (workdir, real_target_csv, out("x.csv"), "--model=vae"),
      "iforest": (workdir, real_target_csv, out("x.csv"), "--model=iforest"),
      "no_checkpoint": (empty_dir, real_target_csv, out("x.csv")),
      "run_out_of_range": (workdir, real_target_csv, out("x.csv"), "--run=1"),
      "too_few_windows": (workdir, few_rows, out("x.csv")),
      "bad_suffix": (workdir, real_target_csv, out("x.txt")),
  }
  with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    futures = {name: pool.submit(_run, _score_command(*args)) for name, args in cases.items()}
    return {name: (future.result(), cases[name][2]) for name, future in futures.items()}


def _scores(calls, name) -> pl.DataFrame:
  result, path = calls[name]
  assert result.returncode == 0, result.stderr[-3000:]
  frame = pl.read_csv(path) if path.endswith(".csv") else pl.read_parquet(path)
  start = pl.col("start_time").str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us")
  return frame.with_columns(start_us=start.dt.epoch("us")).with_columns(
      occurrence=pl.int_range(pl.len()).over("run", "receiver", "start_us"))


def test_score_one_row_per_window(calls, expected):
  frame = _scores(calls, "csv")
  assert frame.height == expected["n_windows"]
  assert frame["run"].unique().to_list() == [0]
  keys = frame.select("receiver", "start_us", "occurrence").unique()
  assert keys.height == frame.height


def test_score_matches_stored_eval_scores(calls, expected):
  frame = _scores(calls, "csv")
  joined = expected["evaluation"].join(frame, on=["receiver", "start_us", "occurrence"], how="left")
  assert joined.height == expected["evaluation"].height
  assert joined["score"].null_count() == 0
  np.testing.assert_allclose(joined["score"].to_numpy(), joined["stored_score"].to_numpy(), rtol=1e-5, atol=1e-7)


def test_score_flags_follow_threshold(calls, expected):
  frame = _scores(calls, "csv")
  np.testing.assert_allclose(frame["threshold"].to_numpy(), expected["threshold"])
  flags = frame["score"].to_numpy() > expected["threshold"]
  assert np.array_equal(frame["flag"].to_numpy(), flags)
  assert 0 < flags.sum() < frame.height


def test_score_marks_shots_and_calibration(calls, expected):
  frame = _scores(calls, "csv")
  keys = ["receiver", "start_us", "occurrence"]

  roles = dict(frame["used_as"].drop_nulls().value_counts().iter_rows())
  assert roles == {"shot": 5, "calibration": 10}
  unused = frame.filter(pl.col("used_as").is_null()).select(keys).sort(keys)
  assert unused.equals(expected["evaluation"].select(keys).sort(keys))


def test_score_top_features(calls, expected):
  frame = _scores(calls, "csv")
  assert set(TOP_COLUMNS) <= set(frame.columns)
  names = set(frame["top_feature_1"]) | set(frame["top_feature_2"]) | set(frame["top_feature_3"])
  assert names <= expected["feature_names"]
  errors = frame.select("top_error_1", "top_error_2", "top_error_3").to_numpy()
  assert np.all(errors >= 0)
  assert np.all(np.diff(errors, axis=1) <= 0)


def test_score_parquet_equals_csv(calls):
  csv = _scores(calls, "csv")
  parquet = _scores(calls, "parquet")
  assert parquet.columns == csv.columns
  assert parquet["receiver"].to_list() == csv["receiver"].to_list()
  np.testing.assert_allclose(parquet["score"].to_numpy(), csv["score"].to_numpy(), rtol=1e-6)
  assert parquet["flag"].to_list() == csv["flag"].to_list()


def test_score_unlabeled_input(calls):
  labeled = _scores(calls, "csv")
  unlabeled = _scores(calls, "unlabeled")
  assert unlabeled.equals(labeled)


def test_score_rerelease_against_2023_run(calls):
  labeled = _scores(calls, "csv")
  rerelease = _scores(calls, "rerelease")
  assert rerelease.height == labeled.height
  keys = ["receiver", "start_us", "occurrence"]
  assert rerelease.select(keys).sort(keys).equals(labeled.select(keys).sort(keys))
  assert 0 < rerelease["flag"].sum() < rerelease.height


def test_score_leaves_no_partial(calls):
  _, path = calls["csv"]
  folder = os.path.dirname(path)
  assert [name for name in os.listdir(folder) if name.endswith(".partial")] == []


@pytest.mark.parametrize("case, expected_text", [
    ("missing_file", "no such file or folder"),
    ("binary_file", "file is binary"),
    ("empty_file", "file is empty"),
    ("wrong_layout", "trained on target layout aci_iot_2023"),
    ("unknown_model", "--model=vae: not in the checkpoint"),
    ("iforest", "--model=iforest: has no parameters in the checkpoint"),
    ("no_checkpoint", "no target checkpoint found"),
    ("run_out_of_range", "--run=1: out of range; the checkpoint has 1 runs"),
    ("too_few_windows", "20 flows"),
    ("bad_suffix", "use a .csv or .parquet file name"),
])
def test_score_invalid_input_exits_2(calls, case, expected_text):
  result, output = calls[case]
  error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert len(error_lines) == 1, result.stderr[-3000:]
  assert expected_text in error_lines[0]
  assert not os.path.exists(output)


def test_score_too_few_windows_names_seq_len(calls):
  result, _ = calls["too_few_windows"]
  assert "seq_len=30" in result.stderr
