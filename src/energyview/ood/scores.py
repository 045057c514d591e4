"""Post-hoc OOD scores by name, each declaring whether a higher value means more OOD.

A matrix score reduces the energy matrix E ``[B, K]`` of a batch (E = -logits for a classifier) at
temperature T to one value per input, ``fn(matrix, temperature) -> [B]``. An input score needs
the model and the input themselves (for example a score built on the gradient of the energy with
respect to the input) and is called as ``fn(model, x, temperature) -> [B]``.

Built-in matrix scores, with p = softmax(-E / T):

====================  ===============================  ============
name                  value                            higher_is_ood
====================  ===============================  ============
``energy``            F = -T logsumexp(-E / T)         True
``msp``               max_k p_k                        False
``max_logit``         max_k (-E_k), T not used         False
``entropy``           -sum_k p_k log p_k               True
====================  ===============================  ============
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..energies.base import check_finite, check_temperature, free_energy_from_matrix, scoring_mode

__all__ = ["OODScore", "compute_scores", "get_score", "list_scores", "register_score", "score_from_energy_matrix"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OODScore:
    """A named post-hoc OOD score and its orientation.

    Args:
        name: registry key.
        higher_is_ood: True when a larger value means more OOD.
        fn: ``fn(matrix [B, K], temperature) -> [B]``, or ``fn(model, x, temperature) -> [B]``
            when ``needs_input`` is True.
        needs_input: whether the score needs the model and the input instead of the energy matrix.
        description: one line for listings and docs.
    """

    name: str
    higher_is_ood: bool
    fn: Callable[..., torch.Tensor]
    needs_input: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"score name must be a non-empty string, got {self.name!r}")
        for field in ("higher_is_ood", "needs_input"):
            if not isinstance(getattr(self, field), bool):
                raise TypeError(f"{field} of score {self.name!r} must be True or False, got {getattr(self, field)!r}")
        if not callable(self.fn):
            raise TypeError(f"fn of score {self.name!r} must be callable, got {type(self.fn).__name__}")


_REGISTRY: dict[str, OODScore] = {}


def register_score(score: OODScore, overwrite: bool = False) -> OODScore:
    """Add ``score`` to the registry and return it.

    Raises ``ValueError`` if the name is taken, unless ``overwrite`` is True.
    """
    if not isinstance(score, OODScore):
        raise TypeError(f"register_score expects an OODScore, got {type(score).__name__}")
    if score.name in _REGISTRY and not overwrite:
        raise ValueError(f"an OOD score named {score.name!r} is already registered; pass overwrite=True to replace it")
    if score.name in _REGISTRY:
        logger.info("replacing the registered OOD score %r", score.name)
    _REGISTRY[score.name] = score
    return score


def get_score(name: str) -> OODScore:
    """Return the registered score called ``name``; an unknown name raises ``ValueError``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown OOD score {name!r}; known scores: {', '.join(known)}.{hint} Add new ones with register_score().")


def list_scores() -> list[str]:
    """Return the names of all registered scores, sorted."""
    return sorted(_REGISTRY)


def _check_matrix(matrix: Any) -> torch.Tensor:
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"energy matrix must be a torch.Tensor, got {type(matrix).__name__}")
    if matrix.dim() != 2 or matrix.shape[1] == 0:
        raise ValueError(f"energy matrix must be [B, K] with K >= 1, got shape {tuple(matrix.shape)}")
    check_finite(matrix, "energy matrix")
    return matrix if matrix.dtype == torch.float64 else matrix.float()


