"""Pointwise detection metrics: threshold-free ranking metrics and counts at a threshold."""

import numpy as np
from sklearn import metrics as sk_metrics

METRICS = (
    "auroc", "auprc", "accuracy", "mcc", "sensitivity", "specificity",
    "precision", "f1", "balanced_accuracy",
)


def _ratio(numerator: float, denominator: float) -> float:
  return float(numerator / denominator) if denominator else 0.0


def at_threshold(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
  """Return accuracy, MCC, sensitivity, specificity, precision, F1 and balanced accuracy."""
  labels = np.asarray(labels).astype(bool)
  flags = np.asarray(flags).astype(bool)
  tp = float(np.sum(labels & flags))
  tn = float(np.sum(~labels & ~flags))
  fp = float(np.sum(~labels & flags))
  fn = float(np.sum(labels & ~flags))
  sensitivity = _ratio(tp, tp + fn)
  specificity = _ratio(tn, tn + fp)
  precision = _ratio(tp, tp + fp)
  denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  return {
      "accuracy": _ratio(tp + tn, labels.size),
      "mcc": _ratio(tp * tn - fp * fn, denominator),
      "sensitivity": sensitivity,
      "specificity": specificity,
      "precision": precision,
      "f1": _ratio(2 * precision * sensitivity, precision + sensitivity),
      "balanced_accuracy": (sensitivity + specificity) / 2,
  }


def ranking(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
  """Return AUROC and AUPRC (average precision); NaN when only one class is present."""
  labels = np.asarray(labels).astype(int)
  if np.unique(labels).size < 2:
    return {"auroc": float("nan"), "auprc": float("nan")}
  return {
      "auroc": float(sk_metrics.roc_auc_score(labels, scores)),
      "auprc": float(sk_metrics.average_precision_score(labels, scores)),
  }


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
  """Return every metric of one run: ranking metrics and those at `threshold`."""
  result = ranking(labels, scores)
  result.update(at_threshold(labels, np.asarray(scores) > threshold))
  return {name: result[name] for name in METRICS}


def best_mcc_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
  """Return the threshold with the highest MCC. Reads labels: oracle rows only."""
  labels = np.asarray(labels).astype(int)
  fpr, tpr, cuts = sk_metrics.roc_curve(labels, scores, drop_intermediate=False)
  positives, negatives = labels.sum(), labels.size - labels.sum()
  tp, fp = tpr * positives, fpr * negatives
  fn, tn = positives - tp, negatives - fp
  denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  mcc = np.divide(tp * tn - fp * fn, denominator, out=np.zeros_like(denominator), where=denominator > 0)
  # roc_curve flags `score >= cut`; the largest float below the cut gives the same flags with `>`.
  # It is taken in the scores' own precision, because NumPy compares float32 scores with a
  # Python float in float32, which would round a float64 step below the cut back up to it.
  scores = np.asarray(scores)
  dtype = scores.dtype if np.issubdtype(scores.dtype, np.floating) else np.dtype(np.float64)
  cut = np.asarray(cuts[int(np.argmax(mcc))], dtype)
  return float(np.nextafter(cut, dtype.type(-np.inf)))


def summarize(runs: list[dict[str, float]]) -> dict[str, dict]:
  """Return mean, std and every run's value of each metric, over runs."""
  summary = {}
  for name in runs[0]:
    values = np.array([run[name] for run in runs], np.float64)
    finite = values[np.isfinite(values)]
    summary[name] = {
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "std": float(finite.std()) if finite.size else float("nan"),
        "runs": [float(v) for v in values],
    }
  return summary
