"""Optimizers of the two phases, with freezing written as rules on parameter paths.

A rule is (regex, label), matched with `re.search` against the "/"-joined path of a
parameter, e.g. "core/encoder/input_kernel" or "adaptors/target/encode/kernel". The
first matching rule gives the label, and every parameter must match some rule.
"""

import collections
import re
from collections.abc import Sequence

from absl import logging
import jax
import optax

FROZEN = "frozen"
TRAINABLE = "trainable"

# Target phase of CTAL-VAE: only the target adaptors learn.
TARGET_RULES = (
    ("^core/", FROZEN),
    ("^adaptors/target/", TRAINABLE),
    ("^adaptors/", FROZEN),
)

# The `finetune_all` control: nothing is frozen.
FINETUNE_RULES = ((".*", TRAINABLE),)


def _adam(learning_rate, weight_decay):
  if weight_decay > 0:
    return optax.adamw(learning_rate, weight_decay=weight_decay)
  return optax.adam(learning_rate)


def source_optimizer(
    learning_rate: float, weight_decay: float = 0.0
) -> optax.GradientTransformation:
  """Return Adam, or AdamW with decoupled `weight_decay` when it is positive."""
  return _adam(learning_rate, weight_decay)


def parameter_path(path) -> str:
  """Join a pytree key path into "core/encoder/input_kernel" form."""
  parts = []
  for entry in path:
    if isinstance(entry, jax.tree_util.DictKey):
      parts.append(str(entry.key))
    elif isinstance(entry, jax.tree_util.GetAttrKey):
      parts.append(entry.name)
    elif isinstance(entry, jax.tree_util.SequenceKey):
      parts.append(str(entry.idx))
    else:
      parts.append(str(entry))
  return "/".join(parts)


def partition_labels(params, rules: Sequence[tuple[str, str]]):
  """Return a tree like `params` that contains each parameter's label.

  Logs how many leaves and values each rule matched, and warns about a rule that
  matched nothing, which usually means a misspelt path.

  Raises:
    ValueError: a parameter matches no rule. The message names its path.
  """
  compiled = [(re.compile(pattern), label) for pattern, label in rules]
  leaves = collections.Counter()
  values = collections.Counter()

  def label_of(path, leaf):
    name = parameter_path(path)
    for index, (pattern, label) in enumerate(compiled):
      if pattern.search(name):
        leaves[index] += 1
        values[index] += int(getattr(leaf, "size", 1))
        return label
    raise ValueError(
        f"Parameter {name!r} matches no freezing rule. Add a rule for it. Rules: "
        f"{[pattern for pattern, _ in rules]}.")

  labels = jax.tree_util.tree_map_with_path(label_of, params)

  for index, (pattern, label) in enumerate(rules):
    if leaves[index] == 0:
      logging.warning("Freezing rule %r -> %s matched no parameter.", pattern, label)
    else:
      logging.info(
          "Freezing rule %r -> %s matched %d leaves, %d values.",
          pattern, label, leaves[index], values[index])
  return labels


def target_optimizer(
    params,
    learning_rate: float,
    weight_decay: float = 0.0,
    rules: Sequence[tuple[str, str]] = TARGET_RULES,
) -> optax.GradientTransformation:
  """Return Adam(W) on the parameters labelled "trainable" and zero updates elsewhere.

  `optax.partition` hands each label's leaves to its own transformation, so the
  frozen leaves get `set_to_zero()`: no update, no weight decay and no Adam state.
  `params` only fixes the labels, and a stack of seeds (leading axis) works too.

  Raises:
    ValueError: a label other than "frozen" or "trainable", a parameter matched by no
      rule, or no trainable parameter at all.
  """
  labels = partition_labels(params, rules)
  used = set(jax.tree_util.tree_leaves(labels))
  unknown = used - {FROZEN, TRAINABLE}
  if unknown:
    raise ValueError(
        f"Invalid labels {sorted(unknown)} in freezing rules; expected {FROZEN!r} or "
        f"{TRAINABLE!r}.")
  if TRAINABLE not in used:
    raise ValueError(
        "Invalid freezing rules: they freeze every parameter, so nothing would train. "
        f"Label at least one parameter {TRAINABLE!r}.")

  transforms = {FROZEN: optax.set_to_zero(), TRAINABLE: _adam(learning_rate, weight_decay)}
  return optax.partition(transforms, labels)
