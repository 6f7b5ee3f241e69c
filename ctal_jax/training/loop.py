"""Epoch loop shared by both phases: seeds under vmap, progress with ETA, NaN checks.

The loop runs `log_every` epochs per compiled call (a `lax.scan` over epochs inside
a `vmap` over seeds), then logs, checks every seed's loss, and hands the state to a
callback (the source phase saves a checkpoint there).
"""

import json
import time
from collections.abc import Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ctal_jax.models.lstm_vae import LstmVae
from ctal_jax.training import losses
from ctal_jax.training import steps


class TrainingError(RuntimeError):
  """Training diverged (a NaN or Inf loss); the message names model, seed, phase and step."""


def make_chunk_fn(model: LstmVae, optimizer: optax.GradientTransformation, warmup_epochs: int,
                  group_size: int = 2) -> Callable:
  """Return a jitted `chunk(states, data, epochs, keys, hyper) -> (states, metrics)`.

  `states` and `keys` have a leading seed axis, vmapped in groups of `group_size`
  seeds (see `steps.vmap_seeds`); `epochs` [K] are the epochs to run. The KL weight
  of epoch e is `hyper.kl * kl_weight(e, warmup_epochs)`. Metrics are per-epoch
  means, shaped [seeds, K].
  """
  epoch_fn = steps.make_epoch_fn(model, optimizer)

  def chunk(state, data, epochs, key, hyper: steps.Hyper):
    def body(state, epoch):
      weighted = hyper.replace(kl=hyper.kl * losses.kl_weight(epoch, warmup_epochs))
      state, metrics = epoch_fn(state, data, epoch, key, weighted)
      return state, jax.tree.map(jnp.mean, metrics)

    return jax.lax.scan(body, state, epochs)

  return jax.jit(steps.vmap_seeds(chunk, group_size), donate_argnums=(0,))


class MetricsWriter:
  """Append one JSON object per log step to `metrics.jsonl`; seeds are the first axis."""

  def __init__(self, path: str | None):
    self.path = path

  def write(self, record: dict) -> None:
    if self.path is None:
      return
    with open(self.path, "a") as handle:
      handle.write(json.dumps(record) + "\n")


def _format_eta(seconds: float) -> str:
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run_epochs(
    chunk_fn: Callable,
    states,
    data: dict,
    keys: jax.Array,
    hyper: steps.Hyper,
    *,
    first_epoch: int,
    epochs: int,
    log_every: int,
    steps_per_epoch: int,
    label: dict,
    writer: MetricsWriter,
    seed_ids: list[int],
    validate: Callable | None = None,
    on_chunk: Callable | None = None,
):
  """Train from `first_epoch` to `epochs`, `log_every` epochs per compiled call.

  Args:
    label: identifies the run in logs, errors and metrics (model, phase, draw).
    seed_ids: the seed index of each entry of the leading axis.
    validate: states -> dict of per-seed arrays, logged with the training metrics.
    on_chunk: called as on_chunk(states, epoch) after each chunk passed the NaN check.

  Raises:
    TrainingError: a seed's loss is NaN or Inf at a log step.
  """
  name = " ".join(f"{key}={value}" for key, value in label.items())
  start_time = time.perf_counter()
  epoch = first_epoch
  while epoch < epochs:
    count = min(log_every, epochs - epoch)
    epoch_ids = jnp.arange(epoch, epoch + count, dtype=jnp.int32)
    states, metrics = chunk_fn(states, data, epoch_ids, keys, hyper)
    metrics = jax.device_get(metrics)
    epoch += count

    # Divergence check: keep the last good checkpoint, stop with the culprit named.
    losses_now = np.asarray(metrics["loss"])[:, -1]
    for position, value in enumerate(losses_now):
      if not np.isfinite(value):
        raise TrainingError(
            f"Training diverged: {name} seed={seed_ids[position]} step={epoch * steps_per_epoch} "
            f"(epoch {epoch}) has loss {value}. The last good checkpoint is kept; lower the "
            "learning rate or check the input for extreme values."
        )

    record = dict(label, epoch=epoch, step=epoch * steps_per_epoch, seeds=seed_ids)
    record.update({key: np.asarray(value)[:, -1].tolist() for key, value in metrics.items()})
    if validate is not None:
      record.update({key: np.asarray(value).tolist() for key, value in validate(states).items()})
    writer.write(record)

    elapsed = time.perf_counter() - start_time
    done = epoch - first_epoch
    rate = done * steps_per_epoch / elapsed if elapsed > 0 else float("inf")
    eta = elapsed / done * (epochs - epoch) if done else 0.0
    val = f", val_rec {np.mean(record['val_rec']):.4f}" if "val_rec" in record else ""
    logging.info(
        "%s epoch %d/%d: loss %.4f (mean of %d seeds)%s, %.1f steps/s, ETA %s",
        name, epoch, epochs, float(np.mean(losses_now)), len(seed_ids), val, rate, _format_eta(eta))

    if on_chunk is not None:
      on_chunk(states, epoch)
  return states
