"""Cross-entropy read as a positive/negative phase over the class candidates."""

from __future__ import annotations

from typing import Any

import torch

from ..energies.base import EnergyModel, check_labels, free_energy_from_matrix
from .base import LossDict, Objective

__all__ = ["ConditionalNLL", "conditional_nll"]


def conditional_nll(matrix: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> LossDict:
    """Return -log p(y | x) from a ``[B, K]`` energy matrix, split into its two phases.

    -log p(y | x) = E(x, y) / T - (-F(x) / T): the positive phase lowers the energy of the observed
    pair; the negative phase, -F(x) = T logsumexp(-E(x, .) / T), raises the energy of every
    candidate in proportion to its probability. With T = 1 this is ``cross_entropy(-matrix, y)``.
    """
    y = check_labels(y, matrix.shape[0], matrix.shape[1]).to(matrix.device)
    energy_pos = matrix.float().gather(1, y.unsqueeze(1)).squeeze(1)  # [B]
    free = free_energy_from_matrix(matrix, temperature)  # [B]
    loss = ((energy_pos - free) / temperature).mean()
    return {"loss": loss, "energy_pos": energy_pos.mean().detach(), "free_energy": free.mean().detach()}


class ConditionalNLL(Objective):
    """Conditional negative log-likelihood -log p(y | x) of a labelled batch ``(x, y)``.

    Args:
        label_smoothing: mixes the one-hot target with the uniform one, as in ``F.cross_entropy``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, model: EnergyModel, batch: Any) -> LossDict:
        x, y = batch[0], batch[1]
        matrix = model.energy_matrix(x)
        out = conditional_nll(matrix, y, model.temperature)
        if self.label_smoothing:
            # Uniform target: the mean over k of -log p(k | x) = (mean_k E(x, k) - F(x)) / T.
            free = free_energy_from_matrix(matrix, model.temperature)
            smooth = ((matrix.float().mean(dim=1) - free) / model.temperature).mean()
            out["loss"] = (1 - self.label_smoothing) * out["loss"] + self.label_smoothing * smooth
        with torch.no_grad():
            out["accuracy"] = (matrix.argmin(dim=1) == y.to(matrix.device)).float().mean()
        return out
