"""Losses and reconstruction scores of CTAL-VAE, as pure functions of arrays.

Windows are `x` [N, T, F] with `mask` [N, T] (1 = real step, 0 = padding). Every
reconstruction term leaves the padded steps out.
"""

import jax
import jax.numpy as jnp

# Keeps cosine similarity and its gradient finite when a vector is all zeros.
COSINE_EPS = 1e-8


def step_feature_errors(x: jax.Array, x_hat: jax.Array, mask: jax.Array) -> jax.Array:
  """Return the squared errors [N, T, F], zero on padded steps."""
  # Masking the difference before squaring keeps gradients finite when padded steps
  # of `x` hold NaN or inf.
  difference = jnp.where(mask[..., None] > 0, x_hat - x, 0.0)
  return jnp.square(difference)


def window_scores(x: jax.Array, x_hat: jax.Array, mask: jax.Array) -> jax.Array:
  """Return each window's reconstruction MSE [N] over its valid steps and all features."""
  errors = step_feature_errors(x, x_hat, mask)
  counts = jnp.maximum(jnp.sum(mask > 0, axis=1), 1) * x.shape[-1]
  return jnp.sum(errors, axis=(1, 2)) / counts


def reconstruction_loss(x: jax.Array, x_hat: jax.Array, mask: jax.Array) -> jax.Array:
  """Return the MSE pooled over every valid (window, step, feature) element."""
  errors = step_feature_errors(x, x_hat, mask)
  count = jnp.maximum(jnp.sum(mask > 0), 1) * x.shape[-1]
  return jnp.sum(errors) / count


def kl_loss(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """Return KL(N(mu, exp(logvar)) || N(0, I)), summed over latents, averaged over windows."""
  per_window = jnp.sum(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar), axis=-1)
  return -0.5 * jnp.mean(per_window)


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
  """Return the cosine similarity of the rows of `a` and `b` [N, D] -> [N]."""
  norm_a = jnp.sqrt(jnp.sum(jnp.square(a), axis=-1) + COSINE_EPS)
  norm_b = jnp.sqrt(jnp.sum(jnp.square(b), axis=-1) + COSINE_EPS)
  return jnp.sum(a * b, axis=-1) / (norm_a * norm_b)


def contrastive_loss(
    mu_a: jax.Array, mu_p: jax.Array, mu_n: jax.Array, margin: float | jax.Array
) -> jax.Array:
  """Return the triplet loss on cosine distance d = 1 - cos over rows [N, latent].

  mean[d(a, p)^2 + max(0, margin - d(a, n))^2]: positives are pulled to distance 0,
  and negatives pushed out to at least `margin`.
  """
  positive_distance = 1.0 - cosine_similarity(mu_a, mu_p)
  negative_distance = 1.0 - cosine_similarity(mu_a, mu_n)
  positive_term = jnp.square(positive_distance)
  negative_term = jnp.square(jnp.maximum(0.0, margin - negative_distance))
  return jnp.mean(positive_term + negative_term)


def kl_weight(epoch: int | jax.Array, warmup_epochs: int) -> jax.Array:
  """Return the KL warm-up factor: epoch / warmup_epochs, capped at 1.

  Epoch 0 gets 0 and epochs from `warmup_epochs` on get 1. With `warmup_epochs` of
  0 the factor is 1 from the start.
  """
  if warmup_epochs <= 0:
    return jnp.float32(1.0)
  return jnp.minimum(1.0, jnp.asarray(epoch, jnp.float32) / warmup_epochs)
