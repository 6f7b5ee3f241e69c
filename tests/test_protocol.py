"""Tests of the protocol: the source split, the target draws and the evaluation set."""

import numpy as np
import pytest

from ctal_jax import protocol


def random_labels(n_windows: int, attack_share: float, seed: int) -> np.ndarray:
  return (np.random.default_rng(seed).random(n_windows) < attack_share).astype(np.int8)


# Source split.


def test_split_source_benign_only():
  labels = random_labels(200, 0.3, seed=1)
  split = protocol.split_source(labels, 0.8, seed=0)
  benign = np.flatnonzero(labels == 0)

  assert np.all(labels[split.train] == 0)
  assert np.all(labels[split.held_out] == 0)
  assert np.array_equal(np.sort(np.concatenate([split.train, split.held_out])), benign)


def test_split_source_sizes_and_disjoint():
  labels = random_labels(200, 0.3, seed=2)
  n_benign = int((labels == 0).sum())
  split = protocol.split_source(labels, 0.8, seed=0)

  assert split.train.size == round(0.8 * n_benign)
  assert split.held_out.size == n_benign - split.train.size
  assert np.intersect1d(split.train, split.held_out).size == 0
  assert np.unique(split.train).size == split.train.size
  assert np.array_equal(split.train, np.sort(split.train))
  assert np.array_equal(split.held_out, np.sort(split.held_out))


def test_split_source_seeded():
  labels = random_labels(200, 0.3, seed=3)
  first = protocol.split_source(labels, 0.8, seed=7)
  again = protocol.split_source(labels, 0.8, seed=7)
  other = protocol.split_source(labels, 0.8, seed=8)

  assert np.array_equal(first.train, again.train)
  assert np.array_equal(first.held_out, again.held_out)
  assert not np.array_equal(first.train, other.train)


def test_split_source_ignores_attack_windows():
  # The split depends on which windows are benign, not on how many attacks lie between them.
  benign_ids = np.array([0, 2, 3, 5, 8, 9, 11, 12, 15, 17])
  labels = np.ones(18, np.int8)
  labels[benign_ids] = 0
  compact = protocol.split_source(np.zeros(benign_ids.size, np.int8), 0.8, seed=4)
  spread = protocol.split_source(labels, 0.8, seed=4)

  assert np.array_equal(spread.train, benign_ids[compact.train])
  assert np.array_equal(spread.held_out, benign_ids[compact.held_out])


@pytest.mark.parametrize("labels", [np.zeros(1, np.int8), np.array([0, 1, 1, 1], np.int8), np.ones(5, np.int8)])
def test_split_source_too_few_raises(labels):
  benign = int((labels == 0).sum())
  with pytest.raises(protocol.ProtocolError, match=f"Source has {benign} benign windows"):
    protocol.split_source(labels, 0.8, seed=0)


# Target draws.


def test_draw_target_benign_only():
  labels = random_labels(300, 0.4, seed=5)
  draws = protocol.draw_target(labels, draws=4, shots=5, calibration=10, seed=0)

  assert [draw.index for draw in draws] == [0, 1, 2, 3]
  for draw in draws:
    assert np.all(labels[draw.shots] == 0), draw.index
    assert np.all(labels[draw.calibration] == 0), draw.index


def test_draw_target_sizes_and_disjoint():
  labels = random_labels(300, 0.4, seed=6)
  draws = protocol.draw_target(labels, draws=4, shots=5, calibration=10, seed=0)

  for draw in draws:
    assert draw.shots.size == 5
    assert draw.calibration.size == 10
    assert np.unique(draw.shots).size == 5
    assert np.unique(draw.calibration).size == 10
    assert np.intersect1d(draw.shots, draw.calibration).size == 0
    assert np.array_equal(draw.shots, np.sort(draw.shots))
    assert np.array_equal(draw.calibration, np.sort(draw.calibration))


def test_draw_target_seeded_per_draw():
  labels = random_labels(300, 0.4, seed=7)
  three = protocol.draw_target(labels, draws=3, shots=5, calibration=10, seed=11)
  five = protocol.draw_target(labels, draws=5, shots=5, calibration=10, seed=11)
  other_seed = protocol.draw_target(labels, draws=3, shots=5, calibration=10, seed=12)

  # A draw depends on (seed, draw index) only, not on how many draws the run has.
  for small, large in zip(three, five):
    assert np.array_equal(small.shots, large.shots)
    assert np.array_equal(small.calibration, large.calibration)

  # Different draws and different seeds choose different windows.
  assert not np.array_equal(three[0].shots, three[1].shots)
  assert not np.array_equal(three[0].shots, other_seed[0].shots)


