"""Metropolis-adjusted Langevin (MALA): Langevin proposals with an accept/reject correction.

Proposal (exact mode, temperature T): x' = x - η ∇E(x) + sqrt(2ηT) ξ, so
q(x' | x) = N(x'; x - η∇E(x), 2ηT I). The move is accepted with probability

    min(1, exp(-(E(x') - E(x)) / T + log q(x | x') - log q(x' | x))),

which satisfies detailed balance with respect to exp(-E / T), so that is the exact stationary
distribution for any step size η. The step only changes the acceptance rate and the mixing speed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..energies.base import check_temperature
from .langevin import (
    BATCHNORM_POLICIES,
    GRAD_CLIP_MODES,
    ChainTrace,
    EnergyFn,
    SampleResult,
    _check_choice,
    _check_count,
    _check_positive,
    _check_range,
    check_divergence,
    check_initial_state,
    clip_gradient,
    energy_and_grad,
    grad_norms,
    make_noise,
    sampling_context,
    stack_trace,
)

__all__ = ["MALASampler", "mala_sample"]


class MALASampler:
    """Metropolis-adjusted Langevin sampler; see :func:`mala_sample` for the settings."""

    def __init__(
        self,
        n_steps: int,
        step_size: float,
        temperature: float = 1.0,
        bounds: tuple[float, float] | None = None,
        grad_clip: float | None = None,
        grad_clip_mode: str = "norm",
        max_abs: float | None = 1e6,
        return_trace: bool = False,
        batchnorm: str = "frozen",
    ) -> None:
        self.n_steps = _check_count("n_steps", n_steps, 1)
        self.step_size = _check_positive("step_size", step_size)
        self.temperature = check_temperature(temperature)
        self.bounds = _check_range("bounds", bounds)
        self.grad_clip = None if grad_clip is None else _check_positive("grad_clip", grad_clip)
        self.grad_clip_mode = _check_choice("grad_clip_mode", grad_clip_mode, GRAD_CLIP_MODES)
        self.max_abs = None if max_abs is None else _check_positive("max_abs", max_abs)
        self.return_trace = bool(return_trace)
        self.batchnorm = _check_choice("batchnorm", batchnorm, BATCHNORM_POLICIES)

    def __repr__(self) -> str:
        return f"MALASampler(n_steps={self.n_steps}, step_size={self.step_size}, temperature={self.temperature})"

    def __call__(
        self,
        energy_fn: EnergyFn,
        x0: torch.Tensor,
        *,
        model: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> SampleResult:
        """Run the chains from ``x0`` (left unchanged); ``model`` as in ``LangevinSampler``."""
        x = check_initial_state(x0)
        with sampling_context(energy_fn, model, self.batchnorm):
            x, accepted, trace = self._run(energy_fn, x, generator)
        chain_acceptance = (accepted / self.n_steps).cpu()
        return SampleResult(
            samples=x,
            implied_temperature=self.temperature,
            energy_trace=trace,
            acceptance_rate=float(chain_acceptance.mean()),
            chain_acceptance=chain_acceptance,
        )

    def _run(
        self, energy_fn: EnergyFn, x: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, ChainTrace | None]:
        """Return final states, accepted-move counts per chain ``[B]`` and the optional trace."""
        energy, grad = energy_and_grad(energy_fn, x)
        check_divergence(x, energy, 0, self.n_steps, self.max_abs)
        grad = clip_gradient(grad, self.grad_clip, self.grad_clip_mode)
        accepted = torch.zeros(x.shape[0], device=x.device)
        energies: list[torch.Tensor] = []
        norms: list[torch.Tensor] = []
        accepts: list[torch.Tensor] = []
        for step in range(1, self.n_steps + 1):
            x, energy, grad, accept, norm = self._step(energy_fn, x, energy, grad, step, generator)
            accepted += accept
            if self.return_trace:
                energies.append(energy.mean())
                norms.append(norm)
                accepts.append(accept.mean())
        trace = stack_trace(energies, norms, accepts) if self.return_trace else None
        return x, accepted, trace

    def _step(
        self,
        energy_fn: EnergyFn,
        x: torch.Tensor,
        energy: torch.Tensor,
        grad: torch.Tensor,
        step: int,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, ...]:
        """Propose, accept or reject per chain, and return the new (x, E, clipped ∇E, accept, norm)."""
        eta, temp = self.step_size, self.temperature
        noise = make_noise(x, generator)
        proposal = x - eta * grad + math.sqrt(2.0 * eta * temp) * noise
        energy_new, grad_new = energy_and_grad(energy_fn, proposal)
        norm = grad_norms(grad_new).mean()
        grad_new = clip_gradient(grad_new, self.grad_clip, self.grad_clip_mode)

        # log q(x' | x) = -||sqrt(2ηT) ξ||² / (4ηT) = -||ξ||² / 2, up to the shared constant.
        log_q_forward = -0.5 * _sum_per_chain(noise.pow(2))
        log_q_backward = -_sum_per_chain((x - proposal + eta * grad_new).pow(2)) / (4.0 * eta * temp)
        log_alpha = -(energy_new - energy) / temp + log_q_backward - log_q_forward  # [B]
        inside = self._inside_bounds(proposal)
        # A proposal with E = +inf is rejected (probability 0); NaN or -inf is a divergence.
        invalid = inside & (torch.isnan(energy_new) | (energy_new == -math.inf))
        log_alpha = torch.where(inside, log_alpha, torch.full_like(log_alpha, -math.inf))
        uniform = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=log_alpha.dtype)
        accept = torch.log(uniform) < log_alpha  # [B]; False where log_alpha is NaN

        mask = accept.view(-1, *([1] * (x.dim() - 1)))
        x = torch.where(mask, proposal, x)
        energy = torch.where(accept, energy_new, energy)
        grad = torch.where(mask, grad_new, grad)
        check_divergence(x, energy, step, self.n_steps, self.max_abs, extra_bad=invalid)
        return x, energy, grad, accept.to(x.dtype), norm

    def _inside_bounds(self, proposal: torch.Tensor) -> torch.Tensor:
        """Return ``[B]`` True where every coordinate of the proposal lies within ``bounds``."""
        if self.bounds is None:
            return torch.ones(proposal.shape[0], dtype=torch.bool, device=proposal.device)
        lo, hi = self.bounds
        flat = proposal.reshape(proposal.shape[0], -1)
        return ((flat >= lo) & (flat <= hi)).all(dim=1)


def _sum_per_chain(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1)


def mala_sample(
    energy_fn: EnergyFn,
    x0: torch.Tensor,
    *,
    n_steps: int,
    step_size: float,
    temperature: float = 1.0,
    bounds: tuple[float, float] | None = None,
    model: nn.Module | None = None,
    generator: torch.Generator | None = None,
    **options: Any,
) -> SampleResult:
    """Sample exp(-E / T) with Metropolis-adjusted Langevin from ``x0`` ``[B, ...]`` (unchanged).

    Args:
        energy_fn: ``x -> [B]`` energies. Each chain's energy must not depend on the other
            chains, so ``batchnorm="train"`` with BatchNorm layers in train mode makes the
            accept/reject step inexact.
        n_steps: number of proposals per chain (>= 1).
        step_size: η > 0; proposals use noise sqrt(2ηT).
        temperature: T > 0.
        bounds: ``(lo, hi)`` box. Proposals with any coordinate outside are rejected, which is
            exact for the target restricted to the box (unlike clamping, which is not).
        model: as in :meth:`LangevinSampler.__call__`.
        generator: source of the proposal noise and the accept draws.
        **options: ``grad_clip`` and ``grad_clip_mode`` (applied to the proposal mean in both
            directions, so the correction stays exact), ``max_abs``, ``return_trace``,
            ``batchnorm``, as in :class:`LangevinConfig`.

    Returns:
        :class:`SampleResult` with ``acceptance_rate`` over all chains and steps and
        ``chain_acceptance`` per chain. The divergence check runs after every step.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> out = mala_sample(lambda x: 0.5 * x.pow(2).sum(1), torch.zeros(64, 1),
        ...                   n_steps=20, step_size=0.5, generator=g)
        >>> 0.0 < out.acceptance_rate <= 1.0
        True
    """
    sampler = MALASampler(n_steps, step_size, temperature=temperature, bounds=bounds, **options)
    return sampler(energy_fn, x0, model=model, generator=generator)
