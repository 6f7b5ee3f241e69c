"""Loader tests: every layout, and every data trap the loader must handle."""

import polars as pl
import pytest

from ctal_jax.data import layouts
from ctal_jax.data import loading
from ctal_jax.data.loading import DataError

SECOND_FORMAT = "%Y-%m-%d %H:%M:%S"
SWAPPED_FORMAT = "%Y-%d-%m %H:%M:%S"


@pytest.fixture(scope="module")
def source(real_source_csv):
  return loading.load(real_source_csv)


@pytest.fixture(scope="module")
def target(real_target_csv):
  return loading.load(real_target_csv)


def write_lines(path, lines):
  path.write_text("\n".join(lines) + "\n")
  return path


def category_counts(values: pl.Series) -> dict:
  return dict(values.drop_nulls().value_counts().iter_rows())


# Layouts.


def test_wustl_head_sample(wustl_head5_csv, real_source_rows):
  loaded = loading.load(wustl_head5_csv)
  raw = pl.read_csv(wustl_head5_csv, infer_schema=False)

  assert loaded.layout.name == "wustl_iiot_2021"
  assert loaded.record.time_format == SECOND_FORMAT
  assert loaded.record.rows_read == raw.height
  assert loaded.frame["label"].to_list() == [int(v) for v in raw["Target"]]
  assert loaded.frame["category"].to_list() == [
      None if target == "0" else traffic for target, traffic in zip(raw["Target"], raw["Traffic"])
  ]
  assert loaded.frame["receiver"].to_list() == raw["DstAddr"].to_list()
  assert loaded.frame["time"].dtype == pl.Datetime("us")
  assert loaded.frame["row"].to_list() == list(range(raw.height))


def test_frame_columns_per_layout(source, target):
  for loaded in (source, target):
    layout = loaded.layout
    expected = ["receiver", "time", "row", "label", "category"]
    if layout.connection_type:
      expected.append("connection_type")
    expected.extend(layout.numeric_columns)

    assert loaded.frame.columns == expected
    assert all(loaded.frame[c].dtype == pl.Float64 for c in layout.features)
    assert loaded.frame[layout.protocol].dtype == pl.Int64
    assert loaded.frame["label"].dtype == pl.Int8


def test_real_source_layout(source, real_source_rows):
  frame = source.frame

  assert source.layout.name == "wustl_iiot_2021"
  assert source.record.time_format == SECOND_FORMAT
  assert source.record.rows_read == real_source_rows.height
  assert source.record.rows_dropped == {}
  assert source.record.values_repaired == {}
  assert frame["label"].to_list() == [int(v) for v in real_source_rows["Target"]]
  assert category_counts(frame["category"]) == category_counts(
      real_source_rows.filter(pl.col("Target") == "1")["Traffic"]
  )


def test_real_target_layout(target, real_target_rows):
  frame = target.frame
  attack_rows = real_target_rows.filter(pl.col("Label") != "Benign")

  assert target.layout.name == "aci_iot_2023"
  assert target.record.rows_read == real_target_rows.height
  assert int(frame["label"].sum()) == attack_rows.height
  assert category_counts(frame["category"]) == category_counts(attack_rows["Label"])
  assert frame["connection_type"].to_list() == real_target_rows["Connection Type"].to_list()


def test_real_target_day_above_twelve(target, real_target_rows):
  # The third date field exceeds 12 in some rows, so `%Y-%d-%m` cannot parse them.
  third_field = real_target_rows["Timestamp"].str.slice(8, 2).cast(pl.Int32)
  assert int(third_field.max()) > 12

  assert target.record.time_format == SECOND_FORMAT
  assert target.frame["time"].dt.day().to_list() == third_field.to_list()


def test_swapped_day_month_format(real_target_rows, tmp_path):
  # Every date field is at most 12 here, so the swapped format parses every row first.
  days = (pl.int_range(pl.len()) % 9 + 1).cast(pl.String)
  rows = real_target_rows.with_columns(
      (pl.lit("2023-0") + days + pl.lit("-11 09:43:40")).alias("Timestamp")
  )
  path = tmp_path / "swapped.csv"
  rows.write_csv(path)

  loaded = loading.load(path)

  assert loaded.record.time_format == SWAPPED_FORMAT
  assert set(loaded.frame["time"].dt.month().to_list()) == {11}
  assert set(loaded.frame["time"].dt.day().to_list()) == set(range(1, 10))


