"""Figures of a run, as PNG files under WORKDIR/figures/.

- `metrics.png`: AUROC, AUPRC, MCC, sensitivity and accuracy per model, mean and std
  over runs, with every run's value as a dot and the flag-everything accuracy marked.
- `score_histograms.png`: benign and attack evaluation scores of run 0 per model, with
  that run's threshold, on a log axis when the scores are positive and span a factor
  of 10 or more.
- `roc_pr.png`: ROC and precision-recall curves per model, every run faint, run 0 bold.
- `training_source.png`, `training_target.png`: loss per epoch from metrics.jsonl, as
  the mean over seeds with a min-max band. The source figure adds the held-out
  reconstruction loss, and the target panels draw one line per draw.

Figures are drawn on `matplotlib.figure.Figure` objects with the Agg canvas, so no
display is needed and the global pyplot state is never touched.
"""

import json
import math
import os

from absl import logging
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from sklearn import metrics as sk_metrics

FOLDER = "figures"
BAR_METRICS = (
    ("auroc", "AUROC"), ("auprc", "AUPRC"), ("mcc", "MCC"),
    ("sensitivity", "sensitivity"), ("accuracy", "accuracy"),
)
# The report entry that flags every window; it has metrics but no scores.
FLAG_ALL = "flag_all"
_BENIGN_COLOR, _ATTACK_COLOR = "tab:blue", "tab:red"


def write_figures(report: dict, workdir: str, labels, scores: dict) -> dict:
  """Write every figure; return {figure name: path relative to the workdir}.

  Args:
    report: the report dict of `report.build_report`.
    workdir: the run's folder; figures go to WORKDIR/figures and training curves
      come from WORKDIR/metrics.jsonl.
    labels: 0/1 labels of the evaluation windows.
    scores: model -> (eval_scores [draws, seeds, windows], thresholds [draws, seeds]).
  """
  folder = os.path.join(workdir, FOLDER)
  os.makedirs(folder, exist_ok=True)
  labels = np.asarray(labels).astype(int)
  colors = model_colors(list(report["models"]) + list(scores))
  scored = {name: value for name, value in scores.items() if name != FLAG_ALL}

  drawings = {
      "metrics": lambda: metric_bars(report, colors),
      "score_histograms": lambda: score_histograms(labels, scored),
      "roc_pr": lambda: roc_pr_curves(labels, scored, colors),
  }
  records = read_metrics(os.path.join(workdir, "metrics.jsonl"))
  drawings["training_source"] = lambda: source_curves(records, colors)
  drawings["training_target"] = lambda: target_curves(records)

  written = {}
  for name, draw in drawings.items():
    figure = draw()
    if figure is None:
      logging.info("Figure %s skipped: nothing to draw.", name)
      continue
    # Forward slashes on every system, because report.md links to these paths.
    relative = f"{FOLDER}/{name}.png"
    save_png(figure, os.path.join(workdir, relative))
    written[name] = relative
  logging.info("Wrote %d figures to %s.", len(written), folder)
  return written


def model_colors(names: list[str]) -> dict[str, str]:
  """Give each model one of the colors C0 to C9 (tab10 by default), the same in every figure."""
  palette = [f"C{index}" for index in range(10)]
  distinct = list(dict.fromkeys(name for name in names if name != FLAG_ALL))
  colors = {name: palette[index % len(palette)] for index, name in enumerate(distinct)}
  colors[FLAG_ALL] = "0.6"
  return colors


def new_figure(width: float, height: float) -> Figure:
  figure = Figure(figsize=(width, height), layout="constrained")
  FigureCanvasAgg(figure)
  return figure


def save_png(figure: Figure, path: str) -> None:
  """Save a figure as PNG through a temporary file in the same folder, then rename it."""
  partial = path + ".partial"
  figure.savefig(partial, format="png", dpi=110)
  os.replace(partial, path)


