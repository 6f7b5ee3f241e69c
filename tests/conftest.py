"""Shared fixtures: where the third-party test data lives, and files derived from it.

The real flow records and the published sample rows are not part of this repository.
They are read from the folder named by `$CTAL_SHARED` when that variable is set, else
from `../shared` beside the repository root. A test that needs them is skipped, with
the reason, when neither exists (for example in a fresh clone).

Path fixtures (session scope, read-only files):
  shared_dir: the shared folder, which contains `data/`.
  samples_dir: `data/samples`, the only published rows of the two data sets.
  real_dir: `data/real`, real flow records in the two data sets' layouts.
  real_source_csv: `real/source_argus.csv`, 3,357 Argus flows, layout wustl_iiot_2021.
  real_target_csv: `real/target_cicflow.csv`, 9,386 CICFlowMeter flows, layout aci_iot_2023.
  real_target_raw_csv: `real/target_cicflow_raw_pycic.csv`, the target rows under the
    flow tool's own column names, which match no layout.
  wustl_head5_csv: `samples/wustl_iiot_2021_head5.csv`, the first 5 official WUSTL rows.

Derived fixtures (session scope, written under pytest's temporary folder):
  minute_source_csv: the real source rows with StartTime and LastTime rewritten to
    `%d-%m-%Y %H:%M`, as in the truncated WUSTL copy (layout wustl_iiot_2021_minute).
  rerelease_target_dir: the real target rows split per class into one CSV each, in
    the 2024 ACI re-release layout (layout aci_iot_2023_rerelease).

Row fixtures (session scope): `real_source_rows` and `real_target_rows` are the real
CSVs read with every column as a string, so that a test can change some values and
write the file back with `write_csv` without changing any other value. Polars frames
are immutable, so sharing them between tests is safe.
"""

import os
import pathlib
import sys

import polars as pl
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# The tests import the package from this checkout, installed or not.
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

# The 2024 re-release keeps the first 83 columns of the 2023 release (everything
# before `Label` and `Connection Type`), then adds these two.
RERELEASE_TAIL = ("Attack Name", "Label")


def read_strings(path: str | os.PathLike) -> pl.DataFrame:
  """Read a CSV with every column as a string, so that writing it back changes no value."""
  return pl.read_csv(path, infer_schema=False)


def _require(path: pathlib.Path, what: str) -> pathlib.Path:
  if not path.exists():
    pytest.skip(f"{what} not found at {path}; set CTAL_SHARED to the shared data folder.")
  return path


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  """The shared folder: `$CTAL_SHARED` when set, else `../shared` beside the repository."""
  configured = os.environ.get("CTAL_SHARED")
  if configured:
    return _require(pathlib.Path(configured).resolve(), "Folder named by CTAL_SHARED")
  return _require(REPO_ROOT.parent / "shared", "Shared test data folder")


@pytest.fixture(scope="session")
def samples_dir(shared_dir) -> pathlib.Path:
  return _require(shared_dir / "data" / "samples", "Sample rows folder")


@pytest.fixture(scope="session")
def real_dir(shared_dir) -> pathlib.Path:
  return _require(shared_dir / "data" / "real", "Real flow records folder")


@pytest.fixture(scope="session")
def real_source_csv(real_dir) -> pathlib.Path:
  return _require(real_dir / "source_argus.csv", "Real source CSV")


@pytest.fixture(scope="session")
def real_target_csv(real_dir) -> pathlib.Path:
  return _require(real_dir / "target_cicflow.csv", "Real target CSV")


@pytest.fixture(scope="session")
def real_target_raw_csv(real_dir) -> pathlib.Path:
  return _require(real_dir / "target_cicflow_raw_pycic.csv", "Raw flow-tool target CSV")


@pytest.fixture(scope="session")
def wustl_head5_csv(samples_dir) -> pathlib.Path:
  return _require(samples_dir / "wustl_iiot_2021_head5.csv", "WUSTL sample rows")


@pytest.fixture(scope="session")
def real_source_rows(real_source_csv) -> pl.DataFrame:
  return read_strings(real_source_csv)


@pytest.fixture(scope="session")
def real_target_rows(real_target_csv) -> pl.DataFrame:
  return read_strings(real_target_csv)


@pytest.fixture(scope="session")
def minute_source_csv(real_source_rows, tmp_path_factory) -> pathlib.Path:
  """The real source rows with times at minute resolution, `%d-%m-%Y %H:%M`."""
  frame = real_source_rows
  minute = [
      pl.col(column)
      .str.to_datetime("%Y-%m-%d %H:%M:%S")
      .dt.strftime("%d-%m-%Y %H:%M")
      for column in ("StartTime", "LastTime")
  ]
  path = tmp_path_factory.mktemp("minute") / "wustl_minute.csv"
  frame.with_columns(minute).write_csv(path)
  return path


@pytest.fixture(scope="session")
def rerelease_target_dir(real_target_rows, tmp_path_factory) -> pathlib.Path:
  """The real target rows as per-class CSVs of the 2024 re-release, in one folder.

  Each file contains one class. `Connection Type` is gone, `Attack Name` carries the
  2023 label text, and `Label` is 0 for benign rows and 1 for attack rows.
  """
  frame = real_target_rows
  first_columns = frame.columns[:83]
  rereleased = frame.with_columns(
      pl.col("Label").alias("Attack Name"),
      pl.when(pl.col("Label") == "Benign").then(pl.lit("0")).otherwise(pl.lit("1")).alias("Label"),
  ).select(list(first_columns) + list(RERELEASE_TAIL))

  folder = tmp_path_factory.mktemp("rerelease")
  for (name,), rows in rereleased.group_by("Attack Name", maintain_order=True):
    file_name = name.replace(" ", "_") + ".csv"
    rows.write_csv(folder / file_name)
  return folder
