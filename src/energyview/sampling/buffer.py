"""Replay buffer of persistent MCMC chains (persistent contrastive divergence, as in JEM).

Each training step draws a batch of slots, re-initialises a fraction ``reinit_prob`` of them
from the init distribution, runs the sampler from there and writes the chains back to the slots
they came from. Chains and labels are registered buffers: they follow ``.to(device)`` (so draws
and write-backs need no host-device copies) and they are saved and restored with ``state_dict``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import nn

from .inits import InitDistribution, _as_shape, build_init

__all__ = ["ReplayBuffer"]

logger = logging.getLogger(__name__)


class ReplayBuffer(nn.Module):
    """Fixed-size store of persistent chains, with optional per-slot class labels.

    Args:
        capacity: number of slots N.
        sample_shape: shape of one chain, e.g. ``(3, 32, 32)``.
        init: an :class:`InitDistribution` or a registered name (``"uniform"``, ``"gaussian"``,
            ``"class-gaussian"``); ``init_kwargs`` go to :func:`build_init`.
        num_classes: when given, slot i carries label ``i % num_classes`` (balanced classes),
            chains are initialised from the init given that label, and ``draw(y=...)`` picks
            slots of the requested classes.
        reinit_prob: default probability that a drawn chain restarts from the init (JEM: 0.05).
        dtype: dtype of the stored chains.

    The slots are filled from the init on the first :meth:`draw` (or an explicit :meth:`reset`),
    so a fitted init such as ``"class-gaussian"`` may be fitted after construction.

    Example:
        >>> buffer = ReplayBuffer(100, (2,))
        >>> x0, slots = buffer.draw(8, generator=torch.Generator().manual_seed(0))
        >>> buffer.write_back(slots, x0 * 0.5)
        >>> bool(torch.equal(buffer.get(slots), x0 * 0.5))
        True
    """

    def __init__(
        self,
        capacity: int,
        sample_shape: Sequence[int],
        init: InitDistribution | str = "uniform",
        *,
        num_classes: int | None = None,
        reinit_prob: float = 0.05,
        dtype: torch.dtype = torch.float32,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.sample_shape = _as_shape(sample_shape)
        self.init = build_init(init, **(init_kwargs or {})) if isinstance(init, str) else init
        if not isinstance(self.init, InitDistribution):
            raise TypeError(f"init must be an InitDistribution or a registered name, got {type(init).__name__}")
        self.reinit_prob = self._check_prob(reinit_prob)
        self.register_buffer("chains", torch.zeros((capacity, *self.sample_shape), dtype=dtype))
        labels = None
        if num_classes is not None:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= capacity:
                raise ValueError(f"num_classes must be an int in [1, capacity={capacity}], got {num_classes!r}")
            labels = torch.arange(capacity) % num_classes
        self.register_buffer("labels", labels)
        self.num_classes = num_classes
        self.filled = False

    @staticmethod
    def _check_prob(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"reinit_prob must be a number in [0, 1], got {value!r}")
        return float(value)

    @property
    def device(self) -> torch.device:
        return self.chains.device

    def reset(self, generator: torch.Generator | None = None) -> None:
        """Refill every slot from the init (given each slot's label when labels exist)."""
        fresh = self.init.sample(
            self.capacity, self.sample_shape, y=self.labels, generator=generator, device=self.device, dtype=self.chains.dtype
        )
        self.chains.copy_(fresh)
        self.filled = True
        logger.info("filled replay buffer: %d slots of shape %s from %s", self.capacity, tuple(self.sample_shape), self.init)

    def sample_indices(
        self, batch_size: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return ``[batch_size]`` slot indices on the buffer's device.

        Without ``y`` the slots are distinct (drawn without replacement). With ``y`` slot i is
        drawn uniformly among the slots labelled ``y[i]``, with replacement, so a batch may
        repeat a slot.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= self.capacity:
            raise ValueError(f"batch_size must be an int in [1, capacity={self.capacity}], got {batch_size!r}")
        if y is None:
            return torch.randperm(self.capacity, generator=generator, device=self.device)[:batch_size]
        return self._class_indices(batch_size, y, generator)

    def _class_indices(self, batch_size: int, y: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.labels is None:
            raise ValueError("draw(y=...) needs per-slot labels; build the ReplayBuffer with num_classes")
        y = torch.as_tensor(y).to(self.device)
        if y.shape != (batch_size,) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"y must be integer labels of shape [{batch_size}], got {y.dtype} {tuple(y.shape)}")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes - 1}], got range [{int(y.min())}, {int(y.max())}]")
        # Slots grouped by label: order lists slot ids class by class, start[c] is where class c begins.
        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=self.num_classes)
        start = torch.cumsum(counts, 0) - counts
        uniform = torch.rand(batch_size, generator=generator, device=self.device)
        offset = torch.minimum((uniform * counts[y]).long(), counts[y] - 1)  # guards uniform * n rounding to n
        return order[start[y] + offset]

    def get(self, indices: torch.Tensor) -> torch.Tensor:
        """Return a copy of the chains in slots ``indices``, ``[len(indices), *sample_shape]``."""
        return self.chains[self._check_indices(indices)]

    def reinit_mask(
        self, batch_size: int, reinit_prob: float | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return a ``[batch_size]`` bool mask, True with probability ``reinit_prob`` per chain."""
        prob = self.reinit_prob if reinit_prob is None else self._check_prob(reinit_prob)
        return torch.rand(batch_size, generator=generator, device=self.device) < prob

    def draw(
        self,
        batch_size: int,
        reinit_prob: float | None = None,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x0, indices)``: chains from ``batch_size`` slots, some restarted from the init.

        Each chain restarts independently with probability ``reinit_prob`` (default: the
        buffer's). Restarted chains are drawn from the init given the slot's label (or ``y``
        when the buffer has no labels). Finding the restarted rows costs one host sync.
        """
        if not self.filled:
            self.reset(generator)
        indices = self.sample_indices(batch_size, generator, y)
        x0 = self.chains[indices]
        restart = self.reinit_mask(batch_size, reinit_prob, generator).nonzero().squeeze(1)
        if restart.numel():
            labels = self._restart_labels(indices, restart, y)
            x0[restart] = self.init.sample(
                restart.numel(), self.sample_shape, y=labels, generator=generator, device=self.device, dtype=x0.dtype
            )
        return x0, indices

    def _restart_labels(self, indices: torch.Tensor, rows: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        if self.labels is not None:
            return self.labels[indices[rows]]
        if y is not None:
            return torch.as_tensor(y).to(self.device)[rows]
        return None

    def write_back(self, indices: torch.Tensor, samples: torch.Tensor) -> None:
        """Store ``samples`` ``[len(indices), *sample_shape]`` in the slots ``indices`` they came from.

        Repeated indices (possible with ``draw(y=...)``) keep one of the repeated samples.
        """
        indices = self._check_indices(indices)
        if not isinstance(samples, torch.Tensor) or samples.shape != (indices.shape[0], *self.sample_shape):
            shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
            raise ValueError(
                f"samples must have shape {(indices.shape[0], *self.sample_shape)} "
                f"(one chain per index, sample_shape {tuple(self.sample_shape)}), got {shape}"
            )
        self.chains[indices] = samples.detach().to(device=self.device, dtype=self.chains.dtype)
        self.filled = True

    def _check_indices(self, indices: torch.Tensor) -> torch.Tensor:
        indices = torch.as_tensor(indices)
        if indices.dim() != 1 or indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be a 1-D integer tensor, got {indices.dtype} {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.capacity):
            raise ValueError(
                f"indices must lie in [0, {self.capacity - 1}], got range [{int(indices.min())}, {int(indices.max())}]"
            )
        return indices.to(self.device)

    def get_extra_state(self) -> dict[str, Any]:
        return {"filled": self.filled}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.filled = bool(state.get("filled", True))

    def _load_from_state_dict(self, state_dict, prefix, *args: Any, **kwargs: Any) -> None:
        # Check every shape before anything is copied, so a mismatched checkpoint leaves the
        # buffer (and its init) untouched.
        for name in ("chains", "labels"):
            value, own = state_dict.get(prefix + name), getattr(self, name)
            if value is None:
                continue  # a missing entry is reported by load_state_dict itself
            if own is None or value.shape != own.shape:
                found = f"shape {tuple(value.shape)}"
                expected = "no labels" if own is None else f"shape {tuple(own.shape)}"
                raise ValueError(
                    f"checkpoint entry {prefix + name} has {found}, but this ReplayBuffer expects {expected} "
                    f"(capacity={self.capacity}, sample_shape={tuple(self.sample_shape)}, "
                    f"num_classes={self.num_classes}); build the buffer with the checkpoint's settings"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"capacity={self.capacity}, sample_shape={tuple(self.sample_shape)}, "
            f"num_classes={self.num_classes}, reinit_prob={self.reinit_prob}, filled={self.filled}"
        )
