"""The shared LSTM-VAE core, working in the shared feature space of width `width`.

    u -> encoder LSTM -> h_T -> (mu, logvar) heads
    z -> initial decoder state -> decoder LSTM with step input [u_hat_{t-1}, z]
      -> step output u_hat_t
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ctal_jax.models import lstm
from ctal_jax.models.dense import DenseParams


class Core(nn.Module):
  """Encoder LSTM, latent heads and autoregressive decoder LSTM."""

  width: int = 43
  hidden: int = 64
  latent: int = 16
  # False drops the logvar head (the deterministic autoencoder baseline).
  variational: bool = True

  def setup(self):
    self.encoder = lstm.LstmParams(self.width, self.hidden)
    self.mu = nn.Dense(self.latent)
    if self.variational:
      self.logvar = nn.Dense(self.latent)
    self.initial_state = nn.Dense(2 * self.hidden)
    self.decoder = lstm.LstmParams(self.width + self.latent, self.hidden)
    self.step_output = DenseParams(self.hidden, self.width)

  def create_params(self) -> None:
    """Create every parameter: each layer is called once, on zeros where it needs input."""
    self.encoder()
    self.decoder()
    self.step_output()
    self.mu(jnp.zeros((1, self.hidden)))
    if self.variational:
      self.logvar(jnp.zeros((1, self.hidden)))
    self.initial_state(jnp.zeros((1, self.latent)))

  def encode(
      self, x: jax.Array, mask: jax.Array, adaptor_kernel: jax.Array, adaptor_bias: jax.Array
  ) -> tuple[jax.Array, jax.Array]:
    """Return (mu, logvar) [N, latent] of windows `x` [N, T, F] with `mask` [N, T].

    The encoder reads u = x @ adaptor_kernel + adaptor_bias, the windows in the shared
    width. logvar is all zeros when the core is not variational.
    """
    h_last = lstm.encode_sequence(self.encoder(), x, mask, adaptor_kernel, adaptor_bias)
    mu = self.mu(h_last)
    if not self.variational:
      return mu, jnp.zeros_like(mu)
    return mu, self.logvar(h_last)

  def decode(self, z: jax.Array, seq_len: int, teacher: jax.Array | None = None) -> jax.Array:
    """Generate u_hat [N, seq_len, width] from z [N, latent].

    Without `teacher` each step reads the previous step's output. With `teacher`
    [N, seq_len, width], the true adapted inputs, step t reads step t - 1 of it.
    """
    initial_h, initial_c = jnp.split(self.initial_state(z), 2, axis=-1)
    weights = self.decoder()
    output_kernel, output_bias = self.step_output()

    if teacher is None:
      h_steps = lstm.decode_autoregressive(
          weights, output_kernel, output_bias, z, initial_c, initial_h, seq_len)
    else:
      if teacher.shape[1] != seq_len:
        raise ValueError(
            f"Invalid teacher length {teacher.shape[1]}; expected seq_len={seq_len}.")
      h_steps = lstm.decode_teacher_forced(weights, z, initial_c, initial_h, teacher)

    return h_steps @ output_kernel + output_bias
