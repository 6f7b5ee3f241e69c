"""Scaler and feature-matrix tests: statistics by hand, floor, clip, files, imputation."""

import json

import numpy as np
import polars as pl
import pytest

from ctal_jax.data import domain as domain_lib
from ctal_jax.data import features
from ctal_jax.data import layouts
from ctal_jax.data import scaling
from ctal_jax.data.scaling import ScalerError
from ctal_jax.data.windows import PAD, WindowSpec

NAMES = ("a", "b")


def tiny_matrix() -> np.ndarray:
  # Column a, sorted, is 1, 2, 3, 4, 100. Column b is 0, 10, 20, 30 and one missing value.
  return np.array([
      [3.0, 20.0],
      [1.0, np.nan],
      [100.0, 0.0],
      [4.0, 30.0],
      [2.0, 10.0],
  ])


# Statistics.


def test_median_and_iqr_by_hand():
  scaler = scaling.fit_scaler(tiny_matrix(), NAMES)

  # Quartiles interpolate linearly between sorted values. Column a has them on its
  # 2nd and 4th values, and column b (4 values) at positions 0.75 and 2.25.
  assert scaler.median.tolist() == [3.0, 15.0]
  assert scaler.scale[0] == pytest.approx((4.0 - 2.0) / 1.349)
  assert scaler.scale[1] == pytest.approx((22.5 - 7.5) / 1.349)
  assert scaler.fitted_rows == 5
  assert scaler.feature_names == NAMES


def test_transform_by_hand():
  scaler = scaling.fit_scaler(tiny_matrix(), NAMES)

  scaled = scaler.transform(np.array([[5.0, 15.0], [3.0, np.nan]]))

  assert scaled[0, 0] == pytest.approx((5.0 - 3.0) / ((4.0 - 2.0) / 1.349))
  assert scaled[0, 1] == 0.0
  assert scaled[1].tolist() == [0.0, 0.0]
  assert scaled.dtype == np.float32


def test_constant_feature_gets_floor():
  matrix = np.column_stack([np.full(6, 2.5), np.arange(6.0)])

  default = scaling.fit_scaler(matrix, NAMES)
  custom = scaling.fit_scaler(matrix, NAMES, floor=0.5)

  assert default.scale[0] == 0.01
  assert custom.scale[0] == 0.5
  assert default.scale[1] > 0.01


def test_differing_value_clipped():
  matrix = np.column_stack([np.full(6, 2.5), np.arange(6.0)])
  scaler = scaling.fit_scaler(matrix, NAMES)

  scaled = scaler.transform(np.array([[2.6, 0.0], [2.4, 0.0], [1e30, 0.0], [2.5, 0.0]]))

  assert np.all(np.isfinite(scaled))
  assert scaled[0, 0] == 10.0
  assert scaled[1, 0] == -10.0
  assert scaled[2, 0] == 10.0
  assert scaled[3, 0] == 0.0


def test_custom_clip():
  matrix = np.column_stack([np.full(6, 2.5), np.arange(6.0)])
  scaler = scaling.fit_scaler(matrix, NAMES, clip=2.5)

  scaled = scaler.transform(np.array([[100.0, -100.0]]))

  assert scaled.tolist() == [[2.5, -2.5]]


def test_missing_column_gets_unit_scale():
  matrix = np.column_stack([np.full(4, np.nan), np.arange(4.0)])

  scaler = scaling.fit_scaler(matrix, NAMES)

  assert scaler.median[0] == 0.0
  assert scaler.scale[0] == 1.0
  assert np.all(np.isfinite(scaler.transform(matrix)))


def test_fit_rejects_empty_matrix():
  with pytest.raises(ScalerError):
    scaling.fit_scaler(np.zeros((0, 2)), NAMES)


def test_transform_rejects_other_width():
  scaler = scaling.fit_scaler(tiny_matrix(), NAMES)

  with pytest.raises(ScalerError, match="2 features, got 3"):
    scaler.transform(np.zeros((1, 3)))


# Files.


def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  fitted = rng.lognormal(size=(200, 5))
  fitted[:, 2] = 7.0
  names = tuple(f"f{i}" for i in range(5))
  scaler = scaling.fit_scaler(fitted, names, floor=0.02, clip=4.0)
  path = tmp_path / "scaler.json"

  scaler.save(path)
  restored = scaling.Scaler.load(path)
  probe = rng.normal(scale=20.0, size=(50, 5))
  probe[3, 1] = np.nan

  assert np.array_equal(restored.transform(probe), scaler.transform(probe))
  assert restored.to_dict() == scaler.to_dict()
  assert json.loads(path.read_text())["feature_names"] == list(names)
  assert [p.name for p in tmp_path.iterdir()] == ["scaler.json"]


def valid_statistics() -> dict:
  return {
      "feature_names": ["a", "b"],
      "median": [1.0, 2.0],
      "scale": [0.5, 1.0],
      "floor": 0.01,
      "clip": 10.0,
      "fitted_rows": 4,
  }


