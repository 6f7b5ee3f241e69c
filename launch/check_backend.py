"""Exit 1 with a one-line error unless JAX runs on the expected backend.

    python launch/check_backend.py BACKEND HINT

BACKEND is what `jax.default_backend()` must return (gpu, tpu or cpu). HINT is
appended to the error and tells the user what to check. The line printed first names the
JAX version, the backend and the devices.
"""

import sys

import jax


def main(argv: list[str]) -> int:
  if len(argv) != 3:
    print("error: usage: python launch/check_backend.py BACKEND HINT", file=sys.stderr)
    return 2
  expected, hint = argv[1], argv[2]
  backend = jax.default_backend()
  print(f"JAX {jax.__version__}: backend {backend}, devices {jax.devices()}")
  if backend != expected:
    print(f"error: JAX uses {backend}, not {expected}; {hint}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
