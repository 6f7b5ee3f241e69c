"""Tests of the report figures, drawn from a small synthetic report without training."""

import json

from matplotlib import image as mpimg
import numpy as np
import pytest

from ctal_jax.evaluation import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DRAWS, SEEDS, WINDOWS = 2, 2, 60
ALL_FIGURES = {"metrics", "score_histograms", "roc_pr", "training_source", "training_target"}


def _metric(rng, low, high) -> dict:
  runs = rng.uniform(low, high, DRAWS * SEEDS)
  return {"mean": float(runs.mean()), "std": float(runs.std()), "runs": runs.tolist()}


def _report(rng, prevalence: float) -> dict:
  models = {}
  for name in ("ctal_vae", "vae", "iforest"):
    models[name] = {"metrics": {metric: _metric(rng, 0.3, 0.9) for metric, _ in figures.BAR_METRICS}}
  flag_all = {metric: {"mean": 0.0, "std": 0.0, "runs": [0.0] * DRAWS * SEEDS} for metric, _ in figures.BAR_METRICS}
  flag_all["auroc"] = {"mean": float("nan"), "std": float("nan"), "runs": [float("nan")] * DRAWS * SEEDS}
  flag_all["accuracy"] = {"mean": prevalence, "std": 0.0, "runs": [prevalence] * DRAWS * SEEDS}
  models["flag_all"] = {"metrics": flag_all}
  runs = [{"draw": d, "seed": s} for d in range(DRAWS) for s in range(SEEDS)]
  return {"models": models, "runs": runs,
          "data": {"evaluation": {"attack_prevalence": prevalence}}}


def _scores(rng, labels) -> dict:
  """Return positive scores for two models and signed scores for a third, with thresholds."""
  shape = (DRAWS, SEEDS, WINDOWS)
  vae_like = np.exp(rng.normal(0.0, 1.0, shape) + 1.5 * labels)
  # Signed scores keep the histogram on a linear axis.
  signed = rng.normal(0.0, 1.0, shape) + labels
  thresholds = rng.uniform(1.0, 3.0, (DRAWS, SEEDS))
  return {
      "ctal_vae": (vae_like.astype(np.float32), thresholds),
      "vae": (vae_like[::-1].astype(np.float32), thresholds),
      "iforest": (signed, np.zeros((DRAWS, SEEDS))),
  }


def _write_metrics(path) -> None:
  records = []
  for model in ("ctal_vae", "vae"):
    for epoch in (2, 4, 6):
      records.append({"model": model, "phase": "source", "epoch": epoch, "step": epoch * 3,
                      "seeds": [0, 1], "loss": [10.0 / epoch, 11.0 / epoch],
                      "val_rec": [12.0 / epoch, 12.5 / epoch]})
    for draw in range(DRAWS):
      for epoch in (5, 10, 15, 20):
        records.append({"model": model, "phase": "target", "draw": draw, "epoch": epoch,
                        "step": epoch, "seeds": [0, 1], "loss": [2.0 / epoch + draw, 2.1 / epoch + draw]})
  with open(path, "w") as handle:
    for record in records:
      handle.write(json.dumps(record) + "\n")


def _inputs():
  rng = np.random.default_rng(0)
  labels = (rng.uniform(size=WINDOWS) < 0.4).astype(np.int8)
  labels[:2] = [0, 1]
  return _report(rng, float(labels.mean())), labels, _scores(rng, labels)


@pytest.fixture
def inputs():
  return _inputs()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
  """A folder with metrics.jsonl and every figure written once; returns (folder, written)."""
  folder = tmp_path_factory.mktemp("figures_run")
  _write_metrics(folder / "metrics.jsonl")
  report, labels, scores = _inputs()
  return folder, figures.write_figures(report, str(folder), labels, scores)


def _assert_png(path) -> None:
  with open(path, "rb") as handle:
    assert handle.read(8) == PNG_SIGNATURE, path
  pixels = mpimg.imread(path)
  assert pixels.ndim == 3, path
  assert pixels.shape[0] > 100, path
  assert pixels.shape[1] > 100, path


def test_write_figures_all_pngs(full_run):
  folder, written = full_run
  assert set(written) == ALL_FIGURES
  for name, relative in written.items():
    assert relative == f"figures/{name}.png"
    _assert_png(folder / relative)


def test_write_figures_leaves_no_partial(full_run):
  folder, _ = full_run
  leftovers = [path.name for path in (folder / "figures").iterdir() if not path.name.endswith(".png")]
  assert leftovers == []


def test_write_figures_without_metrics_file(inputs, tmp_path):
  report, labels, scores = inputs
  written = figures.write_figures(report, str(tmp_path), labels, scores)
  assert set(written) == {"metrics", "score_histograms", "roc_pr"}


def test_write_figures_skips_flag_all_scores(inputs, tmp_path):
  report, labels, scores = inputs
  scores = dict(scores, flag_all=(np.ones((DRAWS, SEEDS, WINDOWS)), np.zeros((DRAWS, SEEDS))))
  written = figures.write_figures(report, str(tmp_path), labels, scores)
  _assert_png(tmp_path / written["score_histograms"])


def test_write_figures_one_class_labels(inputs, tmp_path):
  report, labels, scores = inputs
  benign = np.zeros_like(labels)
  written = figures.write_figures(report, str(tmp_path), benign, scores)
  assert "roc_pr" not in written
  assert "score_histograms" in written


def test_write_figures_overwrites(full_run):
  folder, first = full_run
  report, labels, scores = _inputs()
  second = figures.write_figures(report, str(folder), labels, scores)
  assert first == second
  _assert_png(folder / second["metrics"])


def test_read_metrics_last_record_wins(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [
      {"model": "ctal_vae", "phase": "source", "epoch": 2, "loss": [5.0]},
      {"model": "ctal_vae", "phase": "source", "epoch": 2, "loss": [4.0]},
      {"model": "ctal_vae", "phase": "target", "draw": 0, "epoch": 2, "loss": [1.0]},
  ]
  path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
  records = figures.read_metrics(str(path))
  source = [r for r in records if r["phase"] == "source"]
  assert len(records) == 2
  assert source[0]["loss"] == [4.0]


def test_read_metrics_missing_file(tmp_path):
  assert figures.read_metrics(str(tmp_path / "absent.jsonl")) == []
