"""Tests of positives and negatives for the triplet loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctal_jax.training import triplets

N, T, F = 16, 6, 4


# Jitted with the anomaly settings static: one compile per setting runs faster here
# than eager dispatch.
make_negative = jax.jit(
    triplets.synthetic_negative,
    static_argnames=("kinds", "burst_scale", "burst_step_rate", "burst_feature_rate",
                     "repeat_fraction", "splice_fraction"))


def anchors(key=0, n=N):
  return np.asarray(jax.random.normal(jax.random.key(key), (n, T, F)), np.float32)


def masks(n=N):
  """Alternate full windows and windows with their last two steps padded."""
  mask = np.ones((n, T), np.float32)
  mask[1::2, -2:] = 0.0
  return mask


def rows_of(windows):
  return {tuple(row) for row in np.asarray(windows).reshape(-1, F)}


def test_positive_noise_scale():
  anchor = np.zeros((2000, T, F), np.float32)
  noisy = np.asarray(triplets.positive(jax.random.key(1), anchor, 0.05))
  np.testing.assert_allclose(noisy.std(), 0.05, rtol=0.03)
  assert abs(noisy.mean()) < 0.005


def test_positive_keeps_padded_steps():
  anchor, mask = anchors(), masks()
  noisy = np.asarray(triplets.positive(jax.random.key(2), anchor, 0.1, mask))
  padded = mask == 0
  np.testing.assert_array_equal(noisy[padded], anchor[padded])
  assert np.all(noisy[~padded] != anchor[~padded])


@pytest.mark.parametrize("kinds", [("burst",), ("shuffle",), ("repeat",), ("splice",),
                                   triplets.ANOMALY_KINDS])
def test_synthetic_negatives_differ(kinds):
  anchor, mask = anchors(), masks()
  pool, pool_mask = anchors(key=3, n=8), masks(8)
  negative, negative_mask = make_negative(
      jax.random.key(4), anchor, mask, pool, pool_mask, kinds=kinds)
  negative = np.asarray(negative)

  assert negative.shape == anchor.shape
  np.testing.assert_array_equal(negative_mask, mask)
  changed = np.any(negative != anchor, axis=(1, 2))
  assert changed.all(), f"unchanged windows: {np.flatnonzero(~changed)}"
  padded = mask == 0
  np.testing.assert_array_equal(negative[padded], anchor[padded])


def test_synthetic_negative_deterministic():
  anchor, mask = anchors(), masks()
  first, _ = make_negative(jax.random.key(5), anchor, mask, anchor, mask)
  again, _ = make_negative(jax.random.key(5), anchor, mask, anchor, mask)
  other, _ = make_negative(jax.random.key(6), anchor, mask, anchor, mask)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_splice_takes_values_from_pool():
  anchor, mask = anchors(), masks()
  # Pool values are far from every anchor value, so each spliced step is recognisable.
  pool = 100.0 + anchors(key=8, n=8)
  pool_mask = masks(8)
  negative, _ = make_negative(
      jax.random.key(9), anchor, mask, pool, pool_mask, kinds=("splice",))
  negative = np.asarray(negative)

  valid_pool_rows = rows_of(pool[pool_mask > 0])
  changed_steps = np.any(negative != anchor, axis=2)
  assert changed_steps.any(axis=1).all()
  for window, step in zip(*np.nonzero(changed_steps)):
    assert tuple(negative[window, step]) in valid_pool_rows


def test_burst_adds_scale():
  anchor, mask = anchors(), masks()
  negative, _ = make_negative(
      jax.random.key(10), anchor, mask, anchor, mask, kinds=("burst",), burst_scale=2.5)
  difference = np.asarray(negative) - anchor
  hit = difference != 0
  np.testing.assert_allclose(np.abs(difference[hit]), 2.5, rtol=1e-5)


def test_shuffle_permutes_valid_steps():
  anchor, mask = anchors(), masks()
  negative, _ = make_negative(
      jax.random.key(11), anchor, mask, anchor, mask, kinds=("shuffle",))
  negative = np.asarray(negative)
  for window in range(N):
    valid = mask[window] > 0
    assert rows_of(negative[window][valid]) == rows_of(anchor[window][valid])


def test_repeat_copies_one_step():
  anchor, mask = anchors(), masks()
  negative, _ = make_negative(
      jax.random.key(12), anchor, mask, anchor, mask, kinds=("repeat",))
  negative = np.asarray(negative)
  for window in range(N):
    changed = np.flatnonzero(np.any(negative[window] != anchor[window], axis=1))
    start = changed[0] - 1
    np.testing.assert_array_equal(changed, np.arange(changed[0], changed[-1] + 1))
    for step in changed:
      np.testing.assert_array_equal(negative[window, step], anchor[window, start])


def test_invalid_kind_raises():
  anchor, mask = anchors(), masks()
  with pytest.raises(ValueError, match="Invalid anomaly kinds"):
    triplets.synthetic_negative(
        jax.random.key(13), anchor, mask, anchor, mask, kinds=("dropout",))


def test_labeled_negative_draws_other_windows():
  anchor = anchors()
  other = 50.0 + anchors(key=14, n=5)
  other_mask = masks(5)
  negative, negative_mask = triplets.labeled_negative(
      jax.random.key(15), anchor, other, other_mask)
  negative, negative_mask = np.asarray(negative), np.asarray(negative_mask)

  assert negative.shape == anchor.shape
  for window in range(N):
    matches = [j for j in range(5) if np.array_equal(negative[window], other[j])]
    assert len(matches) == 1
    np.testing.assert_array_equal(negative_mask[window], other_mask[matches[0]])


def test_labeled_negative_shape_mismatch_raises():
  with pytest.raises(ValueError, match="Invalid other-class windows"):
    triplets.labeled_negative(
        jax.random.key(16), anchors(), jnp.zeros((3, T + 1, F)), jnp.ones((3, T + 1)))
