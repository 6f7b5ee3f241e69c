"""Built-in example data: generated flow records in the two data sets' file layouts.

The real data sets are large third-party downloads, so the example run, the tests and
the benchmarks use generated files instead. The generator writes one Argus CSV in the
`wustl_iiot_2021` layout (the source domain) and one CICFlowMeter CSV in the
`aci_iot_2023` layout (the target domain). Each file has the layout's columns in file
order, its integer and float columns, its first time format and its label values. Each
also has the traps of the real file:

- a few heavy receivers that fill 30-flow windows, and a long tail of receivers seen a
  few times (in WUSTL also IPv6 and MAC addresses and the string `0`);
- attacks in bursts on some receivers, so that some windows of a receiver contain
  attacks and the others are benign;
- rows out of time order: WUSTL rows are shuffled, ACI rows are ordered by flow end;
- in ACI, `inf` and `NaN` in `Flow Bytes/s` and `Flow Packets/s` (flows of zero
  duration), and the flow's epoch time in microseconds (about 1.6988e15) in `Idle *`.

Each kind of traffic (a benign service or an attack) draws its flow statistics from
simple distributions, picked to resemble published rows of both data sets. Attack
kinds differ from benign ones as the attacks do: scans are tiny short flows to many
ports, floods have high packet rates, slowloris flows are long with few bytes. The
values are plausible, not real, so use them to exercise the pipeline and never to
report detection quality.

Run `python -m ctal_jax.data.example FOLDER` to write both files into FOLDER.
"""

import argparse
import dataclasses
import datetime
import os
import pathlib
import sys
import uuid
from collections.abc import Callable, Sequence

from absl import logging
import numpy as np
import polars as pl

from ctal_jax.data import layouts

# Part of every file name. Increase it whenever the output for a given seed and size
# changes, so that files cached by an older version are not reused.
FORMAT_VERSION = 1

# With seed 0: 536 full 30-flow windows per receiver, 451 benign and 85 attack.
DEFAULT_SOURCE_ROWS = 18_000
# With seed 0: 450 full 30-flow windows per receiver, 248 benign and 202 attack. The
# wireless rows alone give 166 benign windows, so the `paper` variant (150) runs.
DEFAULT_TARGET_ROWS = 16_000

# Below this, the rarest attack kinds get too few rows to form a burst.
MIN_ROWS = 1_000

_SOURCE_LAYOUT = layouts.WUSTL_IIOT_2021
_TARGET_LAYOUT = layouts.ACI_IOT_2023

# Separate random streams, so that each file depends only on its own seed and size.
_SOURCE_STREAM = 1
_TARGET_STREAM = 2


@dataclasses.dataclass(frozen=True)
class ExampleFiles:
  """Paths of the two generated CSV files."""

  source: pathlib.Path
  target: pathlib.Path


# --- Public API -----------------------------------------------------------------------


def default_cache_folder() -> pathlib.Path:
  """Create and return `$CTAL_CACHE` if set, else `~/.cache/ctal_jax/example`."""
  configured = os.environ.get("CTAL_CACHE")
  if configured:
    folder = pathlib.Path(configured).expanduser()
  else:
    folder = pathlib.Path.home() / ".cache" / "ctal_jax" / "example"
  folder.mkdir(parents=True, exist_ok=True)
  return folder


def example_file_names(seed: int, source_rows: int, target_rows: int) -> tuple[str, str]:
  """Return the file names that encode the format version, the seed and the row count."""
  return (
      f"wustl_example_v{FORMAT_VERSION}_s{seed}_n{source_rows}.csv",
      f"aci_example_v{FORMAT_VERSION}_s{seed}_n{target_rows}.csv",
  )


def write_example_data(
    folder: str | os.PathLike,
    *,
    seed: int = 0,
    source_rows: int = DEFAULT_SOURCE_ROWS,
    target_rows: int = DEFAULT_TARGET_ROWS,
    overwrite: bool = False,
) -> ExampleFiles:
  """Write the source and target example CSVs into `folder` and return their paths.

  A file that already exists under its name is reused unless `overwrite` is set. The
  name encodes the seed and the row count. Files are written atomically, so an
  interrupted run leaves no partial file to reuse. The same seed and sizes give
  byte-identical files.

  Raises:
    ValueError: if a row count is below `MIN_ROWS` or the seed is negative.
  """
  _check_arguments(source_rows, seed)
  _check_arguments(target_rows, seed)
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  source_name, target_name = example_file_names(seed, source_rows, target_rows)
  files = ExampleFiles(source=folder / source_name, target=folder / target_name)

  if overwrite or not files.source.exists():
    write_source_csv(files.source, source_rows, seed)
  else:
    logging.info("Reusing example source data %s.", files.source)

  if overwrite or not files.target.exists():
    write_target_csv(files.target, target_rows, seed)
  else:
    logging.info("Reusing example target data %s.", files.target)
  return files


def write_source_csv(path: str | os.PathLike, rows: int, seed: int) -> pathlib.Path:
  """Write `rows` generated Argus flows in the `wustl_iiot_2021` layout to `path`.

  Floats are written with 6 decimals, as in the published CSV. The write is atomic.
  """
  frame = source_frame(rows, seed)
  path = _write_csv_atomically(frame, path, float_precision=6)
  logging.info("Wrote %d example source rows to %s.", rows, path)
  return path


def write_target_csv(path: str | os.PathLike, rows: int, seed: int) -> pathlib.Path:
  """Write `rows` generated CICFlowMeter flows in the `aci_iot_2023` layout to `path`.

  Floats are written at full precision. The write is atomic.
  """
  frame = target_frame(rows, seed)
  path = _write_csv_atomically(frame, path, float_precision=None)
  logging.info("Wrote %d example target rows to %s.", rows, path)
  return path


def source_frame(rows: int, seed: int) -> pl.DataFrame:
  """Generate `rows` Argus flows with the columns of the `wustl_iiot_2021` layout."""
  _check_arguments(rows, seed)
  rng = np.random.default_rng([seed, _SOURCE_STREAM])
  book = _AddressBook()
  counts = _count_rows(_SOURCE_KINDS, rows)
  parts = _lay_out_kinds(rng, _SOURCE_KINDS, counts, _SOURCE_SPAN_SECONDS, 0.0, book)
  fields = _draw_fields(rng, _SOURCE_KINDS, parts, book, _SOURCE_FIELDS)
  columns = _source_columns(rng, fields, book)

  # The published file is shuffled, so no row order carries time.
  order = rng.permutation(rows)
  return _assemble(columns, _SOURCE_LAYOUT, order)


def target_frame(rows: int, seed: int) -> pl.DataFrame:
  """Generate `rows` CICFlowMeter flows with the columns of the `aci_iot_2023` layout."""
  _check_arguments(rows, seed)
  rng = np.random.default_rng([seed, _TARGET_STREAM])
  book = _AddressBook()
  for address, connection in _ACI_HOSTS.items():
    book.code(address, connection)
  counts = _count_rows(_TARGET_KINDS, rows)
  parts = _lay_out_kinds(rng, _TARGET_KINDS, counts, _TARGET_SPAN_SECONDS,
                         _TARGET_ATTACKS_FROM, book)
  fields = _draw_fields(rng, _TARGET_KINDS, parts, book, _TARGET_FIELDS)
  columns = _target_columns(rng, fields, book)

  # CICFlowMeter writes a flow when it ends, so the file is only roughly in start order.
  end = fields["seconds"] + fields["duration"] / 1e6
  order = np.argsort(end, kind="stable")
  return _assemble(columns, _TARGET_LAYOUT, order)


def _check_arguments(rows: int, seed: int) -> None:
  if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < MIN_ROWS:
    raise ValueError(f"rows must be an integer of at least {MIN_ROWS}, got {rows!r}.")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")


def _write_csv_atomically(
    frame: pl.DataFrame, path: str | os.PathLike, *, float_precision: int | None,
) -> pathlib.Path:
  """Write `frame` to a temporary file beside `path`, then rename it to `path`.

  The rename is atomic on one file system, so readers see either no file or a
  complete one, even when the write is interrupted.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  # A unique name that polars creates itself, so the file gets the usual permissions
  # (tempfile.mkstemp would make it readable by its owner only).
  temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
  try:
    # Batches of 64k rows wrote a 1.2M-row file in 3.5 s instead of 4.8 s (polars 2.1, 2 CPUs).
    frame.write_csv(temporary, float_precision=float_precision, batch_size=65536)
    os.replace(temporary, path)
  except BaseException:
    pathlib.Path(temporary).unlink(missing_ok=True)
    raise
  return path


def _assemble(columns: dict[str, np.ndarray | pl.Series], layout: layouts.Layout,
              order: np.ndarray) -> pl.DataFrame:
  """Build the frame in the layout's column order, with the rows in `order`."""
  missing = [name for name in layout.columns if name not in columns]
  extra = [name for name in columns if name not in layout.columns]
  if missing or extra:
    raise AssertionError(
        f"Generated columns do not match layout {layout.name}: missing {missing}, extra {extra}.")

  series = []
  for name in layout.columns:
    values = columns[name]
    if isinstance(values, pl.Series):
      series.append(values.alias(name))
    else:
      series.append(pl.Series(name, values))
  return pl.DataFrame(series)[pl.Series(order)]


# --- Addresses ------------------------------------------------------------------------


class _AddressBook:
  """Addresses of one generated file, each stored once and referred to by an integer code.

  Drawing integer codes keeps the generation vectorised. The strings are gathered
  only when the frame is built.
  """

  def __init__(self):
    self._codes: dict[str, int] = {}
    self.addresses: list[str] = []
    # Connection type of each address (`wired`, `wireless`), or None when unknown.
    self.connections: list[str | None] = []

  def code(self, address: str, connection: str | None = None) -> int:
    if address not in self._codes:
      self._codes[address] = len(self.addresses)
      self.addresses.append(address)
      self.connections.append(connection)
    return self._codes[address]

  def codes(self, addresses: Sequence[str]) -> np.ndarray:
    return np.array([self.code(address) for address in addresses], dtype=np.int64)

  def series(self, name: str, codes: np.ndarray) -> pl.Series:
    return pl.Series(name, self.addresses, dtype=pl.String).gather(codes)


# Public first octets of large cloud and hosting networks, for external addresses.
_PUBLIC_FIRST_OCTETS = (3, 13, 18, 20, 23, 34, 35, 40, 44, 52, 54, 64, 74, 91, 104, 142,
                        151, 157, 172, 185, 199, 203)


def _public_addresses(rng: np.random.Generator, count: int) -> list[str]:
  """Draw `count` random public IPv4 addresses (repeats are possible)."""
  first = rng.choice(np.array(_PUBLIC_FIRST_OCTETS), size=count)
  second = rng.integers(0, 256, size=count)
  third = rng.integers(0, 256, size=count)
  fourth = rng.integers(1, 255, size=count)
  # 172.16.0.0/12 is private, so move those addresses out of it.
  second = np.where((first == 172) & (second >= 16) & (second < 32), second + 16, second)
  return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(first, second, third, fourth)]


