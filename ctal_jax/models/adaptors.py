"""Per-domain adaptors: dense maps between a domain's features and the shared width.

Each domain has its own input adaptor (features -> width) and output adaptor
(width -> features), because the domains have different feature sets and widths.
Parameters live at `<domain>/encode` and `<domain>/decode`, and a domain's
parameters are created the first time that domain is used.
"""

import flax.linen as nn
import jax


class DomainAdaptor(nn.Module):
  """The input and output adaptors of one domain."""

  features: int
  width: int

  @nn.compact
  def __call__(self, values: jax.Array, direction: str) -> jax.Array:
    if direction == "encode":
      return nn.Dense(self.width, name="encode")(values)
    if direction == "decode":
      return nn.Dense(self.features, name="decode")(values)
    raise ValueError(f"Invalid adaptor direction {direction!r}; expected 'encode' or 'decode'.")


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
  def __call__(self, values: jax.Array, domain: str, direction: str) -> jax.Array:
    """Map `values` [..., features] to [..., width] ('encode') or back ('decode')."""
    features = self.features_of(domain)
    expected = features if direction == "encode" else self.width
    if values.shape[-1] != expected:
      raise ValueError(
          f"Invalid input width {values.shape[-1]} for the {direction} adaptor of domain "
          f"{domain!r}; expected {expected}.")
    return DomainAdaptor(features, self.width, name=domain)(values, direction)
