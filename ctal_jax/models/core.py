"""The shared LSTM-VAE core, working in the shared feature space of width `width`.

Encoder LSTM -> h_T -> (mu, logvar) heads; z -> initial decoder state -> decoder LSTM,
whose step input is [u_hat_{t-1}, z] -> step output u_hat_t.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ctal_jax.models import lstm


class DenseParams(nn.Module):
  """Kernel and bias of a dense layer, returned as arrays rather than applied.

  The autoregressive decoder folds the step output layer into its recurrence, so it
  needs the arrays themselves. The parameter names match `nn.Dense`.
  """

  input_features: int
  features: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    kernel = self.param(
        "kernel", nn.initializers.lecun_normal(), (self.input_features, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return kernel, bias


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
    """Create every parameter by calling each layer once on zeros, without the LSTM scans."""
    self.encoder()
    self.decoder()
    self.step_output()
    self.mu(jnp.zeros((1, self.hidden)))
    if self.variational:
      self.logvar(jnp.zeros((1, self.hidden)))
    self.initial_state(jnp.zeros((1, self.latent)))

  def encode(self, u: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Return (mu, logvar) [N, latent] of windows `u` [N, T, width].

    logvar is all zeros when the core is not variational.
    """
    h_last = lstm.encode_sequence(self.encoder(), u, mask)
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
