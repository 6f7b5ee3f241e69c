"""Per-domain adaptors: dense maps between a domain's features and the shared width.

Each domain has its own input adaptor (features -> width) and output adaptor
(width -> features), because the domains have different feature sets and widths.
Parameters live at `<domain>/encode` and `<domain>/decode`, and a domain's
parameters are created the first time that domain is used.
"""

import flax.linen as nn
import jax

from ctal_jax.models.dense import DenseParams

DIRECTIONS = ("encode", "decode")


class DomainAdaptor(nn.Module):
  """The input and output adaptors of one domain."""

  features: int
  width: int

  @nn.compact
  def __call__(self, direction: str) -> tuple[jax.Array, jax.Array]:
    if direction == "encode":
      return DenseParams(self.features, self.width, name="encode")()
    if direction == "decode":
      return DenseParams(self.width, self.features, name="decode")()
    raise ValueError(f"Invalid adaptor direction {direction!r}; expected one of {DIRECTIONS}.")


class Adaptors(nn.Module):
  """The adaptors of every domain, one `DomainAdaptor` per domain name."""

  domains: tuple[tuple[str, int], ...]
  width: int

  def features_of(self, domain: str) -> int:
    """Return the feature width of `domain`, or raise a ValueError naming the known ones."""
    widths = dict(self.domains)
    if domain not in widths:
      raise ValueError(f"Unknown domain {domain!r}; known domains: {', '.join(widths)}.")
    return widths[domain]

  @nn.compact
  def __call__(self, domain: str, direction: str) -> tuple[jax.Array, jax.Array]:
    """Return (kernel, bias) of the 'encode' (features -> width) or 'decode' adaptor."""
    features = self.features_of(domain)
    return DomainAdaptor(features, self.width, name=domain)(direction)