def _address_pool(rng: np.random.Generator, book: _AddressBook, size: int) -> np.ndarray:
  """Add `size` random public addresses to the book and return their codes."""
  return book.codes(_public_addresses(rng, max(1, size)))


# --- Random draws -----------------------------------------------------------------------


def _lognormal(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
  return median * np.exp(sigma * rng.standard_normal(n))


def _counts(rng: np.random.Generator, n: int, median: float, sigma: float,
            low: int = 1, high: int | None = None) -> np.ndarray:
  """Draw log-normal integers around `median`, clipped to [low, high]."""
  values = np.rint(_lognormal(rng, n, median, sigma)).astype(np.int64)
  return np.clip(values, low, high)


def _pick(rng: np.random.Generator, n: int, values: Sequence | np.ndarray,
          weights: Sequence[float] | None = None) -> np.ndarray:
  """Draw `n` of `values` with replacement, with probabilities proportional to `weights`."""
  values = np.asarray(values)
  probabilities = None
  if weights is not None:
    probabilities = np.asarray(weights, dtype=np.float64)
    probabilities = probabilities / probabilities.sum()
  return values[rng.choice(len(values), size=n, p=probabilities)]


def _ephemeral_ports(rng: np.random.Generator, n: int) -> np.ndarray:
  return rng.integers(49152, 65536, size=n)


def _scan_ports(rng: np.random.Generator, n: int) -> np.ndarray:
  """Destination ports of a port scan: well-known services half of the time, else any."""
  common = _pick(rng, n, (21, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 502, 554,
                          1883, 3306, 3389, 5900, 8080, 8443))
  anywhere = rng.integers(1, 65536, size=n)
  return np.where(rng.random(n) < 0.5, common, anywhere)


# --- Traffic plan -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Bursts:
  """Grouping of an attack kind's rows into bursts on victim receivers."""

  victims: tuple[str, ...]
  weights: tuple[float, ...]
  # Flows per burst and burst length in seconds, each drawn uniformly from the range.
  flows: tuple[int, int]
  seconds: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class _Rows:
  """Rows of one traffic kind, laid out in time."""

  n: int
  # Flow start, in seconds after the capture start.
  seconds: np.ndarray
  # Address code of the burst's victim, or -1 for steady benign traffic.
  victim: np.ndarray
  # Burst number within the kind (-1 for steady traffic) and row position in the burst.
  burst: np.ndarray
  position: np.ndarray

  @property
  def bursts(self) -> int:
    return int(self.burst.max()) + 1 if self.n else 0


_DrawFunction = Callable[[np.random.Generator, _Rows, "_AddressBook"], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class _Kind:
  """A kind of traffic: one benign service or one attack."""

  name: str
  # Value of the layout's category column on these rows.
  category: str
  # Benign kinds: share of the benign rows. Attack kinds: share of all rows.
  share: float
  draw: _DrawFunction
  # None for steady benign traffic spread over the whole capture.
  bursts: _Bursts | None = None


def _count_rows(kinds: Sequence[_Kind], rows: int) -> list[int]:
  """Split `rows` between the kinds: attacks by their share of all rows, benign the rest."""
  counts = [0] * len(kinds)
  attack = [i for i, kind in enumerate(kinds) if kind.bursts is not None]
  benign = [i for i, kind in enumerate(kinds) if kind.bursts is None]
  for i in attack:
    counts[i] = max(2, round(kinds[i].share * rows))

  # Largest remainder, so that the benign counts add up exactly.
  benign_rows = rows - sum(counts)
  shares = np.array([kinds[i].share for i in benign])
  exact = shares / shares.sum() * benign_rows
  floors = np.floor(exact).astype(np.int64)
  leftover = benign_rows - int(floors.sum())
  largest = np.argsort(-(exact - floors), kind="stable")[:leftover]
  floors[largest] += 1
  for i, count in zip(benign, floors):
    counts[i] = int(count)
  return counts


def _lay_out_kinds(rng: np.random.Generator, kinds: Sequence[_Kind], counts: Sequence[int],
                   span: float, attacks_from: float, book: _AddressBook) -> list[_Rows]:
  """Place each kind's rows in time. Bursts start after `attacks_from` times the span."""
  parts = []
  for kind, n in zip(kinds, counts):
    if kind.bursts is None:
      parts.append(_lay_out_steady(rng, n, span))
    else:
      parts.append(_lay_out_bursts(rng, n, kind.bursts, span, attacks_from * span, book))
  return parts


def _lay_out_steady(rng: np.random.Generator, n: int, span: float) -> _Rows:
  none = np.full(n, -1, dtype=np.int64)
  return _Rows(n=n, seconds=rng.uniform(0.0, span, size=n), victim=none, burst=none,
               position=np.zeros(n, dtype=np.int64))


def _lay_out_bursts(rng: np.random.Generator, n: int, bursts: _Bursts, span: float,
                    earliest: float, book: _AddressBook) -> _Rows:
  """Cut `n` rows into bursts of about `bursts.flows` rows, each on one victim."""
  mean_flows = sum(bursts.flows) / 2
  count = int(min(n, max(1, round(n / mean_flows))))
  cuts = np.sort(rng.choice(np.arange(1, n), size=count - 1, replace=False))
  sizes = np.diff(np.concatenate([[0], cuts, [n]]))
  burst = np.repeat(np.arange(count), sizes)
  position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)

  length = rng.uniform(*bursts.seconds, size=count)
  start = rng.uniform(earliest, span - length)
  victims = _pick(rng, count, book.codes(bursts.victims), bursts.weights)
  seconds = start[burst] + rng.random(n) * length[burst]
  return _Rows(n=n, seconds=seconds, victim=victims[burst], burst=burst, position=position)


def _per_burst(rng: np.random.Generator, rows: _Rows, values: Sequence | np.ndarray,
               weights: Sequence[float] | None = None) -> np.ndarray:
  """Draw one of `values` per burst and repeat it on the burst's rows."""
  return _pick(rng, rows.bursts, values, weights)[rows.burst]


def _draw_fields(rng: np.random.Generator, kinds: Sequence[_Kind], parts: Sequence[_Rows],
                 book: _AddressBook, schema: dict[str, type]) -> dict[str, np.ndarray]:
  """Run each kind's draw function and stack the results into whole-file arrays.

  A field that a kind does not return is zero on its rows. Besides the schema's fields
  the result has `seconds` (flow start) and `kind` (index into `kinds`).
  """
  total = sum(part.n for part in parts)
  fields = {name: np.zeros(total, dtype=dtype) for name, dtype in schema.items()}
  fields["seconds"] = np.concatenate([part.seconds for part in parts])
  fields["kind"] = np.repeat(np.arange(len(kinds)), [part.n for part in parts])

  start = 0
  for kind, part in zip(kinds, parts):
    drawn = kind.draw(rng, part, book)
    unknown = set(drawn) - set(schema)
    if unknown:
      raise AssertionError(f"Traffic kind {kind.name} drew unknown fields {sorted(unknown)}.")
    for name, values in drawn.items():
      fields[name][start:start + part.n] = values
    start += part.n
  return fields


# --- WUSTL-IIOT-2021 (Argus) ------------------------------------------------------------

# The capture: 7 hours of one day at 1 s resolution, like the published file.
_SOURCE_START = datetime.datetime(2019, 8, 19, 9, 46, 0)
_SOURCE_SPAN_SECONDS = 7 * 3600.0
# `IdleTime` holds the capture clock in epoch seconds through float32. In the published
# rows it reads as 2019-01-29 or -30, six hours after StartTime's time of day.
_SOURCE_IDLE_START = datetime.datetime(2019, 1, 29, 15, 46, 0, tzinfo=datetime.timezone.utc)

_PLC = "192.168.0.2"
_PLC_2 = "192.168.0.10"
_GATEWAY = "192.168.0.1"
_HMI = "192.168.0.20"
_WORKSTATION = "192.168.0.44"
_BROADCAST = "192.168.0.255"
_MULTICAST = (("224.0.0.252", 17, 5355), ("239.255.255.250", 17, 1900), ("224.0.0.22", 2, 0))
# Rare receivers that are not IPv4 addresses: (receiver, sender, protocol, destination
# port). Argus prints a non-IP frame's ethertype as the protocol (ARP 2054, LLDP 35020).
_ODD_RECEIVERS = (
    ("0", "0", 2054, 0),
    ("01:80:c2:00:00:0e", "e4:90:69:3b:21:7a", 35020, 0),
    ("fe80::6c1f:2a4b:9d03:5e71", "fe80::20c:29ff:fe4b:7d10", 58, 0),
    ("fe80::a1b2:33ff:fe4c:10de", "fe80::20c:29ff:fe4b:7d10", 58, 0),
    ("fe80::1d:88ff:fe92:c3a0", "fe80::a1b2:33ff:fe4c:10de", 58, 0),
    ("ff02::1:2", "fe80::6c1f:2a4b:9d03:5e71", 17, 547),
)
# External attackers use documentation prefixes (RFC 5737), so they cannot be mistaken
# for real hosts.
_DOS_SOURCES = ("203.0.113.45", "203.0.113.112", "198.51.100.7")
_RECON_SOURCE = "192.168.0.66"
_INJECTION_SOURCE = "198.51.100.23"
_BACKDOOR_SOURCE = "192.0.2.77"

_SOURCE_FIELDS = {
    "sender": np.int64, "receiver": np.int64, "proto": np.int64, "sport": np.int64,
    "dport": np.int64, "src_pkts": np.int64, "dst_pkts": np.int64, "src_bytes": np.int64,
    "dst_bytes": np.int64, "src_loss": np.int64, "dst_loss": np.int64,
    "src_app": np.int64, "dst_app": np.int64, "src_ttl": np.int64, "dst_ttl": np.int64,
    "duration": np.float64, "syn_ack": np.float64, "ack_data": np.float64,
    # Whether SrcJitAct repeats SrcJitter, as on ARP and DoS rows of the published file.
    "jitter_active": np.bool_,
}


def _tcp_handshake(rng: np.random.Generator, n: int, rtt: float) -> dict[str, np.ndarray]:
  """Draw Argus `SynAck` and `AckDat` times in seconds around the round-trip time `rtt`."""
  return {"syn_ack": _lognormal(rng, n, rtt, 0.4), "ack_data": _lognormal(rng, n, rtt / 10, 0.5)}


def _session_sizes(rng: np.random.Generator, src_pkts: np.ndarray, dst_pkts: np.ndarray,
                   src_payload: tuple[float, float], dst_payload: tuple[float, float]
                   ) -> dict[str, np.ndarray]:
  """Draw bytes of a TCP session: 62 bytes of headers per packet plus a payload."""
  n = len(src_pkts)
  src_app = np.rint(src_pkts * rng.uniform(*src_payload, size=n)).astype(np.int64)
  dst_app = np.rint(dst_pkts * rng.uniform(*dst_payload, size=n)).astype(np.int64)
  return {
      "src_app": src_app, "dst_app": dst_app,
      "src_bytes": 62 * src_pkts + src_app, "dst_bytes": 62 * dst_pkts + dst_app,
  }


def _modbus_poll(rng, rows, book):
  """Draw the HMI polling the PLCs over Modbus/TCP, one short session per poll."""
  n = rows.n
  transactions = _pick(rng, n, (1, 2, 3), (0.2, 0.6, 0.2))
  src_pkts = 6 + 2 * transactions
  dst_pkts = 4 + 2 * transactions
  lossy = rng.random(n) < 0.2
  return {
      "sender": np.full(n, book.code(_HMI)),
      "receiver": _pick(rng, n, book.codes((_PLC, _PLC_2)), (0.8, 0.2)),
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 502),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      "src_app": 12 * transactions, "dst_app": 10 * transactions,
      "src_bytes": 62 * src_pkts + 12 * transactions,
      "dst_bytes": 61 * dst_pkts + 10 * transactions,
      "src_loss": np.where(lossy, rng.integers(1, 3, size=n), 0),
      "dst_loss": np.where(lossy, rng.integers(1, 3, size=n), 0),
      "duration": _lognormal(rng, n, 0.052, 0.2),
      "src_ttl": np.full(n, 128), "dst_ttl": np.full(n, 64),
      **_tcp_handshake(rng, n, 0.0012),
  }


