"""Positives and negatives for the triplet loss, drawn afresh from a PRNG key.

All functions take a batch of anchor windows `anchor` [N, T, F] (standardised) with
`mask` [N, T], are pure and jit-compatible, and keep padded steps as they were.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Anomalies that `synthetic_negative` can inject, one chosen at random per window.
ANOMALY_KINDS = ("burst", "shuffle", "repeat", "splice")


def positive(
    key: jax.Array, anchor: jax.Array, sigma: float | jax.Array, mask: jax.Array | None = None
) -> jax.Array:
  """Return anchor + N(0, sigma^2) noise. With `mask`, padded steps get no noise."""
  noisy = anchor + sigma * jax.random.normal(key, anchor.shape, anchor.dtype)
  if mask is None:
    return noisy
  return jnp.where(mask[..., None] > 0, noisy, anchor)


def _uniform_index(uniform: jax.Array, count: jax.Array) -> jax.Array:
  """Map uniforms in [0, 1) to integers in [0, count), where `count` >= 1 may be traced."""
  index = jnp.floor(uniform * count).astype(jnp.int32)
  return jnp.minimum(index, count - 1)


def _block_length(uniform, fraction_range, length):
  """Map uniforms to block lengths of `fraction_range` of `length`, clipped to [1, length]."""
  low, high = fraction_range
  fraction = low + (high - low) * uniform
  return jnp.clip(jnp.round(fraction * length).astype(jnp.int32), 1, length)


def _take_steps(windows: jax.Array, steps: jax.Array) -> jax.Array:
  """Gather steps [N, T] from windows [N, T, F] along the time axis."""
  return jnp.take_along_axis(windows, steps[..., None], axis=1)


class _Draws(NamedTuple):
  """Random numbers of one batch. Each window uses one anomaly kind, so the kinds
  share them."""

  scalars: jax.Array  # [N, 6] uniforms
  steps: jax.Array  # [N, T] uniforms
  features: jax.Array  # [N, F] uniforms
  cells: jax.Array  # [N, T, F] uniforms


def _burst(x, lengths, draws, scale, step_rate, feature_rate):
  """Add +-scale to random cells: random valid steps crossed with random features."""
  _, steps, features = x.shape
  time = jnp.arange(steps)

  # At least one step and one feature are hit, so the window always changes.
  forced_step = _uniform_index(draws.scalars[:, 0], lengths)
  forced_feature = _uniform_index(draws.scalars[:, 1], features)
  step_hit = (draws.steps < step_rate) | (time == forced_step[:, None])
  step_hit &= time < lengths[:, None]
  feature_hit = (draws.features < feature_rate) | (jnp.arange(features) == forced_feature[:, None])

  sign = jnp.where(draws.cells < 0.5, 1.0, -1.0)
  cells = step_hit[:, :, None] & feature_hit[:, None, :]
  return x + jnp.where(cells, scale * sign, 0.0)


def _shuffle(x, lengths, draws):
  """Permute the valid steps at random; padded steps keep their places at the end."""
  time = jnp.arange(x.shape[1])
  sort_keys = jnp.where(time < lengths[:, None], draws.steps, 2.0 + time)
  return _take_steps(x, jnp.argsort(sort_keys, axis=1))


def _repeat(x, lengths, draws, fraction_range):
  """Overwrite a block of valid steps with copies of the block's first step."""
  block = _block_length(draws.scalars[:, 2], fraction_range, lengths)
  block = jnp.maximum(block, jnp.minimum(2, lengths))
  start = _uniform_index(draws.scalars[:, 3], lengths - block + 1)

  time = jnp.arange(x.shape[1])
  in_block = (time >= start[:, None]) & (time < (start + block)[:, None])
  return _take_steps(x, jnp.where(in_block, start[:, None], time))


def _splice(x, lengths, draws, donors, donor_lengths, fraction_range):
  """Overwrite a block of valid steps with a block of valid steps of `donors`."""
  shortest = jnp.maximum(jnp.minimum(lengths, donor_lengths), 1)
  block = _block_length(draws.scalars[:, 4], fraction_range, shortest)
  start = _uniform_index(draws.scalars[:, 5], lengths - block + 1)
  donor_start = _uniform_index(draws.steps[:, 0], jnp.maximum(donor_lengths - block + 1, 1))

  time = jnp.arange(x.shape[1])
  in_block = (time >= start[:, None]) & (time < (start + block)[:, None])
  source = jnp.clip(time - start[:, None] + donor_start[:, None], 0, x.shape[1] - 1)
  return jnp.where(in_block[..., None], _take_steps(donors, source), x)


