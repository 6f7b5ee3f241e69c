"""The jitted training step, the per-epoch scan over steps, and batched scoring.

Training state is a plain dict `{"params", "opt_state"}`. Every function here is pure,
so `jax.vmap` over a leading seed axis of (state, base_key) trains several seeds in
one compiled program while the training data stays shared.

Randomness: a train step draws its batch (when not given one), its triplets and its
eps from `fold_in(base_key, step)`. An epoch function splits its `base_key` once into
an order key and a step key. Epoch e shuffles the windows with
`fold_in(order_key, e)`, and its steps get the step key. A resumed run therefore
repeats itself step for step.
"""

import functools
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ctal_jax.models.lstm_vae import LstmVae, init_params, sample_z
from ctal_jax.training import losses, triplets

NEGATIVE_MODES = ("synthetic", "labeled")


@flax.struct.dataclass
class Hyper:
  """Loss weights and batch settings of a training step.

  The float fields are traced, so changing them between calls (the KL warm-up every
  epoch) does not recompile. The other fields are static. Build it with `create`,
  which sets `contrastive` from `con`.
  """

  rec: jax.Array
  # Effective KL weight: the warm-up factor is already multiplied in.
  kl: jax.Array
  con: jax.Array
  margin: jax.Array
  # Standard deviation of the positive's noise, in standardised units.
  sigma: jax.Array
  batch_size: int = flax.struct.field(pytree_node=False, default=256)
  domain: str = flax.struct.field(pytree_node=False, default="source")
  # "synthetic" (label-free) or "labeled" (needs data["other_x"], data["other_mask"]).
  negatives: str = flax.struct.field(pytree_node=False, default="synthetic")
  # False skips positives, negatives and their encoder pass (the vae and ae baselines).
  contrastive: bool = flax.struct.field(pytree_node=False, default=True)

  @classmethod
  def create(
      cls,
      *,
      rec: float = 1.0,
      kl: float = 0.01,
      con: float = 0.1,
      margin: float = 0.5,
      sigma: float = 0.05,
      batch_size: int = 256,
      domain: str = "source",
      negatives: str = "synthetic",
  ) -> "Hyper":
    """Validate the settings and store the weights as float32 scalars."""
    if negatives not in NEGATIVE_MODES:
      raise ValueError(f"Invalid negatives mode {negatives!r}; expected one of {NEGATIVE_MODES}.")
    if batch_size < 1:
      raise ValueError(f"Invalid batch_size {batch_size}; expected at least 1.")
    scalar = functools.partial(jnp.asarray, dtype=jnp.float32)
    return cls(
        rec=scalar(rec), kl=scalar(kl), con=scalar(con), margin=scalar(margin),
        sigma=scalar(sigma), batch_size=batch_size, domain=domain, negatives=negatives,
        contrastive=float(con) != 0.0)


def _negatives(key, batch, hyper: Hyper):
  if hyper.negatives == "labeled":
    return triplets.labeled_negative(key, batch["x"], batch["other_x"], batch["other_mask"])
  return triplets.synthetic_negative(
      key, batch["x"], batch["mask"], batch["pool_x"], batch["pool_mask"])


def loss_fn(params, model: LstmVae, batch: dict, key: jax.Array, weights: Hyper):
  """Return the weighted CTAL-VAE loss and a dict of its terms.

  `batch` contains the anchors `x` [N, T, F] and `mask` [N, T]. Synthetic negatives
  also need the splice pool `pool_x`, `pool_mask` (windows of the same training set),
  and labeled negatives the other class `other_x`, `other_mask`. Positives and
  negatives are made here from `key`, and all three go through the encoder in one
  pass. Reconstruction and KL use the anchors only, because reconstructing a negative
  would teach the model its anomaly.
  """
  x, mask = batch["x"], batch["mask"]
  n, seq_len = x.shape[:2]
  eps_key, positive_key, negative_key = jax.random.split(key, 3)
  variables = {"params": params}

  # One encoder pass over anchors, positives and negatives.
  if weights.contrastive:
    x_positive = triplets.positive(positive_key, x, weights.sigma, mask)
    x_negative, mask_negative = _negatives(negative_key, batch, weights)
    x_all = jnp.concatenate([x, x_positive, x_negative])
    mask_all = jnp.concatenate([mask, mask, mask_negative])
  else:
    x_all, mask_all = x, mask
  mu_all, logvar_all = model.apply(
      variables, x_all, mask_all, weights.domain, method=LstmVae.encode)
  mu, logvar = mu_all[:n], logvar_all[:n]

  # Reconstruction of the anchors.
  eps = jax.random.normal(eps_key, mu.shape, mu.dtype)
  z = sample_z(mu, logvar, eps, model.variational)
  x_hat = model.apply(
      variables, z, seq_len, weights.domain, teacher=x, teacher_mask=mask,
      method=LstmVae.decode)

  rec = losses.reconstruction_loss(x, x_hat, mask)
  kl = losses.kl_loss(mu, logvar)
  if weights.contrastive:
    con = losses.contrastive_loss(mu, mu_all[n:2 * n], mu_all[2 * n:], weights.margin)
  else:
    con = jnp.zeros((), rec.dtype)

  loss = weights.rec * rec + weights.kl * kl + weights.con * con
  return loss, dict(loss=loss, rec=rec, kl=kl, con=con)