def _arp(rng, rows, book):
  """Draw hosts resolving the gateway's MAC address: repeated requests, some with replies."""
  n = rows.n
  src_pkts = _counts(rng, n, 3, 0.9, 1, 40)
  dst_pkts = np.where(rng.random(n) < 0.6, src_pkts, 0)
  return {
      "sender": _pick(rng, n, book.codes((_HMI, _PLC_2, _PLC, _WORKSTATION))),
      "receiver": np.full(n, book.code(_GATEWAY)),
      "proto": np.full(n, 2054), "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      "src_bytes": 62 * src_pkts, "dst_bytes": 60 * dst_pkts,
      "src_app": 34 * src_pkts, "dst_app": 34 * dst_pkts,
      "duration": np.where(src_pkts > 1, (src_pkts - 1) * rng.uniform(0.2, 0.35, size=n), 0.0),
      "jitter_active": np.ones(n, dtype=bool),
  }


def _dns(rng, rows, book):
  """Draw name lookups at the gateway, one query and mostly one reply."""
  n = rows.n
  dst_pkts = (rng.random(n) < 0.95).astype(np.int64)
  src_bytes = rng.integers(70, 100, size=n)
  dst_bytes = np.where(dst_pkts > 0, rng.integers(90, 350, size=n), 0)
  return {
      "sender": _pick(rng, n, book.codes((_HMI, _WORKSTATION, _PLC_2)), (0.5, 0.4, 0.1)),
      "receiver": np.full(n, book.code(_GATEWAY)),
      "proto": np.full(n, 17), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 53),
      "src_pkts": np.ones(n, dtype=np.int64), "dst_pkts": dst_pkts,
      "src_bytes": src_bytes, "dst_bytes": dst_bytes,
      "src_app": src_bytes - 42, "dst_app": np.where(dst_pkts > 0, dst_bytes - 42, 0),
      "duration": np.where(dst_pkts > 0, _lognormal(rng, n, 0.004, 0.8), 0.0),
      "src_ttl": np.full(n, 128), "dst_ttl": np.where(dst_pkts > 0, 64, 0),
  }


def _windows_session(rng, rows, book, sender: str, receiver: str, ports: Sequence[int]):
  """Draw Windows TCP sessions (remote desktop, file sharing, RPC) between two LAN hosts."""
  n = rows.n
  src_pkts = _counts(rng, n, 20, 1.0, 3, 5000)
  dst_pkts = np.maximum(1, np.rint(src_pkts * rng.uniform(0.6, 1.1, size=n))).astype(np.int64)
  return {
      "sender": np.full(n, book.code(sender)), "receiver": np.full(n, book.code(receiver)),
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n), "dport": _pick(rng, n, ports),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      **_session_sizes(rng, src_pkts, dst_pkts, (10, 300), (20, 900)),
      "duration": np.clip(_lognormal(rng, n, 2.0, 1.0), 0.005, 120.0),
      "src_ttl": np.full(n, 128), "dst_ttl": np.full(n, 128),
      **_tcp_handshake(rng, n, 0.0004),
  }


def _remote_admin(rng, rows, book):
  return _windows_session(rng, rows, book, _WORKSTATION, _HMI, (3389, 445, 135))


def _file_share(rng, rows, book):
  return _windows_session(rng, rows, book, _HMI, _WORKSTATION, (445, 139))


def _netbios(rng, rows, book):
  """Draw NetBIOS name and datagram broadcasts to the subnet."""
  n = rows.n
  port = _pick(rng, n, (137, 138))
  src_pkts = _counts(rng, n, 2, 0.6, 1, 6)
  per_packet = np.where(port == 137, 92, 243)
  return {
      "sender": _pick(rng, n, book.codes((_HMI, _WORKSTATION, _PLC_2))),
      "receiver": np.full(n, book.code(_BROADCAST)),
      "proto": np.full(n, 17), "sport": port, "dport": port,
      "src_pkts": src_pkts, "src_bytes": per_packet * src_pkts,
      "src_app": (per_packet - 42) * src_pkts,
      "duration": np.where(src_pkts > 1, (src_pkts - 1) * rng.uniform(0.5, 1.5, size=n), 0.0),
      "src_ttl": np.full(n, 128),
  }


def _multicast(rng, rows, book):
  """Draw name resolution and discovery to multicast groups (LLMNR, SSDP) and IGMP reports."""
  n = rows.n
  group = _pick(rng, n, np.arange(len(_MULTICAST)), (0.4, 0.4, 0.2))
  receivers = book.codes([address for address, _, _ in _MULTICAST])
  protocols = np.array([proto for _, proto, _ in _MULTICAST])
  ports = np.array([port for _, _, port in _MULTICAST])
  src_pkts = _counts(rng, n, 2, 0.5, 1, 8)
  per_packet = np.where(protocols[group] == 2, 60, rng.integers(64, 180, size=n))
  udp = protocols[group] == 17
  return {
      "sender": _pick(rng, n, book.codes((_HMI, _WORKSTATION, _PLC_2))),
      "receiver": receivers[group], "proto": protocols[group],
      "sport": np.where(udp, _ephemeral_ports(rng, n), 0), "dport": ports[group],
      "src_pkts": src_pkts, "src_bytes": per_packet * src_pkts,
      "src_app": np.where(udp, (per_packet - 42) * src_pkts, 0),
      "duration": np.where(src_pkts > 1, (src_pkts - 1) * rng.uniform(0.1, 1.0, size=n), 0.0),
      "src_ttl": np.ones(n, dtype=np.int64),
  }


def _internet(rng, rows, book):
  """Draw web traffic to many external servers, each seen a few times."""
  n = rows.n
  pool = _address_pool(rng, book, n // 3)
  src_pkts = _counts(rng, n, 14, 0.9, 3, 3000)
  dst_pkts = np.maximum(1, np.rint(src_pkts * rng.uniform(0.7, 1.3, size=n))).astype(np.int64)
  return {
      "sender": _pick(rng, n, book.codes((_HMI, _WORKSTATION)), (0.3, 0.7)),
      "receiver": _pick(rng, n, pool),
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n),
      "dport": _pick(rng, n, (443, 80), (0.8, 0.2)),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      **_session_sizes(rng, src_pkts, dst_pkts, (10, 200), (40, 1300)),
      "duration": np.clip(_lognormal(rng, n, 1.5, 1.3), 0.01, 120.0),
      "src_ttl": np.full(n, 128), "dst_ttl": rng.integers(44, 60, size=n),
      **_tcp_handshake(rng, n, 0.03),
  }


def _odd_receivers(rng, rows, book):
  """Draw flows to rare IPv6, MAC-address and `0` receivers, in turn so that each appears."""
  n = rows.n
  slot = (np.arange(n) + rng.integers(len(_ODD_RECEIVERS))) % len(_ODD_RECEIVERS)
  receivers = book.codes([receiver for receiver, _, _, _ in _ODD_RECEIVERS])
  senders = book.codes([sender for _, sender, _, _ in _ODD_RECEIVERS])
  protocols = np.array([proto for _, _, proto, _ in _ODD_RECEIVERS])
  ports = np.array([port for _, _, _, port in _ODD_RECEIVERS])
  src_pkts = _counts(rng, n, 1.5, 0.5, 1, 4)
  per_packet = rng.integers(60, 160, size=n)
  return {
      "sender": senders[slot], "receiver": receivers[slot], "proto": protocols[slot],
      "sport": np.where(ports[slot] > 0, 546, 0), "dport": ports[slot],
      "src_pkts": src_pkts, "src_bytes": per_packet * src_pkts,
      "duration": np.where(src_pkts > 1, (src_pkts - 1) * rng.uniform(0.5, 2.0, size=n), 0.0),
      # IPv6 neighbour discovery uses hop limit 255. The other rows stay on the link.
      "src_ttl": np.where(protocols[slot] == 58, 255, np.where(protocols[slot] == 17, 1, 0)),
  }


def _dos(rng, rows, book):
  """Draw TCP floods from external hosts: many lost packets per flow, mostly without reply."""
  n = rows.n
  flood = rng.random(n) < 0.5
  src_pkts = np.where(flood, _counts(rng, n, 80, 0.9, 10, 3000), _counts(rng, n, 4, 0.5, 2, 12))
  answered = rng.random(n) < np.where(flood, 0.3, 0.2)
  dst_pkts = np.where(answered, _counts(rng, n, 2, 0.6, 1, 10), 0)
  duration = np.where(flood, _lognormal(rng, n, 0.3, 0.8), _lognormal(rng, n, 1.0, 0.6))
  loss_rate = np.where(flood, rng.uniform(0.0, 0.3, size=n), rng.uniform(0.3, 0.8, size=n))
  return {
      "sender": _per_burst(rng, rows, book.codes(_DOS_SOURCES), (0.6, 0.2, 0.2)),
      "receiver": rows.victim,
      "proto": np.full(n, 6), "sport": rng.integers(1024, 65536, size=n),
      "dport": _per_burst(rng, rows, (502, 80), (0.6, 0.4)),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      "src_bytes": 62 * src_pkts, "dst_bytes": 60 * dst_pkts,
      "src_loss": np.rint(src_pkts * loss_rate).astype(np.int64),
      "duration": np.clip(duration, 0.01, 5.0),
      "src_ttl": _per_burst(rng, rows, (64, 128, 140)), "dst_ttl": np.where(answered, 64, 0),
      "syn_ack": np.where(answered, _lognormal(rng, n, 0.0015, 0.4), 0.0),
      "jitter_active": np.ones(n, dtype=bool),
  }


