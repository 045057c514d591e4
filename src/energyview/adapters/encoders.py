"""SimCLR encoders: a backbone (the digits CNN or a timm model) followed by a projection MLP.

SimCLR (Chen et al. 2020) trains the projection z = p(f(x)) with NT-Xent and evaluates the
backbone features f(x) with a linear probe, because the features before the projection head
keep more of the information that the augmentations are invariant to.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..energies.contrastive import ContrastiveEnergy
from ..networks.small import DigitsCNN

__all__ = ["ProjectionEncoder", "digits_simclr_encoder", "projection_mlp", "simclr_energy", "timm_simclr_encoder"]


def projection_mlp(in_features: int, hidden: int = 128, out_features: int = 64) -> nn.Sequential:
    """Return SimCLR's projection head Linear -> ReLU -> Linear, ``[N, in] -> [N, out]``.

    It has no BatchNorm, so that scoring never depends on or changes batch statistics.
    """
    for name, value in (("in_features", in_features), ("hidden", hidden), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"projection {name} must be a positive int, got {value!r}")
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


class ProjectionEncoder(nn.Module):
    """``forward(x) = projection(backbone(x))``; :meth:`features` returns ``backbone(x)`` flattened.

    Args:
        backbone: maps a batch to features ``[N, ...]``, flattened to ``[N, F]``.
        projection: maps ``[N, F]`` to the contrastive space ``[N, D]``.
    """

    def __init__(self, backbone: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = projection

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the backbone features ``[N, F]`` that linear probes read."""
        return self.backbone(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(x))


def digits_simclr_encoder(
    width: int = 32, activation: str = "silu", projection_hidden: int = 128, projection_dim: int = 64, in_channels: int = 1
) -> ProjectionEncoder:
    """Return the convolutional blocks of :class:`DigitsCNN` (``[N, 4 * width * 4]`` for 8x8 inputs) plus a projection MLP.

    Example:
        >>> encoder = digits_simclr_encoder(width=8, projection_dim=16)
        >>> x = torch.zeros(2, 1, 8, 8)
        >>> tuple(encoder.features(x).shape), tuple(encoder(x).shape)
        ((2, 128), (2, 16))
    """
    cnn = DigitsCNN(num_classes=1, in_channels=in_channels, width=width, activation=activation)
    feature_size = 4 * width * 2 * 2  # last block has 4 * width channels on a 2x2 map
    return ProjectionEncoder(cnn.features, projection_mlp(feature_size, projection_hidden, projection_dim))


def timm_simclr_encoder(
    model_name: str,
    projection_hidden: int = 512,
    projection_dim: int = 128,
    in_channels: int = 3,
    pretrained: bool = False,
    checkpoint_path: str | None = None,
    **kwargs: Any,
) -> ProjectionEncoder:
    """Return ``timm.create_model(model_name, num_classes=0)`` (pooled features) plus a projection MLP.

    Weights load from local files: ``checkpoint_path`` is a state dict file, or
    ``pretrained=True`` with ``pretrained_cfg_overlay=dict(file=...)`` (see
    :func:`energyview.adapters.timm.create_timm_network`).

    Example:
        >>> encoder = timm_simclr_encoder("test_resnet", projection_hidden=32, projection_dim=8, in_channels=1)
        >>> tuple(encoder(torch.zeros(2, 1, 16, 16)).shape)
        (2, 8)
    """
    from .timm import create_timm_network

    backbone = create_timm_network(
        model_name, pretrained=pretrained, checkpoint_path=checkpoint_path, num_classes=0, in_channels=in_channels, **kwargs
    )
    return ProjectionEncoder(backbone, projection_mlp(int(backbone.num_features), projection_hidden, projection_dim))


def simclr_energy(encoder: nn.Module, tau: float = 0.5, temperature: float = 1.0) -> ContrastiveEnergy:
    """Return a one-encoder :class:`ContrastiveEnergy` with the fixed scale 1 / ``tau`` of NT-Xent.

    Use the same tau as the :class:`~energyview.objectives.SimCLRObjective` that trains it,
    so that energies after training are on the scale the loss saw.
    """
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise ValueError(f"tau must be a number > 0, got {tau!r}")
    return ContrastiveEnergy(encoder, init_scale=1.0 / tau, learn_scale=False, temperature=temperature)
