"""A pair model (CLIP, SigLIP, SimCLR, sentence encoders) read as an energy over candidates.

With L2-normalised features g(x) and h(y),

    E(x, y) = -(scale * cos(g(x), h(y)) + bias),    scale = 1 / tau,

where ``bias`` is 0 except for SigLIP-style models. The candidates are the other side of a batch
(training), or a stored :class:`CandidateSet` such as class-prompt embeddings (zero-shot
prediction and OOD scoring). Two temperatures act on different things:

- tau (``scale = 1 / tau``) is part of the energy. CLIP learns it: the log scale starts at
  ln(1 / 0.07) and the scale is capped at 100 (Radford et al. 2021). SimCLR fixes it.
- T is the contract temperature of :class:`~energyview.energies.base.EnergyModel`:
  p(y | x) = softmax(-E(x, .) / T) = softmax(scale * cos / T), so the softmax acts on cosines at
  the effective temperature T * tau. T = 1 (the default) gives the model's own softmax.

The training objectives in :mod:`energyview.objectives.contrastive` use ``encode_x``,
``encode_y`` and ``scale`` and ignore T.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import EnergyModel, scoring_mode
from .outputs import OutputSelector, select_output

__all__ = ["CLIP_INIT_SCALE", "MAX_SCALE", "CandidateSet", "ContrastiveEnergy", "normalize_features"]

logger = logging.getLogger(__name__)

MAX_SCALE = 100.0
"""Cap of the scale 1 / tau: CLIP clamps its log scale at ln(100)."""
CLIP_INIT_SCALE = 1.0 / 0.07
"""CLIP's initial scale 1 / 0.07 (log scale 2.6593), from Radford et al. (2021)."""

_EMBEDDING_KEYS = ("sentence_embedding", "embeddings", "image_embeds", "text_embeds", "pooler_output", "logits")