def _reconnaissance(rng, rows, book):
  """Draw port probes of the victim (one or two packets each) and ARP sweeps of the subnet."""
  n = rows.n
  sweep = rng.random(n) < 0.2
  hosts = rng.integers(2, 255, size=n)
  swept = book.codes([f"192.168.0.{host}" for host in range(2, 255)])[hosts - 2]
  live_hosts = book.codes((_GATEWAY, _PLC, _PLC_2, _HMI, _WORKSTATION))
  udp = rng.random(n) < 0.1
  src_pkts = np.where(sweep, 1, _pick(rng, n, (1, 2), (0.7, 0.3)))
  answered = np.where(sweep, np.isin(swept, live_hosts), rng.random(n) < 0.85)
  dst_pkts = answered.astype(np.int64)
  probe_bytes = np.where(udp, 42, 60)
  return {
      "sender": np.full(n, book.code(_RECON_SOURCE)),
      "receiver": np.where(sweep, swept, rows.victim),
      "proto": np.where(sweep, 2054, np.where(udp, 17, 6)),
      "sport": np.where(sweep, 0, _per_burst(rng, rows, np.arange(40000, 65000))),
      "dport": np.where(sweep, 0, _scan_ports(rng, n)),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      "src_bytes": np.where(sweep, 42, probe_bytes) * src_pkts,
      "dst_bytes": np.where(sweep, 60, 54) * dst_pkts,
      "duration": np.where(src_pkts + dst_pkts > 1, _lognormal(rng, n, 0.0004, 0.6), 0.0),
      "src_ttl": np.where(sweep, 0, _per_burst(rng, rows, np.arange(37, 60))),
      "dst_ttl": np.where(answered & ~sweep, 64, 0),
      "syn_ack": np.where(answered & ~sweep & ~udp, _lognormal(rng, n, 0.0003, 0.4), 0.0),
  }


def _command_injection(rng, rows, book):
  """Draw forged Modbus write requests: short sessions with larger requests and another TTL."""
  n = rows.n
  writes = rng.integers(1, 4, size=n)
  src_pkts = 4 + writes
  dst_pkts = 3 + writes
  return {
      "sender": np.full(n, book.code(_INJECTION_SOURCE)), "receiver": rows.victim,
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 502),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      "src_app": 19 * writes, "dst_app": 12 * writes,
      "src_bytes": 62 * src_pkts + 19 * writes, "dst_bytes": 61 * dst_pkts + 12 * writes,
      "duration": _lognormal(rng, n, 0.12, 0.5),
      "src_ttl": np.full(n, 64), "dst_ttl": np.full(n, 64),
      **_tcp_handshake(rng, n, 0.02),
  }


def _backdoor(rng, rows, book):
  """Draw a remote-control channel: long sessions to an unusual port."""
  n = rows.n
  src_pkts = _counts(rng, n, 40, 1.0, 4, 5000)
  dst_pkts = np.maximum(1, np.rint(src_pkts * rng.uniform(0.5, 1.2, size=n))).astype(np.int64)
  return {
      "sender": np.full(n, book.code(_BACKDOOR_SOURCE)), "receiver": rows.victim,
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n),
      "dport": _per_burst(rng, rows, (4444, 8443, 1337)),
      "src_pkts": src_pkts, "dst_pkts": dst_pkts,
      **_session_sizes(rng, src_pkts, dst_pkts, (20, 600), (10, 1300)),
      "duration": np.clip(_lognormal(rng, n, 12.0, 0.8), 0.5, 300.0),
      "src_ttl": _per_burst(rng, rows, np.arange(48, 57)), "dst_ttl": np.full(n, 128),
      **_tcp_handshake(rng, n, 0.05),
  }


_SOURCE_KINDS = (
    _Kind("modbus_poll", "normal", 0.62, _modbus_poll),
    _Kind("arp", "normal", 0.05, _arp),
    _Kind("dns", "normal", 0.04, _dns),
    _Kind("remote_admin", "normal", 0.05, _remote_admin),
    _Kind("file_share", "normal", 0.04, _file_share),
    _Kind("netbios", "normal", 0.05, _netbios),
    _Kind("multicast", "normal", 0.04, _multicast),
    _Kind("internet", "normal", 0.10, _internet),
    _Kind("odd_receivers", "normal", 0.004, _odd_receivers),
    _Kind("dos", "DoS", 0.045, _dos,
          _Bursts((_PLC, _PLC_2), (0.7, 0.3), flows=(60, 160), seconds=(60.0, 400.0))),
    _Kind("reconnaissance", "Reconn", 0.018, _reconnaissance,
          _Bursts((_PLC, _PLC_2, _HMI), (0.5, 0.3, 0.2), flows=(40, 150), seconds=(20.0, 180.0))),
    _Kind("command_injection", "CommInj", 0.004, _command_injection,
          _Bursts((_PLC, _PLC_2), (0.7, 0.3), flows=(4, 12), seconds=(10.0, 60.0))),
    _Kind("backdoor", "Backdoor", 0.004, _backdoor,
          _Bursts((_PLC_2, _HMI), (0.6, 0.4), flows=(4, 16), seconds=(120.0, 900.0))),
)


def _source_times(fields: dict[str, np.ndarray]) -> dict[str, pl.Series]:
  """Format StartTime and LastTime (1 s resolution) and compute the float32 IdleTime."""
  start_epoch = int(_SOURCE_START.replace(tzinfo=datetime.timezone.utc).timestamp())
  start = np.floor(fields["seconds"]).astype(np.int64)
  last = np.floor(fields["seconds"] + fields["duration"]).astype(np.int64)
  time_format = _SOURCE_LAYOUT.time_formats[0]

  def format_times(name, offsets):
    epoch = pl.Series(name, start_epoch + offsets)
    return pl.from_epoch(epoch, time_unit="s").dt.strftime(time_format).alias(name)

  idle_epoch = int(_SOURCE_IDLE_START.timestamp()) + start
  return {
      "StartTime": format_times("StartTime", start),
      "LastTime": format_times("LastTime", last),
      "IdleTime": idle_epoch.astype(np.float32).astype(np.int64),
  }


def _per_second(count: np.ndarray, duration: np.ndarray) -> np.ndarray:
  """Argus rate: (count - 1) / duration, 0 without a second packet or a duration."""
  with np.errstate(divide="ignore", invalid="ignore"):
    rate = np.where((duration > 0) & (count > 1), (count - 1) / duration, 0.0)
  return rate.astype(np.float32).astype(np.float64)


def _load(total_bytes: np.ndarray, packets: np.ndarray, duration: np.ndarray) -> np.ndarray:
  """Argus load in bits per second, counting all packets but the first."""
  with np.errstate(divide="ignore", invalid="ignore"):
    load = np.where((duration > 0) & (packets > 1),
                    8.0 * total_bytes * (packets - 1) / packets / duration, 0.0)
  return load.astype(np.float32).astype(np.float64)


def _interpacket_ms(duration: np.ndarray, packets: np.ndarray) -> np.ndarray:
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(packets > 1, 1000.0 * duration / (packets - 1), 0.0)


def _source_columns(rng: np.random.Generator, fields: dict[str, np.ndarray],
                    book: _AddressBook) -> dict[str, np.ndarray | pl.Series]:
  """Derive every Argus column from the drawn fields."""
  n = len(fields["kind"])
  proto = fields["proto"]
  duration = np.round(fields["duration"], 6)
  src_pkts, dst_pkts = fields["src_pkts"], fields["dst_pkts"]
  src_bytes, dst_bytes = fields["src_bytes"], fields["dst_bytes"]
  loss = fields["src_loss"] + fields["dst_loss"]
  total_pkts = src_pkts + dst_pkts
  tcp = proto == 6

  src_load = _load(src_bytes, src_pkts, duration)
  dst_load = _load(dst_bytes, dst_pkts, duration)
  src_interval = _interpacket_ms(duration, src_pkts)
  dst_interval = _interpacket_ms(duration, dst_pkts)
  src_jitter = np.where(src_pkts > 2, src_interval * _lognormal(rng, n, 0.5, 1.0), 0.0)
  dst_jitter = np.where(dst_pkts > 2, dst_interval * _lognormal(rng, n, 0.5, 1.0), 0.0)
  syn_ack = np.where(tcp & (dst_pkts > 0), fields["syn_ack"], 0.0)
  tcp_rtt = np.where(tcp & (dst_pkts > 0), syn_ack + fields["ack_data"], 0.0)
  ip = (proto == 6) | (proto == 17) | (proto == 1) | (proto == 2)
  categories = np.array([kind.category for kind in _SOURCE_KINDS])[fields["kind"]]

  columns = {
      **_source_times(fields),
      "SrcAddr": book.series("SrcAddr", fields["sender"]),
      _SOURCE_LAYOUT.receiver: book.series(_SOURCE_LAYOUT.receiver, fields["receiver"]),
      # Integer-truncated in the published file.
      "Mean": np.floor(duration).astype(np.int64),
      "Sport": fields["sport"], "Dport": fields["dport"],
      "SrcPkts": src_pkts, "DstPkts": dst_pkts, "TotPkts": total_pkts,
      "DstBytes": dst_bytes, "SrcBytes": src_bytes, "TotBytes": src_bytes + dst_bytes,
      "SrcLoad": src_load, "DstLoad": dst_load,
      "Load": (src_load + dst_load).astype(np.float32).astype(np.float64),
      "SrcRate": _per_second(src_pkts, duration), "DstRate": _per_second(dst_pkts, duration),
      "Rate": _per_second(total_pkts, duration),
      "SrcLoss": fields["src_loss"], "DstLoss": fields["dst_loss"], "Loss": loss,
      "pLoss": np.where(loss > 0, 100.0 * loss / np.maximum(total_pkts + loss, 1), 0.0),
      "SrcJitter": src_jitter, "DstJitter": dst_jitter,
      "SIntPkt": src_interval, "DIntPkt": dst_interval,
      _SOURCE_LAYOUT.protocol: proto, "Dur": duration, "TcpRtt": tcp_rtt,
      "Sum": duration, "Min": duration, "Max": duration, "RunTime": duration,
      "sDSb": np.zeros(n, dtype=np.int64), "sTos": np.zeros(n, dtype=np.int64),
      "sTtl": fields["src_ttl"], "dTtl": fields["dst_ttl"],
      "sIpId": np.where(ip, rng.integers(1, 65536, size=n), 0),
      "dIpId": np.where(ip & (dst_pkts > 0), rng.integers(1, 65536, size=n), 0),
      "SAppBytes": fields["src_app"], "DAppBytes": fields["dst_app"],
      "TotAppByte": fields["src_app"] + fields["dst_app"],
      "SynAck": syn_ack,
      "SrcJitAct": np.where(fields["jitter_active"], src_jitter, 0.0),
      "DstJitAct": np.zeros(n),
      _SOURCE_LAYOUT.category: categories,
      _SOURCE_LAYOUT.label: (categories != "normal").astype(np.int64),
  }
  return columns


