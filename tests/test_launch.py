"""Tests of launch/run_configs.sh, run on CPU from a folder outside the repository."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ("--config.models=ctal_vae,iforest --config.seeds=1 --config.draws=1 "
        "--config.source.epochs=1 --config.target.epochs=2")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, real_source_csv, real_target_csv):
  """Run a list of two entries, one valid and one with an unknown model."""
  folder = tmp_path_factory.mktemp("launch")
  (folder / "configs.txt").write_text(
      "# one valid run, one that fails\n"
      f"configs/transfer.py:smoke {TINY}\n"
      "\n"
      "configs/transfer.py:smoke --config.models=bogus\n")
  environment = dict(
      os.environ, PYTHON=sys.executable,
      COMMON_ARGS=f"--config.source.path={real_source_csv} --config.target.path={real_target_csv}")
  environment.pop("RUNS", None)
  result = subprocess.run(
      [str(REPO_ROOT / "launch" / "run_configs.sh"), "--file=configs.txt"],
      cwd=folder, env=environment, capture_output=True, text=True, timeout=600)
  return folder, result


def test_launch_runs_relative_to_caller(batch):
  folder, result = batch
  run = folder / "runs" / "01-transfer_smoke"

  assert (run / "report.json").is_file(), result.stdout[-3000:] + result.stderr[-3000:]
  assert (run / "report.md").is_file()
  assert (folder / "runs" / "01-transfer_smoke.log").is_file()


def test_launch_failed_entry_reported(batch):
  folder, result = batch

  assert result.returncode == 1
  assert "error: 1 of 2 runs failed: 02-transfer_smoke" in result.stderr
  assert "bogus" in (folder / "runs" / "02-transfer_smoke.log").read_text()


def test_launch_collects_reports(batch):
  folder, _ = batch
  collected = folder / "runs" / "collected"

  assert (collected / "01-transfer_smoke" / "report.json").is_file()
  summary = (collected / "summary.md").read_text()
  assert "01-transfer_smoke" in summary
  assert "ctal_vae" in summary


def test_launch_missing_list_named(tmp_path):
  result = subprocess.run(
      [str(REPO_ROOT / "launch" / "run_configs.sh"), "--file=absent.txt"],
      cwd=tmp_path, capture_output=True, text=True, timeout=60)

  assert result.returncode == 2
  assert result.stderr.strip() == "error: config list absent.txt not found."


@pytest.mark.parametrize("script, backend", [("gpu.sh", "gpu"), ("tpu.sh", "tpu")])
def test_accelerator_script_stops_on_cpu(script, backend, tmp_path):
  environment = dict(os.environ, PYTHON=sys.executable, INSTALL="0", JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [str(REPO_ROOT / "launch" / script), "configs/transfer.py:smoke"],
      cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)

  assert result.returncode == 1, result.stderr[-3000:]
  assert result.stdout.startswith("JAX ")
  assert f"error: JAX uses cpu, not {backend};" in result.stderr
  assert not (tmp_path / "runs").exists()


def test_check_backend_passes_on_match():
  result = subprocess.run(
      [sys.executable, str(REPO_ROOT / "launch" / "check_backend.py"), "cpu", "unused hint"],
      env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=120)

  assert result.returncode == 0, result.stderr
  assert "backend cpu" in result.stdout
