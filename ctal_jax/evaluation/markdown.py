"""Render report.json's dict as report.md, a report a person can read."""

from ctal_jax.evaluation.metrics import METRICS

_HEADLINE = ("auroc", "auprc")
_AT_THRESHOLD = tuple(name for name in METRICS if name not in _HEADLINE)
_TITLES = {
    "auroc": "AUROC", "auprc": "AUPRC", "accuracy": "accuracy", "mcc": "MCC",
    "sensitivity": "sensitivity", "specificity": "specificity", "precision": "precision",
    "f1": "F1", "balanced_accuracy": "balanced acc.",
}


def _cell(entry: dict) -> str:
  return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines.extend("| " + " | ".join(row) + " |" for row in rows)
  return lines


def _metric_rows(models: dict, names) -> list[list[str]]:
  rows = []
  for model, entry in models.items():
    rows.append([f"`{model}`"] + [_cell(entry["metrics"][name]) for name in names] + [entry["threshold"]["rule"]])
  return rows


def _data_lines(report: dict) -> list[str]:
  data, lines = report["data"], []
  if data["example_data"]:
    lines.append("Data: the built-in example data (synthetic flows, for trying the pipeline; not a result).")
  for side in ("source", "target"):
    entry = data[side]
    files = ", ".join(f"`{f['path']}` ({f['size']:,} bytes, sha256 {f['sha256'][:12]}…)" for f in entry["files"])
    lines.append(
        f"- {side}: layout `{entry['layout']}`, {entry['flows']:,} flows "
        f"({entry['attack_prevalence_flows']:.1%} attack), {entry['windows']['benign']} benign + "
        f"{entry['windows']['attack']} attack windows, {entry['features']} features; {files}")
  evaluation = data["evaluation"]
  lines.append(
      f"- evaluation set: {evaluation['windows']} target windows, {evaluation['attack_windows']} attack "
      f"(attack prevalence {evaluation['attack_prevalence']:.1%}); flagging every window scores "
      f"accuracy {evaluation['attack_prevalence']:.3f}.")
  return lines


def training_lines(protocol: dict, data: dict) -> list[str]:
  window = protocol["window"]
  lines = [
      f"Training: {protocol['source_epochs']} source and {protocol['target_epochs']} target epochs; "
      f"windows of {window['seq_len']} flows per receiver, stride {window['stride']}, tail "
      f"`{window['tail']}`, label rule `{window['label_rule']}`."
      + (" Windows of one receiver overlap, so evaluation windows can share flows with the "
         "shots and calibration windows." if window["stride"] < window["seq_len"] else "")]
  if protocol["connection_type"]:
    dropped = data["target"]["cleaning"]["rows_dropped"]
    removed = sum(count for reason, count in dropped.items() if "Connection Type" in reason)
    lines.append(
        f"Target rows: connection type `{protocol['connection_type']}` only ({removed:,} other rows "
        "left out).")
  if protocol["shorter_than_method"]:
    lines.append(
        "**Trial run**: fewer epochs than the method's defaults (100 source, 200 target), so "
        "these numbers are not a result.")
  # Blank lines make each entry its own Markdown paragraph.
  return [part for line in lines for part in (line, "")][:-1]


def _feature_row(name: str, auroc: float) -> list[str]:
  return [f"`{name}`", f"{auroc:.3f}", f"{max(auroc, 1 - auroc):.3f}"]


def _coverage_lines(report: dict) -> list[str]:
  rows = []
  for side, coverage in report["coverage"].items():
    for key, share in coverage.items():
      rows.append([side, key.replace("_", " "), f"{share['in_windows']:,} of {share['total']:,}", f"{share['fraction']:.1%}"])
  return _table(["domain", "what", "in windows", "share"], rows)