def _apply_matrix_score(score: OODScore, matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    values = score.fn(matrix, temperature)
    _check_output(score, values, matrix.shape[0])
    return values


def _check_output(score: OODScore, values: Any, batch_size: int | None) -> None:
    """Raise unless ``values`` is a ``[batch_size]`` tensor (any 1-D tensor when the size is unknown)."""
    shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or batch_size not in (None, values.shape[0]):
        expected = "[B]" if batch_size is None else f"[{batch_size}]"
        raise ValueError(f"OOD score {score.name!r} returned {shape}, expected a tensor of shape {expected}")


def score_from_energy_matrix(name: str, matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    """Return the matrix score ``name`` of an energy matrix ``[B, K]`` as ``[B]`` (float32 or float64).

    Example:
        >>> import torch
        >>> energies = torch.tensor([[0.0, 0.0], [-4.0, 0.0]])  # E = -logits
        >>> score_from_energy_matrix("msp", energies, temperature=1.0)
        tensor([0.5000, 0.9820])
    """
    score = get_score(name)
    if score.needs_input:
        raise ValueError(f"OOD score {name!r} needs the model and the input; compute it with compute_scores(model, x, [{name!r}])")
    return _apply_matrix_score(score, _check_matrix(matrix), check_temperature(temperature))


def compute_scores(
    model: nn.Module, x: Any, names: str | Iterable[str], temperature: float | None = None
) -> dict[str, torch.Tensor]:
    """Return ``{name: [B] tensor}`` for each requested score of the batch ``x``.

    ``model.energy_matrix(x)`` runs once under ``torch.no_grad()`` for all matrix scores. Input
    scores get ``fn(model, x, temperature)`` with gradients enabled, and their results are detached.
    The model is in eval mode while scoring, and the train/eval flag of every submodule is
    restored afterwards, also when a score raises. ``temperature=None`` uses ``model.temperature``
    (1.0 for a model without that attribute).

    Example:
        >>> import torch
        >>> from energyview.energies import quadratic_energy
        >>> compute_scores(quadratic_energy(), torch.tensor([[2.0], [1.0]]), ["energy"])  # F = ||x||^2 / 2
        {'energy': tensor([2.0000, 0.5000])}
    """
    requested = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    if not requested:
        raise ValueError(f"names must list at least one OOD score; known scores: {', '.join(list_scores())}")
    scores = [get_score(name) for name in requested]
    temperature = check_temperature(getattr(model, "temperature", 1.0) if temperature is None else temperature)

    if not isinstance(model, nn.Module):  # a plain object with energy_matrix has no train/eval mode
        return _score_batch(model, x, scores, temperature)
    with scoring_mode(model):
        return _score_batch(model, x, scores, temperature)


def _score_batch(model: Any, x: Any, scores: list[OODScore], temperature: float) -> dict[str, torch.Tensor]:
    results: dict[str, torch.Tensor] = {}
    matrix_scores = [score for score in scores if not score.needs_input]
    if matrix_scores:
        with torch.no_grad():
            matrix = _check_matrix(model.energy_matrix(x))
            for score in matrix_scores:
                results[score.name] = _apply_matrix_score(score, matrix, temperature)
    for score in scores:
        if score.needs_input:
            with torch.enable_grad():
                values = score.fn(model, x, temperature)
            _check_output(score, values, _batch_size(x, results))
            results[score.name] = values.detach()
    return {score.name: results[score.name] for score in scores}


def _batch_size(x: Any, results: dict[str, torch.Tensor]) -> int | None:
    if results:
        return next(iter(results.values())).shape[0]
    if isinstance(x, torch.Tensor):
        return x.shape[0]
    return None  # a dict or a custom batch object: only the output's dimension is checked


# ----------------------------------------------------------------------------- built-in scores


def _energy(matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    return free_energy_from_matrix(matrix, temperature)


def _max_softmax(matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(-matrix / temperature, dim=1).amax(dim=1)


def _max_logit(matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    return (-matrix).amax(dim=1)


def _entropy(matrix: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p = torch.log_softmax(-matrix / temperature, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


for _score in (
    OODScore("energy", True, _energy, description="free energy -T logsumexp(-E/T) (Liu et al. 2020)"),
    OODScore("msp", False, _max_softmax, description="maximum softmax probability of softmax(-E/T) (Hendrycks and Gimpel 2017)"),
    OODScore("max_logit", False, _max_logit, description="largest logit max(-E); the temperature is not used"),
    OODScore("entropy", True, _entropy, description="entropy of softmax(-E/T) in nats"),
):
    register_score(_score)
del _score
