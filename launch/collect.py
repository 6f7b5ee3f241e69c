"""Collect the reports of several runs and print one Markdown summary table.

    python launch/collect.py RUNS [--into=RUNS/collected]

Every subfolder of RUNS that contains a report.json is a run. The table has one row
per run and model, with AUROC, AUPRC and MCC as mean ± std over that run's draws
and seeds. With `--into`, each run's report.json, report.md and figures are copied
to INTO/<run>/, and the table is written to INTO/summary.md as well.
"""

import argparse
import json
import math
import os
import shutil
import sys

METRICS = (("auroc", "AUROC"), ("auprc", "AUPRC"), ("mcc", "MCC"))
COPIED = ("report.json", "report.md", "figures")


def find_reports(runs: str) -> list[tuple[str, str]]:
  """Return (run name, report.json path) of every run folder, sorted by name."""
  found = []
  for name in sorted(os.listdir(runs)):
    path = os.path.join(runs, name, "report.json")
    if os.path.isfile(path):
      found.append((name, path))
  return found


def cell(entry: dict) -> str:
  mean, std = entry.get("mean"), entry.get("std")
  if mean is None or (isinstance(mean, float) and math.isnan(mean)):
    return "n/a"
  return f"{mean:.3f} ± {std:.3f}"


def summary_table(reports: list[tuple[str, dict]]) -> str:
  """Return the Markdown table: one row per (run, model)."""
  lines = [
      "| run | model | runs | " + " | ".join(title for _, title in METRICS) + " |",
      "|---|---|---|" + "---|" * len(METRICS),
  ]
  for name, report in reports:
    n_runs = len(report.get("runs", []))
    for model, entry in report["models"].items():
      cells = [cell(entry["metrics"].get(metric, {})) for metric, _ in METRICS]
      lines.append(f"| {name} | `{model}` | {n_runs} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def copy_run(name: str, report_path: str, into: str) -> None:
  """Copy a run's report files and figures to INTO/<name>/, replacing an earlier copy."""
  source = os.path.dirname(report_path)
  target = os.path.join(into, name)
  os.makedirs(target, exist_ok=True)
  for item in COPIED:
    path = os.path.join(source, item)
    if os.path.isdir(path):
      shutil.copytree(path, os.path.join(target, item), dirs_exist_ok=True)
    elif os.path.isfile(path):
      shutil.copy2(path, os.path.join(target, item))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("runs", help="folder whose subfolders are run workdirs")
  parser.add_argument("--into", help="folder to copy the reports to and write summary.md in")
  args = parser.parse_args(argv)

  if not os.path.isdir(args.runs):
    print(f"error: {args.runs}: no such folder.", file=sys.stderr)
    return 2
  found = find_reports(args.runs)
  if not found:
    print(f"error: no run folder in {args.runs} contains a report.json.", file=sys.stderr)
    return 2

  reports = []
  for name, path in found:
    try:
      with open(path) as handle:
        reports.append((name, json.load(handle)))
    except (OSError, ValueError) as error:
      print(f"warning: skipped {path}: {error}", file=sys.stderr)
  table = summary_table(reports)
  print(table)

  if args.into:
    os.makedirs(args.into, exist_ok=True)
    for name, path in found:
      copy_run(name, path, args.into)
    with open(os.path.join(args.into, "summary.md"), "w") as handle:
      handle.write("# Summary of runs\n\nMean ± std over each run's draws and seeds.\n\n" + table + "\n")
    print(f"Copied {len(found)} reports to {args.into}; table in {os.path.join(args.into, 'summary.md')}.",
          file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
