"""Time the data pipeline on a WUSTL-sized example file and report peak memory.

    python benchmarks/data_pipeline.py [--rows=1194464] [--seed=0] [--csv=PATH] [--repeats=3] [--keep]

Writes an example file in the WUSTL-IIOT-2021 layout (1,194,464 rows by default, the
size of the official CSV) unless `--csv` names an existing one. Each stage then runs
in a fresh Python process, so that its peak resident memory (`ru_maxrss`) counts that
stage and the stages it needs, and nothing left over from earlier ones:

  imports   importing the package (the baseline of every other stage)
  load      `loading.load`: read, clean and type the CSV
  features  load, then `features.feature_matrix`
  windows   load, then receiver codes, `windows.window_flows` and `window_labels`
  domain    `domain.load_domain`: everything above plus categories and coverage

Times are wall-clock seconds of the named step alone, the median over `--repeats`
processes. Peak memory is that of the whole process, the highest over those runs. The target on 2 CPU cores: the `domain` stage in at most 10 s and
3 GB.
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

WUSTL_ROWS = 1_194_464
STAGES = ("imports", "load", "features", "windows", "domain")
TARGET_SECONDS = 10.0
TARGET_BYTES = 3_000_000_000


def peak_memory_bytes() -> int:
  # Linux reports ru_maxrss in KiB, macOS in bytes.
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak if sys.platform == "darwin" else peak * 1024


def run_stage(stage: str, csv_path: str) -> dict:
  """Run one stage in this process and return its step times in seconds and output sizes."""
  started = time.perf_counter()
  from ctal_jax.data import domain as domain_lib
  from ctal_jax.data import features
  from ctal_jax.data import loading
  from ctal_jax.data import windows
  result = {"imports": time.perf_counter() - started}
  if stage == "imports":
    return result

  spec = windows.WindowSpec()
  if stage == "domain":
    started = time.perf_counter()
    domain = domain_lib.load_domain(csv_path, spec)
    result["domain"] = time.perf_counter() - started
    result["windows_made"] = domain.n_windows
    return result

  started = time.perf_counter()
  loaded = loading.load(csv_path)
  result["load"] = time.perf_counter() - started
  result["rows"] = loaded.frame.height

  if stage == "features":
    started = time.perf_counter()
    numeric, one_hot = features.feature_matrix(loaded.frame, loaded.layout)
    result["features"] = time.perf_counter() - started
    result["feature_columns"] = numeric.shape[1] + one_hot.shape[1]

  if stage == "windows":
    started = time.perf_counter()
    codes = domain_lib.receiver_codes(loaded.frame)
    flow_times = loaded.frame["time"].dt.epoch("us").to_numpy()
    labels = loaded.frame["label"].to_numpy()
    flow_index = windows.window_flows(codes, flow_times, spec)
    windows.window_labels(flow_index, labels, spec.label_rule)
    result["windows"] = time.perf_counter() - started
    result["windows_made"] = flow_index.shape[0]
  return result


def stage_in_subprocess(stage: str, csv_path: str, *extra: str) -> dict:
  command = [sys.executable, __file__, "--stage", stage, "--csv", csv_path, *extra]
  environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
  result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
  if result.returncode != 0:
    raise RuntimeError(f"Stage {stage} failed with exit status {result.returncode}:\n{result.stderr}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def write_example(path: str, rows: int, seed: int) -> dict:
  """Write the example CSV and return the seconds it took as `{"write": seconds}`."""
  from ctal_jax.data import example

  started = time.perf_counter()
  example.write_source_csv(path, rows, seed)
  return {"write": time.perf_counter() - started}


def print_machine() -> None:
  import numpy
  import polars

  print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
  print(f"python {platform.python_version()}, polars {polars.__version__}, numpy {numpy.__version__}")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, default=WUSTL_ROWS, help="rows of the example file to write")
  parser.add_argument("--seed", type=int, default=0, help="seed of the example file")
  parser.add_argument("--csv", help="existing CSV to time; no example file is written")
  parser.add_argument("--repeats", type=int, default=3, help="fresh processes per stage")
  parser.add_argument("--keep", action="store_true", help="keep the example file and print its path")
  parser.add_argument("--stage", choices=("write",) + STAGES, help=argparse.SUPPRESS)
  arguments = parser.parse_args()

  if arguments.stage == "write":
    result = write_example(arguments.csv, arguments.rows, arguments.seed)
    print(json.dumps(result))
    return 0
  if arguments.stage:
    result = run_stage(arguments.stage, arguments.csv)
    result["peak_bytes"] = peak_memory_bytes()
    print(json.dumps(result))
    return 0

  print_machine()
  folder = None
  csv_path = arguments.csv
  if csv_path is None:
    folder = tempfile.mkdtemp(prefix="ctal_benchmark_")
    csv_path = os.path.join(folder, "wustl_example.csv")
    # Every stage, the writer included, runs in its own process. On Linux a child's
    # ru_maxrss includes the memory the parent holds when it starts the child, so the
    # parent must stay small.
    seconds = stage_in_subprocess(
        "write", csv_path, f"--rows={arguments.rows}", f"--seed={arguments.seed}"
    )["write"]
    size = os.path.getsize(csv_path) / 1024**2
    print(f"example: {arguments.rows} rows, {size:.0f} MiB, written in {seconds:.1f} s")
  else:
    print(f"input: {csv_path}, {os.path.getsize(csv_path) / 1024**2:.0f} MiB")

  print(f"stages: {arguments.repeats} fresh processes each; median seconds, highest peak")
  print(f"{'stage':<10} {'step s':>8} {'load s':>8} {'peak MiB':>9}  detail")
  results = {}
  for stage in STAGES:
    runs = [stage_in_subprocess(stage, csv_path) for _ in range(arguments.repeats)]
    result = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result["peak_bytes"] = max(run["peak_bytes"] for run in runs)
    results[stage] = result
    step = result.get(stage, float("nan"))
    load = result.get("load", float("nan"))
    detail = ", ".join(f"{key}={result[key]}" for key in ("rows", "feature_columns", "windows_made") if key in result)
    print(f"{stage:<10} {step:>8.2f} {load:>8.2f} {result['peak_bytes'] / 1024**2:>9.0f}  {detail}")

  domain = results["domain"]
  meets = domain["domain"] <= TARGET_SECONDS and domain["peak_bytes"] <= TARGET_BYTES
  print(
      f"target (domain stage <= {TARGET_SECONDS:.0f} s and <= {TARGET_BYTES / 1e9:.0f} GB): "
      f"{'met' if meets else 'missed'} ({domain['domain']:.2f} s, {domain['peak_bytes'] / 1e9:.2f} GB)"
  )

  if folder is not None:
    if arguments.keep:
      print(f"example file kept at {csv_path}")
    else:
      os.remove(csv_path)
      os.rmdir(folder)
  return 0


if __name__ == "__main__":
  sys.exit(main())