def sample_batch_indices(key: jax.Array, n_windows: int, batch_size: int) -> jax.Array:
  """Draw `batch_size` distinct window indices at random.

  With fewer windows than `batch_size`, returns every window index in random order.
  """
  return jax.random.permutation(key, n_windows)[:batch_size]


def _gather_batch(data: dict, indices: jax.Array) -> dict:
  batch = dict(x=data["x"][indices], mask=data["mask"][indices])
  # The splice pool is the whole training set the anchors come from.
  batch["pool_x"], batch["pool_mask"] = data["x"], data["mask"]
  if "other_x" in data:
    batch["other_x"], batch["other_mask"] = data["other_x"], data["other_mask"]
  return batch


def make_train_step(model: LstmVae, optimizer: optax.GradientTransformation) -> Callable:
  """Return `train_step(state, data, step, base_key, hyper, indices=None)`.

  `data` contains the training windows `x` [N, T, F] and `mask` [N, T], plus `other_x`
  and `other_mask` for labeled negatives. The step's randomness is
  `fold_in(base_key, step)`. Without `indices` the batch is `hyper.batch_size`
  distinct random windows. Returns the new state and scalar metrics: loss, rec, kl,
  con, and grad_norm, the global norm of the gradient of every parameter, frozen
  ones included.
  """

  def train_step(state, data, step, base_key, hyper: Hyper, indices=None):
    key = jax.random.fold_in(base_key, step)
    batch_key, loss_key = jax.random.split(key)
    if indices is None:
      indices = sample_batch_indices(batch_key, data["x"].shape[0], hyper.batch_size)
    batch = _gather_batch(data, indices)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(state["params"], model, batch, loss_key, hyper)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)

    metrics["grad_norm"] = optax.tree.norm(grads)
    return dict(params=params, opt_state=opt_state), metrics

  return train_step


def steps_per_epoch(n_windows: int, batch_size: int) -> int:
  """Return the number of steps in one epoch.

  Each epoch takes a fresh permutation of the windows and cuts it into full batches.
  The last partial batch is dropped, so up to batch_size - 1 windows sit out an epoch
  (different ones each epoch). With fewer windows than `batch_size`, each epoch is
  one step on all windows.
  """
  return max(1, n_windows // batch_size)


def make_epoch_fn(model: LstmVae, optimizer: optax.GradientTransformation) -> Callable:
  """Return `epoch_fn(state, data, epoch, base_key, hyper) -> (state, metrics)`.

  One call runs every step of one epoch with `lax.scan`, and `metrics` has a leading
  axis of steps. `epoch` may be traced, so one compiled program serves every epoch.
  """
  train_step = make_train_step(model, optimizer)

  def epoch_fn(state, data, epoch, base_key, hyper: Hyper):
    n_windows = data["x"].shape[0]
    batch_size = min(hyper.batch_size, n_windows)
    n_steps = steps_per_epoch(n_windows, batch_size)
    order_key, step_key = jax.random.split(base_key)

    order = jax.random.permutation(jax.random.fold_in(order_key, epoch), n_windows)
    batches = order[:n_steps * batch_size].reshape(n_steps, batch_size)
    first_step = epoch * n_steps

    def body(state, i):
      return train_step(state, data, first_step + i, step_key, hyper, indices=batches[i])

    return jax.lax.scan(body, state, jnp.arange(n_steps))

  return epoch_fn


# In axes of an epoch or chunk function (state, data, epoch, base_key, hyper) under a
# vmap over seeds: state and key per seed, everything else shared.
SEED_AXES = (0, None, None, 0, None)


def seeds_per_group(configured: int, seeds: int) -> int:
  """Return how many seeds one vmap covers: `configured`, or, for 0, a per-backend choice.

  On CPU, 0 means 2: one vmap over many seeds turns every matrix product into a large
  batched one, which XLA:CPU ran more slowly than a few small groups (see the
  benchmark doc). On accelerators, 0 means every seed in one vmap.
  """
  if configured < 0:
    raise ValueError(
        f"config.seeds_per_group={configured} is invalid; use 0 (2 seeds per vmap on CPU, all "
        "seeds on GPU and TPU) or a positive count.")
  if configured:
    return configured
  return 2 if jax.default_backend() == "cpu" else max(seeds, 1)


def vmap_seeds(fn: Callable, group_size: int) -> Callable:
  """Vmap `fn` over the seed axis in groups of up to `group_size` seeds.

  Each group is its own vmapped loop in one program, and the results are
  concatenated along the seed axis, so they equal one vmap over all seeds up to
  float rounding.
  """
  if group_size < 1:
    raise ValueError(f"Invalid seeds_per_group {group_size}; expected at least 1.")
  batched_fn = jax.vmap(fn, in_axes=SEED_AXES)

  def grouped_fn(states, data, epoch, base_keys, hyper: Hyper):
    n_seeds = base_keys.shape[0]
    if n_seeds <= group_size:
      return batched_fn(states, data, epoch, base_keys, hyper)
    outputs = []
    for start in range(0, n_seeds, group_size):
      group = slice(start, start + group_size)
      group_states = jax.tree.map(lambda leaf: leaf[group], states)
      outputs.append(batched_fn(group_states, data, epoch, base_keys[group], hyper))
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *outputs)

  return grouped_fn


