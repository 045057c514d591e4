"""energyview: classifiers, joint generative classifiers and contrastive models as one energy.

Heavy submodules (timm, open_clip, transformers adapters; training; plots) are imported on use.
"""

from .energies import ClassifierEnergy, EnergyModel, FunctionEnergy

__version__ = "0.1.0"

__all__ = ["ClassifierEnergy", "EnergyModel", "FunctionEnergy", "__version__"]
