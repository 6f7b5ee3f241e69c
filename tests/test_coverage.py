"""Coverage tests, and the check that shuffled labels change nothing label-free."""

import numpy as np
import polars as pl
import pytest

from ctal_jax.data import coverage as coverage_lib
from ctal_jax.data import domain as domain_lib
from ctal_jax.data import scaling
from ctal_jax.data.windows import PAD, WindowSpec


def test_coverage_by_hand():
  # Receiver 0: flows 0-3 (flow 1 attack); receiver 1: flows 4-5 (benign);
  # receiver 2: flow 6 (attack). One window contains flows 0, 2 and 3.
  receiver_codes = np.array([0, 0, 0, 0, 1, 1, 2])
  labels = np.array([0, 1, 0, 0, 0, 0, 1])
  flow_index = np.array([[0, 2, 3]])

  result = coverage_lib.coverage(flow_index, receiver_codes, labels)

  assert result["flows"] == {"total": 7, "in_windows": 3, "fraction": 3 / 7}
  assert result["benign_flows"] == {"total": 5, "in_windows": 3, "fraction": 3 / 5}
  assert result["attack_flows"] == {"total": 2, "in_windows": 0, "fraction": 0.0}
  assert result["receivers"] == {"total": 3, "in_windows": 1, "fraction": 1 / 3}
  assert result["benign_only_receivers"] == {"total": 1, "in_windows": 0, "fraction": 0.0}
  assert result["attacked_receivers"] == {"total": 2, "in_windows": 1, "fraction": 0.5}


def test_overlap_counts_flow_once():
  receiver_codes = np.zeros(6, np.int64)
  labels = np.array([0, 0, 1, 0, 0, 0])
  flow_index = np.array([[0, 1, 2, 3], [2, 3, 4, PAD]])

  result = coverage_lib.coverage(flow_index, receiver_codes, labels)

  assert result["flows"]["in_windows"] == 5
  assert result["attack_flows"]["in_windows"] == 1
  assert result["receivers"]["in_windows"] == 1


def test_no_windows_no_coverage():
  result = coverage_lib.coverage(np.zeros((0, 4), np.int64), np.array([0, 1]), np.array([0, 1]))

  assert result["flows"] == {"total": 2, "in_windows": 0, "fraction": 0.0}
  assert result["receivers"] == {"total": 2, "in_windows": 0, "fraction": 0.0}


def test_no_attacks_zero_fraction():
  result = coverage_lib.coverage(np.array([[0, 1]]), np.array([0, 0]), np.array([0, 0]))

  assert result["attack_flows"] == {"total": 0, "in_windows": 0, "fraction": 0.0}
  assert result["attacked_receivers"] == {"total": 0, "in_windows": 0, "fraction": 0.0}


@pytest.mark.parametrize("which", ["source", "target"])
def test_real_coverage_totals(which, real_source_csv, real_target_csv):
  path = real_source_csv if which == "source" else real_target_csv
  domain = domain_lib.load_domain(path, WindowSpec())
  frame = domain.loaded.frame
  sizes = frame["receiver"].value_counts()["count"].to_numpy()
  flows = domain.coverage["flows"]

  assert flows["total"] == frame.height
  assert flows["in_windows"] == domain.n_windows * 30
  assert flows["in_windows"] == np.unique(domain.flow_index).size
  assert domain.coverage["receivers"]["total"] == frame["receiver"].n_unique()
  assert domain.coverage["receivers"]["in_windows"] == int((sizes >= 30).sum())
  assert domain.coverage["attack_flows"]["total"] == int(frame["label"].sum())


# Shuffled labels: windows, scaled features, scaler and flow coverage read no label.


def shuffled_label_domain(rows: pl.DataFrame, columns: list[str], path) -> domain_lib.Domain:
  """Permute `columns` together across rows, write the file and load it."""
  permutation = np.random.default_rng(7).permutation(rows.height)
  shuffled = rows.with_columns([pl.Series(c, rows[c].to_numpy()[permutation]) for c in columns])
  assert not shuffled[columns[0]].equals(rows[columns[0]])
  shuffled.write_csv(path)
  return domain_lib.load_domain(path, WindowSpec())


@pytest.mark.parametrize("which", ["source", "target"])
def test_label_shuffle_changes_nothing(which, real_source_rows, real_target_rows, tmp_path):
  if which == "source":
    rows, label_columns = real_source_rows, ["Target", "Traffic"]
  else:
    rows, label_columns = real_target_rows, ["Label"]
  original_path = tmp_path / "original.csv"
  rows.write_csv(original_path)

  original = domain_lib.load_domain(original_path, WindowSpec())
  shuffled = shuffled_label_domain(rows, label_columns, tmp_path / "shuffled.csv")
  names = original.layout.features
  original_scaler = scaling.fit_scaler(original.numeric, names)
  shuffled_scaler = scaling.fit_scaler(shuffled.numeric, names)

  assert not np.array_equal(shuffled.loaded.frame["label"], original.loaded.frame["label"])
  assert np.array_equal(shuffled.flow_index, original.flow_index)
  assert shuffled_scaler.to_dict() == original_scaler.to_dict()
  assert np.array_equal(
      shuffled.scaled_windows(shuffled_scaler), original.scaled_windows(original_scaler)
  )
  assert shuffled.coverage["flows"] == original.coverage["flows"]
  assert shuffled.coverage["receivers"] == original.coverage["receivers"]
