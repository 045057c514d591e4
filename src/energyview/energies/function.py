"""A plain energy E(x) given by a function, for samplers and closed-form checks."""

from __future__ import annotations

from typing import Callable

import torch

from .base import EnergyModel

__all__ = ["FunctionEnergy", "quadratic_energy"]


class FunctionEnergy(EnergyModel):
    """An unconditional energy E(x) from a callable ``fn(x) -> [B]``.

    It has one candidate, so ``energy_matrix`` is ``[B, 1]`` and ``free_energy(x)`` equals E(x)
    at any temperature.

    Example:
        >>> import torch
        >>> model = FunctionEnergy(lambda x: 0.5 * x.pow(2).sum(dim=1))
        >>> model.free_energy(torch.tensor([[2.0], [1.0]]))
        tensor([2.0000, 0.5000])
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], temperature: float = 1.0) -> None:
        super().__init__(temperature)
        self.fn = fn

    def energy_matrix(self, x: torch.Tensor, candidates: object = None) -> torch.Tensor:
        values = self.fn(x)
        if values.dim() != 1 or values.shape[0] != x.shape[0]:
            raise ValueError(f"energy function must return [B] = [{x.shape[0]}], got shape {tuple(values.shape)}")
        return values.unsqueeze(1)


def quadratic_energy(scale: float = 1.0) -> FunctionEnergy:
    """Return E(x) = ||x||^2 / (2 scale^2), the energy of N(0, scale^2 I) at T = 1."""
    return FunctionEnergy(lambda x: x.flatten(1).pow(2).sum(dim=1) / (2.0 * scale**2))
