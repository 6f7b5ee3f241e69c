"""Tests of the inspect command line, run as a user runs it: a separate process."""

import os
import pathlib
import subprocess
import sys

import polars as pl
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_inspect(path) -> subprocess.CompletedProcess:
  environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
  return subprocess.run(
      [sys.executable, "-m", "ctal_jax.inspect", str(path)],
      capture_output=True, text=True, cwd=REPO_ROOT, env=environment, timeout=120,
  )


# File, then facts about it: layout, rows, and windows as benign + attack
# (the window counts of the real files are tabulated with those files).
VALID_CASES = {
    "source": ("real/source_argus.csv", "wustl_iiot_2021", 3357, "99 = 81 benign + 18 attack"),
    "target": ("real/target_cicflow.csv", "aci_iot_2023", 9386, "252 = 153 benign + 99 attack"),
    "sample": ("samples/wustl_iiot_2021_head5.csv", "wustl_iiot_2021", 5, "0 = 0 benign + 0 attack"),
}


@pytest.mark.parametrize("case", sorted(VALID_CASES))
def test_inspect_valid_file(case, shared_dir):
  relative, layout_name, rows, windows = VALID_CASES[case]
  path = shared_dir / "data" / relative
  data_rows = pl.read_csv(path, infer_schema=False).height
  assert data_rows == rows

  result = run_inspect(path)
  lines = result.stdout.splitlines()

  assert result.returncode == 0, result.stderr
  assert lines[0].startswith(f"Layout: {layout_name} ")
  assert f"Rows: {rows} read, {rows} kept." in lines
  assert any(line.startswith("Labels: ") for line in lines)
  assert any(line.endswith(f"): {windows}.") for line in lines)
  assert "Coverage (share that ends up in a window):" in lines
  assert any(line.startswith("  flows: ") and f" of {rows} " in line for line in lines)
  assert "Traceback" not in result.stderr


# File, then a column the error must name as missing.
MISSING_CASES = {
    "partial sample": ("samples/aci_iot_2023_head5_partial.csv", "Flow Bytes/s"),
    "addresses only": ("samples/aci_iot_2023_head1005_ips.csv", "Flow ID"),
    "tool column names": ("real/target_cicflow_raw_pycic.csv", "Flow ID"),
}


@pytest.mark.parametrize("case", sorted(MISSING_CASES))
def test_inspect_missing_columns(case, shared_dir):
  relative, missing_column = MISSING_CASES[case]

  result = run_inspect(shared_dir / "data" / relative)
  error_lines = result.stderr.strip().splitlines()

  assert result.returncode == 2
  assert len(error_lines) == 1, result.stderr
  assert error_lines[0].startswith("error: ")
  assert "missing columns" in error_lines[0]
  assert missing_column in error_lines[0]
  assert "Traceback" not in result.stderr
  assert result.stdout == ""


@pytest.mark.parametrize("content, reason", [
    (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\xff\xff", "binary"),
    (b"", "empty"),
])
def test_inspect_unreadable_file(content, reason, tmp_path):
  path = tmp_path / "flows.csv"
  path.write_bytes(content)

  result = run_inspect(path)
  error_lines = result.stderr.strip().splitlines()

  assert result.returncode == 2
  assert len(error_lines) == 1, result.stderr
  assert reason in error_lines[0]
  assert "Traceback" not in result.stderr


def test_inspect_unlabeled_file(real_target_rows, tmp_path):
  path = tmp_path / "new_flows.csv"
  real_target_rows.drop("Label", "Connection Type").write_csv(path)

  result = run_inspect(path)
  lines = result.stdout.splitlines()

  assert result.returncode == 0, result.stderr
  assert lines[0].endswith(", read without its label columns")
  assert any(line.startswith("Labels: none (no 'Label' or 'Connection Type' column)") for line in lines)
  assert "Windows (seq_len=30, stride=30, min_len=30): 252." in lines
  coverage = lines[lines.index("Coverage (share that ends up in a window):") + 1:]
  assert [line.split(":")[0] for line in coverage] == ["  flows", "  receivers"]


def test_inspect_no_window_explained(wustl_head5_csv):
  result = run_inspect(wustl_head5_csv)

  assert result.returncode == 0, result.stderr
  assert "  no window: no receiver has 30 flows" in result.stdout