# --- ACI-IoT-2023 (CICFlowMeter) --------------------------------------------------------

# 36 hours from 2023-11-01 09:40 local time. The file writes dates as `%Y-%d-%m`, so
# the capture days read 2023-01-11 and 2023-02-11, which also parse as `%Y-%m-%d`.
_TARGET_START = datetime.datetime(2023, 11, 1, 9, 40, 0)
_TARGET_SPAN_SECONDS = 36 * 3600.0
# Local time is UTC-4 (EDT), which makes the epoch in `Idle *` about 1.698846e15 at the start.
_TARGET_UTC_OFFSET_SECONDS = 4 * 3600
# Attack bursts start only in the last 60% of the capture, so that every receiver, the
# victims included, has benign-only windows from the first part.
_TARGET_ATTACKS_FROM = 0.4

_ROUTER = "192.168.1.1"
_HUB = "192.168.1.10"
_SERVER = "192.168.1.11"
_CAMERAS = ("192.168.1.12", "192.168.1.13", "192.168.1.18")
_PHONE = "192.168.1.20"
_LAPTOP = "192.168.1.21"
_TV = "192.168.1.17"
_ATTACKERS = ("192.168.1.200", "192.168.1.201")
# Every host of the home network and how it is connected.
_ACI_HOSTS = {
    _ROUTER: "wired", _HUB: "wired", _SERVER: "wired",
    "192.168.1.12": "wireless",  # camera
    "192.168.1.13": "wireless",  # camera
    "192.168.1.14": "wireless",  # smart plug
    "192.168.1.15": "wireless",  # thermostat
    "192.168.1.16": "wireless",  # smart speaker
    _TV: "wired",
    "192.168.1.18": "wireless",  # doorbell camera
    "192.168.1.19": "wired",     # light bridge
    _PHONE: "wireless", _LAPTOP: "wireless",
    _ATTACKERS[0]: "wired", _ATTACKERS[1]: "wireless",
}
_IOT_DEVICES = tuple(f"192.168.1.{host}" for host in range(10, 20))
_CLIENTS = (_PHONE, _LAPTOP, _TV)
_CLOUD = ("52.58.21.140", "3.120.88.17", "35.156.204.9", "18.197.33.250", "54.93.110.4",
          "34.107.221.82", "104.18.32.47", "142.250.185.78", "151.101.65.69", "20.42.65.92")
_BROKERS = ("52.29.141.33", "3.67.12.190")
_DISCOVERY = (("239.255.255.250", 1900), ("224.0.0.251", 5353))

_TARGET_FIELDS = {
    "sender": np.int64, "receiver": np.int64,
    # Host whose connection type the row gets, or -1 for the sender. A host of unknown
    # type falls back to the receiver's type, then to `wired`.
    "host": np.int64,
    "proto": np.int64, "sport": np.int64, "dport": np.int64,
    "fwd_pkts": np.int64, "bwd_pkts": np.int64,
    # Mean payload bytes per packet and its relative spread within the flow.
    "fwd_size": np.float64, "bwd_size": np.float64,
    "fwd_spread": np.float64, "bwd_spread": np.float64,
    # Flow duration in microseconds.
    "duration": np.int64,
    "syn": np.int64, "fin": np.int64, "rst": np.int64, "ack": np.int64, "urg": np.int64,
    "ece": np.int64, "cwr": np.int64, "fwd_psh": np.int64, "bwd_psh": np.int64,
    "fwd_window": np.int64, "bwd_window": np.int64,
    # Header bytes per packet.
    "header": np.int64,
}


def _tcp_session_flags(rng: np.random.Generator, fwd_pkts: np.ndarray,
                       bwd_pkts: np.ndarray) -> dict[str, np.ndarray]:
  """Draw flag counts of ordinary TCP sessions: a handshake, data with PSH, mostly a close."""
  n = len(fwd_pkts)
  packets = fwd_pkts + bwd_pkts
  return {
      "syn": 1 + (bwd_pkts > 0),
      "fin": np.where(rng.random(n) < 0.8, np.minimum(2, packets - 1), 0),
      "rst": (rng.random(n) < 0.05).astype(np.int64),
      "ack": np.maximum(packets - 1, 0),
      "fwd_psh": np.rint(fwd_pkts * rng.uniform(0.1, 0.5, size=n)).astype(np.int64),
      "bwd_psh": np.rint(bwd_pkts * rng.uniform(0.1, 0.6, size=n)).astype(np.int64),
      "fwd_window": _pick(rng, n, (64240, 65535, 29200, 14600)),
      "bwd_window": np.where(bwd_pkts > 0, _pick(rng, n, (65535, 28960, 64240, 5792)), 0),
      "header": _pick(rng, n, (20, 32), (0.4, 0.6)),
  }


def _microseconds(values: np.ndarray, low: float, high: float) -> np.ndarray:
  return np.rint(np.clip(values, low, high)).astype(np.int64)


def _tcp_session(rng: np.random.Generator, n: int, *, fwd_median: float, bwd_ratio: tuple,
                 fwd_size: tuple, bwd_size: tuple, duration_median: float,
                 duration_sigma: float) -> dict[str, np.ndarray]:
  """Draw packets, sizes, duration and flags of a benign TCP session."""
  fwd_pkts = _counts(rng, n, fwd_median, 0.8, 2, 5000)
  bwd_pkts = np.maximum(1, np.rint(fwd_pkts * rng.uniform(*bwd_ratio, size=n))).astype(np.int64)
  return {
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "fwd_size": rng.uniform(*fwd_size, size=n), "bwd_size": rng.uniform(*bwd_size, size=n),
      "fwd_spread": rng.uniform(0.2, 1.0, size=n), "bwd_spread": rng.uniform(0.2, 1.0, size=n),
      "duration": _microseconds(_lognormal(rng, n, duration_median, duration_sigma), 100, 1.2e8),
      **_tcp_session_flags(rng, fwd_pkts, bwd_pkts),
  }


def _end_flow_tails(rng: np.random.Generator, drawn: dict[str, np.ndarray],
                    fraction: float) -> dict[str, np.ndarray]:
  """Turn `fraction` of the flows into split-off tails: 1-2 bare ACKs, no duration.

  The published ACI head rows contain such a tail (a repeated flow id, 2 packets, no
  duration). With no duration, the flow rates are `inf` packets and `NaN` bytes per second.
  """
  n = len(drawn["fwd_pkts"])
  tail = rng.random(n) < fraction
  fwd_pkts = rng.integers(1, 3, size=n)
  replaced = {
      "fwd_pkts": fwd_pkts, "bwd_pkts": 0, "fwd_size": 0.0, "bwd_size": 0.0,
      "duration": 0, "syn": 0, "fin": 0, "rst": 0, "ack": fwd_pkts, "fwd_psh": 0,
      "bwd_psh": 0, "bwd_window": 0,
  }
  for name, value in replaced.items():
    drawn[name] = np.where(tail, value, drawn[name])
  return drawn


def _aci_dns(rng, rows, book):
  """Draw name lookups at the router, some without reply."""
  n = rows.n
  fwd_pkts = _pick(rng, n, (1, 2), (0.85, 0.15))
  bwd_pkts = np.where(rng.random(n) < 0.95, fwd_pkts, 0)
  duration = np.where(bwd_pkts > 0, _lognormal(rng, n, 8000, 0.9),
                      np.where(fwd_pkts > 1, _lognormal(rng, n, 1e6, 0.5), 0))
  return {
      "sender": _pick(rng, n, book.codes(_IOT_DEVICES + _CLIENTS)),
      "receiver": np.full(n, book.code(_ROUTER)), "host": np.full(n, -1),
      "proto": np.full(n, 17), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 53),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "fwd_size": rng.uniform(28, 60, size=n), "bwd_size": rng.uniform(45, 300, size=n),
      "fwd_spread": np.full(n, 0.05), "bwd_spread": np.full(n, 0.05),
      "duration": np.rint(duration).astype(np.int64), "header": np.full(n, 8),
  }


