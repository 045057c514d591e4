"""Unadjusted Langevin dynamics (SGLD) over inputs x, in exact or decoupled step/noise form.

The Euler-Maruyama discretisation of the Langevin diffusion that targets p(x) ∝ exp(-E(x) / T) is

    x <- x - η ∇E(x) + sqrt(2 η T) ξ,    ξ ~ N(0, I)            (exact mode)

JEM (Grathwohl et al., 2020) and IGEBM (Du and Mordatch, 2019) choose the noise separately:

    x <- x - η ∇E(x) + σ ξ                                       (decoupled mode)

Matching σ² = 2 η T shows that the decoupled chain is the exact chain at the implied temperature
T = σ² / (2 η), so it targets exp(-E · 2η / σ²). JEM's setting η = 1, σ = 0.01 samples at
T = 5e-5: close to gradient descent on E with a little noise.

Samplers take any callable ``energy_fn(x) -> [B]``, differentiate it with respect to x only
(``torch.autograd.grad``), never write to parameter ``.grad`` and never change BatchNorm running
statistics (see :func:`bn_policy`).
"""

from __future__ import annotations

import logging
import math
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from ..energies.base import check_temperature

__all__ = [
    "BATCHNORM_POLICIES",
    "ChainTrace",
    "EnergyFn",
    "LangevinConfig",
    "LangevinSampler",
    "ModelEnergyFn",
    "SampleResult",
    "SamplerDivergenceError",
    "bn_policy",
    "conditional_energy_fn",
    "langevin_sample",
    "marginal_energy_fn",
]

logger = logging.getLogger(__name__)

EnergyFn = Callable[[torch.Tensor], torch.Tensor]
BATCHNORM_POLICIES = ("frozen", "train")
GRAD_CLIP_MODES = ("norm", "value")

# (step size, noise scale) pairs whose implied temperature was already logged, so that a
# training loop that samples every iteration logs each setting once.
_logged_settings: set[tuple[float, float]] = set()


class SamplerDivergenceError(RuntimeError):
    """Raised when chains become non-finite or leave the ``max_abs`` bound during sampling."""


@dataclass
class ChainTrace:
    """Per-step diagnostics of a sampling run, each a CPU tensor of shape ``[n_steps]``.

    ``energy`` is the mean energy over chains at the start of each step (Langevin) or after the
    accept/reject decision (MALA). ``grad_norm`` is the mean per-chain L2 norm of ∇_x E before
    clipping, at the chains (Langevin) or at the proposals (MALA). ``acceptance`` is the fraction of chains that accepted at each step (MALA only).
    """

    energy: torch.Tensor
    grad_norm: torch.Tensor
    acceptance: torch.Tensor | None = None


@dataclass
class SampleResult:
    """Output of a sampler.

    Attributes:
        samples: final chain states, detached, with the shape and dtype of ``x0``.
        implied_temperature: the temperature the chain targets, σ² / (2η) (T in exact mode).
        energy_trace: per-step diagnostics when ``return_trace=True``, else ``None``.
        acceptance_rate: fraction of accepted proposals over all chains and steps (MALA);
            ``None`` for unadjusted Langevin, which accepts every move.
        chain_acceptance: per-chain acceptance rate ``[B]`` (MALA), else ``None``.
    """

    samples: torch.Tensor
    implied_temperature: float
    energy_trace: ChainTrace | None = None
    acceptance_rate: float | None = None
    chain_acceptance: torch.Tensor | None = None