def test_minute_copy_layout(minute_source_csv, source):
  loaded = loading.load(minute_source_csv)

  assert loaded.layout.name == "wustl_iiot_2021_minute"
  assert loaded.record.time_format == "%d-%m-%Y %H:%M"
  assert loaded.frame["time"].to_list() == source.frame["time"].dt.truncate("1m").to_list()
  assert loaded.frame["label"].to_list() == source.frame["label"].to_list()
  assert loaded.frame.drop("time").equals(source.frame.drop("time"))


def test_rerelease_folder_layout(rerelease_target_dir, target, real_target_rows):
  loaded = loading.load(rerelease_target_dir)
  frame = loaded.frame

  assert loaded.layout.name == "aci_iot_2023_rerelease"
  assert len(loaded.record.files) == real_target_rows["Label"].n_unique()
  assert loaded.record.rows_read == target.record.rows_read
  assert int((frame["label"] == 0).sum()) == int((target.frame["label"] == 0).sum())
  assert int((frame["label"] == 1).sum()) == int((target.frame["label"] == 1).sum())
  assert category_counts(frame["category"]) == category_counts(target.frame["category"])
  assert "connection_type" not in frame.columns


def test_rerelease_one_time_format(rerelease_target_dir, target):
  # Alone, some class files would parse with the swapped day/month format, but one
  # format must serve every file of a call.
  loaded = loading.load(rerelease_target_dir)

  assert loaded.record.time_format == target.record.time_format
  assert sorted(loaded.frame["time"].to_list()) == sorted(target.frame["time"].to_list())


def test_files_listed_in_order(real_source_csv, tmp_path, real_source_rows):
  first = tmp_path / "a.csv"
  second = tmp_path / "b.csv"
  real_source_rows.head(100).write_csv(first)
  real_source_rows.slice(100).write_csv(second)

  loaded = loading.load([first, second])

  assert loaded.record.files == [str(first), str(second)]
  assert loaded.record.rows_read == real_source_rows.height
  assert loaded.frame["row"].to_list() == list(range(real_source_rows.height))
  assert loaded.frame.equals(loading.load(real_source_csv).frame)


# Data traps.


def test_repeated_header_rows(real_source_csv, source, tmp_path):
  lines = real_source_csv.read_text().splitlines()
  header = lines[0]
  positions = (10, 500, 2000)
  for position in sorted(positions, reverse=True):
    lines.insert(position, header)
  path = write_lines(tmp_path / "repeated.csv", lines)

  loaded = loading.load(path)

  assert loaded.record.rows_read == source.record.rows_read + len(positions)
  assert loaded.record.rows_dropped == {"repeated header row": len(positions)}
  assert loaded.record.rows_kept == source.record.rows_read
  assert loaded.record.values_repaired == {}
  assert loaded.frame.drop("row").equals(source.frame.drop("row"))


def test_nonfinite_values_counted(real_target_rows, tmp_path):
  bytes_rate = ["inf", "-inf", "NaN", "Infinity", "nan"]
  packets_rate = ["abc", "", "1.2.3"]
  changes = {"Flow Bytes/s": bytes_rate, "Flow Packets/s": packets_rate}
  rows = real_target_rows
  changed_rows = {}
  for column, values in changes.items():
    positions = list(range(7, 7 + 11 * len(values), 11))
    changed_rows[column] = positions
    replaced = rows[column].to_list()
    for position, value in zip(positions, values):
      replaced[position] = value
    rows = rows.with_columns(pl.Series(column, replaced, pl.String))
  path = tmp_path / "nonfinite.csv"
  rows.write_csv(path)

  loaded = loading.load(path)
  repaired = loaded.record.values_repaired

  assert repaired["Flow Bytes/s"] == {"inf -> null": 3, "NaN -> null": 2}
  assert repaired["Flow Packets/s"] == {"not a number -> null": 2, "empty -> null": 1}
  assert set(repaired) == set(changes)
  for column, positions in changed_rows.items():
    nulls = loaded.frame[column].is_null().arg_true().to_list()
    assert nulls == positions, column
  assert loaded.record.rows_kept == real_target_rows.height


