"""One domain's flows, cut into windows: loading, features and windowing together."""

import dataclasses
import hashlib
import os
from collections.abc import Sequence

from absl import logging
import numpy as np
import polars as pl

from ctal_jax.data import coverage as coverage_lib
from ctal_jax.data import features as features_lib
from ctal_jax.data import loading
from ctal_jax.data import windows as windows_lib
from ctal_jax.data.layouts import Layout
from ctal_jax.data.scaling import Scaler


@dataclasses.dataclass
class Domain:
  """A domain's flows and windows, with the raw (unscaled) feature matrix.

  Attributes:
    numeric: signed-log numeric features per flow, NaN where missing.
    one_hot: protocol one-hot per flow.
    flow_index: [windows, seq_len] flow indices, -1 for padding.
    mask: [windows, seq_len] 1.0 on real steps.
    label: [windows] 0 benign, 1 attack (under the spec's label rule).
    categories: [windows, len(category_names)] attack categories present.
    receiver: [windows] receiver address of each window.
    start_time: [windows] time of the first flow, microseconds since the epoch.
  """

  loaded: loading.Loaded
  spec: windows_lib.WindowSpec
  numeric: np.ndarray
  one_hot: np.ndarray
  flow_labels: np.ndarray
  receiver_codes: np.ndarray
  flow_index: np.ndarray
  mask: np.ndarray
  label: np.ndarray
  categories: np.ndarray
  category_names: tuple[str, ...]
  receiver: np.ndarray
  start_time: np.ndarray
  coverage: dict

  @property
  def layout(self) -> Layout:
    return self.loaded.layout

  @property
  def n_windows(self) -> int:
    return self.flow_index.shape[0]

  def flows_of(self, window_ids: np.ndarray) -> np.ndarray:
    """Return the sorted, distinct flow indices inside the given windows."""
    flows = self.flow_index[window_ids].ravel()
    return np.unique(flows[flows != windows_lib.PAD])

  def window_keys(self, window_ids: np.ndarray | None = None) -> list[tuple[str, int, str]]:
    """Return (receiver, start time in microseconds, digest of the flows) per window.

    The digest covers the window's unscaled features, so the same flows read again from
    the same records give the same key, and two windows that share a receiver and a
    start time but not their flows get different keys.
    """
    ids = np.arange(self.n_windows) if window_ids is None else np.asarray(window_ids)
    values = windows_lib.gather(self.flow_index[ids], self.numeric, fill=np.nan)
    keys = []
    for position, window in enumerate(ids):
      digest = hashlib.blake2b(np.ascontiguousarray(values[position]).tobytes(), digest_size=8)
      keys.append((str(self.receiver[window]), int(self.start_time[window]), digest.hexdigest()))
    return keys

  def scaled_windows(self, scaler: Scaler, window_ids: np.ndarray | None = None) -> np.ndarray:
    """Return scaled model inputs [windows, seq_len, features], zeros on padding."""
    flow_index = self.flow_index if window_ids is None else self.flow_index[window_ids]
    numeric = windows_lib.gather(flow_index, self.numeric, fill=np.nan)
    scaled = scaler.transform(numeric)
    one_hot = windows_lib.gather(flow_index, self.one_hot, fill=0.0)
    x = np.concatenate([scaled, one_hot], axis=-1)
    mask = (flow_index != windows_lib.PAD)[..., None]
    return np.where(mask, x, 0.0).astype(np.float32)


def receiver_codes(frame: pl.DataFrame) -> np.ndarray:
  """Return a dense code per flow for its receiver, codes in sorted address order."""
  receivers = frame["receiver"]
  # Sorting only the distinct addresses and looking each row up is faster than a rank,
  # which sorts every row.
  distinct = receivers.unique().sort()
  codes = receivers.replace_strict(distinct, pl.int_range(distinct.len(), eager=True), return_dtype=pl.Int64)
  return codes.to_numpy()


def category_codes(frame: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
  """Return a code per flow for its attack category (-1 for benign) and the names."""
  names = tuple(sorted(frame["category"].drop_nulls().unique().to_list()))
  lookup = {name: code for code, name in enumerate(names)}
  codes = frame["category"].replace_strict(lookup, default=-1, return_dtype=pl.Int64)
  return codes.to_numpy(), names


def build_domain(loaded: loading.Loaded, spec: windows_lib.WindowSpec) -> Domain:
  """Cut a loaded frame into windows and compute its features and coverage."""
  frame = loaded.frame
  codes = receiver_codes(frame)
  times = frame["time"].dt.epoch("us").to_numpy()
  flow_labels = frame["label"].to_numpy().astype(np.int8)
  flow_categories, names = category_codes(frame)

  flow_index = windows_lib.window_flows(codes, times, spec)
  numeric, one_hot = features_lib.feature_matrix(frame, loaded.layout)
  receivers = frame["receiver"].to_numpy()
  first = flow_index[:, 0]

  domain = Domain(
      loaded=loaded,
      spec=spec,
      numeric=numeric,
      one_hot=one_hot,
      flow_labels=flow_labels,
      receiver_codes=codes,
      flow_index=flow_index,
      mask=windows_lib.step_mask(flow_index),
      label=windows_lib.window_labels(flow_index, flow_labels, spec.label_rule),
      categories=windows_lib.window_categories(flow_index, flow_categories, len(names)),
      category_names=names,
      receiver=receivers[first] if first.size else np.zeros(0, object),
      start_time=times[first] if first.size else np.zeros(0, np.int64),
      coverage=coverage_lib.coverage(flow_index, codes, flow_labels),
  )
  flows = domain.coverage["flows"]
  if loaded.labeled:
    logging.info(
        "%s: %d windows (%d benign, %d attack) from %d of %d flows.",
        loaded.layout.name, domain.n_windows, int((domain.label == 0).sum()),
        int((domain.label == 1).sum()), flows["in_windows"], flows["total"])
  else:
    logging.info("%s: %d windows (unlabeled) from %d of %d flows.",
                 loaded.layout.name, domain.n_windows, flows["in_windows"], flows["total"])
  return domain


def load_domain(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    spec: windows_lib.WindowSpec,
    *,
    connection_type: str | None = None,
) -> Domain:
  """Load files of one layout and cut them into windows."""
  return build_domain(loading.load(paths, connection_type=connection_type), spec)