def jit_epoch_fn(
    model: LstmVae,
    optimizer: optax.GradientTransformation,
    *,
    over_seeds: bool = False,
    group_size: int = 2,
) -> Callable:
  """Return the jitted `epoch_fn`, which donates the state it is given.

  With `over_seeds`, state and base_key have a leading seed axis while data, epoch
  and hyper are shared by every seed. The seeds are vmapped in groups of
  `group_size` (see `vmap_seeds`).
  """
  epoch_fn = make_epoch_fn(model, optimizer)
  if over_seeds:
    epoch_fn = vmap_seeds(epoch_fn, group_size)
  return jax.jit(epoch_fn, donate_argnums=(0,))


def init_state(
    key: jax.Array, model: LstmVae, optimizer: optax.GradientTransformation, seq_len: int
) -> dict[str, Any]:
  """Initialise fresh parameters and their optimizer state."""
  return state_from_params(init_params(key, model, seq_len), optimizer)


def init_states(
    keys: jax.Array, model: LstmVae, optimizer: optax.GradientTransformation, seq_len: int
) -> dict[str, Any]:
  """Initialise one state per key in `keys` [S], stacked along a leading seed axis.

  Seeds are initialised one by one with the single-seed program, which is compiled
  once and gives each seed exactly the state `init_state` gives it.
  """
  states = [init_state(key, model, optimizer, seq_len) for key in keys]
  return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *states)


def state_from_params(params, optimizer: optax.GradientTransformation) -> dict[str, Any]:
  """Return the training state of existing `params` with a fresh optimizer state."""
  return dict(params=params, opt_state=optimizer.init(params))


@functools.partial(jax.jit, static_argnames=("model", "domain", "with_errors"))
def _score_batch(params, model, x, mask, domain, with_errors):
  mu, _ = model.apply({"params": params}, x, mask, domain, method=LstmVae.encode)
  x_hat = model.apply({"params": params}, mu, x.shape[1], domain, method=LstmVae.decode)
  scores = losses.window_scores(x, x_hat, mask)
  if not with_errors:
    return scores, None
  return scores, losses.step_feature_errors(x, x_hat, mask)


def evaluate_scores(
    params,
    model: LstmVae,
    x: np.ndarray,
    mask: np.ndarray,
    domain: str,
    batch_size: int = 1024,
    with_errors: bool = False,
):
  """Return per-window reconstruction scores [N] with z = mu, as numpy.

  With `with_errors`, returns (scores, errors) where errors [N, T, F] are the squared
  step-feature errors, zero on padded steps. Windows go through in batches of
  `batch_size`. The last batch is padded to full size, so one compiled program serves
  every batch. Decoding never uses teacher forcing here, because a score must not see
  the true steps it reconstructs.
  """
  x = np.asarray(x, np.float32)
  mask = np.asarray(mask, np.float32)
  n = x.shape[0]
  batch_size = max(1, min(batch_size, n))
  scores, errors = [], []

  for start in range(0, n, batch_size):
    x_batch, mask_batch = x[start:start + batch_size], mask[start:start + batch_size]
    valid = x_batch.shape[0]
    if valid < batch_size:
      padding = batch_size - valid
      x_batch = np.pad(x_batch, ((0, padding), (0, 0), (0, 0)))
      mask_batch = np.pad(mask_batch, ((0, padding), (0, 0)))

    batch_scores, batch_errors = _score_batch(
        params, model, x_batch, mask_batch, domain, with_errors)
    scores.append(np.asarray(batch_scores)[:valid])
    if with_errors:
      errors.append(np.asarray(batch_errors)[:valid])

  scores = np.concatenate(scores) if scores else np.zeros((0,), np.float32)
  if not with_errors:
    return scores
  errors = np.concatenate(errors) if errors else np.zeros(x.shape, np.float32)
  return scores, errors