def grid_shape(count: int, max_columns: int = 3) -> tuple[int, int]:
  columns = min(count, max_columns)
  return math.ceil(count / columns), columns


# Metric bars.


def metric_bars(report: dict, colors: dict) -> Figure:
  """Draw bars of mean ± std over runs per model, one panel per metric, runs as dots."""
  models = report["models"]
  names = list(models)
  prevalence = report["data"]["evaluation"]["attack_prevalence"]
  n_runs = len(report.get("runs", [])) or 1
  figure = new_figure(3.0 * len(BAR_METRICS), 4.2)
  axes = figure.subplots(1, len(BAR_METRICS), sharey=False)
  positions = np.arange(len(names))

  for ax, (metric, title) in zip(axes, BAR_METRICS):
    means = np.array([models[name]["metrics"][metric]["mean"] for name in names], float)
    stds = np.array([models[name]["metrics"][metric]["std"] for name in names], float)
    ax.bar(positions, np.nan_to_num(means), yerr=np.nan_to_num(stds), capsize=3,
           color=[colors[name] for name in names], edgecolor="black", linewidth=0.5)
    for position, name in zip(positions, names):
      runs = np.asarray(models[name]["metrics"][metric]["runs"], float)
      jitter = np.linspace(-0.15, 0.15, runs.size) if runs.size > 1 else np.zeros(1)
      ax.plot(position + jitter, runs, "o", color="black", markersize=2.5, alpha=0.6)
      if not np.isfinite(means[position]):
        ax.text(position, 0.02, "n/a", ha="center", va="bottom", fontsize=8)

    if metric == "accuracy":
      ax.axhline(prevalence, color="black", linestyle="--", linewidth=1,
                 label=f"flag everything ({prevalence:.3f})")
      ax.legend(loc="upper right", fontsize=8)
    low = min(0.0, np.nanmin(np.append(means - stds, 0.0)))
    ax.set_ylim(low - 0.05 if low < 0 else 0.0, 1.05)
    ax.set_title(title)
    ax.set_xticks(positions, names, rotation=40, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)

  axes[0].set_ylabel("value (mean ± std over runs)")
  figure.suptitle(f"Detection metrics on the evaluation set, {n_runs} runs per model "
                  "(dots: single runs)")
  return figure


# Score histograms.


def score_histograms(labels: np.ndarray, scores: dict) -> Figure | None:
  """Draw histograms of benign and attack scores of run 0 per model, with its threshold."""
  if not scores:
    return None
  rows, columns = grid_shape(len(scores))
  figure = new_figure(4.5 * columns, 3.4 * rows)
  axes = figure.subplots(rows, columns, squeeze=False).ravel()

  for ax, (name, (eval_scores, run_thresholds)) in zip(axes, scores.items()):
    run_scores = np.asarray(eval_scores, float).reshape(-1, np.shape(eval_scores)[-1])[0]
    threshold = float(np.asarray(run_thresholds, float).ravel()[0])
    histogram_panel(ax, labels, run_scores, threshold)
    ax.set_title(f"{name} (run 0)")
  for ax in axes[len(scores):]:
    ax.set_visible(False)

  figure.suptitle("Evaluation scores by true label; flagged: score > threshold")
  return figure