def normalize_features(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise ``[N, D]`` features along the last dim.

    Half-precision features are normalised in float32 and returned as float32. The norm is
    floored at the machine epsilon of the input dtype, so a zero row stays a finite zero row.

    Example:
        >>> normalize_features(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
        tensor([[0.6000, 0.8000],
                [0.0000, 0.0000]])
    """
    eps = torch.finfo(features.dtype).eps
    work = features if features.dtype in (torch.float32, torch.float64) else features.float()
    return F.normalize(work, dim=-1, eps=eps)


class CandidateSet:
    """Precomputed candidate embeddings ``[K, D]``, stored L2-normalised, with optional names.

    Wrap embeddings in a ``CandidateSet`` to pass them as ``candidates``; a plain tensor is read
    as raw candidate inputs and goes through ``encode_y``.

    Example:
        >>> candidates = CandidateSet(torch.tensor([[2.0, 0.0], [0.0, 5.0]]), names=["a", "b"])
        >>> len(candidates), candidates.embeddings.tolist()
        (2, [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(self, embeddings: torch.Tensor, names: Sequence[str] | None = None) -> None:
        if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
            found = getattr(embeddings, "dtype", type(embeddings).__name__)
            raise TypeError(f"candidate embeddings must be a floating-point tensor [K, D], got {found}")
        if embeddings.dim() != 2 or embeddings.shape[0] == 0:
            raise ValueError(f"candidate embeddings must be [K, D] with K >= 1, got shape {tuple(embeddings.shape)}")
        if names is not None and len(names) != embeddings.shape[0]:
            raise ValueError(f"got {len(names)} candidate names for {embeddings.shape[0]} embeddings; pass one name per row")
        self.embeddings = normalize_features(embeddings.detach())
        self.names = None if names is None else tuple(str(name) for name in names)

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def __repr__(self) -> str:
        return f"CandidateSet(num_candidates={len(self)}, dim={self.embeddings.shape[1]}, names={self.names})"


class ContrastiveEnergy(EnergyModel):
    """Pair model energy E(x, y) = -(scale * cos(g(x), h(y)) + bias) over a candidate set.

    Args:
        encoder_x: module mapping a batch of x to ``[N, D]`` features g(x) (a tensor, or an output
            from which ``output_key`` selects one).
        encoder_y: module for h(y); ``None`` shares ``encoder_x`` (SimCLR, sentence encoders).
        init_scale: initial 1 / tau > 0; CLIP's 1 / 0.07 by default.
        learn_scale: learn ln(scale) as a parameter; ``False`` keeps it fixed (a buffer).
        log_scale: an existing scalar ``nn.Parameter`` holding ln(scale), such as the
            ``logit_scale`` of a pretrained CLIP; it is shared, not copied, and overrides the
            two arguments above.
        bias: additive logit bias b (SigLIP): ``None`` for 0, a number (fixed), or a shared
            scalar ``nn.Parameter`` such as SigLIP's ``logit_bias``.
        temperature: the contract temperature T > 0 (see the module docstring).
        output_key: where the features are in an encoder output that is not a tensor.

    The effective scale is exp(min(log_scale, ln 100)) = min(exp(log_scale), 100), computed in
    the forward pass. The cap stops the gradient above 100. The optimizer can still move the
    raw parameter above ln 100, so :meth:`after_optimizer_step` clamps it back. The shared
    :class:`~energyview.training.Trainer` calls that hook after every step. In a loop of your
    own, call :meth:`clamp_log_scale_` after ``optimizer.step()``, as open_clip's training loop does.

    Candidates: ``candidates=None`` uses the stored set (:meth:`set_candidates`). A
    :class:`CandidateSet` is used as it is. Anything else is a batch of raw y inputs that goes
    through ``encode_y``. ``energy(x, y)`` reads ``y`` as indices into the candidates, as for
    every :class:`EnergyModel`; :meth:`paired_energy` gives E(x_i, y_i) of paired raw inputs.

    Example:
        >>> model = ContrastiveEnergy(nn.Identity(), init_scale=10.0, learn_scale=False)
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> model.energy_matrix(x, x)
        tensor([[-10.,  -0.],
                [ -0., -10.]])
        >>> model.paired_energy(x, torch.tensor([[1.0, 1.0], [0.0, 3.0]]))
        tensor([ -7.0711, -10.0000])
    """

    def __init__(
        self,
        encoder_x: nn.Module,
        encoder_y: nn.Module | None = None,
        *,
        init_scale: float = CLIP_INIT_SCALE,
        learn_scale: bool = True,
        log_scale: nn.Parameter | None = None,
        bias: float | nn.Parameter | None = None,
        temperature: float = 1.0,
        output_key: OutputSelector = None,
    ) -> None:
        super().__init__(temperature)
        self.encoder_x = _check_module(encoder_x, "encoder_x")
        self.encoder_y = None if encoder_y is None else _check_module(encoder_y, "encoder_y")
        self.output_key = output_key
        self._init_log_scale(init_scale, learn_scale, log_scale)
        self._init_bias(bias)
        self.register_buffer("_candidate_embeddings", None, persistent=False)
        self.candidate_names: tuple[str, ...] | None = None

    def _init_log_scale(self, init_scale: float, learn_scale: bool, log_scale: nn.Parameter | None) -> None:
        if log_scale is not None:
            if not isinstance(log_scale, nn.Parameter) or log_scale.numel() != 1:
                raise TypeError(
                    f"log_scale must be a scalar nn.Parameter (for example a CLIP model's logit_scale), "
                    f"got {type(log_scale).__name__}; pass init_scale=<number> for a new one"
                )
            self.log_scale = log_scale
            return
        value = _positive_number(init_scale, "init_scale")
        tensor = torch.tensor(math.log(value))
        if learn_scale:
            self.log_scale = nn.Parameter(tensor)
        else:
            self.register_buffer("log_scale", tensor)

    def _init_bias(self, bias: float | nn.Parameter | None) -> None:
        if bias is None or isinstance(bias, nn.Parameter):
            if isinstance(bias, nn.Parameter) and bias.numel() != 1:
                raise ValueError(f"bias must be a scalar, got a parameter of shape {tuple(bias.shape)}")
            self.bias = bias
            return
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
            raise ValueError(f"bias must be None, a finite number or a scalar nn.Parameter, got {bias!r}")
        self.register_buffer("bias", torch.tensor(float(bias)))

    # ---- scale -------------------------------------------------------------------------------

    @property
    def scale(self) -> torch.Tensor:
        """1 / tau = min(exp(log_scale), 100), a scalar tensor that carries the gradient below the cap."""
        return self.log_scale.exp().clamp(max=MAX_SCALE).reshape(())

    @property
    def shared_encoder(self) -> bool:
        """Whether x and y go through the same encoder."""
        return self.encoder_y is None

    @torch.no_grad()
    def clamp_log_scale_(self) -> None:
        """Clamp the raw log scale in place to ln 100 (call after ``optimizer.step()``)."""
        with torch.no_grad():
            self.log_scale.clamp_(max=math.log(MAX_SCALE))

    def after_optimizer_step(self) -> None:
        """Keep the stored log scale at or below ln 100; the trainer calls this after each step."""
        self.clamp_log_scale_()

    # ---- features ----------------------------------------------------------------------------

    def encode_x(self, x: Any) -> torch.Tensor:
        """Return the unit-norm features g(x) as ``[N, D]``."""
        return self._encode(self.encoder_x, x, "encoder_x")

    def encode_y(self, y: Any) -> torch.Tensor:
        """Return the unit-norm features h(y) as ``[N, D]`` (``encoder_x`` when shared)."""
        encoder = self.encoder_x if self.encoder_y is None else self.encoder_y
        return self._encode(encoder, y, "encoder_y" if self.encoder_y is not None else "encoder_x")

    def _encode(self, encoder: nn.Module, inputs: Any, name: str) -> torch.Tensor:
        features = select_output(encoder(inputs), self.output_key, keys=_EMBEDDING_KEYS)
        if features.dim() != 2 or not features.is_floating_point():
            raise ValueError(
                f"{name} must return floating-point features [N, D], got a {features.dtype} tensor of shape "
                f"{tuple(features.shape)}; add a pooling or flatten layer, or pass output_key"
            )
        return normalize_features(features)

    # ---- candidate sets ----------------------------------------------------------------------

    @torch.no_grad()
    def encode_candidates(self, y: Any, names: Sequence[str] | None = None, batch_size: int = 256) -> CandidateSet:
        """Encode raw candidates ``y`` with ``encode_y`` in eval mode, ``batch_size`` at a time."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        with scoring_mode(self):
            chunks = [self.encode_y(chunk) for chunk in _chunks(y, batch_size)]
        return CandidateSet(torch.cat(chunks), names)

    def set_candidates(self, candidates: Any, names: Sequence[str] | None = None) -> "ContrastiveEnergy":
        """Store the default candidate set: a :class:`CandidateSet`, or raw inputs to encode now.

        The embeddings are a non-persistent buffer, so ``.to(device)`` moves them and
        checkpoints do not store them. Returns ``self``.
        """
        if not isinstance(candidates, CandidateSet):
            candidates = self.encode_candidates(candidates, names)
        elif names is not None:
            candidates = CandidateSet(candidates.embeddings, names)
        device = self.log_scale.device
        self._candidate_embeddings = candidates.embeddings.to(device)
        self.candidate_names = candidates.names
        return self

    def clear_candidates(self) -> None:
        """Forget the stored candidate set."""
        self._candidate_embeddings = None
        self.candidate_names = None

    @property
    def candidates(self) -> CandidateSet | None:
        """The stored candidate set, or ``None``."""
        if self._candidate_embeddings is None:
            return None
        return CandidateSet(self._candidate_embeddings, self.candidate_names)

    def _candidate_features(self, candidates: Any, like: torch.Tensor) -> torch.Tensor:
        if candidates is None:
            if self._candidate_embeddings is None:
                raise ValueError(
                    "no candidate set: pass candidates=<raw y inputs or a CandidateSet>, call "
                    "set_candidates(...) first, or use paired_energy(x, y) for paired inputs"
                )
            features = self._candidate_embeddings
        elif isinstance(candidates, CandidateSet):
            features = candidates.embeddings
        else:
            features = self.encode_y(candidates)
        if features.shape[1] != like.shape[1]:
            raise ValueError(
                f"candidate features have dimension {features.shape[1]} but x features have {like.shape[1]}; "
                "encode the candidates with the same model"
            )
        return features.to(device=like.device, dtype=_common_dtype(like, features))

    # ---- energies ----------------------------------------------------------------------------

    def cosine_matrix(self, x: Any, candidates: Any = None) -> torch.Tensor:
        """Return cos(g(x_i), h(y_k)) as ``[B, K]``."""
        fx = self.encode_x(x)
        fy = self._candidate_features(candidates, fx)
        return fx.to(fy.dtype) @ fy.T

    def energy_from_cosine(self, cosine: torch.Tensor) -> torch.Tensor:
        """Return E = -(scale * cos + bias) for cosines of any shape."""
        energy = -self.scale.to(cosine.dtype) * cosine
        if self.bias is not None:
            energy = energy - self.bias.to(cosine.dtype)
        return energy

    def energy_matrix(self, x: Any, candidates: Any = None) -> torch.Tensor:
        """Return E(x_i, y_k) = -(scale * cos(g(x_i), h(y_k)) + bias) as ``[B, K]``."""
        return self.energy_from_cosine(self.cosine_matrix(x, candidates))

    def paired_energy(self, x: Any, y: Any) -> torch.Tensor:
        """Return E(x_i, y_i) of ``N`` paired raw inputs as ``[N]``: the diagonal of ``energy_matrix(x, y)``."""
        fx, fy = self.encode_x(x), self.encode_y(y)
        if fx.shape != fy.shape:
            raise ValueError(f"paired inputs must give features of one shape, got {tuple(fx.shape)} and {tuple(fy.shape)}")
        dtype = _common_dtype(fx, fy)
        return self.energy_from_cosine((fx.to(dtype) * fy.to(dtype)).sum(dim=1))

    def match_probability(self, x: Any, candidates: Any = None, temperature: float | None = None) -> torch.Tensor:
        """Return sigmoid(-E / T) as ``[B, K]``: each pair's own match probability, SigLIP's reading.

        SigLIP trains every pair as an independent binary problem, so its probabilities are
        sigmoids and need not sum to 1 over the candidates. For a softmax-trained model (CLIP)
        use :meth:`log_prob` instead.
        """
        return torch.sigmoid(-self.energy_matrix(x, candidates).float() / self._pick(temperature))

    def extra_repr(self) -> str:
        shared = "shared" if self.shared_encoder else "two towers"
        learned = isinstance(self.log_scale, nn.Parameter)
        return f"temperature={self.temperature}, encoders={shared}, learn_scale={learned}, bias={self.bias is not None}"


def _check_module(module: Any, name: str) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}; wrap a function in an nn.Module")
    return module


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (the scale 1 / tau), got {value!r}")
    return float(value)


def _common_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32


def _chunks(y: Any, size: int) -> list[Any]:
    """Split a tensor, a list or a dict of tensors along the first dim into pieces of ``size``."""
    if isinstance(y, torch.Tensor):
        return list(y.split(size))
    if isinstance(y, dict):
        total = len(next(iter(y.values())))
        return [{k: v[i : i + size] for k, v in y.items()} for i in range(0, total, size)]
    if isinstance(y, (list, tuple)):
        if len(y) == 0:
            raise ValueError("cannot encode an empty candidate list")
        return [y[i : i + size] for i in range(0, len(y), size)]
    return [y]
