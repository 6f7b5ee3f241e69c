"""Check downloaded flow-record files before training on them.

    python -m ctal_jax.inspect PATH [PATH ...] [--seq_len=30] [--connection_type=wireless]

Prints the layout found, the rows read and the cleaning record, label counts, the
features used and excluded (with the reason), receivers, windows per label and
coverage at the given window settings. A file without the label columns is
summarised as unlabeled: it can be scored with `ctal_jax.score`, not trained on.
Exits 0 on valid input, and 2 with a one-line error on invalid input.
"""

import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

from ctal_jax.data import domain as domain_lib
from ctal_jax.data import loading
from ctal_jax.data import windows as windows_lib

_SEQ_LEN = flags.DEFINE_integer("seq_len", 30, "Flows per window.")
_STRIDE = flags.DEFINE_integer("stride", None, "Flows between window starts (default: seq_len).")
_MIN_LEN = flags.DEFINE_integer("min_len", None, "Shortest padded window (default: seq_len, no padding).")
_LABEL_RULE = flags.DEFINE_string("label_rule", "any", "'any' or the attack fraction that makes a window an attack.")
_CONNECTION_TYPE = flags.DEFINE_string("connection_type", None, "Keep only rows of this connection type (ACI layout).")


def _percent(part: int, whole: int) -> str:
  return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def format_summary(domain: domain_lib.Domain) -> str:
  """Return a readable multi-line summary of a loaded, windowed domain."""
  layout, record, frame = domain.layout, domain.loaded.record, domain.loaded.frame
  labeled = domain.loaded.labeled
  lines = [
      f"Layout: {layout.name} ({layout.dataset}: {layout.description})"
      + ("" if labeled else ", read without its label columns"),
      f"Files: {', '.join(record.files)}",
      f"Time column {layout.time!r} parsed as {record.time_format!r}; receiver column {layout.receiver!r}.",
      f"Rows: {record.rows_read} read, {record.rows_kept} kept.",
  ]
  for reason, count in record.rows_dropped.items():
    lines.append(f"  dropped {count}: {reason}")
  for column, repairs in record.values_repaired.items():
    for repair, count in repairs.items():
      lines.append(f"  repaired {count} in {column!r}: {repair} (imputed with the fitted median)")
  if record.extra_columns:
    lines.append(f"  ignored columns outside the layout: {', '.join(record.extra_columns)}")

  if labeled:
    benign = int((frame["label"] == 0).sum())
    lines.append(f"Labels: {benign} benign, {frame.height - benign} attack flows ({_percent(frame.height - benign, frame.height)} attack).")
    for category, count in frame["category"].drop_nulls().value_counts(sort=True).iter_rows():
      lines.append(f"  {category}: {count}")
  else:
    lines.append(
        f"Labels: none (no {' or '.join(repr(c) for c in layout.label_columns)} column). The file "
        "can be scored with ctal_jax.score, but not trained or evaluated on.")

  lines.append(f"Features: {layout.n_features} inputs = {len(layout.features)} numeric + "
               f"{layout.protocol!r} one-hot over {[name for _, name in layout.protocols] + ['other']}.")
  lines.append("Excluded columns:")
  for column, reason in layout.excluded:
    if column != layout.protocol:
      lines.append(f"  {column}: {reason}")

  spec = domain.spec
  counts = np.bincount(domain.receiver_codes)
  lines.append(
      f"Receivers: {counts.size} distinct; {int((counts >= spec.seq_len).sum())} with at least "
      f"{spec.seq_len} flows; {int((counts == 1).sum())} seen once."
  )
  attack_windows = int(domain.label.sum())
  settings = f"seq_len={spec.seq_len}, stride={spec.stride}, min_len={spec.min_len}"
  if labeled:
    lines.append(
        f"Windows ({settings}, label_rule={spec.label_rule}): {domain.n_windows} = "
        f"{domain.n_windows - attack_windows} benign + {attack_windows} attack.")
  else:
    lines.append(f"Windows ({settings}): {domain.n_windows}.")
  if domain.n_windows == 0:
    lines.append(
        f"  no window: no receiver has {spec.shortest} flows, so training and scoring need "
        "more flows per receiver (or a smaller --seq_len).")
  for name, count in zip(domain.category_names, domain.categories.sum(axis=0)):
    lines.append(f"  windows with {name}: {int(count)}")
  lines.append("Coverage (share that ends up in a window):")
  for key, share in domain.coverage.items():
    if not labeled and ("benign" in key or "attack" in key):
      continue
    lines.append(f"  {key.replace('_', ' ')}: {share['in_windows']} of {share['total']} ({_percent(share['in_windows'], share['total'])})")
  return "\n".join(lines)


def window_spec_from_flags() -> windows_lib.WindowSpec:
  seq_len = _SEQ_LEN.value
  min_len = _MIN_LEN.value or seq_len
  return windows_lib.WindowSpec(
      seq_len=seq_len,
      stride=_STRIDE.value or seq_len,
      min_len=min_len,
      tail="pad" if min_len < seq_len else "drop",
      label_rule=_LABEL_RULE.value,
  )


def load_labeled_or_not(paths: list[str], spec: windows_lib.WindowSpec) -> domain_lib.Domain:
  """Load with labels when the files have the label columns, else without them."""
  loaded = loading.load(
      paths, connection_type=_CONNECTION_TYPE.value, labels=loading.has_labels(paths))
  return domain_lib.build_domain(loaded, spec)


def main(argv):
  paths = argv[1:]
  if not paths:
    print("error: no input; usage: python -m ctal_jax.inspect PATH [PATH ...]", file=sys.stderr)
    return 2
  try:
    spec = window_spec_from_flags()
    domain = load_labeled_or_not(paths, spec)
  except (loading.DataError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  print(format_summary(domain))
  return 0


def run():
  # absl prints the __main__ module's docstring as --help; under the ctal-inspect
  # script that module is the installer's wrapper, which has none.
  sys.modules["__main__"].__doc__ = __doc__
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
  run()
