"""File layouts of the two data sets, described as data.

A layout lists every column a file must have, which of them are the receiver, the
time and the labels, the candidate time formats, the exact model features, and why
each other column is excluded. The loader reads these records and has no per-layout
branches of its own.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Layout:
  """One supported file layout of a flow-record data set."""

  name: str
  dataset: str
  description: str
  # Every column a file of this layout has, in file order.
  columns: tuple[str, ...]
  receiver: str
  time: str
  # Candidate `strftime` formats; the first that parses every row wins.
  time_formats: tuple[str, ...]
  # Column whose values decide benign (0) or attack (1).
  label: str
  # Values of `label` that mean benign (compared as strings).
  benign_values: tuple[str, ...]
  # Column that names the attack category of an attack row.
  category: str
  # Numeric model features, in model input order.
  features: tuple[str, ...]
  # Protocol column, one-hot over `protocols` plus an `other` slot.
  protocol: str
  protocols: tuple[tuple[int, str], ...]
  # Excluded column -> reason.
  excluded: tuple[tuple[str, str], ...]
  # Column holding the connection type, when the layout has one.
  connection_type: str | None = None

  @property
  def feature_names(self) -> tuple[str, ...]:
    """Names of every model input: the numeric features, then the protocol one-hot."""
    one_hot = tuple(f"{self.protocol}={name}" for _, name in self.protocols)
    return self.features + one_hot + (f"{self.protocol}=other",)

  @property
  def n_features(self) -> int:
    return len(self.feature_names)

  @property
  def numeric_columns(self) -> tuple[str, ...]:
    """Columns coerced to numbers when loading: the features and the protocol."""
    return self.features + (self.protocol,)

  @property
  def label_columns(self) -> tuple[str, ...]:
    """The columns an unlabeled file of this layout may lack."""
    columns = (self.label, self.category, self.connection_type)
    return tuple(dict.fromkeys(column for column in columns if column))

  @property
  def unlabeled_columns(self) -> tuple[str, ...]:
    """Every column but the label columns, in file order."""
    return tuple(column for column in self.columns if column not in self.label_columns)


_WUSTL_COLUMNS = (
    "StartTime", "LastTime", "SrcAddr", "DstAddr", "Mean", "Sport", "Dport",
    "SrcPkts", "DstPkts", "TotPkts", "DstBytes", "SrcBytes", "TotBytes", "SrcLoad",
    "DstLoad", "Load", "SrcRate", "DstRate", "Rate", "SrcLoss", "DstLoss", "Loss",
    "pLoss", "SrcJitter", "DstJitter", "SIntPkt", "DIntPkt", "Proto", "Dur", "TcpRtt",
    "IdleTime", "Sum", "Min", "Max", "sDSb", "sTtl", "dTtl", "sIpId", "dIpId",
    "SAppBytes", "DAppBytes", "TotAppByte", "SynAck", "RunTime", "sTos", "SrcJitAct",
    "DstJitAct", "Traffic", "Target",
)

_WUSTL_EXCLUDED = (
    ("StartTime", "timestamp; the publishers say it exposes the attack (kept as sort key)"),
    ("LastTime", "timestamp; the publishers say it exposes the attack"),
    ("SrcAddr", "address; the publishers say it exposes the attack"),
    ("DstAddr", "address; the publishers say it exposes the attack (kept as receiver key)"),
    ("sIpId", "IP identification; the publishers say it exposes the attack"),
    ("dIpId", "IP identification; the publishers say it exposes the attack"),
    ("IdleTime", "holds a capture clock in epoch seconds, a time leak"),
    ("Sport", "port"),
    ("Dport", "port"),
    ("Proto", "enters as a one-hot over a fixed vocabulary, not as a number"),
    ("Traffic", "label (attack category)"),
    ("Target", "label (0 benign, 1 attack)"),
)

_WUSTL_FEATURES = tuple(
    column for column in _WUSTL_COLUMNS
    if column not in dict(_WUSTL_EXCLUDED)
)

_WUSTL_PROTOCOLS = ((6, "tcp"), (17, "udp"), (1, "icmp"), (2054, "arp"))

WUSTL_IIOT_2021 = Layout(
    name="wustl_iiot_2021",
    dataset="WUSTL-IIOT-2021",
    description="official 49-column Argus CSV, times at 1 s resolution",
    columns=_WUSTL_COLUMNS,
    receiver="DstAddr",
    time="StartTime",
    time_formats=("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"),
    label="Target",
    benign_values=("0",),
    category="Traffic",
    features=_WUSTL_FEATURES,
    protocol="Proto",
    protocols=_WUSTL_PROTOCOLS,
    excluded=_WUSTL_EXCLUDED,
)

WUSTL_IIOT_2021_MINUTE = dataclasses.replace(
    WUSTL_IIOT_2021,
    name="wustl_iiot_2021_minute",
    description="1,048,576-row copy (spreadsheet row limit), times at 1 min resolution",
    time_formats=("%d-%m-%Y %H:%M",),
)

_ACI_HEAD = (
    "Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Protocol", "Timestamp",
)

_ACI_STATISTICS = (
    "Flow Duration", "Total Fwd Packet", "Total Bwd packets",
    "Total Length of Fwd Packet", "Total Length of Bwd Packet",
    "Fwd Packet Length Max", "Fwd Packet Length Min", "Fwd Packet Length Mean",
    "Fwd Packet Length Std", "Bwd Packet Length Max", "Bwd Packet Length Min",
    "Bwd Packet Length Mean", "Bwd Packet Length Std", "Flow Bytes/s",
    "Flow Packets/s", "Flow IAT Mean", "Flow IAT Std", "Flow IAT Max", "Flow IAT Min",
    "Fwd IAT Total", "Fwd IAT Mean", "Fwd IAT Std", "Fwd IAT Max", "Fwd IAT Min",
    "Bwd IAT Total", "Bwd IAT Mean", "Bwd IAT Std", "Bwd IAT Max", "Bwd IAT Min",
    "Fwd PSH Flags", "Bwd PSH Flags", "Fwd URG Flags", "Bwd URG Flags",
    "Fwd Header Length", "Bwd Header Length", "Fwd Packets/s", "Bwd Packets/s",
    "Packet Length Min", "Packet Length Max", "Packet Length Mean",
    "Packet Length Std", "Packet Length Variance", "FIN Flag Count",
    "SYN Flag Count", "RST Flag Count", "PSH Flag Count", "ACK Flag Count",
    "URG Flag Count", "CWR Flag Count", "ECE Flag Count", "Down/Up Ratio",
    "Average Packet Size", "Fwd Segment Size Avg", "Bwd Segment Size Avg",
    "Fwd Bytes/Bulk Avg", "Fwd Packet/Bulk Avg", "Fwd Bulk Rate Avg",
    "Bwd Bytes/Bulk Avg", "Bwd Packet/Bulk Avg", "Bwd Bulk Rate Avg",
    "Subflow Fwd Packets", "Subflow Fwd Bytes", "Subflow Bwd Packets",
    "Subflow Bwd Bytes", "FWD Init Win Bytes", "Bwd Init Win Bytes",
    "Fwd Act Data Pkts", "Fwd Seg Size Min", "Active Mean", "Active Std",
    "Active Max", "Active Min",
)

_ACI_IDLE = ("Idle Mean", "Idle Std", "Idle Max", "Idle Min")

_ACI_EXCLUDED_COMMON = (
    ("Flow ID", "flow identifier built from addresses and ports"),
    ("Src IP", "address"),
    ("Src Port", "port"),
    ("Dst IP", "address (kept as receiver key)"),
    ("Dst Port", "port"),
    ("Protocol", "enters as a one-hot over a fixed vocabulary, not as a number"),
    ("Timestamp", "timestamp (kept as sort key)"),
    ("Idle Mean", "often holds epoch microseconds (a CICFlowMeter bug), a time leak"),
    ("Idle Std", "often holds epoch microseconds (a CICFlowMeter bug), a time leak"),
    ("Idle Max", "often holds epoch microseconds (a CICFlowMeter bug), a time leak"),
    ("Idle Min", "often holds epoch microseconds (a CICFlowMeter bug), a time leak"),
)

# `%Y-%d-%m` comes first: the 2023 release appears to swap day and month. Files from
# other CICFlowMeter builds fail it on any day above 12 and fall through to `%Y-%m-%d`.
_ACI_TIME_FORMATS = (
    "%Y-%d-%m %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%d-%m %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
)

_ACI_PROTOCOLS = ((6, "tcp"), (17, "udp"), (1, "icmp"))

ACI_IOT_2023 = Layout(
    name="aci_iot_2023",
    dataset="ACI-IoT-2023",
    description="85-column CICFlowMeter CSV of the 2023 release",
    columns=_ACI_HEAD + _ACI_STATISTICS + _ACI_IDLE + ("Label", "Connection Type"),
    receiver="Dst IP",
    time="Timestamp",
    time_formats=_ACI_TIME_FORMATS,
    label="Label",
    benign_values=("Benign",),
    category="Label",
    features=_ACI_STATISTICS,
    protocol="Protocol",
    protocols=_ACI_PROTOCOLS,
    excluded=_ACI_EXCLUDED_COMMON + (
        ("Label", "label (Benign or the attack name)"),
        ("Connection Type", "testbed attribute (wired or wireless), used only as a row filter"),
    ),
    connection_type="Connection Type",
)

ACI_IOT_2023_RERELEASE = Layout(
    name="aci_iot_2023_rerelease",
    dataset="ACI-IoT-2023",
    description="2024 CIC-BCCC-NRC re-release: per-class CSVs with `Attack Name` and a 0/1 `Label`",
    columns=_ACI_HEAD + _ACI_STATISTICS + _ACI_IDLE + ("Attack Name", "Label"),
    receiver="Dst IP",
    time="Timestamp",
    time_formats=_ACI_TIME_FORMATS,
    label="Label",
    benign_values=("0",),
    category="Attack Name",
    features=_ACI_STATISTICS,
    protocol="Protocol",
    protocols=_ACI_PROTOCOLS,
    excluded=_ACI_EXCLUDED_COMMON + (
        ("Attack Name", "label (attack category)"),
        ("Label", "label (0 benign, 1 attack)"),
    ),
)

# Detection order matters: layouts with identical columns are distinguished by the first
# whose time formats parse every row.
LAYOUTS: tuple[Layout, ...] = (
    WUSTL_IIOT_2021,
    WUSTL_IIOT_2021_MINUTE,
    ACI_IOT_2023,
    ACI_IOT_2023_RERELEASE,
)

BY_NAME = {layout.name: layout for layout in LAYOUTS}


def get_layout(name: str) -> Layout:
  """Return the layout called `name`, or raise a ValueError that lists the known ones."""
  if name not in BY_NAME:
    raise ValueError(f"Unknown layout {name!r}; known layouts: {', '.join(BY_NAME)}.")
  return BY_NAME[name]