def _cloud_tls(rng, rows, book):
  """Draw device TLS sessions to a few popular cloud endpoints and to many rarely seen ones."""
  n = rows.n
  popular = _pick(rng, n, book.codes(_CLOUD), (8, 6, 5, 4, 4, 3, 3, 2, 2, 2))
  rare = _pick(rng, n, _address_pool(rng, book, n // 5))
  drawn = _tcp_session(rng, n, fwd_median=12, bwd_ratio=(0.6, 1.4), fwd_size=(40, 350),
                       bwd_size=(80, 1300), duration_median=2.5e6, duration_sigma=1.5)
  drawn = _end_flow_tails(rng, drawn, 0.03)
  return {
      **drawn,
      "sender": _pick(rng, n, book.codes(_IOT_DEVICES + _CLIENTS)),
      "receiver": np.where(rng.random(n) < 0.75, popular, rare), "host": np.full(n, -1),
      "dport": _pick(rng, n, (443, 8443, 80), (0.85, 0.05, 0.1)),
  }


def _mqtt(rng, rows, book):
  """Draw device sessions with cloud MQTT brokers: few small messages, kept open."""
  n = rows.n
  drawn = _tcp_session(rng, n, fwd_median=4, bwd_ratio=(0.5, 1.0), fwd_size=(2, 120),
                       bwd_size=(2, 60), duration_median=4e5, duration_sigma=1.4)
  return {
      **drawn,
      "sender": _pick(rng, n, book.codes(_IOT_DEVICES)),
      "receiver": _pick(rng, n, book.codes(_BROKERS)), "host": np.full(n, -1),
      "dport": np.full(n, 8883),
  }


def _local_http(rng, rows, book):
  """Draw the phone and the laptop controlling devices over their local web interfaces."""
  n = rows.n
  # The hub, the server, the first camera and the TV are used most.
  weights = (3, 3, 2, 1.5, 1, 1, 1, 2, 1, 1)
  drawn = _tcp_session(rng, n, fwd_median=6, bwd_ratio=(0.8, 2.0), fwd_size=(20, 400),
                       bwd_size=(50, 1200), duration_median=1.5e5, duration_sigma=1.2)
  return {
      **drawn,
      "sender": _pick(rng, n, book.codes((_PHONE, _LAPTOP)), (0.6, 0.4)),
      "receiver": _pick(rng, n, book.codes(_IOT_DEVICES), weights), "host": np.full(n, -1),
      "dport": _pick(rng, n, (80, 8080, 443, 8008, 9999, 554), (4, 3, 2, 1, 1, 1)),
  }


def _hub_poll(rng, rows, book):
  """Draw the smart-home hub polling the plug, thermostat, speaker, bridge and cameras."""
  n = rows.n
  receivers = ("192.168.1.14", "192.168.1.15", "192.168.1.16", "192.168.1.19") + _CAMERAS
  drawn = _tcp_session(rng, n, fwd_median=4, bwd_ratio=(0.8, 1.2), fwd_size=(20, 150),
                       bwd_size=(20, 400), duration_median=3e4, duration_sigma=0.8)
  return {
      **drawn,
      "sender": np.full(n, book.code(_HUB)),
      "receiver": _pick(rng, n, book.codes(receivers), (3, 3, 3, 3, 1, 1, 1)),
      "host": np.full(n, -1), "dport": _pick(rng, n, (80, 8080, 9999), (2, 1, 1)),
  }


def _camera_stream(rng, rows, book):
  """Draw the home server pulling video from the cameras: long flows of full-size packets."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 40, 0.6, 5, 2000)
  bwd_pkts = _counts(rng, n, 400, 0.6, 20, 20000)
  return {
      "sender": np.full(n, book.code(_SERVER)),
      "receiver": _pick(rng, n, book.codes(_CAMERAS)), "host": np.full(n, -1),
      "proto": np.full(n, 6), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 554),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "fwd_size": rng.uniform(0, 40, size=n), "bwd_size": rng.uniform(900, 1400, size=n),
      "fwd_spread": rng.uniform(0.5, 1.0, size=n), "bwd_spread": rng.uniform(0.05, 0.5, size=n),
      "duration": _microseconds(_lognormal(rng, n, 6e7, 0.5), 1e6, 1.2e8),
      **_tcp_session_flags(rng, fwd_pkts, bwd_pkts),
  }


def _ntp(rng, rows, book):
  """Draw time queries to many public NTP servers, one packet each way."""
  n = rows.n
  bwd_pkts = (rng.random(n) < 0.9).astype(np.int64)
  return {
      "sender": _pick(rng, n, book.codes(_IOT_DEVICES)),
      "receiver": _pick(rng, n, _address_pool(rng, book, n // 3)), "host": np.full(n, -1),
      "proto": np.full(n, 17), "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 123),
      "fwd_pkts": np.ones(n, dtype=np.int64), "bwd_pkts": bwd_pkts,
      "fwd_size": np.full(n, 48.0), "bwd_size": np.full(n, 48.0),
      "duration": np.where(bwd_pkts > 0, _microseconds(_lognormal(rng, n, 2e4, 0.6), 500, 1e6), 0),
      "header": np.full(n, 8),
  }


def _discovery(rng, rows, book):
  """Draw SSDP and mDNS announcements to multicast groups. One in ten is a single packet."""
  n = rows.n
  group = rng.integers(0, len(_DISCOVERY), size=n)
  ports = np.array([port for _, port in _DISCOVERY])
  fwd_pkts = np.where(rng.random(n) < 0.1, 1, _counts(rng, n, 3, 0.5, 2, 12))
  return {
      "sender": _pick(rng, n, book.codes(_IOT_DEVICES + _CLIENTS)),
      "receiver": book.codes([address for address, _ in _DISCOVERY])[group],
      "host": np.full(n, -1), "proto": np.full(n, 17),
      "sport": np.where(ports[group] == 5353, 5353, _ephemeral_ports(rng, n)),
      "dport": ports[group], "fwd_pkts": fwd_pkts,
      "fwd_size": rng.uniform(100, 450, size=n), "fwd_spread": rng.uniform(0.0, 0.5, size=n),
      "duration": np.where(fwd_pkts > 1, _microseconds(_lognormal(rng, n, 1.2e6, 0.6), 1e3, 1e7), 0),
      "header": np.full(n, 8),
  }


def _dhcp(rng, rows, book):
  """Draw DHCP broadcasts of devices that have no address yet."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 2, 0.5, 1, 6)
  return {
      "sender": np.full(n, book.code("0.0.0.0")),
      "receiver": np.full(n, book.code("255.255.255.255")),
      "host": _pick(rng, n, book.codes(_IOT_DEVICES + _CLIENTS)),
      "proto": np.full(n, 17), "sport": np.full(n, 68), "dport": np.full(n, 67),
      "fwd_pkts": fwd_pkts, "fwd_size": np.full(n, 300.0), "fwd_spread": np.full(n, 0.05),
      "duration": np.where(fwd_pkts > 1, _microseconds(_lognormal(rng, n, 2e6, 0.4), 1e4, 1e7), 0),
      "header": np.full(n, 8),
  }


def _web_tail(rng, rows, book):
  """Draw browsing from the phone, the laptop and the TV, where most servers are seen once."""
  n = rows.n
  drawn = _tcp_session(rng, n, fwd_median=10, bwd_ratio=(0.8, 1.6), fwd_size=(40, 500),
                       bwd_size=(100, 1400), duration_median=1e6, duration_sigma=1.5)
  return {
      **drawn,
      "sender": _pick(rng, n, book.codes(_CLIENTS)),
      "receiver": _pick(rng, n, _address_pool(rng, book, int(n * 0.7))), "host": np.full(n, -1),
      "dport": _pick(rng, n, (443, 80), (0.8, 0.2)),
  }


def _port_scan(rng, rows, book):
  """Draw SYN probes to many ports: one packet each way, no payload, microseconds long."""
  n = rows.n
  answered = rng.random(n) < 0.95
  open_port = answered & (rng.random(n) < 0.03)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": np.full(n, 6),
      "sport": _per_burst(rng, rows, np.arange(40000, 65000)), "dport": _scan_ports(rng, n),
      "fwd_pkts": np.ones(n, dtype=np.int64), "bwd_pkts": answered.astype(np.int64),
      "duration": np.where(answered, _microseconds(_lognormal(rng, n, 60, 0.8), 1, 1e5), 0),
      "syn": 1 + open_port, "rst": answered.astype(np.int64), "ack": answered.astype(np.int64),
      "fwd_window": np.full(n, 1024), "bwd_window": np.where(open_port, 29200, 0),
      "header": np.full(n, 24),
  }


def _os_scan(rng, rows, book):
  """Draw fingerprinting probes: odd flag combinations and window sizes, one or two packets."""
  n = rows.n
  proto = _pick(rng, n, (6, 17, 1), (0.8, 0.1, 0.1))
  tcp = proto == 6
  fwd_pkts = _pick(rng, n, (1, 2))
  bwd_pkts = (rng.random(n) < 0.6).astype(np.int64)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": proto,
      "sport": np.where(proto == 1, 0, rng.integers(30000, 65000, size=n)),
      "dport": np.where(proto == 1, 0, np.where(rng.random(n) < 0.5, 80, _scan_ports(rng, n))),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "fwd_size": np.where(proto == 17, 300.0, np.where(proto == 1, 120.0, 0.0)),
      "bwd_size": np.where(proto == 1, 120.0, 0.0),
      "duration": np.where(fwd_pkts + bwd_pkts > 1, _microseconds(_lognormal(rng, n, 300, 1.0), 1, 1e6), 0),
      "syn": np.where(tcp, (rng.random(n) < 0.7) * fwd_pkts, 0),
      "fin": np.where(tcp, rng.random(n) < 0.3, 0), "urg": np.where(tcp, rng.random(n) < 0.3, 0),
      "ece": np.where(tcp, rng.random(n) < 0.3, 0), "cwr": np.where(tcp, rng.random(n) < 0.2, 0),
      "rst": np.where(tcp, bwd_pkts, 0), "ack": np.where(tcp, bwd_pkts, 0),
      "fwd_psh": np.where(tcp, rng.random(n) < 0.2, 0),
      "fwd_window": np.where(tcp, _pick(rng, n, (1, 63, 4, 16, 512, 3, 128, 256, 31337, 32768, 65535)), 0),
      "bwd_window": np.where(tcp & (bwd_pkts > 0), _pick(rng, n, (0, 5792, 29200)), 0),
      "header": np.where(tcp, _pick(rng, n, (20, 40, 24)), 8),
  }


def _vulnerability_scan(rng, rows, book):
  """Draw many short web and service requests that probe for known weaknesses."""
  n = rows.n
  drawn = _tcp_session(rng, n, fwd_median=6, bwd_ratio=(0.4, 1.2), fwd_size=(60, 600),
                       bwd_size=(0, 900), duration_median=2e4, duration_sigma=1.0)
  return {
      **drawn,
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1),
      "dport": _pick(rng, n, (80, 443, 8080, 8443, 22, 21, 23, 554, 1883, 5000)),
      "fwd_psh": drawn["fwd_pkts"] - 1,
  }


def _ping_sweep(rng, rows, book):
  """Draw ICMP echo and timestamp probes to every address of the subnet, in turn."""
  n = rows.n
  offset = _per_burst(rng, rows, np.arange(254))
  hosts = 1 + (offset + rows.position) % 254
  receiver = book.codes([f"192.168.1.{host}" for host in range(1, 255)])[hosts - 1]
  alive = np.isin(receiver, book.codes(tuple(_ACI_HOSTS)))
  bwd_pkts = np.where(alive, 2, 0)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": receiver,
      "host": np.full(n, -1), "proto": np.full(n, 1),
      "fwd_pkts": np.full(n, 2), "bwd_pkts": bwd_pkts,
      "fwd_size": np.full(n, 8.0), "bwd_size": np.full(n, 8.0),
      "duration": _microseconds(_lognormal(rng, n, 400, 0.6), 2, 1e5), "header": np.full(n, 8),
  }


def _flood_duration(rng: np.random.Generator, packets: np.ndarray, rate: float) -> np.ndarray:
  """Microseconds to send `packets` at about `rate` packets per second."""
  rates = _lognormal(rng, len(packets), rate, 0.8)
  return _microseconds(np.maximum(packets - 1, 1) / rates * 1e6, 1, 1.2e8)


def _icmp_flood(rng, rows, book):
  """Draw ICMP echo floods: thousands of packets per flow at tens of thousands per second."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 2000, 1.0, 100, 60000)
  size = _per_burst(rng, rows, (56.0, 64.0, 1472.0))
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": np.full(n, 1),
      "fwd_pkts": fwd_pkts,
      "bwd_pkts": np.where(rng.random(n) < 0.5, np.rint(fwd_pkts * rng.uniform(0.3, 1.0, size=n)), 0),
      "fwd_size": size, "bwd_size": size,
      "duration": _flood_duration(rng, fwd_pkts, 2e4), "header": np.full(n, 8),
  }


def _dns_flood(rng, rows, book):
  """Draw floods of DNS queries at the router, partly answered."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 100, 1.0, 5, 20000)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": np.full(n, 17),
      "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 53),
      "fwd_pkts": fwd_pkts, "bwd_pkts": np.rint(fwd_pkts * rng.uniform(0.0, 0.5, size=n)),
      "fwd_size": rng.uniform(28, 60, size=n), "bwd_size": rng.uniform(40, 500, size=n),
      "fwd_spread": np.full(n, 0.2), "bwd_spread": np.full(n, 0.5),
      "duration": _flood_duration(rng, fwd_pkts, 3000), "header": np.full(n, 8),
  }


