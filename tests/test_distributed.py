"""Tests of seed sharding (on 4 simulated CPU devices) and the multi-host switch."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from ctal_jax import distributed

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh process, because the device count is fixed when JAX starts.
FOUR_DEVICE_SCRIPT = textwrap.dedent("""
    import json
    import jax
    import numpy as np
    from absl import logging
    from ctal_jax import distributed

    logging.set_verbosity(logging.INFO)
    facts = {"devices": jax.local_device_count()}

    tree = {"params": np.arange(12, dtype=np.float32).reshape(4, 3),
            "keys": jax.random.split(jax.random.key(0), 4)}
    sharded = distributed.shard_seeds(tree)
    params = sharded["params"]
    facts["params_devices"] = len(params.sharding.device_set)
    facts["params_shard_shapes"] = sorted({tuple(s.data.shape) for s in params.addressable_shards})
    facts["params_spec"] = str(params.sharding.spec)
    facts["keys_devices"] = len(sharded["keys"].sharding.device_set)
    facts["params_equal"] = bool(np.array_equal(np.asarray(params), tree["params"]))

    step = jax.jit(jax.vmap(lambda p, k: p * 2.0 + jax.random.normal(k, p.shape)))
    facts["vmapped_equal"] = bool(np.allclose(
        np.asarray(step(params, sharded["keys"])), np.asarray(step(tree["params"], tree["keys"]))))

    eight = distributed.shard_seeds(np.ones((8, 2), np.float32))
    facts["eight_shard_shapes"] = sorted({tuple(s.data.shape) for s in eight.addressable_shards})

    three = np.ones((3, 2), np.float32)
    facts["three_unchanged"] = distributed.shard_seeds(three) is three

    try:
      distributed.shard_seeds({"a": np.ones((4, 2)), "b": np.ones((2, 2))})
      facts["mismatch_error"] = None
    except ValueError as error:
      facts["mismatch_error"] = str(error)
    print("FACTS " + json.dumps(facts))
""")


@pytest.fixture(scope="module")
def four_devices():
  """Run the sharding script on 4 CPU devices; return its facts and its stderr."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             PYTHONPATH=REPO_ROOT)
  result = subprocess.run([sys.executable, "-c", FOUR_DEVICE_SCRIPT], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  line = next(line for line in result.stdout.splitlines() if line.startswith("FACTS "))
  return json.loads(line.removeprefix("FACTS ")), result.stderr


def test_shard_seeds_spreads_four_seeds(four_devices):
  facts, _ = four_devices
  assert facts["devices"] == 4
  assert facts["params_devices"] == 4
  assert facts["params_shard_shapes"] == [[1, 3]]
  assert "seed" in facts["params_spec"]
  assert facts["keys_devices"] == 4


def test_shard_seeds_keeps_values(four_devices):
  facts, _ = four_devices
  assert facts["params_equal"]
  assert facts["vmapped_equal"]


def test_shard_seeds_two_per_device(four_devices):
  facts, _ = four_devices
  assert facts["eight_shard_shapes"] == [[2, 2]]


def test_shard_seeds_uneven_stays(four_devices):
  facts, stderr = four_devices
  assert facts["three_unchanged"]
  assert "3 seeds do not divide evenly over 4 local devices" in stderr


def test_shard_seeds_mismatched_axes(four_devices):
  facts, _ = four_devices
  assert facts["mismatch_error"] is not None
  assert "same leading seed axis" in facts["mismatch_error"]


def test_shard_seeds_one_device_unchanged():
  if jax.local_device_count() != 1:
    pytest.skip("needs a process with one local device")
  tree = {"params": np.ones((3, 2), np.float32)}
  assert distributed.shard_seeds(tree) is tree


def test_shard_seeds_rejects_scalar_leaf():
  with pytest.raises(ValueError, match="same leading seed axis"):
    distributed.shard_seeds({"step": np.int64(3), "params": np.ones((2, 2))})


@pytest.fixture
def recorded_initialize(monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
  for name in (distributed.COORDINATOR_ENV, distributed.NUM_PROCESSES_ENV, distributed.PROCESS_ID_ENV):
    monkeypatch.delenv(name, raising=False)
  return calls


def test_initialize_skipped_without_coordinator(recorded_initialize):
  assert distributed.maybe_initialize_distributed() is False
  assert recorded_initialize == []


def test_initialize_reads_environment(recorded_initialize, monkeypatch):
  monkeypatch.setenv(distributed.COORDINATOR_ENV, "127.0.0.1:1234")
  monkeypatch.setenv(distributed.NUM_PROCESSES_ENV, "2")
  monkeypatch.setenv(distributed.PROCESS_ID_ENV, "1")
  assert distributed.maybe_initialize_distributed() is True
  assert recorded_initialize == [
      {"coordinator_address": "127.0.0.1:1234", "num_processes": 2, "process_id": 1}]


def test_initialize_leaves_unset_to_cluster(recorded_initialize, monkeypatch):
  monkeypatch.setenv(distributed.COORDINATOR_ENV, "127.0.0.1:1234")
  distributed.maybe_initialize_distributed()
  assert recorded_initialize == [
      {"coordinator_address": "127.0.0.1:1234", "num_processes": None, "process_id": None}]


def test_initialize_rejects_bad_process_id(recorded_initialize, monkeypatch):
  monkeypatch.setenv(distributed.COORDINATOR_ENV, "127.0.0.1:1234")
  monkeypatch.setenv(distributed.PROCESS_ID_ENV, "first")
  with pytest.raises(ValueError, match="JAX_PROCESS_ID='first' is not an integer"):
    distributed.maybe_initialize_distributed()
  assert recorded_initialize == []
