"""Transfer from WUSTL-IIOT-2021 (source) to ACI-IoT-2023 (target), five shots.

Run on the built-in example data:

    python -m ctal_jax.main --config=configs/transfer.py --workdir=/tmp/ctal

or on downloaded files (a CSV file or a folder of them, any supported layout):

    python -m ctal_jax.main --config=configs/transfer.py --workdir=/tmp/ctal \
        --config.source.path=WUSTL.csv --config.target.path=ACI_FOLDER

Variants: `configs/transfer.py:smoke` (a short run, 2 draws x 2 seeds) and
`configs/transfer.py:paper` (the defaults, on the wireless rows of ACI-IoT-2023).

The workdir receives config.json, input_files.json (path, size and SHA-256 of each
input file), metrics.jsonl, report.json, report.md, figures/ and Orbax checkpoints
under checkpoints/source and checkpoints/target. A second run in the same workdir
resumes from them, and rejects a different config or changed input files.
"""

from ml_collections import config_dict

MODELS = ("ctal_vae", "vae", "ae", "target_only", "finetune_all", "iforest")


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
  """Return the config; `variant` is empty, `smoke` or `paper`."""
  config = config_dict.ConfigDict()

  # Protocol.
  config.seed = 0
  config.seeds = 3
  config.draws = 5
  config.shots = 5
  config.calibration = 10
  # Comma-separated model names, from: ctal_vae, vae, ae, target_only, finetune_all, iforest.
  config.models = ",".join(MODELS)
  # `synthetic` (label-free) or `labeled` (reads attack labels; reported as NAME_labeled).
  config.negatives = "synthetic"

  # Dataset.
  config.source = config_dict.ConfigDict()
  config.source.path = config_dict.placeholder(str)
  config.source.epochs = 100
  config.source.batch_size = 256
  config.source.learning_rate = 1e-3
  config.source.weight_decay = 0.0
  config.source.split = 0.8
  config.source.kl_warmup_epochs = 10

  config.target = config_dict.ConfigDict()
  config.target.path = config_dict.placeholder(str)
  config.target.epochs = 200
  config.target.learning_rate = 1e-3
  config.target.weight_decay = 0.0
  # `unlabeled`: every target flow; `known_normal`: flows of the draw's shots and calibration windows.
  config.target.scaler_fit = "unlabeled"
  # Keep only ACI rows of this connection type (`wired` or `wireless`); unset keeps all.
  config.target.connection_type = config_dict.placeholder(str)

  config.window = config_dict.ConfigDict()
  config.window.seq_len = 30
  # Stride and min_len follow seq_len unless set themselves; `* 1` gives each its own
  # reference, so that setting one leaves seq_len alone.
  config.window.stride = config.window.get_ref("seq_len") * 1
  config.window.min_len = config.window.get_ref("seq_len") * 1
  # `drop` keeps full windows only; `pad` keeps tails of at least min_len flows, masked.
  config.window.tail = "drop"
  # `any`, or the attack fraction (e.g. "0.5") at which a window counts as attack.
  config.window.label_rule = "any"

  config.scaler = config_dict.ConfigDict()
  config.scaler.floor = 0.01
  config.scaler.clip = 10.0

  # Model.
  config.model = config_dict.ConfigDict()
  config.model.width = 43
  config.model.hidden = 64
  config.model.latent = 16
  config.model.teacher_forcing = False

  # Training.
  config.loss = config_dict.ConfigDict()
  config.loss.rec = 1.0
  config.loss.kl = 0.01
  config.loss.con = 0.1
  config.loss.margin = 0.5
  config.loss.sigma = 0.05

  # Scoring.
  config.threshold = config_dict.ConfigDict()
  # `quantile` (q-quantile of calibration scores) or `mean_std` (mean + k std of log scores).
  config.threshold.rule = "quantile"
  config.threshold.q = 0.95
  config.threshold.k = 3.0
  config.score_batch_size = 1024
  # Seeds per vmap in one compiled program; 0 picks 2 on CPU, where large seed batches
  # ran slower, and all seeds on GPU and TPU.
  config.seeds_per_group = 0
  # Epochs between progress lines, NaN checks and source checkpoints.
  config.log_every_epochs = 10
  # Isolation Forest trees for the `iforest` control.
  config.iforest_trees = 200

  if variant == "smoke":
    config.seeds = 2
    config.draws = 2
    config.source.epochs = 4
    config.source.kl_warmup_epochs = 2
    config.target.epochs = 20
    config.log_every_epochs = 2
    config.iforest_trees = 50
  elif variant == "paper":
    config.target.connection_type = "wireless"
  elif variant:
    raise ValueError(f"Unknown config variant {variant!r}; use 'smoke' or 'paper'.")
  return config