def _syn_flood(rng, rows, book):
  """Draw SYNs from spoofed addresses. A flow is one SYN with its SYN-ACK, or a fast SYN stream."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 40, 1.2, 1, 20000)
  bwd_pkts = np.where(fwd_pkts == 1, 1, np.rint(fwd_pkts * rng.uniform(0.0, 0.2, size=n)))
  bwd_pkts = bwd_pkts.astype(np.int64)
  stream = _flood_duration(rng, fwd_pkts + bwd_pkts, 3e4)
  return {
      "sender": _address_pool(rng, book, n), "receiver": rows.victim, "host": rows.victim,
      "proto": np.full(n, 6), "sport": rng.integers(1024, 65536, size=n),
      "dport": _per_burst(rng, rows, (80, 554, 443)),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "duration": np.where(fwd_pkts > 1, stream, _microseconds(_lognormal(rng, n, 300, 0.5), 1, 1e5)),
      "syn": fwd_pkts + bwd_pkts, "ack": bwd_pkts,
      "fwd_window": _pick(rng, n, (64, 512, 1024)), "bwd_window": np.where(bwd_pkts > 0, 29200, 0),
      "header": np.full(n, 20),
  }


def _udp_flood(rng, rows, book):
  """Draw floods of large UDP datagrams to random ports, without reply."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 500, 1.0, 10, 50000)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": np.full(n, 17),
      "sport": _ephemeral_ports(rng, n), "dport": rng.integers(1, 65536, size=n),
      "fwd_pkts": fwd_pkts, "fwd_size": _per_burst(rng, rows, (512.0, 1024.0, 1400.0)),
      "duration": _flood_duration(rng, fwd_pkts, 2e4), "header": np.full(n, 8),
  }


def _slowloris(rng, rows, book):
  """Draw connections held open for about a minute by a few bytes of header now and then."""
  n = rows.n
  fwd_pkts = _counts(rng, n, 15, 0.6, 4, 200)
  bwd_pkts = _counts(rng, n, 4, 0.5, 1, 20)
  return {
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "proto": np.full(n, 6),
      "sport": _ephemeral_ports(rng, n), "dport": np.full(n, 80),
      "fwd_pkts": fwd_pkts, "bwd_pkts": bwd_pkts,
      "fwd_size": rng.uniform(5, 30, size=n), "fwd_spread": rng.uniform(0.2, 0.8, size=n),
      "duration": _microseconds(_lognormal(rng, n, 6e7, 0.6), 1e7, 1.2e8),
      "syn": np.full(n, 2), "ack": fwd_pkts + bwd_pkts - 1, "fwd_psh": fwd_pkts - 2,
      "fwd_window": np.full(n, 29200), "bwd_window": np.full(n, 28960), "header": np.full(n, 32),
  }


def _dictionary_attack(rng, rows, book):
  """Draw password guessing over SSH on the server and telnet on the hub."""
  n = rows.n
  drawn = _tcp_session(rng, n, fwd_median=14, bwd_ratio=(0.7, 1.0), fwd_size=(40, 140),
                       bwd_size=(40, 260), duration_median=2.5e6, duration_sigma=0.5)
  return {
      **drawn,
      "sender": _per_burst(rng, rows, book.codes(_ATTACKERS)), "receiver": rows.victim,
      "host": np.full(n, -1), "dport": np.where(rows.victim == book.code(_SERVER), 22, 23),
      "fwd_psh": np.rint(drawn["fwd_pkts"] * 0.6).astype(np.int64),
  }


_TARGET_KINDS = (
    _Kind("dns", "Benign", 0.14, _aci_dns),
    _Kind("cloud_tls", "Benign", 0.20, _cloud_tls),
    _Kind("mqtt", "Benign", 0.06, _mqtt),
    _Kind("local_http", "Benign", 0.26, _local_http),
    _Kind("hub_poll", "Benign", 0.08, _hub_poll),
    _Kind("camera_stream", "Benign", 0.05, _camera_stream),
    _Kind("ntp", "Benign", 0.03, _ntp),
    _Kind("discovery", "Benign", 0.08, _discovery),
    _Kind("dhcp", "Benign", 0.02, _dhcp),
    _Kind("web_tail", "Benign", 0.08, _web_tail),
    _Kind("port_scan", "Port Scan", 0.11, _port_scan,
          _Bursts(("192.168.1.12", _TV, _HUB, _SERVER), (0.3, 0.2, 0.2, 0.3),
                  flows=(150, 400), seconds=(30.0, 300.0))),
    _Kind("icmp_flood", "ICMP Flood", 0.04, _icmp_flood,
          _Bursts(("192.168.1.13", "192.168.1.14", "192.168.1.16"), (0.4, 0.3, 0.3),
                  flows=(30, 100), seconds=(60.0, 600.0))),
    _Kind("ping_sweep", "Ping Sweep", 0.025, _ping_sweep,
          _Bursts((_ROUTER,), (1.0,), flows=(200, 254), seconds=(5.0, 30.0))),
    _Kind("dns_flood", "DNS Flood", 0.03, _dns_flood,
          _Bursts((_ROUTER,), (1.0,), flows=(40, 150), seconds=(60.0, 600.0))),
    _Kind("vulnerability_scan", "Vulnerability Scan", 0.025, _vulnerability_scan,
          _Bursts((_HUB, _SERVER, _TV), (0.4, 0.4, 0.2), flows=(60, 200), seconds=(300.0, 1800.0))),
    _Kind("os_scan", "OS Scan", 0.025, _os_scan,
          _Bursts(("192.168.1.12", "192.168.1.15", "192.168.1.18", "192.168.1.19"),
                  (0.25, 0.25, 0.25, 0.25), flows=(30, 90), seconds=(20.0, 120.0))),
    _Kind("slowloris", "Slowloris", 0.02, _slowloris,
          _Bursts((_SERVER, _HUB), (0.6, 0.4), flows=(40, 120), seconds=(900.0, 3600.0))),
    _Kind("syn_flood", "SYN Flood", 0.02, _syn_flood,
          _Bursts(_CAMERAS[:2], (0.5, 0.5), flows=(60, 200), seconds=(30.0, 300.0))),
    _Kind("dictionary_attack", "Dictionary Attack", 0.02, _dictionary_attack,
          _Bursts((_SERVER, _HUB), (0.6, 0.4), flows=(40, 150), seconds=(600.0, 2400.0))),
    _Kind("udp_flood", "UDP Flood", 0.01, _udp_flood,
          _Bursts(("192.168.1.16", "192.168.1.14"), (0.5, 0.5), flows=(20, 80),
                  seconds=(30.0, 300.0))),
)


@dataclasses.dataclass(frozen=True)
class _Lengths:
  """Payload lengths of one direction of each flow."""

  total: np.ndarray
  mean: np.ndarray
  std: np.ndarray
  min: np.ndarray
  max: np.ndarray


def _lengths(packets: np.ndarray, size: np.ndarray, spread: np.ndarray) -> _Lengths:
  """Derive total, mean, std, min and max payload lengths from the per-packet mean size."""
  total = np.rint(packets * size)
  with np.errstate(divide="ignore", invalid="ignore"):
    mean = np.where(packets > 0, total / packets, 0.0)
  several = packets > 1
  low = np.where(several, np.floor(mean * (1 - np.clip(spread, 0, 1))), np.rint(mean))
  high = np.where(several, np.ceil(mean * (1 + spread)), np.rint(mean))
  std = np.where(several, mean * spread * 0.6, 0.0)
  return _Lengths(total=total, mean=mean, std=std, min=low, max=high)


@dataclasses.dataclass(frozen=True)
class _Intervals:
  """Inter-arrival times of one set of packets, in microseconds."""

  total: np.ndarray
  mean: np.ndarray
  std: np.ndarray
  max: np.ndarray
  min: np.ndarray


def _intervals(rng: np.random.Generator, packets: np.ndarray, span: np.ndarray) -> _Intervals:
  """Derive inter-arrival statistics of `packets` spread over `span` microseconds."""
  n = len(packets)
  gaps = np.maximum(packets - 1, 0)
  with np.errstate(divide="ignore", invalid="ignore"):
    mean = np.where(gaps > 0, span / gaps, 0.0)
  several = gaps > 1
  largest = np.where(several, mean + (span - mean) * rng.random(n) ** 2, mean)
  smallest = np.where(several, mean * rng.uniform(0.0, 0.5, size=n), mean)
  std = np.where(several, (largest - smallest) * rng.uniform(0.2, 0.4, size=n), 0.0)
  span = np.where(gaps > 0, span, 0.0)
  return _Intervals(total=span, mean=mean, std=std, max=largest, min=smallest)


def _rate(count: np.ndarray, duration: np.ndarray) -> np.ndarray:
  """Count per second over `duration` microseconds, by plain division.

  With no duration the result is `inf` for a positive count and `NaN` for no count,
  the values that the published ACI file contains.
  """
  with np.errstate(divide="ignore", invalid="ignore"):
    return count / (duration / 1e6)


