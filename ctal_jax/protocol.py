"""Which windows each phase may see: the source split and the target draws.

Pure functions of window labels and seeds. Labels are read here for one purpose
only: the premise of the method gives it known-normal (benign) windows to train on
and to calibrate with. Attack windows never enter training or thresholds.
"""

import dataclasses

import numpy as np


class ProtocolError(ValueError):
  """Too few windows for the requested protocol; the message gives the counts."""


@dataclasses.dataclass(frozen=True)
class SourceSplit:
  train: np.ndarray
  held_out: np.ndarray


@dataclasses.dataclass(frozen=True)
class Draw:
  """One draw's known-normal target windows."""

  index: int
  shots: np.ndarray
  calibration: np.ndarray


def split_source(labels: np.ndarray, fraction: float, seed: int) -> SourceSplit:
  """Split the benign source windows into train and held-out parts, seeded by `seed`."""
  benign = np.flatnonzero(labels == 0)
  n_train = int(round(fraction * benign.size))
  if n_train < 1 or benign.size - n_train < 1:
    raise ProtocolError(
        f"Source has {benign.size} benign windows; a {fraction:.0%} split needs at least one "
        "window on each side. Give more source data or a shorter seq_len."
    )
  shuffled = np.random.default_rng([seed, 0]).permutation(benign)
  return SourceSplit(train=np.sort(shuffled[:n_train]), held_out=np.sort(shuffled[n_train:]))


def draw_target(labels: np.ndarray, draws: int, shots: int, calibration: int, seed: int) -> list[Draw]:
  """Draw `shots` adaptation and `calibration` threshold windows from benign target windows.

  Each draw is an independent random choice seeded by (`seed`, draw index). The run
  stops when the benign windows cannot supply every draw and leave at least as many
  benign windows for evaluation.
  """
  benign = np.flatnonzero(labels == 0)
  per_draw = shots + calibration
  needed = 2 * draws * per_draw
  if benign.size < needed:
    raise ProtocolError(
        f"Target has {benign.size} benign windows, but {draws} draws x ({shots} shots + "
        f"{calibration} calibration) = {draws * per_draw} windows plus as many benign "
        f"evaluation windows need {needed}. Lower draws, shots or calibration, or give "
        "more target data."
    )
  result = []
  for index in range(draws):
    chosen = np.random.default_rng([seed, 1, index]).choice(benign, per_draw, replace=False)
    result.append(Draw(index=index, shots=np.sort(chosen[:shots]), calibration=np.sort(chosen[shots:])))
  return result


def draw_attack_windows(labels: np.ndarray, draws: int, count: int, seed: int) -> dict[int, np.ndarray]:
  """Draw `count` attack windows per draw as labeled negatives (`negatives = labeled` only).

  This reads attack labels, so every model trained on these windows is reported
  under a `_labeled` name, and the windows leave the evaluation set.
  """
  attacks = np.flatnonzero(labels == 1)
  if attacks.size < count:
    raise ProtocolError(
        f"negatives='labeled' needs {count} target attack windows per draw, but the "
        f"target has {attacks.size}.")
  return {
      index: np.sort(np.random.default_rng([seed, 2, index]).choice(attacks, count, replace=False))
      for index in range(draws)
  }


def evaluation_windows(n_windows: int, draws: list[Draw], extra: list[np.ndarray] = ()) -> np.ndarray:
  """Return every window outside all draws' shots and calibration windows and `extra`."""
  used = np.zeros(n_windows, bool)
  for draw in draws:
    used[draw.shots] = True
    used[draw.calibration] = True
  for window_ids in extra:
    used[window_ids] = True
  return np.flatnonzero(~used)


def check_evaluation_labels(labels: np.ndarray) -> None:
  """Raise unless the evaluation windows contain both benign and attack windows.

  The labels here only decide whether the metrics are defined, and choose no window
  or threshold.
  """
  attack = int(np.sum(labels == 1))
  benign = int(labels.size - attack)
  if attack == 0 or benign == 0:
    raise ProtocolError(
        f"The evaluation set has {benign} benign and {attack} attack windows, but AUROC, AUPRC "
        "and sensitivity need both. Give target data with both classes (check "
        "config.target.connection_type and config.window.label_rule).")
