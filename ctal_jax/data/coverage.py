"""How much of a domain's traffic ends up in windows."""

import numpy as np

from ctal_jax.data.windows import PAD


def coverage(flow_index: np.ndarray, receiver_codes: np.ndarray, labels: np.ndarray) -> dict:
  """Count flows, receivers and attack flows, and how many of each are in a window.

  Overlapping windows count a flow once. Receivers and flows are also split by label:
  a receiver is counted under `attack` when any of its flows is an attack.
  """
  in_window = np.zeros(labels.shape[0], bool)
  in_window[flow_index[flow_index != PAD]] = True

  def share(selected: np.ndarray) -> dict:
    total = int(selected.sum())
    windowed = int((selected & in_window).sum())
    return {"total": total, "in_windows": windowed, "fraction": windowed / total if total else 0.0}

  n_receivers = int(receiver_codes.max()) + 1 if receiver_codes.size else 0
  windowed_receivers = np.zeros(n_receivers, bool)
  windowed_receivers[receiver_codes[in_window]] = True
  attacked = np.zeros(n_receivers, bool)
  attacked[receiver_codes[labels == 1]] = True

  def receiver_share(selected: np.ndarray) -> dict:
    total = int(selected.sum())
    windowed = int((selected & windowed_receivers).sum())
    return {"total": total, "in_windows": windowed, "fraction": windowed / total if total else 0.0}

  every_receiver = np.ones(n_receivers, bool)
  return {
      "flows": share(np.ones(labels.shape[0], bool)),
      "benign_flows": share(labels == 0),
      "attack_flows": share(labels == 1),
      "receivers": receiver_share(every_receiver),
      "benign_only_receivers": receiver_share(~attacked),
      "attacked_receivers": receiver_share(attacked),
  }
