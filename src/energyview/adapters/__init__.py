"""Turn existing networks into energies: plain modules, timm, transformers, open_clip and sentence encoders.

The optional libraries (timm, transformers, open_clip, sentence-transformers) are imported inside
the functions that need them, so importing this package stays fast.
"""

from ..energies.outputs import OutputSelector, select_output
from .encoders import ProjectionEncoder, digits_simclr_encoder, projection_mlp, simclr_energy, timm_simclr_encoder
from .hf_clip import hf_clip_energy, load_hf_clip
from .open_clip import load_open_clip, open_clip_energy
from .sentence import MeanPoolingEncoder, SentenceTransformerEncoder, default_sentence_model_path, sentence_energy
from .timm import create_timm_network, timm_classifier_energy
from .transformers import load_transformers_network, transformers_classifier_energy

__all__ = [
    "MeanPoolingEncoder",
    "OutputSelector",
    "ProjectionEncoder",
    "SentenceTransformerEncoder",
    "create_timm_network",
    "default_sentence_model_path",
    "digits_simclr_encoder",
    "hf_clip_energy",
    "load_hf_clip",
    "load_open_clip",
    "load_transformers_network",
    "open_clip_energy",
    "projection_mlp",
    "select_output",
    "sentence_energy",
    "simclr_energy",
    "timm_classifier_energy",
    "timm_simclr_encoder",
    "transformers_classifier_energy",
]
