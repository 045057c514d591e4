"""Energy models: the shared contract and its implementations."""

from .base import EnergyModel, check_finite, check_labels, check_temperature, free_energy_from_matrix, scoring_mode
from .classifier import ClassifierEnergy
from .contrastive import CandidateSet, ContrastiveEnergy, normalize_features
from .function import FunctionEnergy, quadratic_energy

__all__ = [
    "CandidateSet",
    "ClassifierEnergy",
    "ContrastiveEnergy",
    "EnergyModel",
    "FunctionEnergy",
    "check_finite",
    "check_labels",
    "check_temperature",
    "free_energy_from_matrix",
    "normalize_features",
    "quadratic_energy",
    "scoring_mode",
]
