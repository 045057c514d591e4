"""Maximum likelihood with MCMC negatives, and JEM's joint objective built on it.

The marginal model is p(x) ∝ exp(-F(x) / T), with F(x) = -T logsumexp(-E(x, .) / T) the free
energy of the model. The gradient of -log p(x) averaged over data is

    (E_data[∇F(x)] - E_model[∇F(x')]) / T,

so the surrogate loss (mean F(x+) - mean F(x-)) / T has the right gradient when the negatives x-
are samples of the model, treated as constants. Negatives come from persistent Langevin chains
in a :class:`~energyview.sampling.ReplayBuffer` (persistent contrastive divergence, as in JEM:
Grathwohl et al., 2020, "Your classifier is secretly an energy based model").

The loss value itself is not -log p(x): the log partition function is never computed. Only its
gradient is an estimate of the likelihood gradient, and only as good as the samples.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.utils.data import DataLoader, Dataset

from ..energies.base import EnergyModel, check_temperature, free_energy_from_matrix, scoring_mode
from ..sampling import (
    ClassGaussianInit,
    LangevinConfig,
    LangevinSampler,
    ReplayBuffer,
    build_init,
)
from .base import LossDict, Objective
from .conditional import conditional_nll

__all__ = ["JointEnergyObjective", "MaximumLikelihood", "coercive_wall"]

log = logging.getLogger(__name__)


def coercive_wall(x: torch.Tensor, radius: float, weight: float) -> torch.Tensor:
    """Return the wall energy W(x) = weight * max(0, ||x||_2 - radius) per sample, as ``[B]``.

    The norm runs over all dimensions but the first. W is zero inside the ball of ``radius``
    and grows linearly outside it, with gradient ``weight * x / ||x||`` pointing outwards, so
    a Langevin step on F + W pulls a chain back by ``step_size * weight`` once it leaves the
    ball. Linear growth is enough to make exp(-(F + W) / T) integrable whenever F decreases
    more slowly than ``weight * ||x||`` far from the data (true for a piecewise-linear network
    and a large enough weight).

    Example:
        >>> coercive_wall(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), radius=2.0, weight=0.5)
        tensor([1.5000, 0.0000])
    """
    norms = x.flatten(1).norm(dim=1)  # [B]
    return weight * torch.relu(norms - radius)


class MaximumLikelihood(Objective):
    """Maximum likelihood of p(x) ∝ exp(-F(x) / T) with negatives from persistent Langevin chains.

    Per batch ``x`` (or ``(x, y, ...)``; labels are not used unless ``conditional_sampling``):

    1. draw ``n_negatives`` chains from the replay buffer (each restarts from ``init`` with
       probability ``reinit_prob``), run ``n_steps`` Langevin steps on F(x) + W(x) and write the
       chains back to their slots;
    2. loss = (mean F(x+) - mean F(x-)) / T + energy_l2 * (mean F(x+)^2 + mean F(x-)^2).

    The positive phase lowers the free energy of the data, the negative phase raises it at the
    samples. The energy L2 term (Du and Mordatch, 2019) keeps both phases near zero, so their
    difference cannot drift to huge magnitudes. W is the optional :func:`coercive_wall`: it has
    no parameters, so it changes where the chains go, not the loss gradient.

    Sampler settings (see :class:`~energyview.sampling.LangevinConfig`):
        n_steps: Langevin steps per training step (JEM: 20).
        step_size: η, the gradient step (JEM: 1.0).
        noise_std: σ of the decoupled update x <- x - η∇E + σξ (JEM: 0.01), which targets the
            implied temperature σ² / (2η) = 5e-5 at JEM's values. ``None`` selects the exact
            update with noise sqrt(2η T_s), T_s = ``sampler_temperature``.
        sampler_temperature: T_s of the exact mode; ``None`` uses the model's temperature, so
            the chains target the model's own p(x). Must be ``None`` in decoupled mode.
        clamp: ``(lo, hi)`` data range the chains are clamped to after every step, or ``None``.
        sampler_grad_clip: per-chain L2 clip of ∇_x E during sampling, or ``None``.
        batchnorm: ``"frozen"`` (BatchNorm in eval mode while sampling) or ``"train"``
            (batch statistics, as in JEM++); running statistics are unchanged either way.
        sampler_max_abs: a chain with any |x| above this raises ``SamplerDivergenceError``.
        sampler_check_every: steps between the sampler's divergence checks (each one is a
            host-device sync on CUDA).

    Buffer settings:
        buffer_size: number of persistent chains (JEM: 10,000).
        reinit_prob: probability that a drawn chain restarts from the init (JEM: 0.05).
        init: ``"uniform"`` (U(-1, 1), JEM), ``"gaussian"`` or ``"class-gaussian"`` (per-class
            Gaussians fitted on the training data by :meth:`prepare`, JEM++).
        init_options: keyword arguments of the init (for example ``{"low": 0, "high": 1}``).
        n_negatives: chains per training step; ``None`` uses the batch size.
        sample_shape: shape of one input, to build the buffer up front; otherwise
            :meth:`prepare` or the first batch sets it.
        num_classes: number of classes, for a labelled buffer (class-conditional sampling or
            a class-Gaussian init); otherwise found by :meth:`prepare` or from the model.
        conditional_sampling: sample each negative from E(x, y) for a label y drawn uniformly,
            instead of from F(x) (JEM's class-conditional sampling variant). The loss still
            uses F. The uniform mixture of p(x | y) equals p(x) only when the model's p(y) is
            uniform, so this is an approximation.

    Regularizers:
        energy_l2: α of α (mean F(x+)² + mean F(x-)²); 0 turns it off.
        wall_weight: slope of the coercive wall added to the sampled energy; 0 turns it off.
        wall_radius: radius where the wall starts, in input units (L2 norm of one whole input);
            required when ``wall_weight > 0``.

    Logged values: ``loss``, ``energy_pos`` (mean F of the data), ``energy_neg`` (mean F of the
    negatives), ``sampler_implied_temperature``.
    """

    def __init__(
        self,
        *,
        n_steps: int = 20,
        step_size: float = 1.0,
        noise_std: float | None = 0.01,
        sampler_temperature: float | None = None,
        clamp: Sequence[float] | None = (-1.0, 1.0),
        sampler_grad_clip: float | None = None,
        batchnorm: str = "frozen",
        sampler_max_abs: float | None = 1e6,
        sampler_check_every: int = 1,
        buffer_size: int = 10_000,
        reinit_prob: float = 0.05,
        init: str = "uniform",
        init_options: dict[str, Any] | None = None,
        n_negatives: int | None = None,
        sample_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        conditional_sampling: bool = False,
        energy_l2: float = 0.0,
        wall_weight: float = 0.0,
        wall_radius: float | None = None,
    ) -> None:
        super().__init__()
        self.sampler_temperature = _check_sampler_temperature(noise_std, sampler_temperature)
        self.sampler_config = LangevinConfig(
            n_steps=n_steps, step_size=step_size, noise_std=noise_std, temperature=self.sampler_temperature,
            clamp=None if clamp is None else tuple(clamp), grad_clip=sampler_grad_clip, batchnorm=batchnorm,
            max_abs=sampler_max_abs, check_every=sampler_check_every,
        )

        self.buffer_size = _check_int("buffer_size", buffer_size, 1)
        self.reinit_prob = _check_probability("reinit_prob", reinit_prob)
        self.n_negatives = None if n_negatives is None else _check_int("n_negatives", n_negatives, 1)
        if self.n_negatives is not None and self.n_negatives > self.buffer_size:
            raise ValueError(f"n_negatives ({self.n_negatives}) must not exceed buffer_size ({self.buffer_size})")
        self.init = build_init(init, **(init_options or {}))
        self.init_name = init
        self.sample_shape = None if sample_shape is None else tuple(_check_int("sample_shape entry", d, 1) for d in sample_shape)
        self.num_classes = None if num_classes is None else _check_int("num_classes", num_classes, 1)
        if not isinstance(conditional_sampling, bool):
            raise TypeError(f"conditional_sampling must be true or false, got {conditional_sampling!r}")
        self.conditional_sampling = conditional_sampling

        self.energy_l2 = _check_float("energy_l2", energy_l2)
        self.wall_weight = _check_float("wall_weight", wall_weight)
        self.wall_radius = _check_wall_radius(self.wall_weight, wall_radius)

        self.buffer: ReplayBuffer | None = None
        labels_known = self.num_classes is not None or not self._needs_labels
        if self.sample_shape is not None and labels_known and not self._needs_fitted_init:
            self._build_buffer(self.sample_shape, self.num_classes, torch.device("cpu"))

    # ---- setup -----------------------------------------------------------------------------

    @property
    def _needs_labels(self) -> bool:
        return self.conditional_sampling or isinstance(self.init, ClassGaussianInit)

    @property
    def _needs_fitted_init(self) -> bool:
        return not self.init.ready

    def prepare(self, dataset: Dataset) -> None:
        """Fit a data-dependent init on ``dataset`` and build a fresh replay buffer for its input shape.

        The pipeline calls this before training. It reads ``dataset.input_shape`` and
        ``dataset.num_classes`` when present, else the first item. A ``"class-gaussian"`` init
        is fitted on every ``(x, y)`` of the dataset (without the training noise).
        """
        shape, num_classes = _dataset_shape_and_classes(dataset)
        if self.sample_shape is not None and tuple(self.sample_shape) != tuple(shape):
            raise ValueError(f"sample_shape {self.sample_shape} does not match the dataset's input shape {tuple(shape)}")
        self.sample_shape = tuple(shape)
        self.num_classes = self.num_classes or num_classes
        if isinstance(self.init, ClassGaussianInit) and not self.init.ready:
            x, y = _stack_dataset(dataset)
            self.init.fit(x, y, self.num_classes)
        device = self.buffer.device if self.buffer is not None else torch.device("cpu")
        self._build_buffer(self.sample_shape, self.num_classes, device)

    def _build_buffer(self, shape: Sequence[int], num_classes: int | None, device: torch.device) -> ReplayBuffer:
        if self._needs_labels and num_classes is None:
            raise ValueError(
                "class-conditional sampling and the class-gaussian init need num_classes; pass it in the "
                "objective options or call prepare(train_dataset)"
            )
        labels = num_classes if self._needs_labels else None
        self.buffer = ReplayBuffer(self.buffer_size, tuple(shape), self.init, num_classes=labels, reinit_prob=self.reinit_prob)
        self.buffer.to(device)
        return self.buffer

    def _ensure_buffer(self, model: EnergyModel, x: torch.Tensor) -> ReplayBuffer:
        if self.buffer is not None:
            return self.buffer
        if self._needs_fitted_init:
            raise ValueError(f"the {self.init_name!r} init must be fitted first; call objective.prepare(train_dataset)")
        num_classes = self.num_classes
        if num_classes is None and self._needs_labels:
            with torch.no_grad(), scoring_mode(model):
                num_classes = model.energy_matrix(x[:1]).shape[1]
        self.sample_shape = tuple(x.shape[1:])
        return self._build_buffer(self.sample_shape, num_classes, x.device)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load a state, building the replay buffer first when the state has one and this objective not yet.

        A state taken before the buffer existed (the guard's first snapshot when the buffer is
        built lazily) removes the buffer, and the next step builds a fresh one.
        """
        has_buffer = any(key.startswith("buffer.") for key in state_dict)
        if has_buffer and self.buffer is None:
            chains = state_dict["buffer.chains"]
            labels = state_dict.get("buffer.labels")
            num_classes = int(labels.max()) + 1 if labels is not None else None
            self.sample_shape = tuple(chains.shape[1:])
            self._build_buffer(self.sample_shape, num_classes if self._needs_labels else None, _module_device(self))
        elif not has_buffer and self.buffer is not None:
            self.buffer = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- sampling --------------------------------------------------------------------------

    def langevin_config(self, model: EnergyModel, **changes: Any) -> LangevinConfig:
        """Return the sampler settings for ``model``: its temperature in exact mode, plus ``changes``."""
        config = self.sampler_config
        if changes.get("noise_std") is not None:
            changes.setdefault("temperature", None)  # a noise scale switches to the decoupled mode
        elif config.mode == "exact" and self.sampler_temperature is None:
            changes.setdefault("temperature", model.temperature)
        return dataclasses.replace(config, **changes) if changes else config

    def sampling_energy(self, model: EnergyModel, y: torch.Tensor | None = None):
        """Return ``x -> F(x) + W(x)`` (or E(x, y) + W(x) with labels ``y``) as a ``[B]`` energy."""
        def energy(x: torch.Tensor) -> torch.Tensor:
            value = model.free_energy(x) if y is None else model.energy(x, y)
            if self.wall_weight > 0:
                value = value + coercive_wall(x, self.wall_radius, self.wall_weight)
            return value

        return energy

    def sample_negatives(self, model: EnergyModel, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        """Advance ``batch_size`` buffer chains by the sampler and return them, detached.

        ``like`` is a data batch: it sets the buffer's shape and device when the buffer does
        not exist yet. Raises ``SamplerDivergenceError`` when a chain diverges; then nothing
        is written back.
        """
        buffer = self._ensure_buffer(model, like)
        if batch_size > buffer.capacity:
            raise ValueError(f"{batch_size} negatives per step exceed buffer_size {buffer.capacity}; raise buffer_size")
        labels = None
        if self.conditional_sampling:
            labels = torch.randint(buffer.num_classes, (batch_size,), device=buffer.device)
        x0, slots = buffer.draw(batch_size, y=labels)
        sampler = LangevinSampler(self.langevin_config(model))
        result = sampler(self.sampling_energy(model, labels), x0.to(like.dtype), model=model)
        buffer.write_back(slots, result.samples)
        return result.samples

    # ---- loss ------------------------------------------------------------------------------

    def phase_matrices(self, model: EnergyModel, x: torch.Tensor, x_neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the energy matrices ``[B, K]`` of the data and ``[B', K]`` of the negatives.

        Without train-mode BatchNorm both go through one forward pass. With it, the negatives
        get their own pass, which normalises with their batch statistics but leaves the running
        statistics alone, so these describe data only.
        """
        if not _has_training_batchnorm(model):
            matrix = model.energy_matrix(torch.cat([x, x_neg.to(x.dtype)]))
            return matrix[: x.shape[0]], matrix[x.shape[0]:]
        matrix_pos = model.energy_matrix(x)
        with _batch_statistics_only(model):
            matrix_neg = model.energy_matrix(x_neg.to(x.dtype))
        return matrix_pos, matrix_neg

    def likelihood_terms(self, model: EnergyModel, matrix_pos: torch.Tensor, matrix_neg: torch.Tensor) -> LossDict:
        """Return ``px`` = (mean F+ - mean F-) / T, the energy L2 term and both phase energies."""
        temperature = model.temperature
        free_pos = free_energy_from_matrix(matrix_pos, temperature)  # [B]
        free_neg = free_energy_from_matrix(matrix_neg, temperature)  # [B']
        px = (free_pos.mean() - free_neg.mean()) / temperature
        l2 = self.energy_l2 * (free_pos.pow(2).mean() + free_neg.pow(2).mean()) if self.energy_l2 else px.new_zeros(())
        return {"px": px, "energy_l2": l2, "energy_pos": free_pos.mean().detach(), "energy_neg": free_neg.mean().detach()}

    def forward(self, model: EnergyModel, batch: Any) -> LossDict:
        x = _inputs(batch)
        x_neg = self.sample_negatives(model, self.n_negatives or x.shape[0], x)
        matrix_pos, matrix_neg = self.phase_matrices(model, x, x_neg)
        terms = self.likelihood_terms(model, matrix_pos, matrix_neg)
        return {
            "loss": terms["px"] + terms["energy_l2"],
            "energy_pos": terms["energy_pos"],
            "energy_neg": terms["energy_neg"],
            "sampler_implied_temperature": self._implied_temperature_value(model, x),
        }

    def _implied_temperature_value(self, model: EnergyModel, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.langevin_config(model).implied_temperature, device=like.device)

    def extra_repr(self) -> str:
        cfg = self.sampler_config
        return (f"n_steps={cfg.n_steps}, step_size={cfg.step_size}, noise_std={cfg.noise_std}, clamp={cfg.clamp}, "
                f"buffer_size={self.buffer_size}, reinit_prob={self.reinit_prob}, init={self.init_name!r}")


class JointEnergyObjective(MaximumLikelihood):
    """JEM: conditional NLL -log p(y | x) plus ``px_weight`` times the maximum-likelihood term of p(x).

    loss = CE + px_weight * (mean F(x+) - mean F(x-)) / T + energy_l2 * (mean F+² + mean F-²),

    with CE = mean(E(x, y) - F(x)) / T from :func:`~energyview.objectives.conditional_nll`
    (plain cross-entropy at T = 1) and the negatives x- from persistent Langevin chains, as in
    :class:`MaximumLikelihood` (JEM's defaults: 20 steps, η = 1, σ = 0.01, 10,000 chains, 5 %
    restarts from U(-1, 1)). One forward pass over data and negatives serves both terms.

    Args:
        px_weight: weight of the p(x) term (JEM: 1).
        grad_ratio_every: every this many training steps, compute the ratio of the gradient
            norms ||∇_θ px_weight·px|| / ||∇_θ CE|| (two extra backward passes) and log it as
            ``grad_ratio_px_ce``; between those steps the last value is logged again. 0 turns
            the measurement off and logs 0.
        **options: sampler, buffer and regularizer settings of :class:`MaximumLikelihood`.

    Logged values: ``loss``, ``ce``, ``px``, ``energy_pos``, ``energy_neg``, ``accuracy``,
    ``sampler_implied_temperature``, ``grad_ratio_px_ce``.
    """

    def __init__(self, px_weight: float = 1.0, grad_ratio_every: int = 50, **options: Any) -> None:
        super().__init__(**options)
        self.px_weight = _check_float("px_weight", px_weight)
        self.grad_ratio_every = _check_int("grad_ratio_every", grad_ratio_every, 0)
        self._train_calls = 0
        self._last_grad_ratio = 0.0

    def forward(self, model: EnergyModel, batch: Any) -> LossDict:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("the jem objective needs labelled batches (x, y); for unlabelled data use the ml objective")
        x, y = batch[0], batch[1]
        x_neg = self.sample_negatives(model, self.n_negatives or x.shape[0], x)
        matrix_pos, matrix_neg = self.phase_matrices(model, x, x_neg)
        conditional = conditional_nll(matrix_pos, y, model.temperature)
        terms = self.likelihood_terms(model, matrix_pos, matrix_neg)
        ce, px = conditional["loss"], terms["px"]
        loss = ce + self.px_weight * px + terms["energy_l2"]
        with torch.no_grad():
            accuracy = (matrix_pos.argmin(dim=1) == y.to(matrix_pos.device)).float().mean()
        return {
            "loss": loss,
            "ce": ce.detach(),
            "px": px.detach(),
            "energy_pos": terms["energy_pos"],
            "energy_neg": terms["energy_neg"],
            "accuracy": accuracy,
            "sampler_implied_temperature": self._implied_temperature_value(model, x),
            "grad_ratio_px_ce": self._grad_ratio(model, ce, self.px_weight * px, x.device),
        }

    def _grad_ratio(self, model: EnergyModel, ce: torch.Tensor, px_term: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Return ||∇ px_term|| / ||∇ ce|| over the model's parameters, measured every ``grad_ratio_every`` calls."""
        due = self.grad_ratio_every and self._train_calls % self.grad_ratio_every == 0
        if self.training:
            self._train_calls += 1
        if due and self.training and torch.is_grad_enabled() and ce.requires_grad and px_term.requires_grad:
            params = [p for p in model.parameters() if p.requires_grad]
            norm_ce = _grad_norm(ce, params)
            norm_px = _grad_norm(px_term, params)
            # Not clamped away: a non-finite ratio means a non-finite gradient, which the guard must see.
            if norm_ce == 0:
                self._last_grad_ratio = 0.0 if norm_px == 0 else math.inf
            else:
                self._last_grad_ratio = norm_px / norm_ce
        return torch.tensor(self._last_grad_ratio, device=device)

    def extra_repr(self) -> str:
        return f"px_weight={self.px_weight}, " + super().extra_repr()


# ---- helpers ---------------------------------------------------------------------------------


def _grad_norm(value: torch.Tensor, params: list[nn.Parameter]) -> float:
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def _inputs(batch: Any) -> torch.Tensor:
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"the ml objective needs a floating-point input batch x [B, ...], got {type(x).__name__}")
    return x


def _has_training_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _NormBase) and m.training and m.track_running_stats for m in model.modules())


@contextmanager
def _batch_statistics_only(model: nn.Module) -> Iterator[None]:
    """Let train-mode norm layers normalise with batch statistics without updating running ones.

    Turning ``track_running_stats`` off keeps the running tensors out of the forward pass.
    Copying saved statistics back after the pass would instead bump their autograd version
    and break the backward pass, which saves them.
    """
    layers = [m for m in model.modules() if isinstance(m, _NormBase) and m.training and m.track_running_stats]
    try:
        for layer in layers:
            layer.track_running_stats = False
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def _module_device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _dataset_shape_and_classes(dataset: Dataset) -> tuple[tuple[int, ...], int | None]:
    inner = getattr(dataset, "dataset", dataset)  # NoisyDataset and Subset wrap the real dataset
    shape = getattr(dataset, "input_shape", None) or getattr(inner, "input_shape", None)
    if shape is None:
        item = dataset[0]
        shape = tuple((item[0] if isinstance(item, (tuple, list)) else item).shape)
    num_classes = getattr(dataset, "num_classes", None) or getattr(inner, "num_classes", None)
    return tuple(int(d) for d in shape), num_classes


def _stack_dataset(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y, *_ in DataLoader(dataset, batch_size=512, shuffle=False):
        xs.append(x.float())
        ys.append(torch.as_tensor(y).long())
    return torch.cat(xs), torch.cat(ys)


def _check_sampler_temperature(noise_std: float | None, sampler_temperature: float | None) -> float | None:
    if noise_std is not None and sampler_temperature is not None:
        raise ValueError(
            f"pass either noise_std (decoupled mode, got {noise_std}) or sampler_temperature (exact mode, "
            f"got {sampler_temperature}); set noise_std: null to use the exact mode"
        )
    return None if sampler_temperature is None else check_temperature(sampler_temperature)


def _check_wall_radius(wall_weight: float, wall_radius: float | None) -> float | None:
    if wall_weight > 0 and wall_radius is None:
        raise ValueError(
            "wall_weight > 0 needs wall_radius, the input norm where the wall starts; for images in "
            "[-1, 1] with D pixels, sqrt(D) is the norm of a corner of the data box"
        )
    return None if wall_radius is None else _check_float("wall_radius", wall_radius)


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)

