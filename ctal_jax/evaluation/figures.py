"""Figures of a run, as PNG files under WORKDIR/figures/."""


def write_figures(report: dict, workdir: str, labels, scores: dict) -> dict:
  """Write every figure; return {figure name: path relative to the workdir}."""
  # TODO: metric bars, score histograms, ROC and PR curves, training curves.
  return {}