def _idle_columns(rng: np.random.Generator, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Fill `Idle *`: most rows carry the flow's epoch time in microseconds, as in ACI.

  On about 70% of rows Idle Mean, Max and Min equal the epoch time and Idle Std is 0.
  On about 5% one real idle gap is mixed in. The rest has a real gap on long flows and
  0 elsewhere.
  """
  n = len(fields["kind"])
  start_epoch = _TARGET_START.replace(tzinfo=datetime.timezone.utc).timestamp()
  epoch_us = (start_epoch + _TARGET_UTC_OFFSET_SECONDS + fields["seconds"]) * 1e6
  epoch_us = np.floor(epoch_us + fields["duration"])
  gap = np.where(fields["duration"] > 5e6, fields["duration"] * rng.uniform(0.2, 0.9, size=n), 0.0)
  gap = np.floor(gap)

  choice = rng.random(n)
  bug, mixed = choice < 0.70, (choice >= 0.70) & (choice < 0.75)
  mixed_gap = np.maximum(gap, np.floor(rng.uniform(1e6, 1e7, size=n)))
  return {
      "Idle Mean": np.where(bug, epoch_us, np.where(mixed, (epoch_us + mixed_gap) / 2, gap)),
      "Idle Std": np.where(mixed, np.abs(epoch_us - mixed_gap) / np.sqrt(2), 0.0),
      "Idle Max": np.where(bug | mixed, epoch_us, gap),
      "Idle Min": np.where(bug, epoch_us, np.where(mixed, mixed_gap, gap)),
  }


def _active_columns(rng: np.random.Generator, fields: dict[str, np.ndarray],
                    packets: np.ndarray) -> dict[str, np.ndarray]:
  """Fill `Active *` on long flows with several packets, 0 elsewhere."""
  n = len(packets)
  active = (fields["duration"] > 5e6) & (packets >= 4)
  mean = np.where(active, _lognormal(rng, n, 5e4, 1.5), 0.0)
  largest = mean * rng.uniform(1.0, 3.0, size=n)
  smallest = mean * rng.uniform(0.1, 1.0, size=n)
  return {
      "Active Mean": np.floor(mean), "Active Std": np.floor((largest - smallest) * 0.3),
      "Active Max": np.floor(largest), "Active Min": np.floor(smallest),
  }


def _bulk_columns(rng: np.random.Generator, direction: str, packets: np.ndarray,
                  lengths: _Lengths) -> dict[str, np.ndarray]:
  """Draw bulk-transfer averages for flows with at least 8 packets of 400 or more bytes."""
  n = len(packets)
  bulk = (packets >= 8) & (lengths.mean >= 400)
  per_bulk = np.where(bulk, rng.integers(4, 11, size=n), 0)
  bytes_per_bulk = np.floor(per_bulk * lengths.mean)
  seconds = rng.uniform(1e-3, 5e-2, size=n)
  return {
      f"{direction} Bytes/Bulk Avg": bytes_per_bulk,
      f"{direction} Packet/Bulk Avg": per_bulk.astype(np.float64),
      f"{direction} Bulk Rate Avg": np.where(bulk, bytes_per_bulk / seconds, 0.0),
  }


def _connection_types(fields: dict[str, np.ndarray], book: _AddressBook) -> pl.Series:
  """Return each row's connection type: its host's if known, else the receiver's, else wired."""
  known = {"wired": 0, "wireless": 1}
  by_code = np.array([known.get(connection, -1) for connection in book.connections])
  host = np.where(fields["host"] >= 0, fields["host"], fields["sender"])
  value = by_code[host]
  value = np.where(value < 0, by_code[fields["receiver"]], value)
  value = np.where(value < 0, 0, value)
  return pl.Series(["wired", "wireless"]).gather(value)


def _target_columns(rng: np.random.Generator, fields: dict[str, np.ndarray],
                    book: _AddressBook) -> dict[str, np.ndarray | pl.Series]:
  """Derive every CICFlowMeter column from the drawn fields."""
  layout = _TARGET_LAYOUT
  proto = fields["proto"]
  fwd_pkts, bwd_pkts = fields["fwd_pkts"], fields["bwd_pkts"]
  packets = fwd_pkts + bwd_pkts
  duration = fields["duration"]
  fwd = _lengths(fwd_pkts, fields["fwd_size"], fields["fwd_spread"])
  bwd = _lengths(bwd_pkts, fields["bwd_size"], fields["bwd_spread"])
  flow = _intervals(rng, packets, duration.astype(np.float64))
  fwd_iat = _intervals(rng, fwd_pkts, duration * rng.uniform(0.6, 1.0, size=len(proto)))
  bwd_iat = _intervals(rng, bwd_pkts, duration * rng.uniform(0.3, 1.0, size=len(proto)))

  # Lengths over both directions: the pooled mean and variance.
  with np.errstate(divide="ignore", invalid="ignore"):
    mean = np.where(packets > 0, (fwd.total + bwd.total) / packets, 0.0)
    second_moment = (fwd_pkts * (fwd.std ** 2 + fwd.mean ** 2)
                     + bwd_pkts * (bwd.std ** 2 + bwd.mean ** 2)) / np.maximum(packets, 1)
  variance = np.maximum(second_moment - mean ** 2, 0.0)
  smallest = np.where(bwd_pkts > 0, np.minimum(fwd.min, bwd.min), fwd.min)
  largest = np.maximum(fwd.max, bwd.max)
  carries_data = fwd.mean > 0
  data_packets = np.where(proto == 6, np.rint(fwd_pkts * 0.6), fwd_pkts)

  sender = book.series("Src IP", fields["sender"])
  receiver = book.series(layout.receiver, fields["receiver"])
  columns = {
      "Flow ID": _flow_ids(sender, receiver, fields),
      "Src IP": sender, layout.receiver: receiver,
      "Src Port": fields["sport"], "Dst Port": fields["dport"], layout.protocol: proto,
      layout.time: _target_times(fields),
      "Flow Duration": duration,
      "Total Fwd Packet": fwd_pkts, "Total Bwd packets": bwd_pkts,
      "Total Length of Fwd Packet": fwd.total, "Total Length of Bwd Packet": bwd.total,
      "Fwd Packet Length Max": fwd.max, "Fwd Packet Length Min": fwd.min,
      "Fwd Packet Length Mean": fwd.mean, "Fwd Packet Length Std": fwd.std,
      "Bwd Packet Length Max": bwd.max, "Bwd Packet Length Min": bwd.min,
      "Bwd Packet Length Mean": bwd.mean, "Bwd Packet Length Std": bwd.std,
      "Flow Bytes/s": _rate(fwd.total + bwd.total, duration),
      "Flow Packets/s": _rate(packets, duration),
      "Flow IAT Mean": flow.mean, "Flow IAT Std": flow.std,
      "Flow IAT Max": flow.max, "Flow IAT Min": flow.min,
      "Fwd IAT Total": fwd_iat.total, "Fwd IAT Mean": fwd_iat.mean, "Fwd IAT Std": fwd_iat.std,
      "Fwd IAT Max": fwd_iat.max, "Fwd IAT Min": fwd_iat.min,
      "Bwd IAT Total": bwd_iat.total, "Bwd IAT Mean": bwd_iat.mean, "Bwd IAT Std": bwd_iat.std,
      "Bwd IAT Max": bwd_iat.max, "Bwd IAT Min": bwd_iat.min,
      "Fwd PSH Flags": fields["fwd_psh"], "Bwd PSH Flags": fields["bwd_psh"],
      "Fwd URG Flags": fields["urg"], "Bwd URG Flags": np.zeros_like(fwd_pkts),
      "Fwd Header Length": fwd_pkts * fields["header"],
      "Bwd Header Length": bwd_pkts * fields["header"],
      "Fwd Packets/s": np.where(duration > 0, _rate(fwd_pkts, duration), 0.0),
      "Bwd Packets/s": np.where(duration > 0, _rate(bwd_pkts, duration), 0.0),
      "Packet Length Min": smallest, "Packet Length Max": largest,
      "Packet Length Mean": mean, "Packet Length Std": np.sqrt(variance),
      "Packet Length Variance": variance,
      "FIN Flag Count": fields["fin"], "SYN Flag Count": fields["syn"],
      "RST Flag Count": fields["rst"], "PSH Flag Count": fields["fwd_psh"] + fields["bwd_psh"],
      "ACK Flag Count": fields["ack"], "URG Flag Count": fields["urg"],
      "CWR Flag Count": fields["cwr"], "ECE Flag Count": fields["ece"],
      "Down/Up Ratio": np.where(fwd_pkts > 0, bwd_pkts / np.maximum(fwd_pkts, 1), 0.0),
      "Average Packet Size": mean,
      "Fwd Segment Size Avg": fwd.mean, "Bwd Segment Size Avg": bwd.mean,
      **_bulk_columns(rng, "Fwd", fwd_pkts, fwd),
      **_bulk_columns(rng, "Bwd", bwd_pkts, bwd),
      "Subflow Fwd Packets": fwd_pkts, "Subflow Fwd Bytes": fwd.total.astype(np.int64),
      "Subflow Bwd Packets": bwd_pkts, "Subflow Bwd Bytes": bwd.total.astype(np.int64),
      "FWD Init Win Bytes": fields["fwd_window"], "Bwd Init Win Bytes": fields["bwd_window"],
      "Fwd Act Data Pkts": np.where(carries_data, data_packets, 0).astype(np.int64),
      "Fwd Seg Size Min": np.where(fwd_pkts > 0, fields["header"], 0),
      **_active_columns(rng, fields, packets),
      **_idle_columns(rng, fields),
      layout.label: np.array([kind.category for kind in _TARGET_KINDS])[fields["kind"]],
      layout.connection_type: _connection_types(fields, book),
  }
  return columns


def _flow_ids(sender: pl.Series, receiver: pl.Series, fields: dict[str, np.ndarray]) -> pl.Series:
  """Build CICFlowMeter-V4 flow ids: `source-destination-source port-destination port-protocol`."""
  frame = pl.DataFrame({
      "sender": sender, "receiver": receiver, "sport": fields["sport"],
      "dport": fields["dport"], "proto": fields["proto"],
  })
  return frame.select(
      pl.concat_str(["sender", "receiver", "sport", "dport", "proto"], separator="-")
  ).to_series()


def _target_times(fields: dict[str, np.ndarray]) -> pl.Series:
  """Format flow starts in the layout's first time format, at 1 s resolution."""
  start_epoch = int(_TARGET_START.replace(tzinfo=datetime.timezone.utc).timestamp())
  epoch = pl.Series(start_epoch + np.floor(fields["seconds"]).astype(np.int64))
  time_format = _TARGET_LAYOUT.time_formats[0]
  return pl.from_epoch(epoch, time_unit="s").dt.strftime(time_format)


# --- Command line -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m ctal_jax.data.example",
      description="Write the built-in example source (WUSTL-IIOT-2021 layout) and target "
                  "(ACI-IoT-2023 layout) CSV files and print their paths.")
  parser.add_argument("folder", nargs="?", default=None,
                      help="output folder (default: $CTAL_CACHE, else ~/.cache/ctal_jax/example)")
  parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
  parser.add_argument("--source-rows", type=int, default=DEFAULT_SOURCE_ROWS,
                      help=f"flows in the source file (default: {DEFAULT_SOURCE_ROWS})")
  parser.add_argument("--target-rows", type=int, default=DEFAULT_TARGET_ROWS,
                      help=f"flows in the target file (default: {DEFAULT_TARGET_ROWS})")
  parser.add_argument("--overwrite", action="store_true",
                      help="write the files even when they already exist")
  args = parser.parse_args(argv)

  folder = args.folder if args.folder is not None else default_cache_folder()
  try:
    files = write_example_data(folder, seed=args.seed, source_rows=args.source_rows,
                               target_rows=args.target_rows, overwrite=args.overwrite)
  except ValueError as error:
    parser.error(str(error))
  print(files.source)
  print(files.target)


if __name__ == "__main__":
  main(sys.argv[1:])
