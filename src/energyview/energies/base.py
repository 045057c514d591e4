"""The `EnergyModel` contract shared by classifiers, joint models and contrastive models.

Every model scores pairs (input x, candidate y) with an energy E(x, y); lower is more likely.
Over a candidate set the conditional is p(y | x) = softmax(-E(x, .) / T), and the free energy
F(x) = -T * logsumexp(-E(x, .) / T) marginalises the candidates. F is the JEM energy of x
(p(x) is proportional to exp(-F(x) / T)) and the energy OOD score of Liu et al. (2020).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["EnergyModel", "check_finite", "check_labels", "check_temperature", "free_energy_from_matrix", "scoring_mode"]


def check_temperature(temperature: Any) -> float:
    """Return ``temperature`` as a float, raising ``ValueError`` unless it is finite and > 0."""
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got a tensor of shape {tuple(temperature.shape)}")
        temperature = temperature.item()
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__} ({temperature!r})")
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(
            f"temperature must be finite and > 0, got {temperature}; "
            "use T = 1 for the model's own logits, T < 1 to sharpen, T > 1 to flatten"
        )
    return temperature


def check_finite(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` naming ``name`` and the first bad entry if ``tensor`` has NaN or inf."""
    if tensor.is_floating_point() or tensor.is_complex():
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0].tolist())
            value = tensor[index].item()
            count = int(bad.sum())
            raise ValueError(
                f"{name} contains {count} non-finite value(s), first {value} at index {index}; "
                f"clean or drop these entries before scoring"
            )
    return tensor


class EnergyModel(nn.Module):
    """Base class of every energy in energyview.

    Subclasses implement :meth:`energy_matrix`; the rest of the contract derives from it.

    Args:
        temperature: T > 0 in p(y | x) = softmax(-E(x, .) / T) and F(x) = -T logsumexp(-E / T).

    Shapes: ``x`` is a batch of B inputs. ``candidates`` is whatever the subclass scores against,
    and ``None`` means its default set (the class labels of a classifier, or the other side of
    the batch of a pair model). ``energy_matrix`` returns ``[B, K]``; ``energy`` and
    ``free_energy`` return ``[B]``.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self._temperature = check_temperature(temperature)

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = check_temperature(value)

    def energy_matrix(self, x: Any, candidates: Any = None) -> torch.Tensor:
        """Return E(x_i, y_k) as a ``[B, K]`` tensor. Lower energy means a more likely pair."""
        raise NotImplementedError(f"{type(self).__name__} must implement energy_matrix(x, candidates)")

    def forward(self, x: Any, candidates: Any = None) -> torch.Tensor:
        return self.energy_matrix(x, candidates)

    def energy(self, x: Any, y: torch.Tensor, candidates: Any = None) -> torch.Tensor:
        """Return the paired energy E(x_i, y_i) as ``[B]``; ``y`` contains candidate indices."""
        matrix = self.energy_matrix(x, candidates)
        y = check_labels(y, matrix.shape[0], matrix.shape[1])
        return matrix.gather(1, y.to(matrix.device).unsqueeze(1)).squeeze(1)

    def free_energy(self, x: Any, candidates: Any = None, temperature: float | None = None) -> torch.Tensor:
        """Return F(x) = -T * logsumexp(-E(x, .) / T) over the candidates, as ``[B]``."""
        return free_energy_from_matrix(self.energy_matrix(x, candidates), self._pick(temperature))

    def log_prob(self, x: Any, candidates: Any = None, temperature: float | None = None) -> torch.Tensor:
        """Return log p(y_k | x_i) = log_softmax(-E(x_i, .) / T) as ``[B, K]``."""
        t = self._pick(temperature)
        return torch.log_softmax(-self.energy_matrix(x, candidates).float() / t, dim=1)

    def after_optimizer_step(self) -> None:
        """Hook the trainer calls after each optimizer step, to project parameters back into
        their valid range (a contrastive model clamps its log scale here). Does nothing by default."""

    def _pick(self, temperature: float | None) -> float:
        return self._temperature if temperature is None else check_temperature(temperature)

    def extra_repr(self) -> str:
        return f"temperature={self._temperature}"


def free_energy_from_matrix(matrix: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Return -T * logsumexp(-E / T, dim=1) of a ``[B, K]`` energy matrix, computed in float32+."""
    t = check_temperature(temperature)
    if matrix.dim() != 2:
        raise ValueError(f"energy matrix must be [B, K], got shape {tuple(matrix.shape)}")
    work = matrix if matrix.dtype == torch.float64 else matrix.float()
    return -t * torch.logsumexp(-work / t, dim=1)


def check_labels(y: torch.Tensor, batch_size: int, num_candidates: int) -> torch.Tensor:
    """Validate candidate indices ``y`` for a ``[batch_size, num_candidates]`` energy matrix."""
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {y.dtype}; cast with y.long()")
    if y.dim() != 1 or y.shape[0] != batch_size:
        raise ValueError(f"labels must have shape [{batch_size}], got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_candidates):
        bad = y[(y < 0) | (y >= num_candidates)][0].item()
        raise ValueError(
            f"label {bad} is out of range for {num_candidates} candidates; labels must lie in [0, {num_candidates - 1}]"
        )
    return y.long()


class scoring_mode:  # noqa: N801 - used like torch.no_grad
    """Context manager: put ``model`` in eval mode, then restore every submodule's own mode.

    ``model.train(previous)`` would flip submodules that were deliberately left in another mode,
    such as a frozen backbone in eval inside a training model. This restores each one as it was.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._modes: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self._modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for module, mode in self._modes:
            module.training = mode