def _check_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_range(name: str, bounds: Any) -> tuple[float, float] | None:
    """Validate a ``(lo, hi)`` pair with finite lo < hi; ``None`` passes through."""
    if bounds is None:
        return None
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (lo, hi) of numbers or None, got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must satisfy lo < hi with finite values, got ({lo}, {hi})")
    return lo, hi


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class LangevinConfig:
    """Settings of an unadjusted Langevin chain.

    Args:
        n_steps: number of updates (0 returns a copy of ``x0``).
        step_size: η > 0, the gradient step.
        noise_std: σ >= 0 of the decoupled mode. ``None`` selects the exact mode with noise
            sqrt(2 η T).
        temperature: T > 0 of the exact mode (default 1). Passing it together with
            ``noise_std`` raises, because σ then fixes the temperature at σ² / (2η).
        clamp: ``(lo, hi)`` to clamp every coordinate after each step (the data range), or None.
        grad_clip: clip threshold for ∇_x E, or None. In ``"norm"`` mode each chain's gradient
            is rescaled to L2 norm at most ``grad_clip``; in ``"value"`` mode every coordinate
            is clamped to [-grad_clip, grad_clip].
        grad_clip_mode: ``"norm"`` (default) or ``"value"``.
        max_abs: a chain diverges when any |x| exceeds this bound; ``None`` checks finiteness only.
        check_every: run the divergence check every this many steps and after the last step.
            Each check reads one flag back from the device, a host sync on CUDA.
        return_trace: record mean energy and mean gradient norm per step.
        batchnorm: :func:`bn_policy` applied to the model during sampling.
    """

    n_steps: int
    step_size: float
    noise_std: float | None = None
    temperature: float | None = None
    clamp: tuple[float, float] | None = None
    grad_clip: float | None = None
    grad_clip_mode: str = "norm"
    max_abs: float | None = 1e6
    check_every: int = 1
    return_trace: bool = False
    batchnorm: str = "frozen"

    def __post_init__(self) -> None:
        fields = {
            "n_steps": _check_count("n_steps", self.n_steps, 0),
            "step_size": _check_positive("step_size", self.step_size),
            "clamp": _check_range("clamp", self.clamp),
            "grad_clip_mode": _check_choice("grad_clip_mode", self.grad_clip_mode, GRAD_CLIP_MODES),
            "check_every": _check_count("check_every", self.check_every, 1),
            "batchnorm": _check_choice("batchnorm", self.batchnorm, BATCHNORM_POLICIES),
        }
        if self.noise_std is not None:
            if self.temperature is not None:
                raise ValueError(
                    f"pass either noise_std (decoupled mode, got {self.noise_std}) or temperature "
                    f"(exact mode, got {self.temperature}), not both: noise_std fixes the "
                    "temperature at noise_std**2 / (2 * step_size)"
                )
            fields["noise_std"] = _check_positive("noise_std", self.noise_std, allow_zero=True)
        else:
            fields["temperature"] = check_temperature(1.0 if self.temperature is None else self.temperature)
        if self.grad_clip is not None:
            fields["grad_clip"] = _check_positive("grad_clip", self.grad_clip)
        if self.max_abs is not None:
            fields["max_abs"] = _check_positive("max_abs", self.max_abs)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def mode(self) -> str:
        """``"exact"`` (noise sqrt(2ηT)) or ``"decoupled"`` (noise σ given separately)."""
        return "exact" if self.noise_std is None else "decoupled"

    @property
    def noise_scale(self) -> float:
        """Standard deviation of the Gaussian noise added per step."""
        if self.noise_std is None:
            return math.sqrt(2.0 * self.step_size * self.temperature)
        return self.noise_std

    @property
    def implied_temperature(self) -> float:
        """Temperature the chain targets: σ² / (2η) in decoupled mode, T in exact mode.

        Example:
            >>> LangevinConfig(n_steps=20, step_size=1.0, noise_std=0.01).implied_temperature
            5e-05
        """
        if self.noise_std is None:
            return self.temperature
        return self.noise_std**2 / (2.0 * self.step_size)


