"""CTAL-VAE: a shared LSTM-VAE core between per-domain input and output adaptors.

    x [N, T, F_domain] -> adaptor encode -> u [N, T, width] -> core -> u_hat -> adaptor
    decode -> x_hat [N, T, F_domain]

The parameter tree has two top-level entries: `core` (shared by every domain) and
`adaptors/<domain>/{encode,decode}`, so freezing rules can select them by path.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from ctal_jax.models.adaptors import Adaptors
from ctal_jax.models.core import Core


def sample_z(mu: jax.Array, logvar: jax.Array, eps: jax.Array, variational: bool) -> jax.Array:
  """Return z = mu + exp(logvar / 2) * eps, or mu alone when not `variational`."""
  if not variational:
    return mu
  return mu + jnp.exp(0.5 * logvar) * eps


class LstmVae(nn.Module):
  """LSTM-VAE with per-domain adaptors. `variational=False` gives the AE baseline."""

  # (name, feature width) of every domain, e.g. (("source", 42), ("target", 76)).
  domains: tuple[tuple[str, int], ...]
  width: int = 43
  hidden: int = 64
  latent: int = 16
  variational: bool = True
  # Whether decoder step t reads the true adapted input u_{t-1} when `decode` gets a
  # teacher.
  teacher_forcing: bool = False

  def setup(self):
    self.core = Core(self.width, self.hidden, self.latent, self.variational)
    self.adaptors = Adaptors(self.domains, self.width)

  def _checked_input(self, x: jax.Array, mask: jax.Array, domain: str) -> jax.Array:
    """Validate the width of `x` and zero its padded steps, NaN included."""
    features = self.adaptors.features_of(domain)
    if x.shape[-1] != features:
      raise ValueError(
          f"Invalid input width {x.shape[-1]} for domain {domain!r}; expected {features}.")
    return jnp.where(mask[..., None] > 0, x, 0.0)

  def encode(self, x: jax.Array, mask: jax.Array, domain: str) -> tuple[jax.Array, jax.Array]:
    """Return (mu, logvar) [N, latent] of windows `x` [N, T, F] with `mask` [N, T].

    The encoder summary is the hidden state at each window's last valid step.
    """
    kernel, bias = self.adaptors(domain, "encode")
    return self.core.encode(self._checked_input(x, mask, domain), mask, kernel, bias)

  def decode(
      self,
      z: jax.Array,
      seq_len: int,
      domain: str,
      teacher: jax.Array | None = None,
      teacher_mask: jax.Array | None = None,
  ) -> jax.Array:
    """Generate x_hat [N, seq_len, F] from z [N, latent].

    `teacher` [N, seq_len, F] (the true windows) is used only when `teacher_forcing`
    is on; `teacher_mask` defaults to all steps valid.
    """
    teacher_u = None
    if self.teacher_forcing and teacher is not None:
      if teacher_mask is None:
        teacher_mask = jnp.ones(teacher.shape[:2], teacher.dtype)
      kernel, bias = self.adaptors(domain, "encode")
      teacher_u = self._checked_input(teacher, teacher_mask, domain) @ kernel + bias

    u_hat = self.core.decode(z, seq_len, teacher_u)
    kernel, bias = self.adaptors(domain, "decode")
    return u_hat @ kernel + bias

  def __call__(
      self, x: jax.Array, mask: jax.Array, domain: str, eps: jax.Array
  ) -> dict[str, jax.Array]:
    """Encode, sample z = mu + exp(logvar / 2) * eps, and decode.

    `eps` [N, latent] is explicit, so eps = 0 gives z = mu. Without `variational`,
    z = mu whatever eps is. Returns mu, logvar, z and x_hat.
    """
    mu, logvar = self.encode(x, mask, domain)
    z = sample_z(mu, logvar, eps, self.variational)
    x_hat = self.decode(z, x.shape[1], domain, teacher=x, teacher_mask=mask)
    return dict(mu=mu, logvar=logvar, z=z, x_hat=x_hat)

  def create_params(self) -> None:
    """Create the core's parameters and every domain's adaptors.

    No LSTM scan runs, so `init` compiles fast.
    """
    self.core.create_params()
    for domain, _ in self.domains:
      self.adaptors(domain, "encode")
      self.adaptors(domain, "decode")


@functools.partial(jax.jit, static_argnames=("model", "seq_len"))
def init_params(key: jax.Array, model: LstmVae, seq_len: int) -> dict:
  """Initialise the core and the adaptors of every domain and return the params tree.

  No parameter depends on `seq_len`. It is accepted so that callers can pass the
  window length they train on.
  """
  del seq_len
  variables = model.init(key, method=LstmVae.create_params)
  return variables["params"]
