"""Tests of the optimizers and of freezing by parameter-path rules."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ctal_jax.models import LstmVae, init_params
from ctal_jax.training import optimizers, steps

DOMAINS = (("source", 3), ("target", 5))
SEQ_LEN = 5


@pytest.fixture(scope="module")
def model():
  return LstmVae(domains=DOMAINS, width=4, hidden=8, latent=2)


@pytest.fixture(scope="module")
def params(model):
  return init_params(jax.random.key(0), model, SEQ_LEN)


def labelled_paths(labels):
  flat = jax.tree_util.tree_flatten_with_path(labels)[0]
  return {optimizers.parameter_path(path): label for path, label in flat}


def test_target_rules_label_every_parameter(params):
  labels = labelled_paths(optimizers.partition_labels(params, optimizers.TARGET_RULES))
  assert len(labels) == len(jax.tree_util.tree_leaves(params))
  for path, label in labels.items():
    if path.startswith("adaptors/target/"):
      assert label == "trainable", path
    else:
      assert label == "frozen", path
  assert "core/encoder/recurrent_kernel" in labels
  assert labels["adaptors/target/encode/kernel"] == "trainable"
  assert labels["adaptors/source/decode/bias"] == "frozen"


def test_finetune_rules_train_everything(params):
  labels = labelled_paths(optimizers.partition_labels(params, optimizers.FINETUNE_RULES))
  assert set(labels.values()) == {"trainable"}


def test_unmatched_parameter_raises(params):
  with pytest.raises(ValueError, match="'adaptors/source/decode/bias' matches no freezing rule"):
    optimizers.partition_labels(params, (("^core/", "frozen"), ("^adaptors/target/", "trainable")))


def test_rule_counts_logged(params, caplog):
  with caplog.at_level(logging.INFO):
    optimizers.partition_labels(params, optimizers.TARGET_RULES)
  core_leaves = len(jax.tree_util.tree_leaves(params["core"]))
  assert f"'^core/' -> frozen matched {core_leaves} leaves" in caplog.text
  assert "'^adaptors/target/' -> trainable matched 4 leaves" in caplog.text
  assert "'^adaptors/' -> frozen matched 4 leaves" in caplog.text


def test_unknown_label_raises(params):
  with pytest.raises(ValueError, match="Invalid labels"):
    optimizers.target_optimizer(params, 1e-3, rules=((".*", "learn"),))


def test_all_frozen_raises(params):
  with pytest.raises(ValueError, match="freeze every parameter"):
    optimizers.target_optimizer(params, 1e-3, rules=((".*", "frozen"),))


def test_source_optimizer_weight_decay():
  params = {"w": jnp.ones(3)}
  zero_grads = {"w": jnp.zeros(3)}
  for weight_decay, moves in ((0.0, False), (0.1, True)):
    optimizer = optimizers.source_optimizer(1e-2, weight_decay)
    updates, _ = optimizer.update(zero_grads, optimizer.init(params), params)
    new = optax.apply_updates(params, updates)
    assert moves == (not np.array_equal(new["w"], params["w"])), weight_decay


def test_frozen_leaves_have_no_state(params):
  optimizer = optimizers.target_optimizer(params, 1e-3)
  state = optimizer.init(params)
  trainable = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params["adaptors"]["target"]))
  # Adam keeps two moments per trainable value, plus scalar step counts.
  stored = sum(leaf.size for leaf in jax.tree_util.tree_leaves(state) if np.ndim(leaf) > 0)
  assert stored == 2 * trainable


def apply_dense_gradients(optimizer, params, n_steps):
  """Apply `n_steps` updates whose gradient is nonzero on every value and return the params."""

  @jax.jit
  def run(params):
    state = optimizer.init(params)
    for _ in range(n_steps):
      grads = jax.tree_util.tree_map(lambda value: jnp.cos(3.0 * value + 1.0), params)
      updates, state = optimizer.update(grads, state, params)
      params = optax.apply_updates(params, updates)
    return params

  return run(params)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_freeze_holds_for_dense_gradients(params, weight_decay):
  optimizer = optimizers.target_optimizer(params, 1e-2, weight_decay)
  new = apply_dense_gradients(optimizer, params, 5)

  for name in ("core", "adaptors/source"):
    before = params["core"] if name == "core" else params["adaptors"]["source"]
    after = new["core"] if name == "core" else new["adaptors"]["source"]
    for old, updated in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)):
      np.testing.assert_array_equal(old, updated, err_msg=name)
  for old, updated in zip(jax.tree_util.tree_leaves(params["adaptors"]["target"]),
                          jax.tree_util.tree_leaves(new["adaptors"]["target"])):
    assert not np.array_equal(old, updated)


def test_core_bit_identical_after_target_steps(model, params):
  # Weight decay on: decay must not reach frozen values either. Without decay the
  # dense-gradient test above covers the same optimizer.
  optimizer = optimizers.target_optimizer(params, 1e-2, weight_decay=0.1)
  state = steps.state_from_params(params, optimizer)
  x = jax.random.normal(jax.random.key(1), (5, SEQ_LEN, 5))
  data = dict(x=x, mask=jnp.ones((5, SEQ_LEN)))
  hyper = steps.Hyper.create(domain="target", batch_size=5)
  train_step = jax.jit(steps.make_train_step(model, optimizer))
  for step in range(6):
    state, metrics = train_step(state, data, step, jax.random.key(2), hyper)
  assert np.isfinite(metrics["loss"])

  new = state["params"]
  frozen = [("core", params["core"], new["core"]),
            ("adaptors/source", params["adaptors"]["source"], new["adaptors"]["source"])]
  for name, before, after in frozen:
    for old, updated in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)):
      np.testing.assert_array_equal(old, updated, err_msg=name)
  for old, updated in zip(jax.tree_util.tree_leaves(params["adaptors"]["target"]),
                          jax.tree_util.tree_leaves(new["adaptors"]["target"])):
    assert not np.array_equal(old, updated)


def test_finetune_moves_every_parameter(params):
  optimizer = optimizers.target_optimizer(params, 1e-2, rules=optimizers.FINETUNE_RULES)
  new = apply_dense_gradients(optimizer, params, 1)
  flat_old = jax.tree_util.tree_flatten_with_path(params)[0]
  for (path, old), updated in zip(flat_old, jax.tree_util.tree_leaves(new)):
    assert not np.array_equal(old, updated), optimizers.parameter_path(path)
