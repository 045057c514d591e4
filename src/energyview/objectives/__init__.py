"""Training objectives: positive/negative-phase losses that plug into the shared trainer."""

from .base import LossDict, Objective
from .conditional import ConditionalNLL, conditional_nll
from .contrastive import (
    CLIPObjective,
    SigLIPObjective,
    SimCLRObjective,
    SupConObjective,
    clip_loss,
    nt_xent_loss,
    positive_mask_from_ids,
    siglip_loss,
    similarity_energy_matrix,
    supcon_loss,
)
from .energy_margin import EnergyMarginObjective
from .mcmc import JointEnergyObjective, MaximumLikelihood, coercive_wall
from .registry import build_objective, list_objectives, register_objective

register_objective("conditional", ConditionalNLL)
register_objective("energy-margin", EnergyMarginObjective)
register_objective("clip", CLIPObjective)
register_objective("siglip", SigLIPObjective)
register_objective("simclr", SimCLRObjective)
register_objective("supcon", SupConObjective)
register_objective("ml", MaximumLikelihood)
register_objective("jem", JointEnergyObjective)

__all__ = [
    "CLIPObjective",
    "ConditionalNLL",
    "EnergyMarginObjective",
    "JointEnergyObjective",
    "MaximumLikelihood",
    "SigLIPObjective",
    "SimCLRObjective",
    "SupConObjective",
    "clip_loss",
    "coercive_wall",
    "nt_xent_loss",
    "positive_mask_from_ids",
    "siglip_loss",
    "similarity_energy_matrix",
    "supcon_loss",
    "LossDict",
    "Objective",
    "build_objective",
    "conditional_nll",
    "list_objectives",
    "register_objective",
]
