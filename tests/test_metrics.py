"""Tests of the detection metrics and thresholds, cross-checked against scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from ctal_jax.evaluation import metrics, thresholds

# Seeds of the random cases: label share, score overlap and ties differ between them.
CASE_SEEDS = range(12)


def random_case(seed: int):
  """Return labels, scores and a threshold inside the score range, both classes present."""
  rng = np.random.default_rng(seed)
  n = int(rng.integers(20, 300))
  labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
  labels[:2] = [0, 1]
  scores = rng.normal(size=n) + rng.uniform(0.0, 2.0) * labels
  if seed % 3 == 0:
    # Coarse scores, so that many windows tie.
    scores = np.round(scores, 1)
  threshold = float(np.quantile(scores, rng.uniform(0.2, 0.8)))
  return labels, scores, threshold


def sklearn_at_threshold(labels, flags) -> dict[str, float]:
  return {
      "accuracy": sk_metrics.accuracy_score(labels, flags),
      "mcc": sk_metrics.matthews_corrcoef(labels, flags),
      "sensitivity": sk_metrics.recall_score(labels, flags, zero_division=0),
      "specificity": sk_metrics.recall_score(labels, flags, pos_label=0, zero_division=0),
      "precision": sk_metrics.precision_score(labels, flags, zero_division=0),
      "f1": sk_metrics.f1_score(labels, flags, zero_division=0),
      "balanced_accuracy": sk_metrics.balanced_accuracy_score(labels, flags),
  }


def mcc_of(labels, flags) -> float:
  return sk_metrics.matthews_corrcoef(labels, flags)


# Metrics at a threshold and ranking metrics.


@pytest.mark.parametrize("seed", CASE_SEEDS)
def test_at_threshold_matches_sklearn(seed):
  labels, scores, threshold = random_case(seed)
  flags = scores > threshold
  ours = metrics.at_threshold(labels, flags)
  expected = sklearn_at_threshold(labels, flags)

  assert set(ours) == set(expected)
  for name, value in expected.items():
    assert ours[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("flag_value", [False, True])
def test_at_threshold_constant_flags(flag_value):
  # Flagging nothing or everything: MCC, precision and F1 follow scikit-learn's zero conventions.
  labels, scores, _ = random_case(1)
  flags = np.full(labels.size, flag_value)
  ours = metrics.at_threshold(labels, flags)
  expected = sklearn_at_threshold(labels, flags)

  for name, value in expected.items():
    assert ours[name] == pytest.approx(value, abs=1e-12), name
  assert ours["mcc"] == 0.0


@pytest.mark.parametrize("seed", CASE_SEEDS)
def test_ranking_matches_sklearn(seed):
  labels, scores, _ = random_case(seed)
  ours = metrics.ranking(labels, scores)

  assert ours["auroc"] == pytest.approx(sk_metrics.roc_auc_score(labels, scores), abs=1e-12)
  assert ours["auprc"] == pytest.approx(sk_metrics.average_precision_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("label", [0, 1])
def test_ranking_one_class_is_nan(label):
  result = metrics.ranking(np.full(10, label), np.arange(10.0))
  assert np.isnan(result["auroc"])
  assert np.isnan(result["auprc"])


@pytest.mark.parametrize("seed", CASE_SEEDS)
def test_evaluate_matches_sklearn(seed):
  labels, scores, threshold = random_case(seed)
  result = metrics.evaluate(labels, scores, threshold)
  expected = sklearn_at_threshold(labels, scores > threshold)
  expected["auroc"] = sk_metrics.roc_auc_score(labels, scores)
  expected["auprc"] = sk_metrics.average_precision_score(labels, scores)

  assert tuple(result) == metrics.METRICS
  for name, value in expected.items():
    assert result[name] == pytest.approx(value, abs=1e-12), name


def test_evaluate_flags_strictly_above():
  # A window whose score equals the threshold is not flagged.
  labels = np.array([0, 0, 1, 1])
  scores = np.array([0.1, 0.5, 0.5, 0.9])
  result = metrics.evaluate(labels, scores, 0.5)
  assert result["sensitivity"] == 0.5
  assert result["specificity"] == 1.0
  assert result["precision"] == 1.0


# Thresholds.


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 1.0])
def test_quantile_threshold_is_numpy_quantile(q):
  calibration = np.random.default_rng(3).gamma(2.0, size=10)
  assert thresholds.threshold(calibration, "quantile", q=q) == np.quantile(calibration, q)


def test_quantile_threshold_default_rule():
  calibration = np.random.default_rng(4).gamma(2.0, size=10).astype(np.float32)
  expected = np.quantile(calibration.astype(np.float64), 0.95)
  assert thresholds.threshold(calibration) == expected


@pytest.mark.parametrize("k", [0.0, 1.0, 3.0])
def test_mean_std_threshold_by_hand(k):
  calibration = np.array([0.5, 1.0, 2.0, 4.0])
  logs = np.log(calibration)
  mean = logs.sum() / 4
  std = np.sqrt(((logs - mean) ** 2).sum() / 4)
  assert thresholds.threshold(calibration, "mean_std", k=k) == pytest.approx(np.exp(mean + k * std), rel=1e-12)


def test_mean_std_threshold_zero_scores_finite():
  value = thresholds.threshold(np.array([0.0, 1.0, 2.0]), "mean_std", k=3.0)
  assert np.isfinite(value)


def test_threshold_empty_raises():
  with pytest.raises(ValueError, match="No calibration scores"):
    thresholds.threshold(np.array([]))


def test_threshold_unknown_rule_raises():
  with pytest.raises(ValueError, match="Unknown threshold rule 'median'"):
    thresholds.threshold(np.array([1.0, 2.0]), "median")


def test_describe_names_parameter():
  assert thresholds.describe("quantile", 0.95, 3.0) == "quantile(q=0.95)"
  assert thresholds.describe("mean_std", 0.95, 3.0) == "mean_std(k=3.0)"


# Oracle threshold.


def brute_force_best_mcc(labels, scores) -> float:
  """Return the highest MCC over every cut: flag nothing, everything, or scores above each value."""
  cuts = np.concatenate([[-np.inf], np.unique(scores)])
  return max(mcc_of(labels, scores > cut) for cut in cuts)


@pytest.mark.parametrize("seed", CASE_SEEDS)
def test_best_mcc_threshold_is_maximiser(seed):
  labels, scores, _ = random_case(seed)
  threshold = metrics.best_mcc_threshold(labels, scores)
  best = brute_force_best_mcc(labels, scores)

  assert mcc_of(labels, scores > threshold) == pytest.approx(best, abs=1e-12)
  assert metrics.evaluate(labels, scores, threshold)["mcc"] == pytest.approx(best, abs=1e-12)


def test_best_mcc_threshold_float32_scores():
  labels, scores, _ = random_case(5)
  scores = scores.astype(np.float32)
  threshold = metrics.best_mcc_threshold(labels, scores)
  assert mcc_of(labels, scores > threshold) == pytest.approx(brute_force_best_mcc(labels, scores), abs=1e-12)


def test_best_mcc_threshold_separable():
  labels = np.array([0, 0, 0, 1, 1])
  scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
  threshold = metrics.best_mcc_threshold(labels, scores)
  assert 0.3 <= threshold < 0.7
  assert metrics.evaluate(labels, scores, threshold)["mcc"] == 1.0


# Summary over runs.


def test_summarize_mean_std_runs():
  runs = [{"auroc": 0.5, "mcc": 0.1}, {"auroc": 0.7, "mcc": 0.3}, {"auroc": 0.9, "mcc": 0.2}]
  summary = metrics.summarize(runs)

  assert set(summary) == {"auroc", "mcc"}
  assert summary["auroc"]["mean"] == pytest.approx(0.7)
  assert summary["auroc"]["std"] == pytest.approx(np.std([0.5, 0.7, 0.9]))
  assert summary["auroc"]["runs"] == [0.5, 0.7, 0.9]
  assert summary["mcc"]["mean"] == pytest.approx(0.2)
  assert summary["mcc"]["runs"] == [0.1, 0.3, 0.2]


def test_summarize_skips_nan_in_mean():
  summary = metrics.summarize([{"auroc": 0.6}, {"auroc": float("nan")}, {"auroc": 0.8}])
  entry = summary["auroc"]

  assert entry["mean"] == pytest.approx(0.7)
  assert entry["std"] == pytest.approx(0.1)
  assert len(entry["runs"]) == 3
  assert np.isnan(entry["runs"][1])


def test_summarize_all_nan():
  entry = metrics.summarize([{"auroc": float("nan")}] * 2)["auroc"]
  assert np.isnan(entry["mean"])
  assert np.isnan(entry["std"])


def test_summarize_evaluated_runs():
  runs = [metrics.evaluate(*random_case(seed)) for seed in range(4)]
  summary = metrics.summarize(runs)
  for name in metrics.METRICS:
    values = [run[name] for run in runs]
    assert summary[name]["runs"] == values, name
    assert summary[name]["mean"] == pytest.approx(np.mean(values)), name
    assert summary[name]["std"] == pytest.approx(np.std(values)), name