def corrupt_contents() -> dict[str, bytes]:
  truncated = json.dumps(valid_statistics()).encode()[:40]
  missing_key = dict(valid_statistics())
  del missing_key["scale"]
  cases = {
      "truncated": truncated,
      "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
      "empty": b"",
      "list": b"[1, 2]",
      "missing key": json.dumps(missing_key).encode(),
      "lengths differ": json.dumps({**valid_statistics(), "median": [1.0]}).encode(),
      "scalar median": json.dumps({**valid_statistics(), "median": 1.0, "scale": 1.0, "feature_names": ["a"]}).encode(),
      "text median": json.dumps({**valid_statistics(), "median": ["x", "y"]}).encode(),
      "zero scale": json.dumps({**valid_statistics(), "scale": [0.0, 1.0]}).encode(),
      "infinite median": b'{"feature_names": ["a"], "median": [Infinity], "scale": [1.0], '
                         b'"floor": 0.01, "clip": 10.0, "fitted_rows": 1}',
  }
  return cases


@pytest.mark.parametrize("case", sorted(corrupt_contents()))
def test_corrupt_file_rejected(case, tmp_path):
  path = tmp_path / "scaler.json"
  path.write_bytes(corrupt_contents()[case])

  with pytest.raises(ScalerError):
    scaling.Scaler.load(path)


def test_absent_file_rejected(tmp_path):
  with pytest.raises(ScalerError, match="cannot read"):
    scaling.Scaler.load(tmp_path / "absent.json")


# Feature matrix.


def test_signed_log_values():
  values = np.array([0.0, 1.0, -1.0, np.e - 1.0, -(np.e ** 2 - 1.0), np.nan])

  result = features.signed_log(values)

  assert result[:5] == pytest.approx([0.0, np.log(2.0), -np.log(2.0), 1.0, -2.0])
  assert np.isnan(result[5])


def test_protocol_one_hot_slots():
  layout = layouts.WUSTL_IIOT_2021
  protocol = np.array([6, 17, 1, 2054, 2, -1])

  one_hot = features.protocol_one_hot(protocol, layout)

  assert one_hot.shape == (6, len(layout.protocols) + 1)
  assert np.argmax(one_hot, axis=1).tolist() == [0, 1, 2, 3, 4, 4]
  assert one_hot.sum(axis=1).tolist() == [1.0] * 6


def test_feature_matrix_real_source(real_source_csv, real_source_rows):
  domain = domain_lib.load_domain(real_source_csv, WindowSpec())
  layout = domain.layout
  raw = real_source_rows.select(layout.features).cast(pl.Float64).to_numpy()

  assert domain.numeric.shape == (real_source_rows.height, len(layout.features))
  assert domain.one_hot.shape[1] + domain.numeric.shape[1] == layout.n_features
  assert np.allclose(domain.numeric, np.sign(raw) * np.log1p(np.abs(raw)), rtol=1e-6)
  assert domain.one_hot.sum() == real_source_rows.height


# Scaled windows of real files.


def test_constant_real_feature_gets_floor(real_target_csv):
  domain = domain_lib.load_domain(real_target_csv, WindowSpec())
  frame = domain.loaded.frame.select(domain.layout.features)
  constant = [c for c in frame.columns if frame[c].n_unique() == 1]
  assert constant

  scaler = scaling.fit_scaler(domain.numeric, domain.layout.features)

  for column in constant:
    assert scaler.scale[domain.layout.features.index(column)] == scaler.floor, column


def test_real_scaled_windows_bounded(real_target_csv):
  spec = WindowSpec(seq_len=30, stride=30, min_len=10, tail="pad")
  domain = domain_lib.load_domain(real_target_csv, spec)
  scaler = scaling.fit_scaler(domain.numeric, domain.layout.features, clip=3.0)

  x = domain.scaled_windows(scaler)
  numeric_width = len(domain.layout.features)
  padding = domain.flow_index == PAD

  assert x.shape == (domain.n_windows, 30, domain.layout.n_features)
  assert padding.any()
  assert np.all(np.abs(x[..., :numeric_width]) <= 3.0)
  assert np.all(x[padding] == 0.0)
  assert np.all(x[~padding][:, numeric_width:].sum(axis=1) == 1.0)


def test_repaired_values_imputed_median(real_target_rows, tmp_path):
  # Values inside full windows become inf, NaN or text. After scaling, each one
  # sits exactly at the median (0), and no NaN is left.
  plain = tmp_path / "plain.csv"
  real_target_rows.write_csv(plain)
  domain = domain_lib.load_domain(plain, WindowSpec())
  damaged_flows = domain.flow_index[:: max(1, domain.n_windows // 6), 3][:6]
  damages = ["inf", "-inf", "NaN", "abc", "", "Infinity"]
  column = "Flow Bytes/s"
  values = real_target_rows[column].to_list()
  for flow, damage in zip(damaged_flows, damages):
    values[flow] = damage
  damaged = tmp_path / "damaged.csv"
  real_target_rows.with_columns(pl.Series(column, values, pl.String)).write_csv(damaged)

  domain = domain_lib.load_domain(damaged, WindowSpec())
  scaler = scaling.fit_scaler(domain.numeric, domain.layout.features)
  x = domain.scaled_windows(scaler)
  feature = domain.layout.features.index(column)
  repaired = np.isin(domain.flow_index, damaged_flows)

  assert sum(domain.loaded.record.values_repaired[column].values()) == len(damages)
  assert int(repaired.sum()) == len(damages)
  assert not np.isnan(x).any()
  assert np.all(x[repaired][:, feature] == 0.0)
  assert np.isfinite(scaler.median[feature])
