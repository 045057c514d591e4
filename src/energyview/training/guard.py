"""Divergence guard: catch a diverging step before the optimizer applies it, then roll back."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Callable

import torch

from .config import GuardConfig

__all__ = ["DivergenceError", "DivergenceGuard"]

log = logging.getLogger(__name__)


class DivergenceError(RuntimeError):
    """Training diverged, and the guard could not recover or was disabled."""


class DivergenceGuard:
    """Check each step's values; on divergence restore the last good state with a smaller lr.

    The check runs after ``backward`` and before ``optimizer.step``, so a non-finite gradient never
    reaches the weights. Nothing is replaced silently: every trip is logged with the step and
    the offending values, and the run stops with :class:`DivergenceError` once ``max_retries``
    is spent.
    """

    def __init__(self, config: GuardConfig, get_state: Callable[[], dict], set_state: Callable[[dict], None]) -> None:
        self.config = config
        self._get_state = get_state
        self._set_state = set_state
        self._snapshot: dict | None = None
        self._snapshot_step = -1
        self.retries = 0

    def find_problem(self, values: dict[str, float]) -> str | None:
        """Return a description of the first diverging value, or None when the step is healthy."""
        for name, value in values.items():
            if not math.isfinite(value):
                return f"{name} = {value}"
            if name == "loss" or name.startswith("energy"):
                if abs(value) > self.config.max_abs:
                    return f"|{name}| = {abs(value):.4g} > guard.max_abs = {self.config.max_abs:g}"
        return None

    def maybe_snapshot(self, step: int) -> None:
        """Keep an in-memory copy of the state every ``snapshot_every`` healthy steps."""
        if self._snapshot is None or step - self._snapshot_step >= self.config.snapshot_every:
            self._snapshot = _to_cpu(copy.deepcopy(self._get_state()))
            self._snapshot_step = step

    def recover(self, step: int, problem: str) -> int:
        """Restore the last good state and return the step it came from, or raise DivergenceError."""
        if not self.config.enabled:
            raise DivergenceError(f"training diverged at step {step}: {problem}; the guard is disabled (guard.enabled: false)")
        if self._snapshot is None or self.retries >= self.config.max_retries:
            raise DivergenceError(
                f"training diverged at step {step}: {problem}; gave up after {self.retries} "
                f"retries with lr factor {self.config.lr_factor}. Lower train.lr, raise regularisation "
                "or clip gradients (train.grad_clip); the last good checkpoint in the run folder is intact"
            )
        self.retries += 1
        log.warning(
            "divergence at step %d: %s; restoring the state of step %d and multiplying lr by %g (retry %d of %d)",
            step, problem, self._snapshot_step, self.config.lr_factor, self.retries, self.config.max_retries,
        )
        self._set_state(copy.deepcopy(self._snapshot))
        return self._snapshot_step


def _to_cpu(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state
