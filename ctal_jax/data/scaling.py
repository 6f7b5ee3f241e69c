"""Robust standardisation of signed-log features: median, IQR with a floor, clip.

The scaler is fitted on the rows it is given and no others. It only touches the
numeric flow statistics: the protocol one-hot stays 0/1, because a median and an
IQR of an indicator say nothing useful and would push rare protocols to the clip.
"""

import dataclasses
import json
import os

import numpy as np

# IQR / 1.349 estimates the standard deviation of a normal distribution.
IQR_TO_STD = 1.349


class ScalerError(ValueError):
  """A scaler file that cannot be read, or a scaler applied to the wrong features."""


@dataclasses.dataclass(frozen=True)
class Scaler:
  """Per-feature median and scale of signed-log features, with floor and clip."""

  feature_names: tuple[str, ...]
  median: np.ndarray
  scale: np.ndarray
  floor: float
  clip: float
  fitted_rows: int

  def transform(self, numeric: np.ndarray) -> np.ndarray:
    """Standardise signed-log features; NaN (a missing value) becomes the median."""
    if numeric.shape[-1] != self.median.shape[0]:
      raise ScalerError(
          f"Scaler was fitted on {self.median.shape[0]} features, got {numeric.shape[-1]}."
      )
    scaled = (numeric - self.median) / self.scale
    scaled = np.where(np.isnan(scaled), 0.0, scaled)
    return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

  def to_dict(self) -> dict:
    return {
        "feature_names": list(self.feature_names),
        "median": [float(v) for v in self.median],
        "scale": [float(v) for v in self.scale],
        "floor": self.floor,
        "clip": self.clip,
        "fitted_rows": self.fitted_rows,
    }

  @classmethod
  def from_dict(cls, data: dict) -> "Scaler":
    try:
      scaler = cls(
          feature_names=tuple(data["feature_names"]),
          median=np.asarray(data["median"], np.float64),
          scale=np.asarray(data["scale"], np.float64),
          floor=float(data["floor"]),
          clip=float(data["clip"]),
          fitted_rows=int(data["fitted_rows"]),
      )
    except (KeyError, TypeError, ValueError) as error:
      raise ScalerError(f"Scaler statistics are incomplete or invalid: {error!r}.") from None
    if scaler.median.ndim != 1 or scaler.scale.ndim != 1:
      raise ScalerError("Scaler statistics need median and scale as lists of numbers, one per feature.")
    if not (len(scaler.feature_names) == scaler.median.shape[0] == scaler.scale.shape[0]):
      raise ScalerError("Scaler statistics have different lengths for names, median and scale.")
    if not (np.all(np.isfinite(scaler.median)) and np.all(np.isfinite(scaler.scale) & (scaler.scale > 0))):
      raise ScalerError("Scaler statistics are invalid: every median must be finite and every scale finite and positive.")
    return scaler

  def save(self, path: str | os.PathLike) -> None:
    """Write the statistics as JSON, atomically."""
    path = os.fspath(path)
    partial = path + ".partial"
    with open(partial, "w") as handle:
      json.dump(self.to_dict(), handle, indent=1)
    os.replace(partial, path)

  @classmethod
  def load(cls, path: str | os.PathLike) -> "Scaler":
    try:
      with open(path) as handle:
        data = json.load(handle)
    # ValueError covers invalid JSON and bytes that are not UTF-8 text.
    except (OSError, ValueError) as error:
      raise ScalerError(f"{os.fspath(path)}: cannot read scaler statistics ({error}).") from None
    return cls.from_dict(data)


def fit_scaler(
    numeric: np.ndarray,
    feature_names: tuple[str, ...],
    *,
    floor: float = 0.01,
    clip: float = 10.0,
) -> Scaler:
  """Fit median and `max(IQR / 1.349, floor)` per column of signed-log features.

  NaN (missing) values are ignored; a column with no value at all in the fitting
  rows gets median 0 and scale 1.
  """
  if numeric.ndim != 2 or numeric.shape[0] == 0:
    raise ScalerError(f"Scaler needs a non-empty [rows, features] matrix, got shape {numeric.shape}.")
  values = numeric.astype(np.float64)
  empty = np.all(np.isnan(values), axis=0)
  values[:, empty] = 0.0
  q25, median, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
  scale = np.maximum((q75 - q25) / IQR_TO_STD, floor)
  return Scaler(
      feature_names=tuple(feature_names),
      median=median,
      scale=np.where(empty, 1.0, scale),
      floor=floor,
      clip=clip,
      fitted_rows=int(numeric.shape[0]),
  )
