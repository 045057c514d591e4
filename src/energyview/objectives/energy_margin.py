"""Energy-bounded fine-tuning with auxiliary outliers (Liu et al., 2020, "Energy-based
Out-of-distribution Detection", section 3.2).

loss = CE(x_in, y) + weight * (mean relu(F(x_in) - m_in)^2 + mean relu(m_out - F(x_out))^2)

The squared hinges push the free energy of in-distribution data below ``margin_in`` and that of
auxiliary outliers above ``margin_out``. The paper uses m_in = -23, m_out = -5 and weight 0.1 for
WRN-40-2 on CIFAR-10, where in-distribution energies sit around -20; the margins are in energy
units, so set them from the free energies your classifier already gives (see ``free_energy`` in
its training log). The outliers must not be the OOD sets you evaluate on.
"""

from __future__ import annotations

from typing import Any

import torch

from ..energies.base import EnergyModel, free_energy_from_matrix
from .base import LossDict, Objective
from .conditional import conditional_nll

__all__ = ["EnergyMarginObjective"]


class EnergyMarginObjective(Objective):
    """Cross-entropy plus squared-hinge energy margins on a batch ``(x_in, y_in, x_outlier)``.

    Args:
        weight: weight of the margin terms (0.1 in the paper).
        margin_in: free energy that in-distribution inputs should stay below.
        margin_out: free energy that outliers should stay above; must exceed ``margin_in``.
    """

    def __init__(self, weight: float = 0.1, margin_in: float = -23.0, margin_out: float = -5.0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if not margin_out > margin_in:
            raise ValueError(f"margin_out ({margin_out}) must be greater than margin_in ({margin_in})")
        self.weight, self.margin_in, self.margin_out = weight, margin_in, margin_out

    def forward(self, model: EnergyModel, batch: Any) -> LossDict:
        if len(batch) != 3:
            raise ValueError(
                "the energy-margin objective needs batches (x, y, x_outlier); set data.outliers in the recipe "
                "to a dataset of auxiliary outliers"
            )
        x_in, y_in, x_out = batch
        matrix_in = model.energy_matrix(x_in)  # [B, K]
        out = conditional_nll(matrix_in, y_in, model.temperature)
        free_in = free_energy_from_matrix(matrix_in, model.temperature)  # [B], shares the forward pass
        free_out = model.free_energy(x_out)  # [B_out]
        hinge_in = torch.relu(free_in - self.margin_in).pow(2).mean()
        hinge_out = torch.relu(self.margin_out - free_out).pow(2).mean()
        ce = out["loss"]
        out.update(
            loss=ce + self.weight * (hinge_in + hinge_out),
            ce=ce.detach(),
            margin_in_term=hinge_in.detach(),
            margin_out_term=hinge_out.detach(),
            energy_out=free_out.mean().detach(),
        )
        return out

