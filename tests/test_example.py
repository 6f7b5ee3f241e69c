"""Tests of the example-data generator: determinism, layout fidelity, labels, windows."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from ctal_jax.data import example
from ctal_jax.data import layouts

ROWS = 3_000
SEQ_LEN = 30

SOURCE = layouts.WUSTL_IIOT_2021
TARGET = layouts.ACI_IOT_2023

SOURCE_CATEGORIES = {"normal", "DoS", "Reconn", "CommInj", "Backdoor"}
TARGET_CATEGORIES = {
    "Benign", "Port Scan", "ICMP Flood", "Ping Sweep", "DNS Flood", "Vulnerability Scan",
    "OS Scan", "Slowloris", "SYN Flood", "Dictionary Attack", "UDP Flood",
}

# The pandas dtypes of the published WUSTL-IIOT-2021 CSV: these columns are int64,
# the other numeric columns float64.
SOURCE_INTEGER_COLUMNS = {
    "Mean", "Sport", "Dport", "SrcPkts", "DstPkts", "TotPkts", "DstBytes", "SrcBytes",
    "TotBytes", "SrcLoss", "DstLoss", "Loss", "Proto", "IdleTime", "sDSb", "sTtl", "dTtl",
    "sIpId", "dIpId", "SAppBytes", "DAppBytes", "TotAppByte", "sTos", "Target",
}
SOURCE_STRING_COLUMNS = {"StartTime", "LastTime", "SrcAddr", "DstAddr", "Traffic"}

# Columns of the published ACI-IoT-2023 head rows whose type is visible there.
TARGET_INTEGER_COLUMNS = {
    "Src Port", "Dst Port", "Protocol", "Flow Duration", "Total Fwd Packet",
    "Total Bwd packets", "Fwd Seg Size Min",
}
TARGET_FLOAT_COLUMNS = {
    "Total Length of Fwd Packet", "Total Length of Bwd Packet", "Fwd Packet Length Max",
    "Fwd Packet Length Min", "Active Mean", "Active Std", "Active Max", "Active Min",
    "Idle Mean", "Idle Std", "Idle Max", "Idle Min",
}


def read(path: pathlib.Path) -> pl.DataFrame:
  """Read a generated CSV with types inferred from every row."""
  return pl.read_csv(path, infer_schema_length=None)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> example.ExampleFiles:
  folder = tmp_path_factory.mktemp("example")
  return example.write_example_data(folder, seed=0, source_rows=ROWS, target_rows=ROWS)


@pytest.fixture(scope="module")
def source(files) -> pl.DataFrame:
  return read(files.source)


@pytest.fixture(scope="module")
def target(files) -> pl.DataFrame:
  return read(files.target)


def window_table(frame: pl.DataFrame, layout: layouts.Layout) -> pl.DataFrame:
  """Cut full 30-flow windows per receiver in time order; label a window by any attack."""
  time_format = layout.time_formats[0]
  attack = ~pl.col(layout.label).cast(pl.String).is_in(list(layout.benign_values))
  flows = (
      frame.with_row_index("row")
      .with_columns(
          time=pl.col(layout.time).str.to_datetime(time_format),
          attack=attack.cast(pl.Int8),
      )
      .sort([layout.receiver, "time", "row"])
      .with_columns(
          window=pl.int_range(pl.len()).over(layout.receiver) // SEQ_LEN,
          flows=pl.len().over(layout.receiver),
      )
      .filter(pl.col("window") < pl.col("flows") // SEQ_LEN)
  )
  return flows.group_by(layout.receiver, "window").agg(attack=pl.col("attack").max())


# --- Determinism and files -------------------------------------------------------------


def test_same_seed_is_byte_identical(tmp_path):
  first = example.write_example_data(tmp_path / "a", seed=3, source_rows=ROWS, target_rows=ROWS)
  second = example.write_example_data(tmp_path / "b", seed=3, source_rows=ROWS, target_rows=ROWS)

  assert first.source.read_bytes() == second.source.read_bytes()
  assert first.target.read_bytes() == second.target.read_bytes()


def test_different_seed_differs(tmp_path):
  first = example.write_example_data(tmp_path, seed=0, source_rows=ROWS, target_rows=ROWS)
  second = example.write_example_data(tmp_path, seed=1, source_rows=ROWS, target_rows=ROWS)

  assert first.source != second.source
  assert first.source.read_bytes() != second.source.read_bytes()
  assert first.target.read_bytes() != second.target.read_bytes()


def test_file_names_encode_seed_and_rows(files):
  for path in (files.source, files.target):
    assert "_s0_" in path.name
    assert path.name.endswith(f"_n{ROWS}.csv")


def test_existing_files_reused_unless_overwrite(tmp_path):
  files = example.write_example_data(tmp_path, source_rows=ROWS, target_rows=ROWS)
  original = files.source.read_bytes()
  files.source.write_text("marker\n")

  again = example.write_example_data(tmp_path, source_rows=ROWS, target_rows=ROWS)
  assert again.source.read_text() == "marker\n"

  example.write_example_data(tmp_path, source_rows=ROWS, target_rows=ROWS, overwrite=True)
  assert files.source.read_bytes() == original


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
  def fail(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(pl.DataFrame, "write_csv", fail)
  path = tmp_path / "source.csv"
  with pytest.raises(OSError, match="disk full"):
    example.write_source_csv(path, ROWS, seed=0)

  assert not path.exists()
  assert list(tmp_path.iterdir()) == []


def test_write_leaves_no_temporary_files(files):
  names = sorted(path.name for path in files.source.parent.iterdir())
  assert names == sorted([files.source.name, files.target.name])


def test_write_functions_match_example_data(files, tmp_path):
  source = example.write_source_csv(tmp_path / "source.csv", ROWS, seed=0)
  target = example.write_target_csv(tmp_path / "target.csv", ROWS, seed=0)

  assert source.read_bytes() == files.source.read_bytes()
  assert target.read_bytes() == files.target.read_bytes()


@pytest.mark.parametrize("rows", [0, example.MIN_ROWS - 1, 2.5, True])
def test_invalid_rows_rejected(rows, tmp_path):
  with pytest.raises(ValueError, match="rows must be"):
    example.write_source_csv(tmp_path / "source.csv", rows, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.0, None])
def test_invalid_seed_rejected(seed, tmp_path):
  with pytest.raises(ValueError, match="seed must be"):
    example.write_target_csv(tmp_path / "target.csv", ROWS, seed=seed)


def test_cache_folder_from_environment(tmp_path, monkeypatch):
  folder = tmp_path / "cache" / "nested"
  monkeypatch.setenv("CTAL_CACHE", str(folder))

  assert example.default_cache_folder() == folder
  assert folder.is_dir()


def test_cache_folder_default_under_home(tmp_path, monkeypatch):
  monkeypatch.delenv("CTAL_CACHE", raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))

  folder = example.default_cache_folder()
  assert folder == tmp_path / ".cache" / "ctal_jax" / "example"
  assert folder.is_dir()


def test_command_line_prints_paths(tmp_path):
  repo_root = pathlib.Path(__file__).resolve().parent.parent
  environment = {**os.environ, "PYTHONPATH": str(repo_root)}
  command = [
      sys.executable, "-m", "ctal_jax.data.example", str(tmp_path),
      "--seed", "2", "--source-rows", str(ROWS), "--target-rows", str(ROWS),
  ]
  result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)

  assert result.returncode == 0, result.stderr
  printed = result.stdout.split()
  assert len(printed) == 2
  assert all(pathlib.Path(path).is_file() for path in printed)
  assert all(pathlib.Path(path).parent == tmp_path for path in printed)


# --- Layout fidelity --------------------------------------------------------------------


def test_source_header_matches_layout(files):
  header = files.source.read_text().splitlines()[0]
  assert header.split(",") == list(SOURCE.columns)


def test_target_header_matches_layout(files):
  header = files.target.read_text().splitlines()[0]
  assert header.split(",") == list(TARGET.columns)


@pytest.mark.parametrize("frame_name, layout", [("source", SOURCE), ("target", TARGET)])
def test_times_parse_with_first_format(frame_name, layout, request):
  frame = request.getfixturevalue(frame_name)
  time_format = layout.time_formats[0]
  parsed = frame[layout.time].str.to_datetime(time_format, strict=False)

  assert parsed.null_count() == 0, frame.filter(parsed.is_null())[layout.time].head(3).to_list()


def test_source_last_time_parses(source):
  start = source["StartTime"].str.to_datetime(SOURCE.time_formats[0])
  last = source["LastTime"].str.to_datetime(SOURCE.time_formats[0])
  assert (last >= start).all()


def test_target_dates_swap_day_and_month(target):
  # Day and month are both at most 12, so `%Y-%m-%d` also parses every date.
  parsed = target[TARGET.time].str.to_datetime("%Y-%d-%m %H:%M:%S")
  assert parsed.dt.month().unique().to_list() == [11]
  assert target[TARGET.time].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).null_count() == 0


def test_source_rows_not_in_time_order(source):
  times = source["StartTime"].str.to_datetime(SOURCE.time_formats[0])
  assert not times.is_sorted()


def test_target_rows_roughly_in_time_order(target):
  times = target[TARGET.time].str.to_datetime(TARGET.time_formats[0])
  assert not times.is_sorted()
  # Flows are written when they end, so the start times only drift back by minutes.
  running_max = times.cum_max()
  assert ((running_max - times).dt.total_seconds() <= 150).mean() > 0.95


def test_source_dtypes_match_published_file(source):
  for column in SOURCE.columns:
    if column in SOURCE_STRING_COLUMNS:
      expected = pl.String
    elif column in SOURCE_INTEGER_COLUMNS:
      expected = pl.Int64
    else:
      expected = pl.Float64
    assert source.schema[column] == expected, column


def test_source_floats_written_with_six_decimals(files):
  first_row = files.source.read_text().splitlines()[1].split(",")
  duration = first_row[SOURCE.columns.index("Dur")]
  assert len(duration.split(".")[1]) == 6


def test_target_dtypes_match_published_head(target):
  for column in TARGET_INTEGER_COLUMNS:
    assert target.schema[column] == pl.Int64, column
  for column in TARGET_FLOAT_COLUMNS:
    assert target.schema[column] == pl.Float64, column
  for column in ("Flow ID", "Src IP", "Dst IP", "Timestamp", "Label", "Connection Type"):
    assert target.schema[column] == pl.String, column


def test_every_feature_is_numeric(source, target):
  for frame, layout in ((source, SOURCE), (target, TARGET)):
    for column in layout.features:
      assert frame.schema[column].is_numeric(), (layout.name, column)


# --- Labels -------------------------------------------------------------------------------


def test_source_has_every_category(source):
  assert set(source["Traffic"].unique()) == SOURCE_CATEGORIES


def test_source_target_column_matches_traffic(source):
  attack = (source["Traffic"] != "normal").cast(pl.Int64)
  assert (source["Target"] == attack).all()
  assert set(source["Target"].unique()) == {0, 1}


def test_source_mostly_benign(source):
  assert 0.85 < (source["Target"] == 0).mean() < 0.97


def test_target_has_every_category(target):
  assert set(target["Label"].unique()) == TARGET_CATEGORIES


def test_target_has_both_connection_types(target):
  assert set(target["Connection Type"].unique()) == {"wired", "wireless"}


# --- Receivers and windows ----------------------------------------------------------------


@pytest.mark.parametrize("frame_name, layout, minimum", [("source", SOURCE, 6), ("target", TARGET, 12)])
def test_receivers_fill_windows(frame_name, layout, minimum, request):
  frame = request.getfixturevalue(frame_name)
  counts = frame[layout.receiver].value_counts()
  assert counts.filter(pl.col("count") >= SEQ_LEN).height >= minimum


@pytest.mark.parametrize("frame_name, layout", [("source", SOURCE), ("target", TARGET)])
def test_receivers_have_long_tail(frame_name, layout, request):
  frame = request.getfixturevalue(frame_name)
  counts = frame[layout.receiver].value_counts()
  rare = counts.filter(pl.col("count") < 5).height
  assert rare > counts.height / 2


def test_source_has_unusual_receivers(source):
  receivers = set(source["DstAddr"].unique())
  assert "0" in receivers
  assert any(address.count(":") == 5 and "::" not in address for address in receivers)
  assert any(address.startswith("fe80::") for address in receivers)


@pytest.mark.parametrize("frame_name, layout", [("source", SOURCE), ("target", TARGET)])
def test_windows_of_both_classes(frame_name, layout, request):
  windows = window_table(request.getfixturevalue(frame_name), layout)
  assert windows.filter(pl.col("attack") == 0).height >= 20
  assert windows.filter(pl.col("attack") == 1).height >= 5


@pytest.mark.parametrize("frame_name, layout", [("source", SOURCE), ("target", TARGET)])
def test_attacked_receiver_has_benign_windows(frame_name, layout, request):
  windows = window_table(request.getfixturevalue(frame_name), layout)
  per_receiver = windows.group_by(layout.receiver).agg(
      benign=(pl.col("attack") == 0).sum(), attack=pl.col("attack").sum())
  mixed = per_receiver.filter((pl.col("benign") > 0) & (pl.col("attack") > 0))
  assert mixed.height >= 1


def test_default_sizes_give_enough_windows(tmp_path):
  files = example.write_example_data(tmp_path)
  source_windows = window_table(read(files.source), SOURCE)
  target_windows = window_table(read(files.target), TARGET)

  assert 400 <= source_windows.filter(pl.col("attack") == 0).height <= 600
  assert 10 <= source_windows.filter(pl.col("attack") == 1).height <= 150
  assert 150 <= target_windows.filter(pl.col("attack") == 0).height <= 300
  assert 100 <= target_windows.filter(pl.col("attack") == 1).height <= 300


# --- Flow statistics ----------------------------------------------------------------------


def test_source_totals_add_up(source):
  assert (source["TotPkts"] == source["SrcPkts"] + source["DstPkts"]).all()
  assert (source["TotBytes"] == source["SrcBytes"] + source["DstBytes"]).all()
  assert (source["TotAppByte"] == source["SAppBytes"] + source["DAppBytes"]).all()
  assert (source["Loss"] == source["SrcLoss"] + source["DstLoss"]).all()


def test_source_durations_agree(source):
  for column in ("Sum", "Min", "Max", "RunTime"):
    assert (source[column] == source["Dur"]).all(), column
  assert (source["Mean"] == source["Dur"].floor().cast(pl.Int64)).all()


def test_source_protocols_and_ports(source):
  assert {6, 17, 1, 2054} & set(source["Proto"].unique()) >= {6, 17, 2054}
  arp = source.filter(pl.col("Proto") == 2054)
  assert (arp["Sport"] == 0).all()
  assert (arp["Dport"] == 0).all()


def test_source_idle_time_is_float32_epoch(source):
  idle = source["IdleTime"].to_numpy()
  assert (idle.astype(np.float32).astype(np.int64) == idle).all()
  assert idle.min() > 1.5e9


def test_source_scans_are_tiny_and_short(source):
  reconn = source.filter(pl.col("Traffic") == "Reconn")
  normal = source.filter(pl.col("Traffic") == "normal")
  assert reconn["SrcPkts"].max() <= 2
  assert reconn["Dur"].median() < normal["Dur"].median()
  assert reconn["Dport"].n_unique() > 20


def test_target_totals_add_up(target):
  assert (target["Subflow Fwd Packets"] == target["Total Fwd Packet"]).all()
  assert (target["Subflow Bwd Packets"] == target["Total Bwd packets"]).all()
  assert (target["Subflow Fwd Bytes"] == target["Total Length of Fwd Packet"]).all()
  assert (target["Fwd Packet Length Min"] <= target["Fwd Packet Length Max"]).all()
  assert (target["Packet Length Min"] <= target["Packet Length Max"]).all()


def test_target_flow_id_from_five_tuple(target):
  five_tuple = ["Src IP", "Dst IP", "Src Port", "Dst Port", "Protocol"]
  expected = target.select(pl.concat_str(five_tuple, separator="-")).to_series()
  assert (target["Flow ID"] == expected).all()


def test_target_protocols(target):
  assert set(target["Protocol"].unique()) == {1, 6, 17}


def test_target_rates_have_inf_and_nan(target):
  for column in ("Flow Bytes/s", "Flow Packets/s"):
    rates = target[column]
    broken = rates.is_infinite() | rates.is_nan()
    assert broken.sum() > 0, column
    assert broken.mean() < 0.05, column


def test_target_idle_holds_epoch_microseconds(target):
  epoch = target["Idle Max"] > 1e15
  assert 0.5 < epoch.mean() < 0.9
  values = target.filter(epoch)["Idle Max"]
  assert values.min() > 1.6988e15
  assert values.max() < 1.6990e15


def test_target_floods_are_fast(target):
  rates = target.with_columns(pl.col("Flow Packets/s").fill_nan(None))
  rates = rates.filter(pl.col("Flow Packets/s").is_finite())
  benign = rates.filter(pl.col("Label") == "Benign")["Flow Packets/s"].median()
  for label in ("ICMP Flood", "UDP Flood", "DNS Flood"):
    flood = rates.filter(pl.col("Label") == label)["Flow Packets/s"].median()
    assert flood > 20 * benign, label


def test_target_slowloris_long_and_small(target):
  slowloris = target.filter(pl.col("Label") == "Slowloris")
  benign = target.filter(pl.col("Label") == "Benign")
  assert slowloris["Flow Duration"].min() >= 10_000_000
  assert slowloris["Fwd Packet Length Mean"].median() < benign["Fwd Packet Length Mean"].median()


def test_target_port_scan_many_ports_one_packet(target):
  scan = target.filter(pl.col("Label") == "Port Scan")
  assert (scan["Total Fwd Packet"] == 1).all()
  assert scan["Dst Port"].n_unique() > 50


# --- Loader -------------------------------------------------------------------------------


def test_files_load_with_expected_layout(files):
  try:
    from ctal_jax.data import loading
  except ImportError as error:
    pytest.skip(f"ctal_jax.data.loading cannot be imported: {error}")

  source = loading.load(files.source)
  target = loading.load(files.target)

  assert source.layout.name == "wustl_iiot_2021"
  assert target.layout.name == "aci_iot_2023"
  assert source.frame.height == ROWS
  assert target.frame.height == ROWS
  assert source.record.time_format == SOURCE.time_formats[0]
  assert target.record.time_format == TARGET.time_formats[0]
