"""Turn a loaded frame into the model's raw feature matrix (before scaling)."""

import numpy as np
import polars as pl

from ctal_jax.data.layouts import Layout


def signed_log(values: np.ndarray) -> np.ndarray:
  """Return `sign(x) * log1p(|x|)`, which keeps NaN as NaN."""
  # copysign in place equals the product with sign(x) and saves two temporary arrays.
  result = np.log1p(np.abs(values))
  return np.copysign(result, values, out=result)


def protocol_one_hot(protocol: np.ndarray, layout: Layout) -> np.ndarray:
  """One-hot over the layout's protocol vocabulary plus a last `other` slot.

  A missing protocol (null, passed as a negative number or NaN) counts as `other`.
  """
  codes = [code for code, _ in layout.protocols]
  one_hot = np.zeros((protocol.shape[0], len(codes) + 1), np.float32)
  slot = np.full(protocol.shape[0], len(codes))
  for index, code in enumerate(codes):
    slot[protocol == code] = index
  one_hot[np.arange(protocol.shape[0]), slot] = 1.0
  return one_hot


def feature_matrix(frame: pl.DataFrame, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
  """Return the signed-log numeric features and the protocol one-hot of every row.

  Returns:
    numeric: float32 [rows, len(layout.features)], NaN where the value was null.
    one_hot: float32 [rows, len(layout.protocols) + 1].
  """
  # Column by column, so that only one column at a time exists in float64.
  numeric = np.empty((frame.height, len(layout.features)), np.float32)
  for index, column in enumerate(layout.features):
    values = frame[column].cast(pl.Float64).to_numpy()
    numeric[:, index] = signed_log(values)
  protocol = frame[layout.protocol].fill_null(-1).to_numpy()
  return numeric, protocol_one_hot(protocol, layout)
