"""Cut per-receiver flow sequences into fixed-length windows.

Pure functions, arrays in and arrays out. A window is a row of `flow_index`: the
indices of its flows in time order, padded with -1 at the end when the window is
shorter than `seq_len`.
"""

import dataclasses

import numpy as np

PAD = -1


@dataclasses.dataclass(frozen=True)
class WindowSpec:
  """Settings that cut each receiver's flows into windows.

  Attributes:
    seq_len: flows per window.
    stride: flows between the starts of consecutive windows of one receiver.
    min_len: shortest window kept in `pad` mode.
    tail: `drop` keeps only full windows; `pad` also keeps windows of at least
      `min_len` flows, padded to `seq_len` with a per-step mask.
    label_rule: `any` (a window is an attack when any of its flows is), or the
      attack fraction, as a number in (0, 1], at which a window counts as attack.
  """

  seq_len: int = 30
  stride: int = 30
  min_len: int = 30
  tail: str = "drop"
  label_rule: str | float = "any"

  def __post_init__(self):
    if self.seq_len < 1 or self.stride < 1:
      raise ValueError(f"seq_len and stride must be positive, got {self.seq_len} and {self.stride}.")
    if self.tail not in ("drop", "pad"):
      raise ValueError(f"tail must be 'drop' or 'pad', got {self.tail!r}.")
    if not 1 <= self.min_len <= self.seq_len:
      raise ValueError(f"min_len must be in [1, seq_len={self.seq_len}], got {self.min_len}.")
    if self.tail == "drop" and self.min_len != self.seq_len:
      raise ValueError(
          f"min_len={self.min_len} < seq_len={self.seq_len} needs tail='pad'; "
          "with tail='drop' every window is full."
      )
    label_fraction(self.label_rule)

  @property
  def shortest(self) -> int:
    return self.seq_len if self.tail == "drop" else self.min_len


def label_fraction(rule: str | float) -> float | None:
  """Return None for the `any` rule, else the attack fraction in (0, 1]."""
  if rule == "any":
    return None
  try:
    fraction = float(rule)
  except (TypeError, ValueError):
    raise ValueError(f"label_rule must be 'any' or a fraction in (0, 1], got {rule!r}.") from None
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"label_rule fraction must be in (0, 1], got {fraction}.")
  return fraction


def sort_flows(receiver_codes: np.ndarray, times: np.ndarray) -> np.ndarray:
  """Return the flow order grouped by receiver, by time inside a group, ties by input order."""
  position = np.arange(receiver_codes.shape[0])
  return np.lexsort((position, times, receiver_codes))


def window_flows(receiver_codes: np.ndarray, times: np.ndarray, spec: WindowSpec) -> np.ndarray:
  """Return `flow_index` [windows, seq_len]: flow indices per window, -1 for padding.

  Windows are ordered by receiver code, then by start time.
  """
  order = sort_flows(receiver_codes, times)
  sorted_codes = receiver_codes[order]
  n = sorted_codes.shape[0]
  if n == 0:
    return np.zeros((0, spec.seq_len), np.int64)

  boundaries = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
  group_start = np.concatenate([[0], boundaries])
  group_end = np.concatenate([boundaries, [n]])
  group_len = group_end - group_start

  counts = np.where(group_len >= spec.shortest, (group_len - spec.shortest) // spec.stride + 1, 0)
  window_group = np.repeat(np.arange(group_start.shape[0]), counts)
  first_window = np.cumsum(counts) - counts
  offset = np.arange(window_group.shape[0]) - first_window[window_group]
  starts = group_start[window_group] + offset * spec.stride

  steps = starts[:, None] + np.arange(spec.seq_len)[None, :]
  valid = steps < group_end[window_group][:, None]
  return np.where(valid, order[np.minimum(steps, n - 1)], PAD).astype(np.int64)


def step_mask(flow_index: np.ndarray) -> np.ndarray:
  """Return 1.0 for real steps and 0.0 for padding, [windows, seq_len]."""
  return (flow_index != PAD).astype(np.float32)


def gather(flow_index: np.ndarray, values: np.ndarray, fill=0) -> np.ndarray:
  """Gather per-flow `values` into [windows, seq_len, ...], `fill` on padding."""
  safe = np.where(flow_index == PAD, 0, flow_index)
  gathered = values[safe]
  pad = (flow_index == PAD).reshape(flow_index.shape + (1,) * (values.ndim - 1))
  return np.where(pad, np.asarray(fill, values.dtype), gathered)


def window_labels(flow_index: np.ndarray, labels: np.ndarray, rule: str | float = "any") -> np.ndarray:
  """Return each window's label (0 benign, 1 attack) under `rule`, as int8."""
  per_step = gather(flow_index, labels.astype(np.float32), fill=0.0)
  mask = step_mask(flow_index)
  fraction = label_fraction(rule)
  if fraction is None:
    return (per_step.max(axis=1, initial=0.0) > 0).astype(np.int8)
  attack_fraction = per_step.sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
  return (attack_fraction >= fraction).astype(np.int8)


def window_categories(flow_index: np.ndarray, category_codes: np.ndarray, n_categories: int) -> np.ndarray:
  """Return [windows, n_categories] booleans: which attack categories occur in each window.

  `category_codes` has one code per flow, -1 for benign flows.
  """
  per_step = gather(flow_index, category_codes, fill=-1)
  present = np.zeros((flow_index.shape[0], n_categories), bool)
  rows, steps = np.nonzero(per_step >= 0)
  present[rows, per_step[rows, steps]] = True
  return present
