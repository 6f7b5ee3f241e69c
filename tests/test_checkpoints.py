"""Tests of the config guard of a workdir and of Orbax save and restore."""

import json
import pathlib

import jax
import numpy as np
import pytest

from ctal_jax import checkpoints


def sample_config() -> dict:
  return {
      "seed": 0,
      "seeds": 3,
      "models": "ctal_vae,vae,ae",
      "source": {"path": "/data/wustl.csv", "epochs": 100, "learning_rate": 1e-3},
      "target": {"path": None, "epochs": 200, "connection_type": None},
  }


def changed(config: dict, section: str, field: str, value) -> dict:
  copy = json.loads(json.dumps(config))
  copy[section][field] = value
  return copy


# Config hash.


def test_config_hash_stable():
  config = sample_config()
  reordered = dict(reversed(list(config.items())))
  reordered["source"] = dict(reversed(list(config["source"].items())))

  assert checkpoints.config_hash(config) == checkpoints.config_hash(sample_config())
  assert checkpoints.config_hash(config) == checkpoints.config_hash(reordered)
  assert len(checkpoints.config_hash(config)) == 64


@pytest.mark.parametrize("section, field, value", [
    ("source", "epochs", 101),
    ("source", "learning_rate", 1e-4),
    ("target", "path", "/data/aci.csv"),
    ("target", "connection_type", "wireless"),
])
def test_config_hash_sensitive(section, field, value):
  config = sample_config()
  assert checkpoints.config_hash(changed(config, section, field, value)) != checkpoints.config_hash(config)


def test_config_hash_top_level_field():
  config = sample_config()
  other = dict(config, seeds=4)
  assert checkpoints.config_hash(other) != checkpoints.config_hash(config)


# Workdir guard.


def test_guard_writes_config_json(tmp_path):
  config = sample_config()
  resumed = checkpoints.guard_workdir(str(tmp_path / "run"), config)
  saved = json.loads((tmp_path / "run" / "config.json").read_text())

  assert resumed is False
  assert saved["hash"] == checkpoints.config_hash(config)
  assert saved["config"] == config
  assert not (tmp_path / "run" / "config.json.partial").exists()


def add_checkpoint_step(workdir) -> None:
  """Make the workdir look like a run that saved one target checkpoint step."""
  (pathlib.Path(workdir) / "checkpoints" / "target" / "1").mkdir(parents=True)


def test_guard_accepts_same_config(tmp_path):
  workdir = str(tmp_path)
  checkpoints.guard_workdir(workdir, sample_config())
  add_checkpoint_step(workdir)
  before = (tmp_path / "config.json").read_text()

  assert checkpoints.guard_workdir(workdir, sample_config()) is True
  assert (tmp_path / "config.json").read_text() == before


def test_guard_rejects_changed_field(tmp_path):
  workdir = str(tmp_path)
  config = sample_config()
  checkpoints.guard_workdir(workdir, config)
  add_checkpoint_step(workdir)
  other = changed(config, "target", "epochs", 10)

  with pytest.raises(checkpoints.ResumeError) as raised:
    checkpoints.guard_workdir(workdir, other)

  message = str(raised.value)
  assert "target.epochs: 200 -> 10" in message
  assert checkpoints.config_hash(config)[:12] in message
  assert checkpoints.config_hash(other)[:12] in message
  assert "new --workdir" in message
  # The rejected config leaves the saved one in place.
  assert json.loads((tmp_path / "config.json").read_text())["config"] == config


def test_guard_names_added_field(tmp_path):
  workdir = str(tmp_path)
  checkpoints.guard_workdir(workdir, sample_config())
  add_checkpoint_step(workdir)
  other = dict(sample_config(), negatives="labeled")

  with pytest.raises(checkpoints.ResumeError, match="negatives: None -> 'labeled'"):
    checkpoints.guard_workdir(workdir, other)


