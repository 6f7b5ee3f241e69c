"""The two training phases of one model, for every seed at once.

Source phase: core and source adaptors learn on the benign source training windows.
Target phase, per draw: new target adaptors learn on the draw's shots while the
freezing rules of the model's variant hold the rest.

Seed i of a run always uses the key `fold_in(key(config.seed), i)`, so a run with N
seeds repeats the first N seeds of any larger run.
"""

import dataclasses

import jax
import numpy as np

from ctal_jax import checkpoints
from ctal_jax import distributed
from ctal_jax.models.lstm_vae import LstmVae, init_params
from ctal_jax.training import loop
from ctal_jax.training import optimizers
from ctal_jax.training import steps
from ctal_jax.training.variants import Variant

# Streams folded into each seed's key.
_INIT, _SOURCE_TRAIN, _TARGET_INIT, _TARGET_TRAIN = range(4)


def seed_keys(base_seed: int, seeds: int) -> jax.Array:
  """Return one key per seed, independent of how many seeds the run has."""
  base = jax.random.key(base_seed)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(np.arange(seeds))


def fold(keys: jax.Array, *data: int) -> jax.Array:
  """Fold each of `data` into every key of a stack of keys."""
  for value in data:
    keys = jax.vmap(lambda key, value=value: jax.random.fold_in(key, value))(keys)
  return keys


def build_model(config, variant: Variant, source_features: int, target_features: int) -> LstmVae:
  return LstmVae(
      domains=(("source", source_features), ("target", target_features)),
      width=config.model.width,
      hidden=config.model.hidden,
      latent=config.model.latent,
      variational=variant.variational,
      teacher_forcing=config.model.teacher_forcing,
  )


def make_hyper(config, variant: Variant, domain: str, batch_size: int) -> steps.Hyper:
  return steps.Hyper.create(
      rec=config.loss.rec,
      kl=config.loss.kl if variant.kl else 0.0,
      con=config.loss.con if variant.contrastive else 0.0,
      margin=config.loss.margin,
      sigma=config.loss.sigma,
      batch_size=batch_size,
      domain=domain,
      negatives=config.negatives,
  )


def stack_per_key(jitted, keys: jax.Array):
  """Return `jitted(key)` for every key, stacked along a leading seed axis."""
  # NOTE: under jax 0.10.2 on CPU, a vmapped orthogonal initializer never finished
  # executing, so seeds are initialised one jitted call each.
  results = [jitted(key) for key in keys]
  return jax.tree.map(lambda *leaves: jax.numpy.stack(leaves), *results)


def unstack(tree, index: int):
  """Return entry `index` of the leading axis of every leaf."""
  return jax.tree.map(lambda leaf: leaf[index], tree)


@dataclasses.dataclass
class PhaseContext:
  """Inputs that both phases of one model share, besides the data."""

  config: object
  variant: Variant
  model: LstmVae
  keys: jax.Array
  workdir: str
  writer: loop.MetricsWriter
  config_hash: str

  @property
  def seed_ids(self) -> list[int]:
    return list(range(self.keys.shape[0]))


def train_source(context: PhaseContext, data: dict, held_out: dict):
  """Train every seed's core and source adaptors; resume from the latest checkpoint.

  Returns the stacked per-seed state {params, opt_state} after the last epoch.
  """
  config, model = context.config, context.model
  seq_len = data["x"].shape[1]
  optimizer = optimizers.source_optimizer(config.source.learning_rate, config.source.weight_decay)
  init = jax.jit(lambda key: steps.init_state(key, model, optimizer, seq_len))
  states = stack_per_key(init, fold(context.keys, _INIT))

  manager = checkpoints.source_manager(context.workdir, context.variant.name)
  first_epoch = manager.latest_step() or 0
  if first_epoch:
    abstract = jax.eval_shape(lambda: states)
    states = checkpoints.restore_state(manager, first_epoch, abstract)

  def validate(states):
    scores = [
        steps.evaluate_scores(unstack(states["params"], i), model, held_out["x"], held_out["mask"],
                              "source", config.score_batch_size).mean()
        for i in context.seed_ids
    ]
    return {"val_rec": np.asarray(scores)}

  def save(states, epoch):
    checkpoints.save(manager, epoch, states, {"epoch": epoch, "config_hash": context.config_hash})

  batch_size = min(config.source.batch_size, data["x"].shape[0])
  states = loop.run_epochs(
      loop.make_chunk_fn(model, optimizer, config.source.kl_warmup_epochs,
                         steps.seeds_per_group(config.seeds_per_group, config.seeds)),
      distributed.shard_seeds(states), data, distributed.shard_seeds(fold(context.keys, _SOURCE_TRAIN)),
      make_hyper(config, context.variant, "source", batch_size),
      first_epoch=first_epoch,
      epochs=config.source.epochs,
      log_every=config.log_every_epochs,
      steps_per_epoch=steps.steps_per_epoch(data["x"].shape[0], batch_size),
      label={"model": context.variant.name, "phase": "source"},
      writer=context.writer,
      seed_ids=context.seed_ids,
      validate=validate,
      on_chunk=save,
  )
  manager.wait_until_finished()
  return states


class TargetTrainer:
  """Adapt a model to the target, one draw at a time, all seeds together.

  The optimizer and the compiled chunk are built once and serve every draw.
  """

  def __init__(self, context: PhaseContext, seq_len: int):
    self.context = context
    config = context.config
    self.seq_len = seq_len
    example = init_params(jax.random.key(0), context.model, seq_len)
    self.optimizer = optimizers.target_optimizer(
        example, config.target.learning_rate, config.target.weight_decay,
        rules=context.variant.target_rules)
    # The KL warm-up belongs to the source phase; the target phase uses the full weight.
    self.chunk_fn = loop.make_chunk_fn(
        context.model, self.optimizer, warmup_epochs=0,
        group_size=steps.seeds_per_group(config.seeds_per_group, config.seeds))
    # Built once, so that every draw reuses the compiled programs.
    self._init_params = jax.jit(lambda key: init_params(key, context.model, seq_len))
    self._init_states = jax.jit(jax.vmap(lambda p: steps.state_from_params(p, self.optimizer)))

  def initial_params(self, source_params, draw: int):
    """Source core and adaptors with new target adaptors; all new without a source."""
    keys = fold(self.context.keys, _TARGET_INIT, draw)
    fresh = stack_per_key(self._init_params, keys)
    if source_params is None:
      return fresh
    adaptors = dict(source_params["adaptors"], target=fresh["adaptors"]["target"])
    return dict(source_params, adaptors=adaptors)

  def adapt(self, source_params, data: dict, draw: int):
    """Train the target adaptors (or more, by the variant's rules) on one draw's shots."""
    config = self.context.config
    params = self.initial_params(source_params, draw)
    states = distributed.shard_seeds(self._init_states(params))
    keys = distributed.shard_seeds(fold(self.context.keys, _TARGET_TRAIN, draw))
    n_shots = data["x"].shape[0]
    return loop.run_epochs(
        self.chunk_fn, states, data, keys,
        make_hyper(config, self.context.variant, "target", n_shots),
        first_epoch=0,
        epochs=config.target.epochs,
        log_every=max(config.log_every_epochs, config.target.epochs // 10, 1),
        steps_per_epoch=1,
        label={"model": self.context.variant.name, "phase": "target", "draw": draw},
        writer=self.context.writer,
        seed_ids=self.context.seed_ids,
    )
