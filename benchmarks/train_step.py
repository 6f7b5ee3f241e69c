"""Print the training-step throughput of CTAL-VAE in anchors per second.

Measures four settings. The first is one seed. The second trains `--seeds` seeds one
after another with the single-seed program. The third puts the same seeds in one
program as one vmap over all of them. The fourth uses one program with a vmap per
group of `--group` seeds, which is what the main job does on CPU. Sizes follow the model defaults:
43 input features, width 43, hidden 64, latent 16, windows of 30 steps, triplets with
synthetic negatives, and Adam. Each timed call runs one epoch of `--steps` steps in one
`lax.scan`. Compilation and `--warmup` untimed calls come first, because the first
calls after compiling also pay for fresh memory and ran up to 1.6 times slower on
2 CPU cores.

Usage: python benchmarks/train_step.py [--steps 30] [--seeds 8] [--batch 256]

Each triplet counts as one anchor, as in the PyTorch version of this step that serves
for comparison.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ctal_jax.models import LstmVae  # noqa: E402
from ctal_jax.training import optimizers, steps  # noqa: E402


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
  parser.add_argument("--seeds", type=int, default=8, help="seeds in the vmapped program")
  parser.add_argument("--group", type=int, default=2, help="seeds per vmap in the grouped program")
  parser.add_argument("--batch", type=int, default=256, help="anchor windows per step")
  parser.add_argument("--features", type=int, default=43, help="input features per step")
  parser.add_argument("--seq-len", type=int, default=30, help="steps per window")
  parser.add_argument("--repeats", type=int, default=5,
                      help="timed calls per setting; the best and the median are printed")
  parser.add_argument("--warmup", type=int, default=2, help="untimed calls per setting")
  return parser.parse_args()


def time_calls(run, warmup, repeats):
  """Call `run` `warmup` times, then return the wall-clock seconds of `repeats` calls."""
  for _ in range(warmup):
    jax.block_until_ready(run())
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(run())
    seconds.append(time.perf_counter() - start)
  return seconds


def report(name, anchors, seconds):
  rates = [anchors / s for s in seconds]
  print(f"{name:<28} best {max(rates):8.0f} anchors/s   median {statistics.median(rates):8.0f}"
        f"   ({min(seconds) * 1000:.0f} ms per call)", flush=True)


def main():
  args = parse_args()
  print(f"jax {jax.__version__}  devices {jax.devices()}  os.cpu_count() {os.cpu_count()}")
  print(f"batch {args.batch}  steps per call {args.steps}  seeds {args.seeds}  "
        f"features {args.features}  seq_len {args.seq_len}", flush=True)

  model = LstmVae(domains=(("source", args.features),))
  optimizer = optimizers.source_optimizer(1e-3)
  hyper = steps.Hyper.create(
      rec=1.0, kl=1e-3, con=0.1, margin=0.5, sigma=0.05, batch_size=args.batch,
      domain="source", negatives="synthetic")

  # One epoch is exactly `--steps` full batches.
  n_windows = args.steps * args.batch
  x = jax.random.normal(jax.random.key(0), (n_windows, args.seq_len, args.features))
  data = dict(x=x, mask=jnp.ones((n_windows, args.seq_len), jnp.float32))
  init_keys = jax.random.split(jax.random.key(1), args.seeds)
  base_keys = jax.random.split(jax.random.key(2), args.seeds)

  # One seed.
  single_fn = steps.jit_epoch_fn(model, optimizer)
  state = steps.init_state(init_keys[0], model, optimizer, args.seq_len)
  epoch = iter(range(1_000_000))

  def run_single():
    nonlocal state
    state, metrics = single_fn(state, data, next(epoch), base_keys[0], hyper)
    return metrics

  seconds = time_calls(run_single, args.warmup, args.repeats)
  report("1 seed", n_windows, seconds)

  # Seeds one after another, each with its own state, one compiled program.
  states = [steps.init_state(key, model, optimizer, args.seq_len) for key in init_keys]

  def run_sequential():
    index = next(epoch)
    outputs = []
    for seed in range(args.seeds):
      states[seed], metrics = single_fn(states[seed], data, index, base_keys[seed], hyper)
      outputs.append(metrics)
    return outputs

  seconds = time_calls(run_sequential, args.warmup, args.repeats)
  report(f"{args.seeds} seeds sequential", n_windows * args.seeds, seconds)

  # Seeds side by side in one program, data shared: one vmap over all seeds, then
  # vmaps over groups of seeds.
  for group, name in ((args.seeds, "vmapped"), (args.group, f"vmapped, groups of {args.group}")):
    seeds_fn = steps.jit_epoch_fn(model, optimizer, over_seeds=True, group_size=group)
    stacked = steps.init_states(init_keys, model, optimizer, args.seq_len)

    def run_vmapped():
      nonlocal stacked
      stacked, metrics = seeds_fn(stacked, data, next(epoch), base_keys, hyper)
      return metrics

    seconds = time_calls(run_vmapped, args.warmup, args.repeats)
    report(f"{args.seeds} seeds {name}", n_windows * args.seeds, seconds)


if __name__ == "__main__":
  main()