def test_guard_restarts_without_checkpoints(tmp_path):
  workdir = str(tmp_path)
  checkpoints.guard_workdir(workdir, sample_config())
  (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n')
  (tmp_path / "checkpoints" / "target").mkdir(parents=True)
  other = changed(sample_config(), "target", "epochs", 10)

  resumed = checkpoints.guard_workdir(workdir, other)

  assert resumed is False
  assert json.loads((tmp_path / "config.json").read_text())["config"] == other
  assert not (tmp_path / "metrics.jsonl").exists()


# Save and restore.


def small_state(seed: int) -> dict:
  rng = np.random.default_rng(seed)
  return {
      "params": {
          "dense": {"kernel": rng.normal(size=(2, 4, 3)).astype(np.float32),
                    "bias": rng.normal(size=(2, 3)).astype(np.float32)},
      },
      "opt_state": {"count": np.array([5, 5], np.int32),
                    "mu": rng.normal(size=(2, 4, 3)).astype(np.float32)},
      "thresholds": rng.gamma(2.0, size=(2, 2)),
      "step": np.asarray(7, np.int64),
  }


def abstract_of(state: dict):
  """Return the abstract state: `jax.eval_shape` for the float32 and int32 leaves.

  Without x64, `jax.eval_shape` turns float64 and int64 leaves into 32-bit ones, so
  those get explicit 64-bit shapes, as in the target checkpoint's abstract state.
  """
  abstract = jax.eval_shape(lambda: {"params": state["params"], "opt_state": state["opt_state"]})
  abstract["thresholds"] = jax.ShapeDtypeStruct(state["thresholds"].shape, np.float64)
  abstract["step"] = jax.ShapeDtypeStruct((), np.int64)
  return abstract


def assert_trees_identical(restored, expected):
  restored_leaves = jax.tree_util.tree_leaves_with_path(restored)
  expected_leaves = jax.tree_util.tree_leaves_with_path(expected)
  assert [path for path, _ in restored_leaves] == [path for path, _ in expected_leaves]
  for (path, got), (_, want) in zip(restored_leaves, expected_leaves):
    got = np.asarray(got)
    assert got.dtype == want.dtype, jax.tree_util.keystr(path)
    assert got.shape == want.shape, jax.tree_util.keystr(path)
    assert got.tobytes() == want.tobytes(), jax.tree_util.keystr(path)


def test_save_restore_bit_identical(tmp_path):
  state = small_state(0)
  meta = {"epoch": 7, "config_hash": "abc", "thresholds": {"ctal_vae": [[0.5, 1.25]]}}
  manager = checkpoints.source_manager(str(tmp_path), "ctal_vae")
  checkpoints.save(manager, 7, state, meta)
  manager.wait_until_finished()

  fresh = checkpoints.source_manager(str(tmp_path), "ctal_vae")
  assert fresh.latest_step() == 7
  restored = checkpoints.restore_state(fresh, 7, abstract_of(state))
  assert_trees_identical(restored, state)
  assert checkpoints.restore_meta(fresh) == meta
  assert (tmp_path / "checkpoints" / "source" / "ctal_vae" / "7").is_dir()


def test_restore_meta_latest_step(tmp_path):
  manager = checkpoints.target_manager(str(tmp_path))
  assert checkpoints.restore_meta(manager) is None

  for step in (1, 2, 3):
    checkpoints.save(manager, step, small_state(step), {"completed": list(range(step))})
  manager.wait_until_finished()

  fresh = checkpoints.target_manager(str(tmp_path))
  # The target manager keeps the two latest steps.
  assert fresh.all_steps() == [2, 3]
  assert checkpoints.restore_meta(fresh) == {"completed": [0, 1, 2]}
  assert checkpoints.restore_meta(fresh, 2) == {"completed": [0, 1]}
  assert_trees_identical(checkpoints.restore_state(fresh, 2, abstract_of(small_state(2))), small_state(2))


def test_write_json_atomic(tmp_path):
  path = tmp_path / "report.json"
  checkpoints.write_json_atomic(str(path), {"value": 1.5, "path": tmp_path})

  assert json.loads(path.read_text()) == {"value": 1.5, "path": str(tmp_path)}
  assert not (tmp_path / "report.json.partial").exists()


def test_restore_state_partial_subset(tmp_path):
  state = small_state(3)
  manager = checkpoints.target_manager(str(tmp_path))
  checkpoints.save(manager, 1, state, {})
  manager.wait_until_finished()

  subset = {"params": abstract_of(state)["params"]}
  restored = checkpoints.restore_state(checkpoints.target_manager(str(tmp_path)), 1, subset, partial=True)
  assert set(restored) == {"params"}
  assert_trees_identical(restored, {"params": state["params"]})


# Input files of a resumed run.


def input_files(sha: str) -> dict:
  return {"source": [{"path": "/data/wustl.csv", "size": 10, "sha256": "a" * 64}],
          "target": [{"path": "/data/aci.csv", "size": 20, "sha256": sha * 64}]}


def test_input_files_written_on_fresh_start(tmp_path):
  checkpoints.guard_input_files(str(tmp_path), input_files("b"), resumed=False)

  assert json.loads((tmp_path / "input_files.json").read_text()) == input_files("b")


def test_input_files_same_resume(tmp_path):
  checkpoints.guard_input_files(str(tmp_path), input_files("b"), resumed=False)
  checkpoints.guard_input_files(str(tmp_path), input_files("b"), resumed=True)

  assert json.loads((tmp_path / "input_files.json").read_text()) == input_files("b")


def test_input_files_changed_rejected(tmp_path):
  checkpoints.guard_input_files(str(tmp_path), input_files("b"), resumed=False)

  with pytest.raises(checkpoints.ResumeError, match="the target input files differ") as raised:
    checkpoints.guard_input_files(str(tmp_path), input_files("c"), resumed=True)
  assert "/data/aci.csv" in str(raised.value)
  assert "new --workdir" in str(raised.value)


def test_input_files_fresh_start_replaces(tmp_path):
  checkpoints.guard_input_files(str(tmp_path), input_files("b"), resumed=False)
  checkpoints.guard_input_files(str(tmp_path), input_files("c"), resumed=False)

  assert json.loads((tmp_path / "input_files.json").read_text()) == input_files("c")
