"""Models: the CTAL-VAE core with per-domain adaptors."""

from ctal_jax.models.lstm_vae import LstmVae, init_params, sample_z

__all__ = ["LstmVae", "init_params", "sample_z"]
