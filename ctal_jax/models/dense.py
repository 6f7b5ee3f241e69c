"""A dense layer that returns its kernel and bias instead of applying them."""

import flax.linen as nn
import jax


class DenseParams(nn.Module):
  """Kernel [input_features, features] and bias [features] of a dense layer.

  Callers that fold a dense map into another product need the arrays themselves.
  The parameter names match `nn.Dense`, so the parameter tree looks the same.
  """

  input_features: int
  features: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    kernel = self.param(
        "kernel", nn.initializers.lecun_normal(), (self.input_features, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return kernel, bias
