"""Turn existing networks into energies: plain modules, timm and transformers models.

timm and transformers are imported inside the functions that need them, so importing this
package stays fast.
"""

from ..energies.outputs import OutputSelector, select_output
from .timm import create_timm_network, timm_classifier_energy
from .transformers import load_transformers_network, transformers_classifier_energy

__all__ = [
    "OutputSelector",
    "create_timm_network",
    "load_transformers_network",
    "select_output",
    "timm_classifier_energy",
    "transformers_classifier_energy",
]
