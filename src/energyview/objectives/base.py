"""The interface every training objective implements.

An objective is a ``nn.Module`` that maps ``(model, batch)`` to a dict of named scalar tensors.
The dict always contains ``"loss"`` (what the trainer back-propagates) and, where the objective has
them, its two phases: ``"energy_pos"`` (mean energy of observed pairs or data, pushed down) and
``"energy_neg"`` (mean energy of negatives, pushed up). Other entries are logged as they are.
Objectives keep their state (a replay buffer, a learnable bias) in parameters and buffers, so the
trainer saves and restores it with the checkpoint and optimises its parameters with the model's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..energies.base import EnergyModel

__all__ = ["Objective", "LossDict"]

LossDict = dict[str, torch.Tensor]


class Objective(nn.Module):
    """Base class of training objectives: ``forward(model, batch) -> {"loss": ..., ...}``."""

    def forward(self, model: EnergyModel, batch: Any) -> LossDict:  # pragma: no cover - interface
        raise NotImplementedError(f"{type(self).__name__} must implement forward(model, batch)")

    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        """Return state that is not a parameter or buffer but must survive a resume."""
        return {}

    def load_extra_state_from_checkpoint(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state_for_checkpoint` returned."""
