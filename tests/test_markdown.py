"""Tests of the report's training paragraph, rendered from report.json entries."""

from ctal_jax.evaluation import markdown


def protocol(**changes) -> dict:
  entry = {
      "source_epochs": 100, "target_epochs": 200, "shorter_than_method": False,
      "connection_type": None,
      "window": {"seq_len": 30, "stride": 30, "tail": "drop", "label_rule": "any"},
  }
  entry.update(changes)
  return entry


def test_training_lines_full_run():
  lines = markdown.training_lines(protocol(), data={})

  assert lines == [
      "Training: 100 source and 200 target epochs; windows of 30 flows per receiver, "
      "stride 30, tail `drop`, label rule `any`."]


def test_training_lines_overlap_named():
  window = {"seq_len": 30, "stride": 10, "tail": "drop", "label_rule": "any"}
  lines = markdown.training_lines(protocol(window=window), data={})

  assert "stride 10" in lines[0]
  assert lines[0].endswith("evaluation windows can share flows with the shots and calibration windows.")


def test_training_lines_filter_and_trial():
  data = {"target": {"cleaning": {"rows_dropped": {"Connection Type is not wireless": 1234, "empty time (Timestamp)": 5}}}}
  lines = markdown.training_lines(
      protocol(connection_type="wireless", shorter_than_method=True, source_epochs=4), data)

  assert lines[1:] == [
      "", "Target rows: connection type `wireless` only (1,234 other rows left out).",
      "", "**Trial run**: fewer epochs than the method's defaults (100 source, 200 target), so "
      "these numbers are not a result."]
  assert lines[0].startswith("Training: 4 source and 200 target epochs;")