def test_protocol_not_a_number(real_source_rows, tmp_path):
  protocols = real_source_rows["Proto"].to_list()
  protocols[3] = "tcp"
  protocols[4] = "6.5"
  path = tmp_path / "protocol.csv"
  real_source_rows.with_columns(pl.Series("Proto", protocols)).write_csv(path)

  loaded = loading.load(path)

  assert loaded.record.values_repaired == {
      "Proto": {"not a number -> null": 1, "fractional -> null": 1}
  }
  assert loaded.frame["Proto"].is_null().arg_true().to_list() == [3, 4]


def test_spaces_around_column_names(real_source_csv, source, tmp_path):
  lines = real_source_csv.read_text().splitlines()
  names = lines[0].split(",")
  lines[0] = ",".join(f"  {name} " if index % 2 else f" {name}" for index, name in enumerate(names))
  path = write_lines(tmp_path / "spaced.csv", lines)

  loaded = loading.load(path)

  assert loaded.layout.name == source.layout.name
  assert loaded.record.extra_columns == []
  assert loaded.frame.equals(source.frame)


def test_quoted_name_with_comma(real_source_rows, source, tmp_path):
  path = tmp_path / "annotated.csv"
  notes = pl.Series("Note, free text", ["a, b"] * real_source_rows.height)
  real_source_rows.with_columns(notes).write_csv(path)

  loaded = loading.load(path)

  header = path.read_text().splitlines()[0]
  assert header.startswith("StartTime,")
  assert header.endswith('"Note, free text"')
  assert loaded.record.extra_columns == ["Note, free text"]
  assert loaded.frame.equals(source.frame)


def test_byte_order_mark_header(real_source_csv, source, tmp_path):
  path = tmp_path / "bom.csv"
  path.write_bytes(b"\xef\xbb\xbf" + real_source_csv.read_bytes())

  loaded = loading.load(path)

  assert loaded.layout.name == source.layout.name
  assert loaded.frame.equals(source.frame)


def test_receivers_kept_verbatim(real_source_rows, tmp_path):
  odd_receivers = ["fe80::c884:9a0d:b395:87ca", "01:80:c2:00:00:0e", "0", " 0 "]
  receivers = real_source_rows["DstAddr"].to_list()
  for position, receiver in enumerate(odd_receivers):
    receivers[position] = receiver
  path = tmp_path / "receivers.csv"
  real_source_rows.with_columns(pl.Series("DstAddr", receivers)).write_csv(path)

  loaded = loading.load(path)
  stored = loaded.frame["receiver"].head(len(odd_receivers)).to_list()

  assert loaded.frame["receiver"].dtype == pl.String
  assert stored == [receiver.strip() for receiver in odd_receivers]


def test_extra_columns_ignored(real_source_rows, tmp_path):
  path = tmp_path / "extra.csv"
  real_source_rows.with_columns(pl.lit("x").alias("Comment")).write_csv(path)

  loaded = loading.load(path)

  assert loaded.layout.name == "wustl_iiot_2021"
  assert loaded.record.extra_columns == ["Comment"]
  assert "Comment" not in loaded.frame.columns


def test_empty_keys_dropped(real_source_rows, tmp_path):
  receivers = real_source_rows["DstAddr"].to_list()
  times = real_source_rows["StartTime"].to_list()
  receivers[0] = ""
  times[1] = " "
  path = tmp_path / "empty_keys.csv"
  real_source_rows.with_columns(pl.Series("DstAddr", receivers), pl.Series("StartTime", times)).write_csv(path)

  loaded = loading.load(path)

  assert loaded.record.rows_dropped == {"empty receiver (DstAddr)": 1, "empty time (StartTime)": 1}
  assert loaded.frame.height == real_source_rows.height - 2