@contextmanager
def bn_policy(model: nn.Module, policy: str = "frozen") -> Iterator[nn.Module]:
    """Keep BatchNorm running statistics unchanged while sampling through ``model``.

    Applies to every normalisation layer with running statistics (BatchNorm1d/2d/3d,
    SyncBatchNorm, and InstanceNorm with ``track_running_stats=True``).

    - ``"frozen"`` (default): each such layer is put in eval mode, so it normalises with its
      running statistics and does not update them. Each layer's previous mode is restored on
      exit, also when the body raises. The energy seen by the sampler is the eval-mode energy.
    - ``"train"`` (train-mode sampling as in JEM++): layer modes are left as they are, so a layer
      in train mode normalises with batch statistics and updates its running statistics during
      sampling. On exit, also when the body raises, ``running_mean``, ``running_var`` and
      ``num_batches_tracked`` are restored from a copy taken on entry, so the statistics after
      sampling are bit-identical to those before. The energy of a chain then depends on the
      other chains in the batch.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> with bn_policy(net, "frozen"):
        ...     net[1].training
        False
        >>> net[1].training
        True
    """
    _check_choice("policy", policy, BATCHNORM_POLICIES)
    norms = [m for m in model.modules() if isinstance(m, _NormBase)]
    if policy == "frozen":
        modes = [m.training for m in norms]
        try:
            for m in norms:
                m.eval()
            yield model
        finally:
            for m, mode in zip(norms, modes):
                m.train(mode)
        return
    names = ("running_mean", "running_var", "num_batches_tracked")
    saved = [(m, {n: getattr(m, n).clone() for n in names if getattr(m, n, None) is not None}) for m in norms]
    try:
        yield model
    finally:
        with torch.no_grad():
            for m, stats in saved:
                for name, value in stats.items():
                    getattr(m, name).copy_(value)


