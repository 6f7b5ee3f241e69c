"""Tests of the losses and scores against values computed by hand in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctal_jax.training import losses

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 2)).astype(np.float32)
X_HAT = RNG.normal(size=(2, 3, 2)).astype(np.float32)
MASK = np.array([[1, 1, 0], [1, 0, 0]], np.float32)


def test_step_feature_errors_zero_padding():
  errors = np.asarray(losses.step_feature_errors(X, X_HAT, MASK))
  expected = (X_HAT - X) ** 2
  expected[0, 2] = 0.0
  expected[1, 1:] = 0.0
  np.testing.assert_allclose(errors, expected, rtol=1e-6)


def test_window_scores_by_hand():
  squared = (X_HAT - X) ** 2
  first = squared[0, :2].sum() / (2 * 2)
  second = squared[1, :1].sum() / (1 * 2)
  scores = np.asarray(losses.window_scores(X, X_HAT, MASK))
  np.testing.assert_allclose(scores, [first, second], rtol=1e-6)


def test_reconstruction_loss_pools_valid_elements():
  squared = (X_HAT - X) ** 2
  expected = (squared[0, :2].sum() + squared[1, :1].sum()) / (3 * 2)
  loss = float(losses.reconstruction_loss(X, X_HAT, MASK))
  np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_reconstruction_loss_ignores_padded_values():
  changed = X_HAT.copy()
  changed[0, 2] = 1e6
  changed[1, 1:] = np.nan
  np.testing.assert_array_equal(
      losses.reconstruction_loss(X, changed, MASK), losses.reconstruction_loss(X, X_HAT, MASK))


def test_reconstruction_gradient_finite_with_nan_padding():
  x = X.copy()
  x[1, 1:] = np.nan
  grad = jax.grad(lambda x_hat: losses.reconstruction_loss(x, x_hat, MASK))(X_HAT)
  assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(grad[1, 1:], 0.0)


def test_kl_loss_by_hand():
  mu = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
  logvar = np.array([[0.1, -0.3], [0.0, 1.0]], np.float32)
  per_window = np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=1)
  expected = -0.5 * per_window.mean()
  np.testing.assert_allclose(float(losses.kl_loss(mu, logvar)), expected, rtol=1e-6)


def test_kl_loss_zero_at_prior():
  zeros = np.zeros((4, 3), np.float32)
  assert float(losses.kl_loss(zeros, zeros)) == 0.0


def test_kl_loss_non_negative():
  mu = RNG.normal(size=(64, 4)).astype(np.float32)
  logvar = RNG.normal(size=(64, 4)).astype(np.float32)
  assert float(losses.kl_loss(mu, logvar)) > 0.0


def unit(angle_degrees):
  angle = np.deg2rad(angle_degrees)
  return np.array([[np.cos(angle), np.sin(angle)]], np.float32)


def test_contrastive_zero_for_ideal_triplet():
  anchor = np.array([[1.0, 2.0, -0.5]], np.float32)
  loss = float(losses.contrastive_loss(anchor, anchor, -anchor, margin=0.5))
  assert abs(loss) < 1e-6


def test_contrastive_negative_term_zero_beyond_margin():
  # 1 - cos(90 degrees) = 1, beyond a margin of 0.5.
  loss = float(losses.contrastive_loss(unit(0), unit(0), unit(90), margin=0.5))
  assert abs(loss) < 1e-6


def test_contrastive_negative_term_inside_margin():
  distance = 1 - np.cos(np.deg2rad(30))
  expected = (0.5 - distance) ** 2
  loss = float(losses.contrastive_loss(unit(0), unit(0), unit(30), margin=0.5))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_contrastive_positive_term_by_hand():
  positive_distance = 1 - np.cos(np.deg2rad(60))
  loss = float(losses.contrastive_loss(unit(0), unit(60), unit(180), margin=0.5))
  np.testing.assert_allclose(loss, positive_distance**2, rtol=1e-5)


def test_contrastive_averages_over_triplets():
  anchors = np.concatenate([unit(0), unit(0)])
  positives = np.concatenate([unit(60), unit(0)])
  negatives = np.concatenate([unit(180), unit(30)])
  first = (1 - np.cos(np.deg2rad(60))) ** 2
  second = (0.5 - (1 - np.cos(np.deg2rad(30)))) ** 2
  loss = float(losses.contrastive_loss(anchors, positives, negatives, margin=0.5))
  np.testing.assert_allclose(loss, (first + second) / 2, rtol=1e-5)


def test_contrastive_ignores_scale():
  loss = losses.contrastive_loss(unit(0), 5 * unit(60), 0.1 * unit(30), margin=0.5)
  reference = losses.contrastive_loss(unit(0), unit(60), unit(30), margin=0.5)
  np.testing.assert_allclose(float(loss), float(reference), rtol=1e-5)


def test_contrastive_gradient_finite_at_zero():
  zeros = jnp.zeros((2, 3))
  grad = jax.grad(lambda a: losses.contrastive_loss(a, zeros, zeros, 0.5))(zeros)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("epoch, expected", [(0, 0.0), (5, 0.5), (10, 1.0), (25, 1.0)])
def test_kl_weight_ramp(epoch, expected):
  np.testing.assert_allclose(float(losses.kl_weight(epoch, 10)), expected, rtol=1e-6)


def test_kl_weight_without_warmup():
  assert float(losses.kl_weight(0, 0)) == 1.0


def test_kl_weight_traced_epoch():
  weight = jax.jit(lambda epoch: losses.kl_weight(epoch, 4))(jnp.int32(1))
  np.testing.assert_allclose(float(weight), 0.25, rtol=1e-6)
