"""Label-free thresholds, set from the scores of known-normal calibration windows."""

import numpy as np

RULES = ("quantile", "mean_std")


def threshold(calibration_scores: np.ndarray, rule: str = "quantile", q: float = 0.95, k: float = 3.0) -> float:
  """Return the score above which a window is flagged.

  `quantile`: the q-quantile of the calibration scores. `mean_std`: exp(mean + k std)
  of the log scores, i.e. mean + k std in log space, mapped back to score units.
  """
  scores = np.asarray(calibration_scores, np.float64)
  if scores.size == 0:
    raise ValueError("No calibration scores to set a threshold from.")
  if rule == "quantile":
    return float(np.quantile(scores, q))
  if rule == "mean_std":
    logs = np.log(np.maximum(scores, 1e-12))
    return float(np.exp(logs.mean() + k * logs.std()))
  raise ValueError(f"Unknown threshold rule {rule!r}; use one of {', '.join(RULES)}.")


def describe(rule: str, q: float, k: float) -> str:
  """Name a rule with its parameter, as report rows show it."""
  return f"quantile(q={q})" if rule == "quantile" else f"mean_std(k={k})"