def histogram_panel(ax, labels: np.ndarray, run_scores: np.ndarray, threshold: float) -> None:
  finite = np.isfinite(run_scores)
  values = run_scores[finite]
  if values.size == 0:
    ax.text(0.5, 0.5, "no finite scores", ha="center", transform=ax.transAxes)
    return
  # The threshold is part of the range, so that its line is always inside the axis.
  extent = np.append(values, threshold) if np.isfinite(threshold) else values
  log_x = wants_log_x(extent)
  bins = score_bins(extent, log_x)

  for label, name, color in ((0, "benign", _BENIGN_COLOR), (1, "attack", _ATTACK_COLOR)):
    chosen = run_scores[finite & (labels == label)]
    if chosen.size:
      # Each class sums to 1, so a rare class stays visible, and bar heights mean the
      # same on a log axis, whose bins differ in width.
      ax.hist(chosen, bins=bins, weights=np.full(chosen.size, 1.0 / chosen.size), alpha=0.55,
              color=color, label=f"{name} ({chosen.size})")
  ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.3g}")

  if log_x:
    ax.set_xscale("log")
    # Minor-tick labels (2×10⁻¹, 3×10⁻¹, ...) run into each other on a narrow panel.
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.xaxis.set_major_locator(ticker.LogLocator(numticks=6))
  ax.tick_params(axis="x", labelsize=8)
  ax.set_xlabel("window score" + (" (log scale)" if log_x else ""))
  ax.set_ylabel("share of the class's windows")
  ax.legend(fontsize=8, loc="best")


def wants_log_x(values: np.ndarray) -> bool:
  """Use a log axis for positive scores that span at least a factor of 10."""
  return bool(np.all(values > 0)) and values.max() >= 10 * values.min()


def score_bins(values: np.ndarray, log_x: bool, count: int = 40) -> np.ndarray:
  low, high = float(values.min()), float(values.max())
  if high <= low:
    high = low + (abs(low) or 1.0) * 1e-3
  if log_x:
    return np.geomspace(low, high, count + 1)
  return np.linspace(low, high, count + 1)


# ROC and precision-recall curves.


def roc_pr_curves(labels: np.ndarray, scores: dict, colors: dict) -> Figure | None:
  """Draw ROC and PR curves per model: every run faint, run 0 bold with its AUC in the legend."""
  if not scores or labels.min(initial=0) == labels.max(initial=0):
    return None
  figure = new_figure(11, 4.8)
  roc_ax, pr_ax = figure.subplots(1, 2)
  prevalence = float(labels.mean())

  for name, (eval_scores, _) in scores.items():
    runs = np.asarray(eval_scores, float).reshape(-1, np.shape(eval_scores)[-1])
    for index, run_scores in enumerate(runs):
      finite = np.isfinite(run_scores)
      if labels[finite].min(initial=0) == labels[finite].max(initial=0):
        continue
      curve_pair(roc_ax, pr_ax, labels[finite], run_scores[finite], colors[name],
                 label=name if index == 0 else None, bold=index == 0)

  roc_ax.plot([0, 1], [0, 1], color="0.5", linestyle=":", label="chance")
  roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (sensitivity)",
             title="ROC", xlim=(0, 1), ylim=(0, 1.01))
  pr_ax.axhline(prevalence, color="0.5", linestyle=":", label=f"chance ({prevalence:.3f})")
  pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall",
            xlim=(0, 1), ylim=(0, 1.01))
  for ax in (roc_ax, pr_ax):
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
  figure.suptitle("Evaluation set; bold: run 0 with its AUROC / AUPRC, faint: the other runs")
  return figure


def curve_pair(roc_ax, pr_ax, labels, run_scores, color, label, bold) -> None:
  fpr, tpr, _ = sk_metrics.roc_curve(labels, run_scores)
  precision, recall, _ = sk_metrics.precision_recall_curve(labels, run_scores)
  width, alpha = (1.8, 1.0) if bold else (0.8, 0.25)
  roc_label = pr_label = None
  if label is not None:
    roc_label = f"{label} ({sk_metrics.auc(fpr, tpr):.3f})"
    pr_label = f"{label} ({sk_metrics.average_precision_score(labels, run_scores):.3f})"
  roc_ax.plot(fpr, tpr, color=color, linewidth=width, alpha=alpha, label=roc_label)
  pr_ax.step(recall, precision, where="post", color=color, linewidth=width, alpha=alpha, label=pr_label)


# Training curves.


