"""Training objectives: positive/negative-phase losses that plug into the shared trainer."""

from .base import LossDict, Objective
from .conditional import ConditionalNLL, conditional_nll
from .energy_margin import EnergyMarginObjective
from .registry import build_objective, list_objectives, register_objective

register_objective("conditional", ConditionalNLL)
register_objective("energy-margin", EnergyMarginObjective)

__all__ = [
    "ConditionalNLL",
    "EnergyMarginObjective",
    "LossDict",
    "Objective",
    "build_objective",
    "conditional_nll",
    "list_objectives",
    "register_objective",
]