def synthetic_negative(
    key: jax.Array,
    anchor: jax.Array,
    mask: jax.Array,
    pool: jax.Array,
    pool_mask: jax.Array,
    *,
    kinds: tuple[str, ...] = ANOMALY_KINDS,
    burst_scale: float = 3.0,
    burst_step_rate: float = 0.2,
    burst_feature_rate: float = 0.3,
    repeat_fraction: tuple[float, float] = (0.2, 0.5),
    splice_fraction: tuple[float, float] = (0.2, 0.5),
) -> tuple[jax.Array, jax.Array]:
  """Inject one anomaly, chosen uniformly from `kinds`, into each anchor window.

  Kinds, each acting on the valid steps only:
  - "burst": adds +-`burst_scale` (in standardised units) to cells where random steps
    (each with probability `burst_step_rate`) cross random features (each with
    probability `burst_feature_rate`). At least one cell is hit.
  - "shuffle": permutes the order of the valid steps.
  - "repeat": overwrites a block of at least two steps, `repeat_fraction` of the
    window long, with copies of the block's first step.
  - "splice": overwrites a block, `splice_fraction` of the window long, with a block
    of a random window of `pool` [P, T, F] (masks `pool_mask` [P, T]), the training
    set the anchors come from. The donor may be the anchor's own window.

  Shuffle, repeat and splice can leave a window unchanged when its steps are equal.
  Returns the negatives [N, T, F] and their mask, which is `mask`.
  """
  unknown = [kind for kind in kinds if kind not in ANOMALY_KINDS]
  if unknown or not kinds:
    raise ValueError(f"Invalid anomaly kinds {kinds!r}; expected a subset of {ANOMALY_KINDS}.")

  anchor, mask = jnp.asarray(anchor), jnp.asarray(mask)
  pool, pool_mask = jnp.asarray(pool), jnp.asarray(pool_mask)
  n, steps, features = anchor.shape
  lengths = jnp.sum(mask > 0, axis=1).astype(jnp.int32)

  # One draw for the whole batch, cut into pieces: every random call adds its own hash
  # computation to the compiled program.
  widths = (2, 6, steps, features, steps * features)
  uniforms = jnp.split(jax.random.uniform(key, (n, sum(widths))), np.cumsum(widths)[:-1], axis=1)
  choices, scalars, step_uniforms, feature_uniforms, cell_uniforms = uniforms
  kind_index = _uniform_index(choices[:, 0], len(kinds))
  donor_index = _uniform_index(choices[:, 1], pool.shape[0])
  draws = _Draws(
      scalars=scalars,
      steps=step_uniforms,
      features=feature_uniforms,
      cells=cell_uniforms.reshape(n, steps, features),
  )

  make = {
      "burst": lambda: _burst(
          anchor, lengths, draws, burst_scale, burst_step_rate, burst_feature_rate),
      "shuffle": lambda: _shuffle(anchor, lengths, draws),
      "repeat": lambda: _repeat(anchor, lengths, draws, repeat_fraction),
      "splice": lambda: _splice(
          anchor, lengths, draws, pool[donor_index],
          jnp.sum(pool_mask[donor_index] > 0, axis=1).astype(jnp.int32), splice_fraction),
  }

  # Every requested kind is computed for every window, then one is kept per window.
  negatives = anchor
  for index, kind in enumerate(kinds):
    chosen = (kind_index == index)[:, None, None]
    negatives = jnp.where(chosen, make[kind](), negatives)

  negatives = jnp.where(mask[..., None] > 0, negatives, anchor)
  return negatives, mask


def labeled_negative(
    key: jax.Array, anchor: jax.Array, other_pool: jax.Array, other_mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Draw one random window of the other class per anchor and return it with its mask.

  `other_pool` [P, T, F] contains windows of the other class (attacks), so any model
  trained with these negatives has read attack labels.
  """
  if other_pool.shape[1:] != anchor.shape[1:]:
    raise ValueError(
        f"Invalid other-class windows of shape {other_pool.shape[1:]}; expected the anchor "
        f"window shape {anchor.shape[1:]}.")
  index = jax.random.randint(key, (anchor.shape[0],), 0, other_pool.shape[0])
  return jnp.asarray(other_pool)[index], jnp.asarray(other_mask)[index]
