"""Wrap Hugging Face transformers classification models as energies."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..energies.classifier import ClassifierEnergy

__all__ = ["load_transformers_network", "transformers_classifier_energy"]


def load_transformers_network(
    name_or_path: str,
    auto_class: str = "AutoModelForImageClassification",
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Load a transformers model with ``auto_class.from_pretrained(name_or_path)``.

    ``name_or_path`` is a local directory written by ``save_pretrained`` or a hub id; offline
    (``HF_HUB_OFFLINE=1``) only local directories and cached ids load. ``auto_class`` names the
    transformers class, for example ``AutoModelForSequenceClassification`` for text.
    """
    import transformers  # imported here: transformers takes seconds to import

    cls = getattr(transformers, auto_class, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise ValueError(f"transformers has no model class {auto_class!r}; use an Auto* class such as AutoModelForImageClassification")
    kwargs.pop("in_channels", None)  # fixed by the saved config
    if num_classes is not None:
        kwargs["num_labels"] = num_classes
    try:
        return cls.from_pretrained(name_or_path, **kwargs)
    except OSError as error:
        raise OSError(
            f"could not load {name_or_path!r} with {auto_class}.from_pretrained: {error}. "
            "Point at a local directory written by save_pretrained, or unset HF_HUB_OFFLINE to download"
        ) from error


def transformers_classifier_energy(
    name_or_path: str, temperature: float = 1.0, auto_class: str = "AutoModelForImageClassification", **kwargs: Any
) -> ClassifierEnergy:
    """Return a :class:`ClassifierEnergy` around a transformers classifier (its ``.logits``)."""
    net = load_transformers_network(name_or_path, auto_class=auto_class, **kwargs)
    return ClassifierEnergy(_InputsToModel(net), temperature=temperature, output_key="logits")


class _InputsToModel(nn.Module):
    """Call a transformers model positionally, so that ``energy_matrix(x)`` works for any modality."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Any) -> Any:
        if isinstance(x, dict):  # tokenizer output: input_ids, attention_mask, ...
            return self.model(**x)
        return self.model(x)
