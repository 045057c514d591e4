"""A softmax classifier read as a conditional energy E(x, y) = -f(x)[y]."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .outputs import OutputSelector, select_output
from .base import EnergyModel, check_finite

__all__ = ["ClassifierEnergy"]


class ClassifierEnergy(EnergyModel):
    """Wrap any network that returns class logits as an energy model.

    The candidates are the class labels: E(x, y) = -f(x)[y], so p(y | x) = softmax(f(x) / T) and
    the free energy F(x) = -T logsumexp(f(x) / T) is the energy OOD score.

    Args:
        net: the network; its output may be a tensor, a dict, a transformers ``ModelOutput``
            or a namedtuple.
        temperature: T > 0.
        output_key: where the logits are when they cannot be found automatically
            (see :func:`energyview.energies.outputs.select_output`).
        check_inputs: raise on NaN or inf in floating-point inputs (costs one reduction a batch).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = ClassifierEnergy(nn.Linear(2, 3, bias=False))
        >>> with torch.no_grad():
        ...     _ = model.net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        >>> model.energy_matrix(torch.tensor([[2.0, 1.0]]))
        tensor([[-2., -1., -0.]], grad_fn=<NegBackward0>)
        >>> round(model.free_energy(torch.tensor([[0.0, 0.0]])).item(), 4)  # -log(3)
        -1.0986
    """

    def __init__(
        self,
        net: nn.Module,
        temperature: float = 1.0,
        output_key: OutputSelector = None,
        check_inputs: bool = True,
    ) -> None:
        super().__init__(temperature)
        self.net = net
        self.output_key = output_key
        self.check_inputs = check_inputs

    def logits(self, x: Any) -> torch.Tensor:
        """Return the network's logits f(x) as ``[B, num_classes]``."""
        if self.check_inputs and isinstance(x, torch.Tensor):
            check_finite(x, "input x")
        logits = select_output(self.net(x), self.output_key)
        if logits.dim() != 2:
            raise ValueError(
                f"logits must be [B, num_classes], got shape {tuple(logits.shape)}; "
                "flatten the head's output or pass output_key to select the right tensor"
            )
        return logits

    def energy_matrix(self, x: Any, candidates: Any = None) -> torch.Tensor:
        """Return -f(x) as ``[B, num_classes]``; ``candidates`` may subset the class indices."""
        matrix = -self.logits(x)
        if candidates is not None:
            matrix = matrix[:, torch.as_tensor(candidates, device=matrix.device, dtype=torch.long)]
        return matrix