def render(report: dict) -> str:
  """Return the Markdown text of a report."""
  protocol = report["protocol"]
  runs = len(report["runs"])
  lines = [
      "# CTAL-VAE transfer report",
      "",
      f"{runs} runs per model ({protocol['draws']} draws × {protocol['seeds']} seeds); "
      f"{protocol['shots']} shots and {protocol['calibration']} calibration windows per draw; "
      f"negatives `{protocol['negatives']}`; target scaler fitted on `{protocol['scaler_fit']}` flows. "
      "Numbers are mean ± std over runs. Thresholds never see labels.",
      "",
      *training_lines(protocol, report["data"]),
      "",
      "## Data",
      "",
      *_data_lines(report),
      "",
      "## Coverage",
      "",
      "Flows, receivers and attack flows that end up in a window.",
      "",
      *_coverage_lines(report),
      "",
      "## Detection (threshold-free)",
      "",
      *_table(["model"] + [_TITLES[m] for m in _HEADLINE] + ["threshold rule"],
              _metric_rows(report["models"], _HEADLINE)),
      "",
      "## Detection at the label-free threshold",
      "",
      *_table(["model"] + [_TITLES[m] for m in _AT_THRESHOLD] + ["threshold rule"],
              _metric_rows(report["models"], _AT_THRESHOLD)),
      "",
  ]

  if report["paired"]:
    rows = []
    for model, entry in report["paired"].items():
      row = [f"`{model}`"]
      for metric in ("auroc", "auprc", "mcc"):
        diff = entry[metric]
        losses = diff["n_runs"] - diff["ctal_vae_wins"] - diff["ties"]
        row.append(f"{diff['mean']:+.3f} ± {diff['std']:.3f} ({diff['ctal_vae_wins']}/{diff['ties']}/{losses})")
      rows.append(row)
    lines += [
        "## Paired comparison with `ctal_vae`",
        "",
        "Per-run difference `ctal_vae` minus the model, on the same draw and seed. In "
        "parentheses, the runs that `ctal_vae` wins / ties / loses.",
        "",
        *_table(["model", "Δ AUROC", "Δ AUPRC", "Δ MCC"], rows),
        "",
    ]

  categories = sorted({c for table in report["per_attack"].values() for c in table})
  if categories:
    rows = []
    for model, table in report["per_attack"].items():
      rows.append([f"`{model}`"] + [
          f"{table[c]['mean']:.2f} ± {table[c]['std']:.2f}" if c in table else "–" for c in categories])
    counts = next(iter(report["per_attack"].values()))
    lines += [
        "## Detection rate per attack category",
        "",
        "Share of evaluation windows holding the category that the threshold flags; windows: "
        + ", ".join(f"{c} {counts[c]['windows']}" for c in categories if c in counts) + ".",
        "",
        *_table(["model"] + categories, rows),
        "",
    ]

  leakage = report["leakage"]
  lines += [
      "## Leakage audit",
      "",
      f"AUROC of each single target feature (window mean) on the evaluation set; rule: {leakage['rule']}. "
      "A feature that separates the classes alone may reflect the testbed, not the traffic. "
      "An AUROC near 0 separates as well as one near 1 (the feature is lower on attacks), so "
      "features are ranked by separation, max(AUROC, 1 − AUROC).",
      "",
  ]
  header = ["feature", "AUROC", "separation"]
  leaks = leakage["likely_leaks"]
  if leaks:
    rows = [_feature_row(name, leakage["features"][name]) for name in leaks]
    lines += ["Likely leaks:", "", *_table(header, rows), ""]
  else:
    lines += ["No feature passes the rule.", ""]
  others = sorted(
      ((name, value) for name, value in leakage["features"].items() if value == value and name not in leaks),
      key=lambda item: -max(item[1], 1 - item[1]))[:10]
  if others:
    title = "Strongest other features:" if leaks else "Strongest features:"
    lines += [title, "", *_table(header, [_feature_row(name, value) for name, value in others]), ""]

  if report["figures"]:
    lines += ["## Figures", ""]
    lines += [f"- [{name.replace('_', ' ')}]({path})" for name, path in report["figures"].items()]
    lines += [""]

  rows = []
  for model, entry in report["oracle"].items():
    rows.append([f"`{model}`"] + [_cell(entry["metrics"][m]) for m in ("accuracy", "mcc", "sensitivity", "specificity", "f1")])
  lines += [
      "## Oracle (uses evaluation labels; not a result)",
      "",
      "Each run's threshold chosen for the best MCC on the evaluation labels: an upper bound of "
      "what any threshold could do with these scores. These rows read labels and are not comparable "
      "with the headline tables.",
      "",
      *_table(["model (oracle)", "accuracy", "MCC", "sensitivity", "specificity", "F1"], rows),
      "",
  ]

  env = report["environment"]
  lines += [
      "## Environment",
      "",
      f"ctal_jax {env['ctal_jax']} (commit {env['git_commit'] or 'unknown'}), jax {env['jax']}, "
      f"flax {env['flax']}, optax {env['optax']}, Python {env['python']}, devices {', '.join(env['devices'])}.",
      "",
  ]
  return "\n".join(lines)
