"""Training objectives: positive/negative-phase losses that plug into the shared trainer."""

from .base import LossDict, Objective
from .conditional import ConditionalNLL, conditional_nll
from .energy_margin import EnergyMarginObjective
from .mcmc import JointEnergyObjective, MaximumLikelihood, coercive_wall
from .registry import build_objective, list_objectives, register_objective

register_objective("conditional", ConditionalNLL)
register_objective("energy-margin", EnergyMarginObjective)
register_objective("ml", MaximumLikelihood)
register_objective("jem", JointEnergyObjective)

__all__ = [
    "ConditionalNLL",
    "EnergyMarginObjective",
    "JointEnergyObjective",
    "MaximumLikelihood",
    "coercive_wall",
    "LossDict",
    "Objective",
    "build_objective",
    "conditional_nll",
    "list_objectives",
    "register_objective",
]
