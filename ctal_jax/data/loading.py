"""Load flow-record CSV files of any supported layout into one typed, cleaned frame.

The returned frame has these columns, whatever the layout:

- `receiver` (str): the receiver address, kept verbatim (IPv4, IPv6, MAC or `0`);
- `time` (datetime, microseconds): the flow start time;
- `row` (int64): position in the input, counting across files, for stable sorting;
- `label` (int8): 0 benign, 1 attack; 0 on every row of an unlabeled load;
- `category` (str): the attack category, null for benign rows;
- `connection_type` (str): only for layouts that have the column (and, in an
  unlabeled load, only when the files have it);
- the layout's numeric features (float64, nulls where a value was missing, not a
  number, or infinite) and its protocol column (int64, null when not a number).

Every row dropped and every value repaired is counted in a `CleaningRecord`.

An unlabeled load (`labels=False`) serves scoring: it accepts files that lack the
layout's label and connection-type columns, such as new flow records that nobody
labeled, and ignores those columns where a file has them.
"""

import csv
import dataclasses
import os
from collections.abc import Sequence

from absl import logging
import polars as pl

from ctal_jax.data import layouts as layouts_lib
from ctal_jax.data.layouts import Layout


class DataError(ValueError):
  """Invalid input data; the message names the file, the column or value, and the fix."""


@dataclasses.dataclass
class CleaningRecord:
  """What loading read, dropped and repaired."""

  files: list[str] = dataclasses.field(default_factory=list)
  rows_read: int = 0
  # Reason -> number of rows dropped for it.
  rows_dropped: dict[str, int] = dataclasses.field(default_factory=dict)
  # Column -> {repair -> number of values}.
  values_repaired: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
  time_format: str = ""
  extra_columns: list[str] = dataclasses.field(default_factory=list)

  @property
  def rows_kept(self) -> int:
    return self.rows_read - sum(self.rows_dropped.values())

  def drop(self, reason: str, count: int) -> None:
    if count:
      self.rows_dropped[reason] = self.rows_dropped.get(reason, 0) + count

  def repair(self, column: str, repair: str, count: int) -> None:
    if count:
      repairs = self.values_repaired.setdefault(column, {})
      repairs[repair] = repairs.get(repair, 0) + count

  def to_dict(self) -> dict:
    return {
        "files": list(self.files),
        "rows_read": self.rows_read,
        "rows_kept": self.rows_kept,
        "rows_dropped": dict(self.rows_dropped),
        "values_repaired": {k: dict(v) for k, v in self.values_repaired.items()},
        "time_format": self.time_format,
        "extra_columns": list(self.extra_columns),
    }


@dataclasses.dataclass
class Loaded:
  """A cleaned frame, the layout it was read as, and the cleaning record."""

  frame: pl.DataFrame
  layout: Layout
  record: CleaningRecord
  # False when loaded without labels: `label` is then 0 on every row.
  labeled: bool = True


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
  """Expand a file, a folder (its `*.csv` files, sorted) or a list of both into files."""
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  files = []
  for path in paths:
    path = os.fspath(path)
    if os.path.isdir(path):
      found = sorted(
          os.path.join(path, name) for name in os.listdir(path)
          if name.lower().endswith(".csv")
      )
      if not found:
        raise DataError(f"{path}: folder holds no .csv file; point to a CSV file or a folder of them.")
      files.extend(found)
    elif os.path.isfile(path):
      files.append(path)
    else:
      raise DataError(f"{path}: no such file or folder.")
  if not files:
    raise DataError("No input file given; pass a CSV file or a folder of CSV files.")
  return files


def read_header(path: str) -> list[str]:
  """Return the stripped column names of a CSV file, rejecting empty and binary files."""
  with open(path, "rb") as handle:
    head = handle.read(65536)
  if not head.strip():
    raise DataError(f"{path}: file is empty; expected a flow-record CSV with a header row.")
  if b"\x00" in head:
    raise DataError(f"{path}: file is binary, not a CSV text file; export the flow records as CSV.")
  # `utf-8-sig` drops the byte order mark that spreadsheet exports put before the header.
  first_line = head.splitlines()[0].decode("utf-8-sig", errors="replace")
  # The csv module reads quoted names, which may contain commas, as polars does.
  names = [name.strip().strip('"').strip() for name in next(csv.reader([first_line]))]
  if len(names) < 2:
    raise DataError(f"{path}: first line has no comma-separated header; expected a CSV file.")
  duplicated = sorted({name for name in names if names.count(name) > 1})
  if duplicated:
    raise DataError(f"{path}: column names repeat after stripping spaces: {', '.join(duplicated)}.")
  return names


