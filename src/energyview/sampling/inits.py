"""Initial distributions for MCMC chains, built by name.

- ``"uniform"``: U(low, high) per coordinate, default U(-1, 1) (JEM's replay-buffer init).
- ``"gaussian"``: N(mean, std²) per coordinate.
- ``"class-gaussian"``: one Gaussian per class fitted on data, JEM++'s informative init
  (Yang and Ji, 2021): per-class mean and covariance, full (with a ridge) or diagonal.

Every init is an ``nn.Module``, so fitted state lives in buffers: it moves with ``.to(device)``
and is saved in ``state_dict`` with the replay buffer or objective that owns it.
"""

from __future__ import annotations

import difflib
import logging
import math
from typing import Any, Sequence

import torch
from torch import nn

__all__ = [
    "ClassGaussianInit",
    "GaussianInit",
    "InitDistribution",
    "UniformInit",
    "available_inits",
    "build_init",
    "register_init",
]

logger = logging.getLogger(__name__)


def _as_shape(sample_shape: Sequence[int] | torch.Size | int) -> torch.Size:
    """Return ``sample_shape`` as a ``torch.Size`` of positive ints, raising on anything else."""
    if isinstance(sample_shape, int):
        sample_shape = (sample_shape,)
    try:
        shape = torch.Size(int(d) for d in sample_shape)
    except (TypeError, ValueError):
        raise TypeError(f"sample_shape must be a sequence of ints, got {sample_shape!r}") from None
    if any(d <= 0 for d in shape):
        raise ValueError(f"sample_shape must contain positive sizes, got {tuple(shape)}")
    return shape


class InitDistribution(nn.Module):
    """Base class of chain initialisations: ``sample(num, sample_shape) -> [num, *sample_shape]``."""

    @property
    def ready(self) -> bool:
        """Whether :meth:`sample` can run (False for a fitted init before ``fit``)."""
        return True

    def sample(
        self,
        num: int,
        sample_shape: Sequence[int],
        *,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw ``num`` initial states; ``y`` ``[num]`` contains class labels for class-aware inits."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample(num, sample_shape, ...)")


class UniformInit(InitDistribution):
    """U(low, high) in every coordinate, independent of ``y``.

    Example:
        >>> x = UniformInit(-1.0, 1.0).sample(5, (2,), generator=torch.Generator().manual_seed(0))
        >>> tuple(x.shape), bool(x.abs().max() <= 1)
        ((5, 2), True)
    """

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        super().__init__()
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"uniform init needs finite low < high, got low={low}, high={high}")
        self.low, self.high = low, high

    def sample(self, num, sample_shape, *, y=None, generator=None, device=None, dtype=torch.float32):
        shape = (num, *_as_shape(sample_shape))
        unit = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return unit * (self.high - self.low) + self.low

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


