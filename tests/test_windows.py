"""Windowing tests: invariants on small arrays, and window counts on the real files."""

import collections

import numpy as np
import polars as pl
import pytest

from ctal_jax.data import domain as domain_lib
from ctal_jax.data import windows
from ctal_jax.data.windows import PAD, WindowSpec

# Windows per destination in the real source file, as tabulated with the file
# (30-flow windows, stride 30, tail dropped, attack when any flow is).
SOURCE_WINDOWS_BY_RECEIVER = {
    "192.168.10.255": (22, 1),
    "192.168.1.104": (6, 7),
    "192.168.1.102": (10, 1),
    "192.168.1.101": (11, 0),
    "192.168.1.105": (10, 1),
    "192.168.1.103": (11, 0),
    "192.168.1.106": (11, 0),
    "192.168.10.222": (0, 6),
    "192.168.10.221": (0, 2),
}


@pytest.fixture(scope="module")
def source_domain(real_source_csv):
  return domain_lib.load_domain(real_source_csv, WindowSpec())


@pytest.fixture(scope="module")
def target_domain(real_target_csv):
  return domain_lib.load_domain(real_target_csv, WindowSpec())


def random_flows(seed: int, n: int = 400, receivers: int = 7, distinct_times: int = 50):
  rng = np.random.default_rng(seed)
  codes = rng.integers(0, receivers, n)
  times = rng.integers(0, distinct_times, n).astype(np.int64)
  return codes, times


def real_steps(flow_index: np.ndarray, window: int) -> np.ndarray:
  row = flow_index[window]
  return row[row != PAD]


# Invariants on small arrays.


@pytest.mark.parametrize("spec", [
    WindowSpec(seq_len=10, stride=10, min_len=10),
    WindowSpec(seq_len=10, stride=3, min_len=10),
    WindowSpec(seq_len=10, stride=10, min_len=4, tail="pad"),
])
def test_windows_stay_in_one_receiver(spec):
  codes, times = random_flows(seed=1)

  flow_index = windows.window_flows(codes, times, spec)

  assert flow_index.shape[0] > 0
  for window in range(flow_index.shape[0]):
    steps = real_steps(flow_index, window)
    assert np.unique(codes[steps]).size == 1, window


@pytest.mark.parametrize("spec", [
    WindowSpec(seq_len=10, stride=10, min_len=10),
    WindowSpec(seq_len=10, stride=4, min_len=6, tail="pad"),
])
def test_windows_in_time_order(spec):
  codes, times = random_flows(seed=2)

  flow_index = windows.window_flows(codes, times, spec)

  for window in range(flow_index.shape[0]):
    window_times = times[real_steps(flow_index, window)]
    assert np.all(np.diff(window_times) >= 0), window


def test_time_ties_keep_input_order():
  codes = np.zeros(25, np.int64)
  times = np.array([5] * 10 + [1] * 10 + [5] * 5, np.int64)

  flow_index = windows.window_flows(codes, times, WindowSpec(seq_len=5, stride=5, min_len=5))

  expected = np.concatenate([np.arange(10, 20), np.arange(0, 10), np.arange(20, 25)])
  assert np.array_equal(flow_index.ravel(), expected)


