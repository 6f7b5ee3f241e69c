"""The models and controls a run can train, as data: what each phase does for each."""

import dataclasses

from ctal_jax.training import optimizers


@dataclasses.dataclass(frozen=True)
class Variant:
  """How one model name is trained.

  Attributes:
    name: the report name (before any `_labeled` suffix).
    variational: sample z from (mu, logvar); False is the AE (z = mu, no KL).
    kl: the loss has the KL term.
    contrastive: the loss has the triplet term (and uses negatives).
    source_phase: the core is trained on the source first; False trains from scratch.
    source_of: the variant whose source phase this one reuses (same losses).
    target_rules: freezing rules of the target phase.
  """

  name: str
  variational: bool = True
  kl: bool = True
  contrastive: bool = True
  source_phase: bool = True
  source_of: str | None = None
  target_rules: tuple[tuple[str, str], ...] = optimizers.TARGET_RULES

  @property
  def neural(self) -> bool:
    return self.name != "iforest"


VARIANTS = {
    "ctal_vae": Variant("ctal_vae"),
    "vae": Variant("vae", contrastive=False),
    "ae": Variant("ae", variational=False, kl=False, contrastive=False),
    "target_only": Variant("target_only", source_phase=False, target_rules=optimizers.FINETUNE_RULES),
    "finetune_all": Variant("finetune_all", source_of="ctal_vae", target_rules=optimizers.FINETUNE_RULES),
    "iforest": Variant("iforest", variational=False, kl=False, contrastive=False, source_phase=False),
}


def parse_models(models: str) -> list[Variant]:
  """Parse a comma-separated list of model names, rejecting unknown or repeated ones."""
  names = [name.strip() for name in models.split(",") if name.strip()]
  if not names:
    raise ValueError(f"config.models is empty; choose from {', '.join(VARIANTS)}.")
  unknown = [name for name in names if name not in VARIANTS]
  if unknown:
    raise ValueError(
        f"config.models has unknown names {unknown}; choose from {', '.join(VARIANTS)}.")
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise ValueError(f"config.models repeats {repeated}; list each model once.")
  return [VARIANTS[name] for name in names]


def report_name(variant: Variant, negatives: str) -> str:
  """Name a model in reports: `_labeled` marks a model trained on attack-labeled negatives."""
  if negatives == "labeled" and variant.contrastive:
    return f"{variant.name}_labeled"
  return variant.name