class GaussianInit(InitDistribution):
    """N(mean, std²) in every coordinate, independent of ``y``."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        mean, std = float(mean), float(std)
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"gaussian init needs a finite mean and std > 0, got mean={mean}, std={std}")
        self.mean, self.std = mean, std

    def sample(self, num, sample_shape, *, y=None, generator=None, device=None, dtype=torch.float32):
        shape = (num, *_as_shape(sample_shape))
        return torch.randn(shape, generator=generator, device=device, dtype=dtype) * self.std + self.mean

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


class ClassGaussianInit(InitDistribution):
    """Per-class Gaussian N(μ_c, Σ_c) fitted on data: JEM++'s informative initialisation.

    ``fit(x, y)`` computes each class's mean and covariance over the flattened inputs
    (``D = prod(x.shape[1:])``). With ``covariance="full"``, Σ_c is the unbiased sample covariance
    plus ``ridge · I`` (so that constant pixels still give a positive-definite matrix), stored as
    its Cholesky factor ``[K, D, D]``. With ``covariance="diagonal"`` only per-coordinate
    variances plus ``ridge`` are kept ``[K, D]``, which suits large D (a full factor costs
    K·D² floats). ``sample`` draws from the classes in ``y``, or from classes drawn uniformly.

    Args:
        covariance: ``"full"`` or ``"diagonal"``.
        ridge: added to the variances, in squared input units (default 1e-4).
        max_full_dim: ``fit`` raises for ``covariance="full"`` above this D.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 10.0], [12.0, 12.0]])
        >>> init = ClassGaussianInit().fit(x, torch.tensor([0, 0, 1, 1]))
        >>> init.means
        tensor([[ 1.,  1.],
                [11., 11.]])
    """

    COVARIANCES = ("full", "diagonal")

    def __init__(self, covariance: str = "full", ridge: float = 1e-4, max_full_dim: int = 4096) -> None:
        super().__init__()
        if covariance not in self.COVARIANCES:
            raise ValueError(f"covariance must be one of {list(self.COVARIANCES)}, got {covariance!r}")
        if not (math.isfinite(float(ridge)) and float(ridge) >= 0):
            raise ValueError(f"ridge must be finite and >= 0, got {ridge}")
        self.covariance = covariance
        self.ridge = float(ridge)
        self.max_full_dim = int(max_full_dim)
        self.register_buffer("means", torch.zeros(0, 0))  # [K, D]
        self.register_buffer("scales", torch.zeros((0, 0, 0) if covariance == "full" else (0, 0)))
        self.register_buffer("class_counts", torch.zeros(0, dtype=torch.long))  # [K]
        self.register_buffer("event_shape", torch.zeros(0, dtype=torch.long))  # shape of one sample

    @property
    def ready(self) -> bool:
        return self.means.numel() > 0

    @property
    def num_classes(self) -> int:
        return self.means.shape[0]

    def fit(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None) -> "ClassGaussianInit":
        """Fit one Gaussian per class to ``x`` ``[N, ...]`` with labels ``y`` ``[N]``; return self."""
        flat, y, num_classes = self._check_fit_inputs(x, y, num_classes)
        dim = flat.shape[1]
        if self.covariance == "full" and dim > self.max_full_dim:
            raise ValueError(
                f"full covariance over D = {dim} dimensions needs {num_classes} x {dim}^2 floats; "
                f"use covariance='diagonal' or raise max_full_dim (now {self.max_full_dim})"
            )
        means, scales, counts = [], [], []
        for c in range(num_classes):
            rows = flat[y == c]
            if rows.shape[0] == 0:
                raise ValueError(f"class {c} has no samples in y; pass data covering every class or a smaller num_classes")
            mean, scale = self._fit_class(rows)
            means.append(mean)
            scales.append(scale)
            counts.append(rows.shape[0])
        dtype = x.dtype
        self.means = torch.stack(means).to(dtype)
        self.scales = torch.stack(scales).to(dtype)
        self.class_counts = torch.tensor(counts, dtype=torch.long, device=x.device)
        self.event_shape = torch.tensor(list(x.shape[1:]), dtype=torch.long, device=x.device)
        logger.info("fitted %s class-Gaussian init: %d classes, D = %d", self.covariance, num_classes, dim)
        return self

    def _check_fit_inputs(self, x, y, num_classes):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
            raise TypeError("x must be a floating-point tensor [N, ...] with N >= 1 samples")
        y = torch.as_tensor(y, device=x.device)
        if y.dtype.is_floating_point or y.dtype == torch.bool or y.shape != x.shape[:1]:
            raise ValueError(f"y must be integer labels of shape [{x.shape[0]}], got {y.dtype} {tuple(y.shape)}")
        if int(y.min()) < 0:
            raise ValueError(f"labels must be >= 0, got {int(y.min())}")
        num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
        if int(y.max()) >= num_classes:
            raise ValueError(f"label {int(y.max())} is out of range for num_classes={num_classes}")
        return x.detach().reshape(x.shape[0], -1).double(), y.long(), num_classes

    def _fit_class(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean ``[D]`` and Cholesky factor ``[D, D]`` or std ``[D]`` of one class."""
        mean = rows.mean(dim=0)
        centred = rows - mean
        denominator = max(rows.shape[0] - 1, 1)
        if self.covariance == "diagonal":
            return mean, (centred.pow(2).sum(dim=0) / denominator + self.ridge).sqrt()
        cov = centred.T @ centred / denominator
        cov = cov + self.ridge * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        factor, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            raise ValueError(
                f"class covariance is not positive definite (ridge={self.ridge}); raise ridge or use covariance='diagonal'"
            )
        return mean, factor

    def sample(self, num, sample_shape=None, *, y=None, generator=None, device=None, dtype=torch.float32):
        if not self.ready:
            raise RuntimeError("ClassGaussianInit is not fitted; call fit(x, y) on training data first")
        event = torch.Size(self.event_shape.tolist())
        if sample_shape is not None and _as_shape(sample_shape) != event:
            raise ValueError(f"sample_shape {tuple(sample_shape)} does not match the fitted shape {tuple(event)}")
        y = self._labels(num, y, generator)
        noise = torch.randn((num, self.means.shape[1]), generator=generator, device=self.means.device, dtype=self.means.dtype)
        out = self.means[y].clone()  # [num, D]
        if self.covariance == "diagonal":
            out += noise * self.scales[y]
        else:
            # One matmul per class present, so no [num, D, D] gather of Cholesky factors.
            for c in torch.unique(y).tolist():
                rows = (y == c).nonzero().squeeze(1)
                out[rows] += noise[rows] @ self.scales[c].T
        return out.reshape(num, *event).to(device=device or self.means.device, dtype=dtype)

    def _labels(self, num: int, y: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        device = self.means.device
        if y is None:
            return torch.randint(self.num_classes, (num,), generator=generator, device=device)
        y = torch.as_tensor(y).to(device)
        if y.shape != (num,) or y.dtype.is_floating_point:
            raise ValueError(f"y must be integer labels of shape [{num}], got {y.dtype} {tuple(y.shape)}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes - 1}], got range [{int(y.min())}, {int(y.max())}]")
        return y.long()

    def _load_from_state_dict(self, state_dict, prefix, *args: Any, **kwargs: Any) -> None:
        # Fitted shapes are data, not configuration: resize the buffers so that an unfitted
        # instance can load a fitted state.
        scales = state_dict.get(prefix + "scales")
        if scales is not None and scales.dim() != self.scales.dim():
            found = "full" if scales.dim() == 3 else "diagonal"
            raise ValueError(
                f"checkpoint contains a {found}-covariance class-Gaussian init, this one is {self.covariance}; "
                f"build it with ClassGaussianInit(covariance={found!r})"
            )
        for name in ("means", "scales", "class_counts", "event_shape"):
            value = state_dict.get(prefix + name)
            if value is not None:
                current = getattr(self, name)
                setattr(self, name, torch.empty(value.shape, dtype=current.dtype, device=current.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"covariance={self.covariance!r}, ridge={self.ridge}, classes={self.num_classes}"


_INIT_REGISTRY: dict[str, type[InitDistribution]] = {}


def register_init(name: str, cls: type[InitDistribution]) -> None:
    """Register an init class under ``name``; a second registration replaces it with a warning."""
    if not (isinstance(cls, type) and issubclass(cls, InitDistribution)):
        raise TypeError(f"init class must subclass InitDistribution, got {cls!r}")
    if name in _INIT_REGISTRY:
        logger.warning("init %r was already registered as %s; replacing it with %s", name, _INIT_REGISTRY[name].__name__, cls.__name__)
    _INIT_REGISTRY[name] = cls


def available_inits() -> list[str]:
    """Return the registered init names, sorted."""
    return sorted(_INIT_REGISTRY)


def build_init(name: str, **kwargs: Any) -> InitDistribution:
    """Build a registered init by name, e.g. ``build_init("uniform", low=-1, high=1)``.

    Example:
        >>> build_init("gaussian", std=0.5)
        GaussianInit(mean=0.0, std=0.5)
    """
    if name not in _INIT_REGISTRY:
        close = difflib.get_close_matches(str(name), _INIT_REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown init {name!r}, expected one of {available_inits()}{hint}")
    return _INIT_REGISTRY[name](**kwargs)


register_init("uniform", UniformInit)
register_init("gaussian", GaussianInit)
register_init("class-gaussian", ClassGaussianInit)