def read_metrics(path: str) -> list[dict]:
  """Read metrics.jsonl; a later record of the same log step replaces an earlier one.

  A resumed run appends the epochs it repeats, so the last record of each (model,
  phase, draw, epoch) wins. A missing file gives no records, and unreadable lines
  are skipped with a count in the log.
  """
  if not os.path.exists(path):
    return []
  latest, skipped = {}, 0
  with open(path) as handle:
    for line in handle:
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        key = (record["model"], record["phase"], record.get("draw"), record["epoch"])
      except (ValueError, KeyError, TypeError):
        skipped += 1
        continue
      latest[key] = record
  if skipped:
    logging.warning("Skipped %d unreadable lines of %s.", skipped, path)
  return list(latest.values())


def series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
  """Return epochs [E] and per-seed values [E, seeds] of `key`, sorted by epoch."""
  chosen = sorted((r for r in records if key in r), key=lambda r: r["epoch"])
  epochs = np.array([r["epoch"] for r in chosen], float)
  values = np.array([np.atleast_1d(r[key]) for r in chosen], float)
  return epochs, values


def band_plot(ax, epochs, values, color, label, linestyle="-") -> None:
  """Plot the mean over seeds and a min-max band around it."""
  ax.plot(epochs, values.mean(axis=1), color=color, linestyle=linestyle, marker=".", label=label)
  if values.shape[1] > 1:
    ax.fill_between(epochs, values.min(axis=1), values.max(axis=1), color=color, alpha=0.2, linewidth=0)


def use_log_y(ax, values: list[np.ndarray]) -> None:
  joined = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)
  if joined.size and np.all(joined > 0) and joined.max() / joined.min() > 20:
    ax.set_yscale("log")


def source_curves(records: list[dict], colors: dict) -> Figure | None:
  """Draw the source phase's training loss and held-out reconstruction loss per model."""
  source = [r for r in records if r["phase"] == "source"]
  if not source:
    return None
  figure = new_figure(11, 4.2)
  loss_ax, val_ax = figure.subplots(1, 2)
  plotted = {"loss": [], "val_rec": []}

  for name in dict.fromkeys(r["model"] for r in source):
    mine = [r for r in source if r["model"] == name]
    color = colors.get(name, "black")
    for ax, key in ((loss_ax, "loss"), (val_ax, "val_rec")):
      epochs, values = series(mine, key)
      if epochs.size:
        band_plot(ax, epochs, values, color, name)
        plotted[key].append(values)

  loss_ax.set(title="Training loss (weighted total)", xlabel="epoch", ylabel="loss")
  val_ax.set(title="Held-out reconstruction loss (benign source)", xlabel="epoch",
             ylabel="reconstruction MSE")
  for ax, key in ((loss_ax, "loss"), (val_ax, "val_rec")):
    use_log_y(ax, plotted[key])
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if plotted[key]:
      ax.legend(fontsize=8)
  figure.suptitle("Source phase: mean over seeds, band from min to max")
  return figure


def target_curves(records: list[dict]) -> Figure | None:
  """Draw the target phase's training loss per model, one line per draw."""
  target = [r for r in records if r["phase"] == "target"]
  if not target:
    return None
  names = list(dict.fromkeys(r["model"] for r in target))
  rows, columns = grid_shape(len(names))
  figure = new_figure(4.5 * columns, 3.4 * rows)
  axes = figure.subplots(rows, columns, squeeze=False).ravel()

  for ax, name in zip(axes, names):
    mine = [r for r in target if r["model"] == name]
    draws = sorted({r.get("draw", 0) for r in mine})
    plotted = []
    for draw in draws:
      epochs, values = series([r for r in mine if r.get("draw", 0) == draw], "loss")
      if epochs.size:
        band_plot(ax, epochs, values, f"C{draw % 10}", f"draw {draw}")
        plotted.append(values)
    use_log_y(ax, plotted)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set(title=name, xlabel="epoch", ylabel="loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  for ax in axes[len(names):]:
    ax.set_visible(False)

  figure.suptitle("Target phase: training loss on the shots, mean over seeds, band from min to max")
  return figure