@contextmanager
def _parameters_frozen(model: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` on the model's parameters and restore each flag on exit."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in trainable:
            p.requires_grad_(False)
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


def _resolve_model(energy_fn: EnergyFn, model: nn.Module | None) -> nn.Module | None:
    """Return ``model`` if given, else ``energy_fn`` if it is a module, else its owner or ``.model``."""
    if model is not None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module or None, got {type(model).__name__}")
        return model
    for candidate in (energy_fn, getattr(energy_fn, "__self__", None), getattr(energy_fn, "model", None)):
        if isinstance(candidate, nn.Module):
            return candidate
    return None


@contextmanager
def sampling_context(energy_fn: EnergyFn, model: nn.Module | None, policy: str) -> Iterator[None]:
    """Enable autograd, apply :func:`bn_policy` and freeze parameters of the resolved model."""
    module = _resolve_model(energy_fn, model)
    with ExitStack() as stack:
        stack.enter_context(torch.enable_grad())
        if module is not None:
            stack.enter_context(bn_policy(module, policy))
            stack.enter_context(_parameters_frozen(module))
        yield


def check_initial_state(x0: Any) -> torch.Tensor:
    """Return a detached copy of ``x0`` after checking it is a non-empty float batch."""
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"x0 must be a tensor of shape [B, ...], got {type(x0).__name__}")
    if not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got dtype {x0.dtype}; cast it with x0.float()")
    if x0.dim() == 0 or x0.shape[0] == 0:
        raise ValueError(f"x0 must be a non-empty batch [B, ...] of chains, got shape {tuple(x0.shape)}")
    return x0.detach().clone()


def energy_and_grad(energy_fn: EnergyFn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return detached E(x) ``[B]`` and ∇_x sum(E) (shaped like x), differentiating w.r.t. x only."""
    x = x.detach().requires_grad_(True)
    energy = energy_fn(x)
    if not isinstance(energy, torch.Tensor) or energy.shape != x.shape[:1]:
        shape = tuple(energy.shape) if isinstance(energy, torch.Tensor) else type(energy).__name__
        raise ValueError(
            f"energy_fn must return one energy per chain, shape [{x.shape[0]}], got {shape}; "
            "for an energy model use marginal_energy_fn(model) or conditional_energy_fn(model, y)"
        )
    if not energy.requires_grad:
        raise ValueError(
            "energy_fn returned a tensor that does not require grad; compute it from x with autograd "
            "on (not under torch.inference_mode or with a .detach() inside)"
        )
    (grad,) = torch.autograd.grad(energy.sum(), x, allow_unused=True)
    if grad is None:
        raise ValueError("energy_fn output does not depend on x, so ∇_x E is undefined; check the energy function")
    return energy.detach(), grad


def clip_gradient(grad: torch.Tensor, max_value: float | None, mode: str) -> torch.Tensor:
    """Clip each chain's gradient to L2 norm ``max_value`` (``"norm"``) or each entry (``"value"``)."""
    if max_value is None:
        return grad
    if mode == "value":
        return grad.clamp(-max_value, max_value)
    norms = grad.reshape(grad.shape[0], -1).norm(dim=1)  # [B]
    scale = (max_value / norms.clamp_min(1e-12)).clamp(max=1.0)
    return grad * scale.view(-1, *([1] * (grad.dim() - 1)))


def grad_norms(grad: torch.Tensor) -> torch.Tensor:
    """Return the per-chain L2 norm ``[B]`` of a gradient shaped like the chains."""
    return grad.reshape(grad.shape[0], -1).norm(dim=1)


def check_divergence(
    x: torch.Tensor,
    energy: torch.Tensor | None,
    step: int,
    n_steps: int,
    max_abs: float | None,
    extra_bad: torch.Tensor | None = None,
) -> None:
    """Raise :class:`SamplerDivergenceError` if any chain is non-finite or has |x| > max_abs.

    ``step`` is 1-based. ``energy`` ``[B]`` and ``extra_bad`` ``[B]`` (a caller's own mask of bad
    chains) are optional. The common case costs two reductions and one device read; the
    per-chain search runs only when that read shows a problem.
    """
    zero = x.new_zeros(())
    energy_total = zero if energy is None else energy.sum().to(x.dtype)
    extra_count = zero if extra_bad is None else extra_bad.sum().to(x.dtype)
    # NaN propagates through amax and sum, so one device read covers every condition.
    peak, total, extra = torch.stack((x.abs().amax(), energy_total, extra_count)).tolist()
    if math.isfinite(peak) and (max_abs is None or peak <= max_abs) and math.isfinite(total) and extra == 0:
        return
    _raise_divergence(x, energy, step, n_steps, max_abs, extra_bad)


def _raise_divergence(
    x: torch.Tensor,
    energy: torch.Tensor | None,
    step: int,
    n_steps: int,
    max_abs: float | None,
    extra_bad: torch.Tensor | None,
) -> None:
    """Find the bad chains and raise; return if there are none (the energy sum only overflowed)."""
    peak = x.reshape(x.shape[0], -1).abs().amax(dim=1)  # [B]
    bad = ~(peak <= max_abs) if max_abs is not None else ~torch.isfinite(peak)
    if energy is not None:
        bad = bad | ~torch.isfinite(energy)
    if extra_bad is not None:
        bad = bad | extra_bad
    if not bool(bad.any()):
        return
    first = int(bad.nonzero()[0, 0])
    energy_text = "" if energy is None else f", energy {energy[first].item():.6g}"
    bound = "" if max_abs is None else f" or |x| > {max_abs:g}"
    raise SamplerDivergenceError(
        f"sampler diverged at step {step} of {n_steps}: {int(bad.sum())} of {x.shape[0]} chains are "
        f"non-finite{bound} (chain {first}: max |x| = {peak[first].item():.6g}{energy_text}). "
        "Lower step_size, clamp chains to the data range with clamp=(lo, hi), clip gradients with "
        "grad_clip, or add a coercive wall term so that the energy grows with |x|"
    )


def make_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Return standard normal noise shaped like ``x``, drawn from ``generator`` if given."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def stack_trace(energies: list[torch.Tensor], norms: list[torch.Tensor], accepts: list | None = None) -> ChainTrace:
    """Stack per-step scalar tensors into a CPU :class:`ChainTrace` (one device read at the end)."""
    def to_cpu(values: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(values).float().cpu() if values else torch.zeros(0)

    acceptance = None if accepts is None else to_cpu(accepts)
    return ChainTrace(energy=to_cpu(energies), grad_norm=to_cpu(norms), acceptance=acceptance)


def log_implied_temperature(step_size: float, noise_scale: float, kind: str) -> None:
    """Log at INFO the temperature a (step, noise) setting implies, once per setting."""
    key = (step_size, noise_scale)
    if key in _logged_settings:
        return
    _logged_settings.add(key)
    implied = noise_scale**2 / (2.0 * step_size)
    logger.info(
        "%s with step_size=%g, noise_std=%g targets exp(-E / T) at implied temperature T = %g",
        kind,
        step_size,
        noise_scale,
        implied,
    )


class LangevinSampler:
    """Unadjusted Langevin sampler holding a :class:`LangevinConfig`.

    Build it from a config or from the config's keyword arguments, then call it on an energy
    function and initial chains: ``LangevinSampler(n_steps=20, step_size=1.0, noise_std=0.01)``.
    """

    def __init__(self, config: LangevinConfig | None = None, **kwargs: Any) -> None:
        if config is not None and kwargs:
            raise ValueError(f"pass either a LangevinConfig or keyword settings, not both (got {sorted(kwargs)})")
        if config is not None and not isinstance(config, LangevinConfig):
            raise TypeError(f"config must be a LangevinConfig, got {type(config).__name__}")
        self.config = config if config is not None else LangevinConfig(**kwargs)

    def __repr__(self) -> str:
        return f"LangevinSampler({self.config})"

    def __call__(
        self,
        energy_fn: EnergyFn,
        x0: torch.Tensor,
        *,
        model: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> SampleResult:
        """Run the chain from ``x0`` (left unchanged) and return a :class:`SampleResult`.

        ``model`` is the module whose parameters and BatchNorm layers ``energy_fn`` uses. When it
        is None it is taken from ``energy_fn`` itself if that is a module, a bound method of one,
        or has a ``.model`` attribute (as :func:`marginal_energy_fn` returns). Inside the run its
        parameters have ``requires_grad`` off and :func:`bn_policy` applies; both are restored.
        """
        cfg = self.config
        x = check_initial_state(x0)
        log_implied_temperature(cfg.step_size, cfg.noise_scale, "Langevin")
        with sampling_context(energy_fn, model, cfg.batchnorm):
            x, trace = _run_chain(energy_fn, x, cfg, generator)
        return SampleResult(samples=x, implied_temperature=cfg.implied_temperature, energy_trace=trace)


def _run_chain(
    energy_fn: EnergyFn, x: torch.Tensor, cfg: LangevinConfig, generator: torch.Generator | None
) -> tuple[torch.Tensor, ChainTrace | None]:
    """Apply ``cfg.n_steps`` Langevin updates to ``x`` in place and return it with the trace."""
    energies: list[torch.Tensor] = []
    norms: list[torch.Tensor] = []
    noise_scale = cfg.noise_scale
    for step in range(1, cfg.n_steps + 1):
        energy, grad = energy_and_grad(energy_fn, x)
        if cfg.return_trace:
            energies.append(energy.mean())
            norms.append(grad_norms(grad).mean())
        grad = clip_gradient(grad, cfg.grad_clip, cfg.grad_clip_mode)
        with torch.no_grad():
            x.add_(grad, alpha=-cfg.step_size)
            if noise_scale > 0:
                x.add_(make_noise(x, generator), alpha=noise_scale)
            if cfg.clamp is not None:
                x.clamp_(*cfg.clamp)
        if step % cfg.check_every == 0:
            check_divergence(x, energy, step, cfg.n_steps, cfg.max_abs)
    if cfg.n_steps % cfg.check_every != 0:
        check_divergence(x, None, cfg.n_steps, cfg.n_steps, cfg.max_abs)
    return x, (stack_trace(energies, norms) if cfg.return_trace else None)


def langevin_sample(
    energy_fn: EnergyFn,
    x0: torch.Tensor,
    *,
    n_steps: int,
    step_size: float,
    noise_std: float | None = None,
    temperature: float | None = None,
    clamp: tuple[float, float] | None = None,
    grad_clip: float | None = None,
    grad_clip_mode: str = "norm",
    max_abs: float | None = 1e6,
    check_every: int = 1,
    return_trace: bool = False,
    batchnorm: str = "frozen",
    model: nn.Module | None = None,
    generator: torch.Generator | None = None,
) -> SampleResult:
    """Run unadjusted Langevin dynamics on ``energy_fn`` from ``x0`` (``[B, ...]``, unchanged).

    Exact mode (``noise_std=None``): x <- x - η ∇E(x) + sqrt(2ηT) ξ targets exp(-E / T).
    Decoupled mode: x <- x - η ∇E(x) + σ ξ targets exp(-E · 2η / σ²), reported as
    ``implied_temperature``. See :class:`LangevinConfig` for every option and
    :meth:`LangevinSampler.__call__` for ``model``.

    Raises:
        SamplerDivergenceError: a chain became non-finite or exceeded ``max_abs``.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> out = langevin_sample(lambda x: 0.5 * x.pow(2).sum(1), torch.zeros(4, 2),
        ...                       n_steps=5, step_size=1.0, noise_std=0.01)
        >>> out.implied_temperature, out.acceptance_rate, tuple(out.samples.shape)
        (5e-05, None, (4, 2))
    """
    config = LangevinConfig(
        n_steps=n_steps,
        step_size=step_size,
        noise_std=noise_std,
        temperature=temperature,
        clamp=clamp,
        grad_clip=grad_clip,
        grad_clip_mode=grad_clip_mode,
        max_abs=max_abs,
        check_every=check_every,
        return_trace=return_trace,
        batchnorm=batchnorm,
    )
    return LangevinSampler(config)(energy_fn, x0, model=model, generator=generator)


class ModelEnergyFn:
    """Callable ``x -> [B]`` energy of an :class:`~energyview.energies.EnergyModel`.

    With ``y`` it returns the paired energy E(x_i, y_i); without it, the free energy F(x) at
    ``temperature`` (the model's own when None). ``.model`` lets samplers find the module.
    """

    def __init__(self, model: nn.Module, y: torch.Tensor | None = None, temperature: float | None = None) -> None:
        method = "energy" if y is not None else "free_energy"
        if not callable(getattr(model, method, None)):
            raise TypeError(f"model must provide {method}(x, ...) like an EnergyModel, got {type(model).__name__}")
        self.model = model
        self.y = y
        self.temperature = None if temperature is None else check_temperature(temperature)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.y is not None:
            return self.model.energy(x, self.y)
        if self.temperature is None:
            return self.model.free_energy(x)
        return self.model.free_energy(x, temperature=self.temperature)

    def __repr__(self) -> str:
        kind = "conditional" if self.y is not None else "marginal"
        return f"ModelEnergyFn({kind}, model={type(self.model).__name__})"


def conditional_energy_fn(model: nn.Module, y: torch.Tensor) -> ModelEnergyFn:
    """Return ``x -> model.energy(x, y)``, the energy for sampling x given labels ``y`` ``[B]``."""
    if y is None:
        raise ValueError("y must be a label tensor [B]; for the marginal p(x) use marginal_energy_fn(model)")
    return ModelEnergyFn(model, y=y)


def marginal_energy_fn(model: nn.Module, temperature: float | None = None) -> ModelEnergyFn:
    """Return ``x -> model.free_energy(x)``, the energy of p(x) ∝ exp(-F(x) / T)."""
    return ModelEnergyFn(model, temperature=temperature)
