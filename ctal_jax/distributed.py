"""Spread the seed axis over local devices, and join several hosts into one JAX job.

Training states, keys and metrics carry a leading seed axis (seeds run side by side
under `jax.vmap`). `shard_seeds` places that axis across the local devices, so a
jitted, vmapped step runs each device's share of the seeds where the data lies. On
one device, or when the seeds do not divide evenly, the tree is left as it is.

`maybe_initialize_distributed` joins a multi-host job when the coordinator's
environment variables are set, and does nothing otherwise.
"""

import os

from absl import logging
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np

SEED_AXIS = "seed"
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def seed_mesh(devices=None) -> Mesh:
  """Return a 1-D mesh named `seed` over `devices` (default: this host's devices)."""
  devices = jax.local_devices() if devices is None else devices
  return Mesh(np.asarray(devices), (SEED_AXIS,))


def seed_sharding(devices=None) -> NamedSharding:
  """Return the sharding that splits a leading seed axis over the mesh."""
  return NamedSharding(seed_mesh(devices), PartitionSpec(SEED_AXIS))


def seed_count(tree) -> int:
  """Return the leading axis length shared by every leaf of `tree`.

  Raises:
    ValueError: the tree has no array leaf, a leaf is a scalar, or leading axes differ.
  """
  shapes = [np.shape(leaf) for leaf in jax.tree.leaves(tree)]
  if not shapes:
    raise ValueError("shard_seeds needs a tree with at least one array leaf.")
  leading = {shape[0] if shape else None for shape in shapes}
  if None in leading or len(leading) > 1:
    listed_shapes = ", ".join(str(shape) for shape in shapes[:5])
    raise ValueError(
        f"shard_seeds needs every leaf to have the same leading seed axis; leaf shapes: {listed_shapes}"
        f"{' and more' if len(shapes) > 5 else ''}.")
  return leading.pop()


def shard_seeds(tree):
  """Place the leading seed axis of every leaf across the local devices.

  Each of D local devices receives seeds / D consecutive seeds. The tree comes back
  unchanged, with a log line saying why, when there is one local device or when
  the seed count is not a multiple of D.

  Raises:
    ValueError: the leaves do not share one leading axis (see `seed_count`).
  """
  seeds = seed_count(tree)
  devices = jax.local_device_count()
  if devices <= 1:
    logging.log_first_n(logging.INFO, "One local device: the %d seeds stay on it.", 1, seeds)
    return tree
  if seeds % devices:
    logging.log_first_n(
        logging.WARNING,
        "%d seeds do not divide evenly over %d local devices, so they stay on one device; "
        "use a multiple of %d seeds to spread them.", 1, seeds, devices, devices)
    return tree
  logging.log_first_n(
      logging.INFO, "Sharding %d seeds over %d local devices, %d per device.", 1,
      seeds, devices, seeds // devices)
  return jax.device_put(tree, seed_sharding())


def maybe_initialize_distributed() -> bool:
  """Call `jax.distributed.initialize()` when a coordinator address is set.

  Multi-host launch: start the same command on every host, before which each host
  sets

    JAX_COORDINATOR_ADDRESS=HOST0:PORT   # process 0's address and a free port
    JAX_NUM_PROCESSES=N                  # total number of processes
    JAX_PROCESS_ID=I                     # 0 .. N-1, a different one per host

  On Slurm, Open MPI and Cloud TPU, JAX detects the process count and index itself,
  so JAX_COORDINATOR_ADDRESS alone is enough there. This must run before the first
  JAX computation of the process.

  Returns:
    True when the distributed system was initialized, False when no coordinator
    address is set (a single-host run).

  Raises:
    ValueError: JAX_NUM_PROCESSES or JAX_PROCESS_ID is set but not an integer.
  """
  # NOTE: each process then trains every seed on its own local devices. Splitting
  # seeds across hosts would need a global mesh and per-process data, and the
  # training loop has neither.
  address = os.environ.get(COORDINATOR_ENV)
  if not address:
    logging.debug("%s is not set: running on this host only.", COORDINATOR_ENV)
    return False
  num_processes = _int_env(NUM_PROCESSES_ENV)
  process_id = _int_env(PROCESS_ID_ENV)
  logging.info(
      "Joining the distributed job at %s (processes: %s, this process: %s; unset values "
      "come from the cluster).", address, num_processes, process_id)
  jax.distributed.initialize(
      coordinator_address=address, num_processes=num_processes, process_id=process_id)
  logging.info("Process %d of %d; %d local and %d global devices.", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


def _int_env(name: str) -> int | None:
  value = os.environ.get(name)
  if value is None or value == "":
    return None
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"{name}={value!r} is not an integer; set it to a process count or index.") from None
