"""Orbax checkpoints of both phases, and the config guard that makes resuming safe.

Layout under the workdir:

- `checkpoints/source/<model>/<epoch>/`: the stacked per-seed training state of one
  model's source phase (`state`: params, opt_state; `meta`: epoch and config hash).
- `checkpoints/target/<n>/`: saved after the n-th model finished its target phase.
  `state` contains every finished model's params, optimizer states, calibration and
  evaluation scores and thresholds, stacked as [draws, seeds, ...]. `meta` (JSON)
  contains everything else that scoring new data needs: config and its hash, layouts,
  feature and protocol lists, attack categories, scaler statistics, the (draw, seed)
  runs and their thresholds.

Orbax writes each step to a temporary folder and renames it when complete, so an
interrupted save never leaves a half-written step behind.
"""

import hashlib
import json
import os

from absl import logging
import jax
import orbax.checkpoint as ocp


class ResumeError(RuntimeError):
  """A workdir contains a run whose config differs from the requested one."""


def config_hash(config_dict: dict) -> str:
  """Return the SHA-256 of a config, as canonical JSON."""
  text = json.dumps(config_dict, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
  lines = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      lines.extend(_differences(a, b, f"{prefix}{key}."))
    elif a != b:
      lines.append(f"{prefix}{key}: {a!r} -> {b!r}")
  return lines


def has_checkpoints(workdir: str) -> bool:
  """Return True when any checkpoint manager under `workdir/checkpoints` finished a step."""
  for _, folders, _ in os.walk(os.path.join(workdir, "checkpoints")):
    if any(name.isdigit() for name in folders):
      return True
  return False


def guard_workdir(workdir: str, config_dict: dict) -> bool:
  """Write `config.json`, or check it against an earlier run in the same workdir.

  A workdir whose earlier run saved no checkpoint (it stopped at an input check, say)
  starts afresh: its config.json is replaced and its metrics.jsonl removed.

  Returns True when the workdir already held this config and checkpoints (the run
  resumes).

  Raises:
    ResumeError: the workdir contains checkpoints of a run with a different config.
  """
  path = os.path.join(workdir, "config.json")
  digest = config_hash(config_dict)
  if os.path.exists(path) and has_checkpoints(workdir):
    with open(path) as handle:
      saved = json.load(handle)
    if saved.get("hash") != digest:
      changes = _differences(saved.get("config", {}), config_dict)
      raise ResumeError(
          f"{workdir} contains checkpoints of a run with config hash {saved.get('hash', '?')[:12]}, "
          f"but this config hashes to {digest[:12]} ({'; '.join(changes[:5]) or 'same fields'}). "
          "Use a new --workdir, or rerun with the earlier settings (listed in its config.json) "
          "to resume that run."
      )
    return True

  os.makedirs(workdir, exist_ok=True)
  metrics = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(metrics):
    logging.info("%s has no checkpoint, so the run starts afresh and replaces its metrics.jsonl.", workdir)
    os.remove(metrics)
  write_json_atomic(path, {"hash": digest, "config": config_dict})
  return False


def guard_input_files(workdir: str, files: dict, resumed: bool) -> None:
  """Write `input_files.json`, or check that a resumed run reads the same files.

  `files` maps each side (source, target) to its files' path, size and SHA-256. The
  config hash cannot see a file replaced at the same path, or example data that a
  newer version generates differently, so a resumed run compares the digests.

  Raises:
    ResumeError: a resumed run's input files differ from those it started with.
  """
  path = os.path.join(workdir, "input_files.json")
  if resumed and os.path.exists(path):
    with open(path) as handle:
      saved = json.load(handle)
    for side in sorted(set(saved) | set(files)):
      before = [(f["path"], f["sha256"]) for f in saved.get(side, [])]
      now = [(f["path"], f["sha256"]) for f in files.get(side, [])]
      if before != now:
        changed = sorted(set(before) ^ set(now))
        raise ResumeError(
            f"{workdir}: the {side} input files differ from those its checkpoints were trained "
            f"on (first difference: {changed[0][0]}, sha256 {changed[0][1][:12]}). Use a new "
            "--workdir, or restore the original files to resume.")
    return
  write_json_atomic(path, files)


def write_json_atomic(path: str, data) -> None:
  """Write JSON to `path` through a temporary file, so readers never see half a file."""
  partial = path + ".partial"
  with open(partial, "w") as handle:
    json.dump(data, handle, indent=1, default=str)
  os.replace(partial, path)


def _manager(directory: str, max_to_keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=("state", "meta"))


def read_only_manager(directory: str) -> ocp.CheckpointManager:
  """Open a checkpoint folder for restoring only: it creates, saves and deletes nothing."""
  options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=("state", "meta"))


def source_manager(workdir: str, model: str) -> ocp.CheckpointManager:
  return _manager(os.path.join(workdir, "checkpoints", "source", model), max_to_keep=2)


def target_manager(workdir: str) -> ocp.CheckpointManager:
  return _manager(os.path.join(workdir, "checkpoints", "target"), max_to_keep=2)


def save(manager: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
  """Save `state` (a pytree of arrays) and `meta` (JSON) as one step; asynchronous."""
  state = jax.device_get(state)
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def restore_meta(manager: ocp.CheckpointManager, step: int | None = None) -> dict | None:
  """Return the JSON part of a step (the latest by default), or None when there is none."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  restored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
  return restored["meta"]


def restore_state(manager: ocp.CheckpointManager, step: int, abstract_state, partial: bool = False):
  """Restore the array part of a step into `abstract_state` (built with `jax.eval_shape`).

  With `partial`, `abstract_state` may name a subset of the saved tree (for example
  one model of a target step), and only that subset is read.
  """
  if partial:
    state_args = ocp.args.PyTreeRestore(abstract_state, partial_restore=True)
  else:
    state_args = ocp.args.StandardRestore(abstract_state)
  restored = manager.restore(step, args=ocp.args.Composite(state=state_args))
  return restored["state"]