def test_unparseable_time_named(real_source_rows, tmp_path):
  times = real_source_rows["StartTime"].to_list()
  times[20] = "yesterday"
  path = tmp_path / "bad_time.csv"
  real_source_rows.with_columns(pl.Series("StartTime", times)).write_csv(path)

  with pytest.raises(DataError) as raised:
    loading.load(path)

  assert "'yesterday'" in str(raised.value)
  assert "StartTime" in str(raised.value)


def test_missing_columns_named(real_source_rows, tmp_path):
  path = tmp_path / "missing.csv"
  real_source_rows.drop("SrcLoad", "Traffic").write_csv(path)

  with pytest.raises(DataError) as raised:
    loading.load(path)
  message = str(raised.value)

  assert "closest is wustl_iiot_2021" in message
  assert "SrcLoad" in message
  assert "Traffic" in message
  assert "Target" not in message.split("missing columns")[1].split(".")[0]


def test_partial_sample_rejected(samples_dir):
  path = samples_dir / "aci_iot_2023_head5_partial.csv"
  present = set(pl.read_csv(path, n_rows=0).columns)
  missing = [c for c in layouts.ACI_IOT_2023.columns if c not in present]

  with pytest.raises(DataError) as raised:
    loading.load(path)
  message = str(raised.value)

  assert "closest is aci_iot_2023" in message
  assert missing[0] in message
  assert f"and {len(missing) - 12} more" in message


def test_tool_column_names_rejected(real_target_raw_csv):
  with pytest.raises(DataError) as raised:
    loading.load(real_target_raw_csv)
  message = str(raised.value)

  assert "closest is aci_iot_2023" in message
  assert "Flow ID" in message


def test_empty_file_rejected(tmp_path):
  path = tmp_path / "empty.csv"
  path.write_bytes(b"")

  with pytest.raises(DataError, match="empty"):
    loading.load(path)


def test_header_only_rejected(real_source_csv, tmp_path):
  path = write_lines(tmp_path / "header.csv", real_source_csv.read_text().splitlines()[:1])

  with pytest.raises(DataError, match="no data rows"):
    loading.load(path)


def test_binary_file_rejected(tmp_path):
  path = tmp_path / "capture.csv"
  path.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00")

  with pytest.raises(DataError, match="binary"):
    loading.load(path)


def test_missing_path_rejected(tmp_path):
  with pytest.raises(DataError, match="no such file"):
    loading.load(tmp_path / "absent.csv")


def test_folder_without_csv_rejected(tmp_path):
  (tmp_path / "notes.txt").write_text("StartTime,DstAddr\n")

  with pytest.raises(DataError, match="no .csv file"):
    loading.load(tmp_path)


def test_layouts_mixed_in_one_call(real_source_csv, real_target_csv):
  with pytest.raises(DataError) as raised:
    loading.load([real_source_csv, real_target_csv])
  message = str(raised.value)

  assert "aci_iot_2023" in message
  assert "wustl_iiot_2021" in message


def test_time_resolutions_mixed(real_source_csv, minute_source_csv):
  with pytest.raises(DataError, match="no known time format"):
    loading.load([real_source_csv, minute_source_csv])


def test_empty_label_rejected(real_source_rows, tmp_path):
  labels = real_source_rows["Target"].to_list()
  labels[5] = ""
  path = tmp_path / "no_label.csv"
  real_source_rows.with_columns(pl.Series("Target", labels)).write_csv(path)

  with pytest.raises(DataError, match="data row 6"):
    loading.load(path)


def test_unknown_label_rejected(real_source_rows, tmp_path):
  labels = real_source_rows["Target"].to_list()
  labels[5] = "2"
  path = tmp_path / "bad_label.csv"
  real_source_rows.with_columns(pl.Series("Target", labels)).write_csv(path)

  with pytest.raises(DataError, match="'2'"):
    loading.load(path)