def test_draw_target_exact_minimum():
  # 2 draws x (2 shots + 3 calibration) = 10 windows, plus 10 benign windows left for evaluation.
  labels = np.concatenate([np.zeros(20, np.int8), np.ones(30, np.int8)])
  draws = protocol.draw_target(labels, draws=2, shots=2, calibration=3, seed=0)
  assert len(draws) == 2


def test_draw_target_short_raises_counts():
  labels = np.concatenate([np.zeros(19, np.int8), np.ones(30, np.int8)])
  with pytest.raises(protocol.ProtocolError) as raised:
    protocol.draw_target(labels, draws=2, shots=2, calibration=3, seed=0)

  message = str(raised.value)
  assert "Target has 19 benign windows" in message
  assert "2 draws x (2 shots + 3 calibration) = 10 windows" in message
  assert "need 20" in message


# Evaluation set.


def test_evaluation_excludes_every_draw():
  labels = random_labels(240, 0.4, seed=8)
  draws = protocol.draw_target(labels, draws=3, shots=5, calibration=10, seed=0)
  evaluation = protocol.evaluation_windows(labels.size, draws)

  used = np.unique(np.concatenate([np.concatenate([d.shots, d.calibration]) for d in draws]))
  assert np.array_equal(evaluation, np.setdiff1d(np.arange(labels.size), used))
  for draw in draws:
    assert np.intersect1d(evaluation, draw.shots).size == 0
    assert np.intersect1d(evaluation, draw.calibration).size == 0


def test_evaluation_keeps_every_attack():
  labels = random_labels(240, 0.4, seed=9)
  draws = protocol.draw_target(labels, draws=3, shots=5, calibration=10, seed=0)
  evaluation = protocol.evaluation_windows(labels.size, draws)

  assert np.array_equal(np.intersect1d(evaluation, np.flatnonzero(labels == 1)), np.flatnonzero(labels == 1))
  # The size check in draw_target leaves at least draws x (shots + calibration) benign windows.
  assert int((labels[evaluation] == 0).sum()) >= 3 * 15


def test_evaluation_excludes_labeled_negatives():
  labels = random_labels(240, 0.4, seed=10)
  draws = protocol.draw_target(labels, draws=2, shots=5, calibration=10, seed=0)
  negatives = protocol.draw_attack_windows(labels, draws=2, count=5, seed=0)
  evaluation = protocol.evaluation_windows(labels.size, draws, extra=list(negatives.values()))
  without = protocol.evaluation_windows(labels.size, draws)

  for window_ids in negatives.values():
    assert np.intersect1d(evaluation, window_ids).size == 0
  removed = np.unique(np.concatenate(list(negatives.values())))
  assert np.array_equal(evaluation, np.setdiff1d(without, removed))


def test_evaluation_without_draws_is_everything():
  assert np.array_equal(protocol.evaluation_windows(7, []), np.arange(7))


# Labeled negatives.


def test_draw_attack_windows_attacks_only():
  labels = random_labels(120, 0.5, seed=11)
  first = protocol.draw_attack_windows(labels, draws=3, count=5, seed=2)
  again = protocol.draw_attack_windows(labels, draws=3, count=5, seed=2)

  assert sorted(first) == [0, 1, 2]
  for index, window_ids in first.items():
    assert window_ids.size == 5
    assert np.unique(window_ids).size == 5
    assert np.all(labels[window_ids] == 1)
    assert np.array_equal(window_ids, again[index])


def test_draw_attack_windows_short_raises():
  labels = np.array([0, 0, 1, 1, 0], np.int8)
  with pytest.raises(protocol.ProtocolError, match="the target has 2"):
    protocol.draw_attack_windows(labels, draws=1, count=3, seed=0)


@pytest.mark.parametrize("labels, counts", [
    ([0, 0, 0], "3 benign and 0 attack"),
    ([1, 1], "0 benign and 2 attack"),
    ([], "0 benign and 0 attack"),
])
def test_evaluation_one_class_raises(labels, counts):
  with pytest.raises(protocol.ProtocolError, match=f"evaluation set has {counts} windows"):
    protocol.check_evaluation_labels(np.array(labels, np.int8))


def test_evaluation_both_classes_passes():
  assert protocol.check_evaluation_labels(np.array([0, 1, 0], np.int8)) is None
