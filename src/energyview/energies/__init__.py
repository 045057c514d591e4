"""Energy models: the shared contract and its implementations."""

from .base import EnergyModel, check_finite, check_labels, check_temperature, free_energy_from_matrix, scoring_mode
from .classifier import ClassifierEnergy
from .function import FunctionEnergy, quadratic_energy

__all__ = [
    "ClassifierEnergy",
    "EnergyModel",
    "FunctionEnergy",
    "check_finite",
    "check_labels",
    "check_temperature",
    "free_energy_from_matrix",
    "quadratic_energy",
    "scoring_mode",
]