@pytest.mark.parametrize("kept", ["wireless", "wired"])
def test_connection_type_filter(real_target_csv, real_target_rows, kept):
  expected_kept = int((real_target_rows["Connection Type"] == kept).sum())

  loaded = loading.load(real_target_csv, connection_type=kept)

  assert loaded.frame.height == expected_kept
  assert set(loaded.frame["connection_type"].to_list()) == {kept}
  assert loaded.record.rows_dropped == {
      f"Connection Type is not {kept}": real_target_rows.height - expected_kept
  }
  assert loaded.record.rows_kept == expected_kept


def test_connection_type_unknown_value(real_target_csv):
  with pytest.raises(DataError) as raised:
    loading.load(real_target_csv, connection_type="satellite")

  assert "'satellite'" in str(raised.value)
  assert "wireless" in str(raised.value)


def test_connection_type_without_column(real_source_csv, rerelease_target_dir):
  for path in (real_source_csv, rerelease_target_dir):
    with pytest.raises(DataError, match="no connection type column"):
      loading.load(path, connection_type="wireless")


# Unlabeled loads, as scoring new traffic needs.


def _features(loaded):
  return loaded.frame.select(list(loaded.layout.numeric_columns))


@pytest.mark.parametrize("dropped", [(), ("Label",), ("Label", "Connection Type")])
def test_unlabeled_target(real_target_rows, target, tmp_path, dropped):
  path = tmp_path / "flows.csv"
  real_target_rows.drop(dropped).write_csv(path)

  loaded = loading.load(path, labels=False)

  assert loaded.labeled is False
  assert loaded.layout.dataset == "ACI-IoT-2023"
  assert loaded.frame.height == target.frame.height
  assert loaded.frame["label"].to_list() == [0] * target.frame.height
  assert loaded.frame["category"].null_count() == target.frame.height
  assert loaded.frame["receiver"].to_list() == target.frame["receiver"].to_list()
  assert loaded.frame["time"].to_list() == target.frame["time"].to_list()
  assert _features(loaded).equals(_features(target))
  assert ("connection_type" in loaded.frame.columns) == ("Connection Type" not in dropped)
  assert set(loaded.record.extra_columns) == {"Label", "Connection Type"} - set(dropped)


def test_unlabeled_source(real_source_rows, source, tmp_path):
  path = tmp_path / "argus.csv"
  real_source_rows.drop("Target", "Traffic").write_csv(path)

  loaded = loading.load(path, labels=False)

  assert loaded.layout.name == source.layout.name
  assert loaded.frame["label"].sum() == 0
  assert _features(loaded).equals(_features(source))


def test_labeled_load_names_missing_label(real_target_rows, tmp_path):
  path = tmp_path / "flows.csv"
  real_target_rows.drop("Label").write_csv(path)

  with pytest.raises(DataError, match="missing columns Label"):
    loading.load(path)


def test_unlabeled_still_needs_features(real_target_rows, tmp_path):
  path = tmp_path / "flows.csv"
  real_target_rows.drop("Label", "Flow Duration").write_csv(path)

  with pytest.raises(DataError, match="missing columns Flow Duration"):
    loading.load(path, labels=False)


def test_unlabeled_filter_without_column_keeps_rows(real_target_rows, tmp_path):
  path = tmp_path / "flows.csv"
  real_target_rows.drop("Label", "Connection Type").write_csv(path)

  loaded = loading.load(path, connection_type="wireless", labels=False)

  assert loaded.frame.height == real_target_rows.height
  assert loaded.record.rows_dropped == {}


def test_unlabeled_filter_with_column(real_target_rows, tmp_path):
  path = tmp_path / "flows.csv"
  real_target_rows.drop("Label").write_csv(path)
  wireless = int((real_target_rows["Connection Type"] == "wireless").sum())

  loaded = loading.load(path, connection_type="wireless", labels=False)

  assert loaded.frame.height == wireless


def test_unlabeled_files_differ_in_columns(real_target_rows, tmp_path):
  half = real_target_rows.height // 2
  real_target_rows.head(half).drop("Label").write_csv(tmp_path / "a.csv")
  real_target_rows.tail(-half).drop("Label", "Connection Type").write_csv(tmp_path / "b.csv")

  with pytest.raises(DataError, match=r"b\.csv: column\(s\) Connection Type found in only one"):
    loading.load(tmp_path, labels=False)