def test_every_flow_once_without_overlap():
  codes, times = random_flows(seed=3)
  spec = WindowSpec(seq_len=10, stride=10, min_len=10)

  flow_index = windows.window_flows(codes, times, spec)

  group_sizes = np.bincount(codes)
  assert flow_index.shape[0] == int((group_sizes // 10).sum())
  assert np.unique(flow_index).size == flow_index.size


def test_tail_dropped():
  codes = np.zeros(35, np.int64)
  times = np.arange(35, dtype=np.int64)

  flow_index = windows.window_flows(codes, times, WindowSpec(seq_len=10, stride=10, min_len=10))

  assert flow_index.shape == (3, 10)
  assert np.array_equal(flow_index.ravel(), np.arange(30))


def test_stride_overlaps_windows():
  n, seq_len, stride = 50, 10, 4
  codes = np.zeros(n, np.int64)
  # Reverse time order, so that sorted position and flow index differ.
  times = np.arange(n, 0, -1, dtype=np.int64)
  order = np.argsort(times, kind="stable")

  flow_index = windows.window_flows(codes, times, WindowSpec(seq_len=seq_len, stride=stride, min_len=seq_len))

  assert flow_index.shape[0] == (n - seq_len) // stride + 1
  for window in range(flow_index.shape[0]):
    start = window * stride
    assert np.array_equal(flow_index[window], order[start:start + seq_len]), window
  for window in range(1, flow_index.shape[0]):
    shared = np.intersect1d(flow_index[window - 1], flow_index[window])
    assert shared.size == seq_len - stride, window


def test_pad_mode_masks():
  # Receiver 0 has 23 flows, receiver 1 has 7, receiver 2 has 3 (below min_len).
  codes = np.array([0] * 23 + [1] * 7 + [2] * 3, np.int64)
  times = np.arange(codes.size, dtype=np.int64)
  spec = WindowSpec(seq_len=10, stride=10, min_len=5, tail="pad")

  flow_index = windows.window_flows(codes, times, spec)
  mask = windows.step_mask(flow_index)

  assert flow_index.shape == (3, 10)
  assert mask.sum(axis=1).tolist() == [10, 10, 7]
  assert not np.isin(np.arange(30, 33), flow_index).any()
  assert np.array_equal(mask, (flow_index != PAD).astype(np.float32))
  for window in range(flow_index.shape[0]):
    assert np.all(np.diff(mask[window]) <= 0), window
  assert np.array_equal(flow_index[2], np.concatenate([np.arange(23, 30), [PAD] * 3]))


def test_pad_mode_drops_short_tail():
  codes = np.zeros(23, np.int64)
  times = np.arange(23, dtype=np.int64)
  spec = WindowSpec(seq_len=10, stride=10, min_len=4, tail="pad")

  flow_index = windows.window_flows(codes, times, spec)

  assert flow_index.shape[0] == 2
  assert not np.isin(np.arange(20, 23), flow_index).any()


def test_no_flows_no_windows():
  empty = np.zeros(0, np.int64)

  flow_index = windows.window_flows(empty, empty, WindowSpec(seq_len=8, stride=8, min_len=8))

  assert flow_index.shape == (0, 8)


def test_label_rule_any_and_fraction():
  seq_len = 10
  attack_counts = [0, 1, 4, 5, 10]
  labels = np.concatenate([
      np.array([1] * count + [0] * (seq_len - count)) for count in attack_counts
  ])
  flow_index = np.arange(labels.size).reshape(len(attack_counts), seq_len)

  by_any = windows.window_labels(flow_index, labels, "any")
  by_half = windows.window_labels(flow_index, labels, 0.5)
  by_all = windows.window_labels(flow_index, labels, 1.0)

  assert by_any.tolist() == [0, 1, 1, 1, 1]
  assert by_half.tolist() == [0, 0, 0, 1, 1]
  assert by_all.tolist() == [0, 0, 0, 0, 1]
  assert by_any.dtype == np.int8


def test_label_fraction_ignores_padding():
  labels = np.array([1, 1, 1, 0, 0], np.int8)
  flow_index = np.array([[0, 1, 2, 3, 4, PAD, PAD, PAD, PAD, PAD]])

  assert windows.window_labels(flow_index, labels, 0.6).tolist() == [1]
  assert windows.window_labels(flow_index, labels, 0.7).tolist() == [0]


def test_padding_is_never_attack():
  labels = np.array([0, 0, 0, 1], np.int8)
  flow_index = np.array([[0, 1, 2, PAD]])

  assert windows.window_labels(flow_index, labels, "any").tolist() == [0]


def test_window_categories_match_flows():
  rng = np.random.default_rng(4)
  category_codes = rng.integers(-1, 3, 60)
  flow_index = rng.permutation(60).reshape(6, 10)
  flow_index[5, 7:] = PAD

  present = windows.window_categories(flow_index, category_codes, 3)

  assert present.shape == (6, 3)
  for window in range(6):
    codes = category_codes[real_steps(flow_index, window)]
    expected = {int(code) for code in codes if code >= 0}
    assert set(np.flatnonzero(present[window]).tolist()) == expected, window


def test_gather_fills_padding():
  values = np.arange(8, dtype=np.float32).reshape(4, 2)
  flow_index = np.array([[2, 0, PAD]])

  gathered = windows.gather(flow_index, values, fill=-5.0)

  assert gathered.shape == (1, 3, 2)
  assert gathered[0, :2].tolist() == [[4.0, 5.0], [0.0, 1.0]]
  assert gathered[0, 2].tolist() == [-5.0, -5.0]


@pytest.mark.parametrize("arguments", [
    dict(seq_len=0),
    dict(stride=0),
    dict(tail="wrap"),
    dict(min_len=0, tail="pad"),
    dict(seq_len=10, min_len=11, tail="pad"),
    dict(seq_len=10, stride=10, min_len=5),
    dict(label_rule="most"),
    dict(label_rule=0.0),
    dict(label_rule=1.5),
])
def test_invalid_spec_rejected(arguments):
  with pytest.raises(ValueError):
    WindowSpec(**arguments)


# Real files.


def test_real_source_window_counts(source_domain):
  assert int((source_domain.label == 0).sum()) == 81
  assert int((source_domain.label == 1).sum()) == 18


def test_real_target_window_counts(target_domain):
  assert int((target_domain.label == 0).sum()) == 153
  assert int((target_domain.label == 1).sum()) == 99


def test_real_source_windows_by_receiver(source_domain):
  counts = collections.defaultdict(lambda: [0, 0])
  for receiver, label in zip(source_domain.receiver, source_domain.label):
    counts[receiver][int(label)] += 1

  assert {k: tuple(v) for k, v in counts.items()} == SOURCE_WINDOWS_BY_RECEIVER


def test_real_windows_match_first_flow(source_domain, target_domain):
  for domain in (source_domain, target_domain):
    frame = domain.loaded.frame
    receivers = frame["receiver"].to_numpy()
    times = frame["time"].dt.epoch("us").to_numpy()
    first = domain.flow_index[:, 0]

    assert np.array_equal(domain.receiver, receivers[first])
    assert np.array_equal(domain.start_time, times[first])
    for window in range(domain.n_windows):
      steps = real_steps(domain.flow_index, window)
      assert set(receivers[steps]) == {domain.receiver[window]}, window
      assert np.all(np.diff(times[steps]) >= 0), window


def test_real_time_ties_in_file_order(source_domain):
  frame = source_domain.loaded.frame
  times = frame["time"].dt.epoch("us").to_numpy()
  rows = frame["row"].to_numpy()
  steps = source_domain.flow_index
  tied = times[steps[:, 1:]] == times[steps[:, :-1]]

  assert tied.any()
  assert np.all(rows[steps[:, 1:]][tied] > rows[steps[:, :-1]][tied])


def test_real_window_categories_match_flows(source_domain, target_domain):
  for domain in (source_domain, target_domain):
    categories = domain.loaded.frame["category"].to_list()
    for window in range(domain.n_windows):
      from_flows = {categories[i] for i in real_steps(domain.flow_index, window)} - {None}
      present = domain.categories[window]
      named = {name for name, flag in zip(domain.category_names, present) if flag}
      assert named == from_flows, window
      assert domain.label[window] == int(bool(from_flows)), window


def test_real_category_window_counts(source_domain):
  # Windows per attack kind in the real source file, summed over its table.
  expected = {"Backdoor": 2, "CommInj": 1, "DoS": 8, "Reconn": 10}

  counts = dict(zip(source_domain.category_names, source_domain.categories.sum(axis=0).tolist()))

  assert counts == expected


def test_real_pad_mode(real_source_csv):
  spec = WindowSpec(seq_len=30, stride=30, min_len=10, tail="pad")

  domain = domain_lib.load_domain(real_source_csv, spec)
  lengths = domain.mask.sum(axis=1)
  receiver_sizes = np.bincount(domain.receiver_codes)

  assert lengths.min() >= 10
  assert np.all(np.diff(domain.mask, axis=1) <= 0)
  assert np.array_equal(domain.mask, (domain.flow_index != PAD).astype(np.float32))
  expected_windows = sum(
      size // 30 + (1 if size % 30 >= 10 else 0) for size in receiver_sizes
  )
  assert domain.n_windows == expected_windows


def test_real_stride_overlap(real_source_csv, source_domain):
  spec = WindowSpec(seq_len=30, stride=10, min_len=30)

  domain = domain_lib.load_domain(real_source_csv, spec)
  receiver_sizes = np.bincount(domain.receiver_codes)
  expected_windows = sum((size - 30) // 10 + 1 for size in receiver_sizes if size >= 30)

  assert domain.n_windows == expected_windows
  for window in range(1, domain.n_windows):
    if domain.receiver[window] == domain.receiver[window - 1]:
      assert np.array_equal(domain.flow_index[window, :20], domain.flow_index[window - 1, 10:]), window


def test_receivers_verbatim_windowed(real_source_rows, tmp_path):
  # Three receivers that are not IPv4 addresses, 30 flows each.
  odd_receivers = ["fe80::c884:9a0d:b395:87ca", "01:80:c2:00:00:0e", "0"]
  receivers = real_source_rows["DstAddr"].to_list()
  for index, receiver in enumerate(odd_receivers):
    receivers[index * 30:(index + 1) * 30] = [receiver] * 30
  path = tmp_path / "receivers.csv"
  real_source_rows.with_columns(pl.Series("DstAddr", receivers)).write_csv(path)

  domain = domain_lib.load_domain(path, WindowSpec())

  for receiver in odd_receivers:
    assert list(domain.receiver).count(receiver) == 1, receiver


def test_unsorted_rows_same_windows(real_source_rows, source_domain, tmp_path):
  # Shuffle the file, but keep rows of one receiver and one second in their
  # original relative order: only then are the windows fully determined.
  rng = np.random.default_rng(5)
  shuffled = (
      real_source_rows
      .with_columns(position=pl.Series(rng.permutation(real_source_rows.height)))
      .with_columns(pl.col("position").sort().over(["DstAddr", "StartTime"]))
      .sort("position")
      .drop("position")
  )
  path = tmp_path / "shuffled.csv"
  shuffled.write_csv(path)
  assert not shuffled["StartTime"].equals(real_source_rows["StartTime"])

  domain = domain_lib.load_domain(path, WindowSpec())

  assert domain.n_windows == source_domain.n_windows
  assert np.array_equal(domain.receiver, source_domain.receiver)
  assert np.array_equal(domain.start_time, source_domain.start_time)
  assert np.array_equal(domain.label, source_domain.label)
  original = windows.gather(source_domain.flow_index, source_domain.numeric)
  reordered = windows.gather(domain.flow_index, domain.numeric)
  assert np.array_equal(original, reordered, equal_nan=True)


def test_rerelease_window_counts(rerelease_target_dir, target_domain):
  domain = domain_lib.load_domain(rerelease_target_dir, WindowSpec())

  assert int((domain.label == 0).sum()) == int((target_domain.label == 0).sum())
  assert int((domain.label == 1).sum()) == int((target_domain.label == 1).sum())


def test_minute_copy_window_counts(minute_source_csv, source_domain):
  domain = domain_lib.load_domain(minute_source_csv, WindowSpec())

  # Window counts depend only on flows per receiver, which the time resolution keeps.
  assert domain.n_windows == source_domain.n_windows
  assert np.array_equal(domain.receiver, source_domain.receiver)