def _required_columns(layout: Layout, labels: bool) -> tuple[str, ...]:
  return layout.columns if labels else layout.unlabeled_columns


def match_layouts(path: str, names: Sequence[str], labels: bool = True) -> list[Layout]:
  """Return every layout whose columns are all in `names`, or raise naming the closest.

  Without `labels`, a layout's label and connection-type columns may be missing.
  """
  present = set(names)
  required = {layout.name: _required_columns(layout, labels) for layout in layouts_lib.LAYOUTS}
  matches = [layout for layout in layouts_lib.LAYOUTS if set(required[layout.name]) <= present]
  if matches:
    return matches

  # Label columns count towards the closest layout even when they are optional.
  closest = max(layouts_lib.LAYOUTS, key=lambda layout: len(set(layout.columns) & present))
  missing = [column for column in required[closest.name] if column not in present]
  shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
  raise DataError(
      f"{path}: matches no supported layout; closest is {closest.name} ({closest.dataset}), "
      f"which needs the missing columns {shown}. Supported layouts: "
      f"{', '.join(layout.name for layout in layouts_lib.LAYOUTS)}."
  )


def has_labels(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> bool:
  """Return True when every file's header has all columns of a layout, labels included.

  Files that fail this may still load with `labels=False`.
  """
  for path in expand_paths(paths):
    try:
      match_layouts(path, read_header(path), labels=True)
    except DataError:
      return False
  return True


def _scan(path: str, names: Sequence[str], needed: Sequence[str]) -> pl.LazyFrame:
  """Scan a CSV as strings, with stripped column names, keeping the `needed` columns."""
  raw = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy", has_header=True)
  raw_names = raw.collect_schema().names()
  renamed = raw.rename(dict(zip(raw_names, names)))
  return renamed.select(needed)


def _needed_columns(layout: Layout, names: Sequence[str], labels: bool) -> list[str]:
  columns = [layout.receiver, layout.time]
  if labels:
    columns.extend([layout.label, layout.category])
  if layout.connection_type and (labels or layout.connection_type in names):
    columns.append(layout.connection_type)
  columns.extend(layout.numeric_columns)
  return list(dict.fromkeys(columns))


def _detect_time_format(path: str, times: pl.Series, layout: Layout) -> str | None:
  """Return the first of the layout's time formats that parses every value, or None."""
  for time_format in layout.time_formats:
    parsed = times.str.to_datetime(time_format, strict=False, time_unit="us")
    if parsed.null_count() == 0:
      return time_format
  return None


def _time_failure(source: str, times: pl.Series, candidates: Sequence[Layout]) -> DataError:
  layout = candidates[0]
  failures = []
  for time_format in dict.fromkeys(f for c in candidates for f in c.time_formats):
    parsed = times.str.to_datetime(time_format, strict=False, time_unit="us")
    first_bad = parsed.is_null().arg_true()[0]
    failures.append(f"{time_format!r} fails on {times[first_bad]!r}")
  return DataError(
      f"{source}: no known time format parses every value of column {layout.time!r} "
      f"({'; '.join(failures)}); fix or remove the offending rows."
  )


def _read_file(path: str, record: CleaningRecord, labels: bool) -> tuple[pl.DataFrame, list[Layout]]:
  """Read one file as strings, drop repeated headers and empty keys.

  Returns the frame and the layouts whose columns the file has. Those layouts differ
  only in their time formats, which `load` checks against the times of every file.
  """
  names = read_header(path)
  candidates = match_layouts(path, names, labels)
  # Candidates differ only in their time formats (and, without labels, in label
  # columns that are not read), so they share the needed columns.
  layout = candidates[0]
  extra = [name for name in names if name not in _required_columns(layout, labels)]
  record.extra_columns.extend(name for name in extra if name not in record.extra_columns)

  try:
    frame = _scan(path, names, _needed_columns(layout, names, labels)).collect()
  except pl.exceptions.PolarsError as error:
    first_line = str(error).strip().splitlines()[0]
    raise DataError(f"{path}: CSV could not be parsed ({first_line}); check the file is a comma-separated export.") from None
  record.rows_read += frame.height

  # Numeric columns are stripped later, and only where a value fails to parse as is.
  keys = [column for column in frame.columns if column not in layout.numeric_columns]
  frame = frame.with_columns([pl.col(column).str.strip_chars() for column in keys])

  repeated_header = frame[layout.time] == layout.time
  repeated_header = repeated_header.fill_null(False)
  record.drop("repeated header row", int(repeated_header.sum()))
  frame = frame.filter(~repeated_header)

  for key, reason in ((layout.receiver, "empty receiver"), (layout.time, "empty time")):
    empty = frame[key].is_null() | (frame[key] == "")
    record.drop(f"{reason} ({key})", int(empty.sum()))
    frame = frame.filter(~empty)

  if frame.height == 0:
    raise DataError(f"{path}: no data rows after the header; expected flow records.")
  return frame, candidates


def _detect_layout(files: list[str], times: pl.Series, candidates: Sequence[Layout]) -> tuple[Layout, str]:
  """Return the first candidate layout and time format that parse every time of every file.

  One format serves the whole call: a data set split into files (the per-class files
  of the ACI re-release) must not get a different day/month order per file.
  """
  for layout in candidates:
    time_format = _detect_time_format(files[0], times, layout)
    if time_format is not None:
      return layout, time_format
  source = files[0] if len(files) == 1 else f"{files[0]} and {len(files) - 1} more file(s)"
  raise _time_failure(source, times, candidates)


def _labels(path: str, frame: pl.DataFrame, layout: Layout) -> pl.DataFrame:
  """Add `label` (0/1) and `category` from the layout's label columns."""
  label = frame[layout.label]
  missing = label.is_null() | (label == "")
  if missing.any():
    row = int(missing.arg_true()[0])
    raise DataError(f"{path}: column {layout.label!r} is empty in data row {row + 1}; every row needs a label.")

  benign = label.is_in(list(layout.benign_values))
  if layout.label != layout.category:
    allowed = set(layout.benign_values) | {"1"}
    unknown = sorted(set(label.unique().to_list()) - allowed)
    if unknown:
      raise DataError(
          f"{path}: column {layout.label!r} holds {unknown[:5]}; expected "
          f"{sorted(allowed)} (benign {list(layout.benign_values)})."
      )

  category = pl.when(benign).then(None).otherwise(pl.col(layout.category))
  return frame.with_columns(
      label=(~benign).cast(pl.Int8),
      category=category,
  )


def _coerce_numeric(frame: pl.DataFrame, layout: Layout, record: CleaningRecord) -> pl.DataFrame:
  """Cast feature and protocol columns to numbers, turning bad values into nulls."""
  columns = list(layout.numeric_columns)
  as_float = frame.select([pl.col(c).cast(pl.Float64, strict=False) for c in columns])

  # The cast does not skip spaces, so a column in which some value failed to parse is
  # stripped and cast again. Clean files have no such column, which saves the strip.
  # A value that is empty or only spaces counts as empty.
  text_nulls = frame.select([pl.col(c).null_count() for c in columns]).row(0)
  float_nulls = as_float.select(pl.all().null_count()).row(0)
  empty_counts = dict(zip(columns, text_nulls))
  retry = [c for c, text, number in zip(columns, text_nulls, float_nulls) if number > text]
  if retry:
    stripped = frame.select([pl.col(c).str.strip_chars() for c in retry])
    empty = stripped.select([(pl.col(c).is_null() | (pl.col(c) == "")).sum() for c in retry])
    empty_counts.update(zip(retry, empty.row(0)))
    as_float = as_float.with_columns([stripped[c].cast(pl.Float64, strict=False) for c in retry])

  counts = [empty_counts[c] for c in columns]
  unparsed = as_float.select(pl.all().null_count()).row(0)
  infinite = as_float.select(pl.all().is_infinite().sum()).row(0)
  nan = as_float.select(pl.all().is_nan().sum()).row(0)
  for column, empty, null, inf, nan_count in zip(columns, counts, unparsed, infinite, nan):
    record.repair(column, "empty -> null", empty)
    record.repair(column, "not a number -> null", null - empty)
    record.repair(column, "inf -> null", inf)
    record.repair(column, "NaN -> null", nan_count)

  cleaned = as_float.with_columns(
      [pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in columns]
  )
  protocol = cleaned[layout.protocol]
  fractional = protocol.is_not_null() & (protocol != protocol.round(0))
  record.repair(layout.protocol, "fractional -> null", int(fractional.sum()))
  cleaned = cleaned.with_columns(
      pl.when(fractional.not_()).then(pl.col(layout.protocol)).otherwise(None)
      .cast(pl.Int64).alias(layout.protocol)
  )
  return frame.drop(columns).hstack(cleaned)


def load(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    connection_type: str | None = None,
    labels: bool = True,
) -> Loaded:
  """Load one CSV, several, or a folder of them, all of one layout.

  Args:
    paths: a file, a folder (every `*.csv` in it) or a list of files and folders.
    connection_type: keep only rows whose connection type equals this value
      (`wired` or `wireless`); only for layouts with that column. An unlabeled load
      of files without the column keeps every row and logs that it did.
    labels: read the label columns. When False, files may lack the label and
      connection-type columns, and `label` is 0 on every row.

  Raises:
    DataError: on a missing, empty or binary file, a file that matches no layout,
      files of different layouts, unparseable times or labels, or a filter that
      the layout cannot apply.
  """
  files = expand_paths(paths)
  record = CleaningRecord(files=files)

  raw_frames = []
  candidates = None
  for path in files:
    frame, file_candidates = _read_file(path, record, labels)
    if candidates is None:
      candidates = file_candidates
    elif [c.name for c in file_candidates] != [c.name for c in candidates]:
      raise DataError(
          f"{path}: layout {file_candidates[0].name} differs from {candidates[0].name} of "
          f"{files[0]}; load files of one layout together."
      )
    raw_frames.append(frame)

  times = pl.concat([frame[candidates[0].time] for frame in raw_frames])
  layout, record.time_format = _detect_layout(files, times, candidates)
  if labels:
    frames = [_labels(path, frame, layout) for path, frame in zip(files, raw_frames)]
  else:
    _check_same_columns(files, raw_frames)
    frames = [_no_labels(frame) for frame in raw_frames]
  logging.info("Layout %s (%s)%s; time format %r.", layout.name, layout.description,
               "" if labels else ", read without its label columns", record.time_format)

  frame = pl.concat(frames, how="vertical")
  frame = _coerce_numeric(frame, layout, record)
  frame = frame.with_columns(
      receiver=pl.col(layout.receiver),
      time=pl.col(layout.time).str.to_datetime(record.time_format, time_unit="us"),
      row=pl.int_range(pl.len(), dtype=pl.Int64),
  )

  has_connection_type = bool(layout.connection_type) and layout.connection_type in frame.columns
  if connection_type is not None and layout.connection_type and not has_connection_type:
    logging.warning(
        "%s has no %r column, so the connection_type=%r filter cannot apply; keeping every row.",
        files[0], layout.connection_type, connection_type)
  elif connection_type is not None:
    frame = _filter_connection_type(frame, layout, connection_type, files, record)

  keep = ["receiver", "time", "row", "label", "category"]
  if has_connection_type:
    frame = frame.with_columns(connection_type=pl.col(layout.connection_type))
    keep.append("connection_type")
  frame = frame.select(keep + list(layout.numeric_columns))

  _log_record(record)
  return Loaded(frame=frame, layout=layout, record=record, labeled=labels)


def _no_labels(frame: pl.DataFrame) -> pl.DataFrame:
  """Add the `label` (0) and `category` (null) columns of an unlabeled load."""
  return frame.with_columns(label=pl.lit(0, dtype=pl.Int8), category=pl.lit(None, dtype=pl.String))


def _check_same_columns(files: list[str], frames: list[pl.DataFrame]) -> None:
  """Reject an unlabeled load whose files differ in the optional columns they carry."""
  for path, frame in zip(files[1:], frames[1:]):
    if frame.columns != frames[0].columns:
      differing = sorted(set(frame.columns) ^ set(frames[0].columns))
      raise DataError(
          f"{path}: column(s) {', '.join(differing)} found in only one of this file and "
          f"{files[0]}; load files with the same columns together.")


def _filter_connection_type(
    frame: pl.DataFrame, layout: Layout, wanted: str, files: list[str], record: CleaningRecord,
) -> pl.DataFrame:
  if not layout.connection_type:
    raise DataError(
        f"{files[0]}: layout {layout.name} has no connection type column, so the "
        f"connection_type={wanted!r} filter cannot apply; unset it for this layout."
    )
  values = frame[layout.connection_type]
  known = sorted(set(values.drop_nulls().unique().to_list()))
  if wanted not in known:
    raise DataError(
        f"{files[0]}: no row has {layout.connection_type!r} = {wanted!r}; values present: {known}."
    )
  keep = values == wanted
  record.drop(f"{layout.connection_type} is not {wanted}", int((~keep).sum()))
  return frame.filter(keep)


def _log_record(record: CleaningRecord) -> None:
  logging.info("Read %d rows from %d file(s); kept %d.", record.rows_read, len(record.files), record.rows_kept)
  for reason, count in record.rows_dropped.items():
    logging.info("Dropped %d rows: %s.", count, reason)
  for column, repairs in record.values_repaired.items():
    for repair, count in repairs.items():
      logging.info("Column %r: %d values %s (imputed with the fitted median).", column, count, repair)
  if record.extra_columns:
    logging.info("Ignored columns outside the layout: %s.", ", ".join(record.extra_columns))
