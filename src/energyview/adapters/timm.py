"""Wrap timm classification models as energies."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..energies.classifier import ClassifierEnergy

__all__ = ["create_timm_network", "timm_classifier_energy"]


def create_timm_network(
    model_name: str,
    pretrained: bool = False,
    checkpoint_path: str | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Create a timm model; weights come from the hub (``pretrained=True``) or from local files.

    ``checkpoint_path`` loads a state dict saved with ``torch.save(model.state_dict())``;
    ``pretrained_cfg_overlay=dict(file="weights.safetensors")`` with ``pretrained=True`` makes timm
    load its pretrained weights from that local file instead of the hub.
    """
    import timm  # imported here: timm takes seconds to import

    if not timm.is_model(model_name):
        matches = timm.list_models(f"*{model_name}*")[:5]
        raise ValueError(f"unknown timm model {model_name!r}; similar names: {matches or 'none'}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if "in_channels" in kwargs:  # energyview's name for timm's in_chans
        kwargs["in_chans"] = kwargs.pop("in_channels")
    return timm.create_model(
        model_name,
        pretrained=pretrained,
        checkpoint_path=checkpoint_path,
        pretrained_cfg_overlay=pretrained_cfg_overlay,
        **kwargs,
    )


def timm_classifier_energy(model_name: str, temperature: float = 1.0, **kwargs: Any) -> ClassifierEnergy:
    """Return a :class:`ClassifierEnergy` around ``timm.create_model(model_name, **kwargs)``.

    Example:
        >>> import torch
        >>> energy = timm_classifier_energy("test_vit", num_classes=4, img_size=32)
        >>> energy.free_energy(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2])
    """
    return ClassifierEnergy(create_timm_network(model_name, **kwargs), temperature=temperature)
