"""In-batch contrastive losses read as energies: CLIP InfoNCE, NT-Xent, SupCon and SigLIP.

Similarity is negative energy. With L2-normalised features g(x_i) and h(y_j),

    E(x_i, y_j) = -scale * cos(g(x_i), h(y_j)),    scale = 1 / tau > 0,

so p(y_j | x_i) = softmax_j(-E(x_i, y_j)) over the other side of the batch. Every loss here first
builds this energy matrix (:func:`similarity_energy_matrix`) and then reduces it, so the same
matrix serves training, zero-shot prediction (argmin over class prompts) and OOD scoring (the
free energy -logsumexp(-E)). Each loss returns a dict with ``"loss"`` and the two phases,
``"energy_pos"`` (mean energy of positive pairs, pushed down) and ``"energy_neg"`` (mean energy
of negative pairs, pushed up). Both phases are detached and are NaN when the batch has no pair of
that kind (for example a mask that makes every pair positive).

Conventions:

- ``scale`` is 1 / tau itself, not its log: open_clip's exp'ed ``logit_scale``. A learnable
  scale lives in the model as a log parameter (CLIP initialises it at ln(1 / 0.07) = 2.6593 and
  clamps it at ln(100)); pass ``log_scale.exp()``. The losses clamp ``scale`` at
  :data:`MAX_SCALE` = 100 as a guard, which also stops its gradient above 100.
- NT-Xent and SupCon take a fixed ``temperature`` tau > 0 instead, as in their papers.
- Inputs are L2-normalised inside every function (open_clip's ``ClipLoss`` expects normalised
  inputs; lightly's NT-Xent normalises, as here). The normalisation divides by
  max(||v||, eps) with eps the machine epsilon of the input dtype, so a zero embedding gives a
  finite loss.
- Features and matrices are computed in float32 (float64 inputs stay float64) with autocast
  disabled, so fp16 and bf16 features under autocast give float32 losses in logsumexp form.
- A batch of one has no negatives and raises ``ValueError``.

The ``*Objective`` classes apply these losses to a model with ``encode_x(x) -> [N, D]``,
``encode_y(y) -> [N, D]`` and a ``scale`` property (a positive scalar tensor, the exp of the
clamped log scale), and gather the batch across ranks with
:func:`energyview.objectives.distributed.gather_with_grad`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..energies.base import check_temperature
from ..energies.contrastive import CLIP_INIT_SCALE, MAX_SCALE  # one definition, shared with the energy
from .base import LossDict, Objective
from .distributed import gather_with_grad, gather_without_grad

__all__ = [
    "CLIPObjective",
    "CLIP_INIT_SCALE",
    "MAX_SCALE",
    "SIGLIP_INIT_BIAS",
    "SIGLIP_INIT_SCALE",
    "SigLIPObjective",
    "SimCLRObjective",
    "SupConObjective",
    "clip_loss",
    "info_nce_from_energy",
    "nt_xent_loss",
    "positive_mask_from_ids",
    "sigmoid_loss_from_energy",
    "siglip_loss",
    "similarity_energy_matrix",
    "supcon_loss",
]

logger = logging.getLogger(__name__)

SIGLIP_INIT_SCALE = 10.0
"""SigLIP's initial scale, 10 (log scale ln(10)), from Zhai et al. (2023)."""
SIGLIP_INIT_BIAS = -10.0
"""SigLIP's initial bias, -10, from Zhai et al. (2023)."""

_warned_clamp = False


# ---------------------------------------------------------------------------------------------
# The energy matrix and its reductions
# ---------------------------------------------------------------------------------------------


def similarity_energy_matrix(a: torch.Tensor, b: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Return the energy matrix E_ij = -scale * cos(a_i, b_j) as ``[N, M]``.

    Args:
        a: ``[N, D]`` features, normalised here.
        b: ``[M, D]`` features, normalised here.
        scale: 1 / tau > 0, a number or a scalar tensor (may require grad); clamped at 100.

    The result is float32 (float64 when an input is float64), whatever autocast is active.

    Example:
        >>> import torch
        >>> a = torch.tensor([[1.0, 0.0]])
        >>> b = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
        >>> similarity_energy_matrix(a, b, scale=10.0)
        tensor([[-10.0000,  -7.0711]])
    """
    _check_features(a, "a", 2)
    _check_features(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature size, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    with _no_autocast(a.device):
        dtype = _work_dtype(a, b)
        return _energy(_unit(a, dtype), _unit(b, dtype), _scale_tensor(scale, dtype, a.device))


def info_nce_from_energy(energy: torch.Tensor, positive_mask: torch.Tensor | None = None) -> LossDict:
    """Reduce a square ``[N, N]`` energy matrix to the symmetric InfoNCE loss of CLIP.

    loss = (L_rows + L_cols) / 2, where L_rows averages over rows i

        -log( sum_{p in P(i)} exp(-E_ip) / sum_{j=1..N} exp(-E_ij) )

    and L_cols is the same over columns. P(i) is row i of ``positive_mask`` (the diagonal when
    ``None``). With one positive per row this is cross-entropy with targets ``arange(N)``. With
    several, the softmax is summed over the positives inside the log. Each direction has N
    candidates, so equal embeddings give ln N.

    Example:
        >>> import torch
        >>> round(info_nce_from_energy(torch.zeros(4, 4))["loss"].item(), 4)  # ln 4
        1.3863
    """
    n = _check_square(energy, "energy")
    positive = _positive_or_eye(positive_mask, n, energy.device)
    if positive_mask is not None:
        _check_every_row_and_column_positive(positive)
    with _no_autocast(energy.device):
        work = _as_work(energy)
        rows = _nce_rows(-work, positive)  # image -> text
        cols = _nce_rows(-work.T, positive.T)  # text -> image
        loss = 0.5 * (rows.mean() + cols.mean())
    return {"loss": loss, **_phase_energies(work, positive)}


def sigmoid_loss_from_energy(
    energy: torch.Tensor, bias: float | torch.Tensor, positive_mask: torch.Tensor | None = None
) -> LossDict:
    """Reduce a square ``[N, N]`` energy matrix to the pairwise sigmoid loss of SigLIP.

    loss = -(1 / N) * sum_i sum_j log sigmoid(z_ij * (-E_ij + bias)), with z_ij = +1 for
    positive pairs (``positive_mask``, the diagonal when ``None``) and -1 for all others.
    Every pair is an independent binary problem, so no row needs a positive.

    Example:
        >>> import torch
        >>> round(sigmoid_loss_from_energy(torch.zeros(2, 2), bias=0.0)["loss"].item(), 4)  # 2 ln 2
        1.3863
    """
    n = _check_square(energy, "energy")
    positive = _positive_or_eye(positive_mask, n, energy.device)
    with _no_autocast(energy.device):
        work = _as_work(energy)
        bias_t = _bias_tensor(bias, work.dtype, work.device)
        sign = positive.to(work.dtype) * 2 - 1  # +1 positive, -1 negative
        loss = -F.logsigmoid(sign * (-work + bias_t)).sum() / n
    return {"loss": loss, **_phase_energies(work, positive)}


# ---------------------------------------------------------------------------------------------
# Losses on features
# ---------------------------------------------------------------------------------------------


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scale: float | torch.Tensor,
    *,
    positive_mask: torch.Tensor | None = None,
) -> LossDict:
    """Return CLIP's symmetric InfoNCE loss of ``N`` paired features, with N candidates per anchor.

    E = -scale * cos(image_i, text_j) (:func:`similarity_energy_matrix`), reduced by
    :func:`info_nce_from_energy`: the mean of the image->text and text->image cross-entropies.
    Radford et al. (2021), "Learning Transferable Visual Models From Natural Language Supervision".

    Args:
        image_features: ``[N, D]``, any float dtype, normalised here.
        text_features: ``[N, D]``, paired row by row with ``image_features``.
        scale: 1 / tau > 0 (the exp of the learnable log scale), clamped at 100.
        positive_mask: optional ``[N, N]`` bool; ``True`` marks pairs that are positives, for
            example duplicates found by :func:`positive_mask_from_ids`. Every row and column
            needs at least one positive.

    Example:
        >>> import torch
        >>> same = torch.ones(4, 8)  # equal embeddings: each anchor is uniform over N = 4
        >>> round(clip_loss(same, same, scale=10.0)["loss"].item(), 4)  # ln 4
        1.3863
    """
    _check_pair(image_features, text_features, ("image_features", "text_features"), "clip_loss")
    energy = similarity_energy_matrix(image_features, text_features, scale)
    return info_nce_from_energy(energy, positive_mask)


def siglip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    scale: float | torch.Tensor,
    bias: float | torch.Tensor,
    *,
    positive_mask: torch.Tensor | None = None,
) -> LossDict:
    """Return SigLIP's pairwise sigmoid loss of ``N`` paired features.

    loss = -(1 / N) * sum_i sum_j log sigmoid(z_ij * (scale * cos_ij + bias)), with z_ij = +1 on
    the diagonal (or where ``positive_mask`` is ``True``) and -1 elsewhere; see
    :func:`sigmoid_loss_from_energy`. Zhai et al. (2023), "Sigmoid Loss for Language Image
    Pre-Training", initialise scale = 10 (log scale ln(10)) and bias = -10
    (:data:`SIGLIP_INIT_SCALE`, :data:`SIGLIP_INIT_BIAS`).

    Args:
        image_features: ``[N, D]``, normalised here.
        text_features: ``[N, D]``, paired row by row with ``image_features``.
        scale: 1 / tau > 0, clamped at 100.
        bias: the learnable logit bias b, a number or a scalar tensor.
        positive_mask: optional ``[N, N]`` bool of positive pairs.

    Example:
        >>> import torch
        >>> a = torch.eye(2)
        >>> round(siglip_loss(a, a, scale=10.0, bias=-10.0)["loss"].item(), 4)  # ln 2 + ln(1 + e^-10)
        0.6932
    """
    _check_pair(image_features, text_features, ("image_features", "text_features"), "siglip_loss")
    energy = similarity_energy_matrix(image_features, text_features, scale)
    return sigmoid_loss_from_energy(energy, bias, positive_mask)


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> LossDict:
    """Return SimCLR's NT-Xent loss of two views, with 2N - 1 candidates per anchor.

    The 2N views z = [z1; z2] are all anchors. Anchor i's positive is its other view, and its
    candidates are the other 2N - 1 views (itself excluded):

        loss = (1 / 2N) * sum_i -log( exp(cos(z_i, z_i+) / tau) / sum_{k != i} exp(cos(z_i, z_k) / tau) )

    Equal embeddings give ln(2N - 1), against ln N for :func:`clip_loss`. Chen et al. (2020),
    "A Simple Framework for Contrastive Learning of Visual Representations".

    Args:
        z1: ``[N, D]`` projections of the first view, normalised here.
        z2: ``[N, D]`` projections of the second view; row i pairs with ``z1[i]``.
        temperature: tau > 0; a smaller tau weights hard negatives more.

    Example:
        >>> import torch
        >>> same = torch.ones(3, 4)
        >>> round(nt_xent_loss(same, same, temperature=0.5)["loss"].item(), 4)  # ln 5
        1.6094
    """
    n = _check_pair(z1, z2, ("z1", "z2"), "nt_xent_loss")
    tau = check_temperature(temperature)
    with _no_autocast(z1.device):
        dtype = _work_dtype(z1, z2)
        z = torch.cat([_unit(z1, dtype), _unit(z2, dtype)])  # [2N, D]
        energy = _energy(z, z, torch.tensor(1.0 / tau, dtype=dtype, device=z.device))  # [2N, 2N]
        eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        partner = torch.arange(2 * n, device=z.device).roll(n)  # i <-> i + N
        positive = torch.zeros_like(eye)
        positive[torch.arange(2 * n, device=z.device), partner] = True
        loss = _nce_rows((-energy).masked_fill(eye, float("-inf")), positive).mean()
    return {"loss": loss, **_phase_energies(energy, positive, candidates=~eye)}


def supcon_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 0.1,
    base_temperature: float | None = None,
) -> LossDict:
    """Return the supervised contrastive loss L_out of Khosla et al. (2020).

    The N * V views are all anchors. For anchor i, A(i) is every other view and P(i) the views in
    A(i) with the same label (the other views of the same sample when ``labels`` is ``None``):

        L_i = -(tau / tau_base) * (1 / |P(i)|) * sum_{p in P(i)} log p_ip,
        p_ip = exp(cos_ip / tau) / sum_{a in A(i)} exp(cos_ia / tau)

    The loss is the mean of L_i over anchors with a non-empty P(i). An anchor without positives
    (possible with V = 1) is left out instead of giving NaN. Khosla et al., "Supervised
    Contrastive Learning", NeurIPS 2020.

    Args:
        features: ``[N, V, D]``, V views of N samples, normalised here. Use
            ``features.unsqueeze(1)`` for a single view.
        labels: ``[N]`` integer class labels, or ``None`` for instance labels (SimCLR-style).
        temperature: tau > 0.
        base_temperature: tau_base > 0; ``None`` means tau, so the factor is 1.

    Raises:
        ValueError: when no anchor has a positive, for example V = 1 with all labels distinct.

    Example:
        >>> import torch
        >>> same = torch.ones(2, 2, 3)  # 4 equal views: 1 positive among 3 candidates
        >>> round(supcon_loss(same, temperature=0.1)["loss"].item(), 4)  # ln 3
        1.0986
    """
    n_anchors = _check_supcon_features(features)
    n, views, dim = features.shape
    tau = check_temperature(temperature)
    tau_base = tau if base_temperature is None else check_temperature(base_temperature)
    with _no_autocast(features.device):
        z = _unit(features, _work_dtype(features)).reshape(n_anchors, dim)  # anchor i * V + k
        positive, eye = _supcon_positives(labels, n, views, z.device)
        counts = positive.sum(dim=1)
        has_positive = counts > 0
        if not bool(has_positive.any()):
            raise ValueError(
                f"supcon_loss found no positive pair among {n_anchors} anchors (N={n}, V={views}): "
                "pass V >= 2 views per sample, or a batch where some label occurs twice"
            )
        energy = _energy(z, z, torch.tensor(1.0 / tau, dtype=z.dtype, device=z.device))  # [NV, NV]
        logits = (-energy).masked_fill(eye, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        mean_log_prob_pos = log_prob.masked_fill(~positive, 0.0).sum(dim=1)[has_positive] / counts[has_positive]
        loss = -(tau / tau_base) * mean_log_prob_pos.mean()
    return {"loss": loss, **_phase_energies(energy, positive, candidates=~eye)}


def positive_mask_from_ids(ids_a: torch.Tensor, ids_b: torch.Tensor | None = None) -> torch.Tensor:
    """Return the ``[N, M]`` bool mask ``ids_a[i] == ids_b[j]`` of pairs showing the same item.

    Pass it as ``positive_mask`` so that duplicates in a batch (the same image twice, two
    captions of one image) count as positives instead of negatives. ``ids_b`` defaults to
    ``ids_a``, which makes the diagonal positive.

    Example:
        >>> import torch
        >>> positive_mask_from_ids(torch.tensor([7, 3, 7]))
        tensor([[ True, False,  True],
                [False,  True, False],
                [ True, False,  True]])
    """
    ids_a = _check_ids(ids_a, "ids_a")
    ids_b = ids_a if ids_b is None else _check_ids(ids_b, "ids_b").to(ids_a.device)
    return ids_a.unsqueeze(1) == ids_b.unsqueeze(0)


# ---------------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------------


class CLIPObjective(Objective):
    """CLIP's symmetric InfoNCE (:func:`clip_loss`) on a batch ``(x, y)`` or ``(x, y, ids)``.

    The model provides ``encode_x(x) -> [N, D]``, ``encode_y(y) -> [N, D]`` and ``scale``, the
    exp of its clamped learnable log scale. With ``ids`` (one integer per pair), pairs that share
    an id are positives of each other. Under ``torch.distributed`` features and ids are gathered
    from all ranks, so the loss covers the global batch (see
    :mod:`energyview.objectives.distributed`).

    Args:
        gather_distributed: gather across ranks when ``torch.distributed`` is initialised.
    """

    def __init__(self, gather_distributed: bool = True) -> None:
        super().__init__()
        self.gather_distributed = gather_distributed

    def forward(self, model: Any, batch: Any) -> LossDict:
        x, y, ids = _unpack_pairs(batch)
        fx, fy, mask, scale = _encode_pairs(model, x, y, ids, self.gather_distributed)
        out = clip_loss(fx, fy, scale, positive_mask=mask)
        out["scale"] = scale.detach().clamp(max=MAX_SCALE)
        return out


class SigLIPObjective(Objective):
    """SigLIP's pairwise sigmoid loss (:func:`siglip_loss`) on ``(x, y)`` or ``(x, y, ids)``.

    The scale comes from the model (build it with initial scale :data:`SIGLIP_INIT_SCALE` = 10);
    the learnable bias is a parameter of this objective, so the trainer must optimise, reduce
    and checkpoint the objective's parameters with the model's.

    Args:
        init_bias: initial bias, -10 in Zhai et al. (2023).
        gather_distributed: gather across ranks when ``torch.distributed`` is initialised.
    """

    def __init__(self, init_bias: float = SIGLIP_INIT_BIAS, gather_distributed: bool = True) -> None:
        super().__init__()
        if not math.isfinite(init_bias):
            raise ValueError(f"init_bias must be finite, got {init_bias}")
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))
        self.gather_distributed = gather_distributed

    def forward(self, model: Any, batch: Any) -> LossDict:
        x, y, ids = _unpack_pairs(batch)
        fx, fy, mask, scale = _encode_pairs(model, x, y, ids, self.gather_distributed)
        out = siglip_loss(fx, fy, scale, self.bias, positive_mask=mask)
        out["scale"] = scale.detach().clamp(max=MAX_SCALE)
        out["bias"] = self.bias.detach().clone()
        return out


class SimCLRObjective(Objective):
    """SimCLR's NT-Xent (:func:`nt_xent_loss`) on ``(view1, view2)`` or ``((view1, view2), labels)``.

    Both views go through ``model.encode_x``; labels, when present, are ignored. The temperature
    is fixed here, not taken from the model's scale.

    Args:
        temperature: tau > 0; a smaller tau weights hard negatives more.
        gather_distributed: gather across ranks when ``torch.distributed`` is initialised.
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = True) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, model: Any, batch: Any) -> LossDict:
        views, _ = _unpack_views(batch)
        if len(views) != 2:
            raise ValueError(f"SimCLRObjective needs exactly 2 views, got {len(views)}; use SupConObjective for more")
        encode = _encoder(model, "encode_x")
        z1, z2 = encode(views[0]), encode(views[1])
        if self.gather_distributed:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        return nt_xent_loss(z1, z2, self.temperature)


class SupConObjective(Objective):
    """Supervised contrastive loss (:func:`supcon_loss`) on ``((view1, ..., viewV), labels)``.

    Every view goes through ``model.encode_x``. ``labels`` may be ``None`` for instance labels.

    Args:
        temperature: tau > 0.
        base_temperature: tau_base; ``None`` means ``temperature``.
        gather_distributed: gather across ranks when ``torch.distributed`` is initialised.
    """

    def __init__(
        self, temperature: float = 0.1, base_temperature: float | None = None, gather_distributed: bool = True
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.base_temperature = None if base_temperature is None else check_temperature(base_temperature)
        self.gather_distributed = gather_distributed

    def forward(self, model: Any, batch: Any) -> LossDict:
        views, labels = _unpack_views(batch)
        encode = _encoder(model, "encode_x")
        features = torch.stack([encode(view) for view in views], dim=1)  # [N, V, D]
        if self.gather_distributed:
            features = gather_with_grad(features)
            labels = None if labels is None else gather_without_grad(torch.as_tensor(labels, device=features.device))
        return supcon_loss(features, labels, self.temperature, self.base_temperature)


# ---------------------------------------------------------------------------------------------
# Private steps
# ---------------------------------------------------------------------------------------------


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Disable autocast on ``device`` so that matrices stay in float32."""
    is_available = getattr(torch.amp, "is_autocast_available", None)
    if is_available is not None and is_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _work_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _as_work(matrix: torch.Tensor) -> torch.Tensor:
    return matrix if matrix.dtype == torch.float64 else matrix.float()


def _unit(features: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """L2-normalise the last dim in ``dtype``, with eps the machine epsilon of the input dtype.

    NOTE: the gradient at a zero vector is the incoming gradient divided by eps, so with fp16
    inputs (eps 9.8e-4) it can overflow when the scale is large and the batch small.
    """
    eps = torch.finfo(features.dtype).eps
    return F.normalize(features.to(dtype), dim=-1, eps=eps)


def _energy(a_unit: torch.Tensor, b_unit: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return -scale * (a_unit @ b_unit.T)


def _nce_rows(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Return -log sum_{p in P(i)} softmax(logits_i)_p per row, as ``[rows]``, in logsumexp form."""
    log_partition = torch.logsumexp(logits, dim=1)
    log_positive = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return log_partition - log_positive


def _phase_energies(energy: torch.Tensor, positive: torch.Tensor, candidates: torch.Tensor | None = None) -> LossDict:
    """Return the mean energy of positive pairs and of negative pairs (NaN when there are none)."""
    negative = ~positive if candidates is None else candidates & ~positive
    with torch.no_grad():
        return {"energy_pos": energy[positive].mean().detach(), "energy_neg": energy[negative].mean().detach()}


def _supcon_positives(
    labels: torch.Tensor | None, n: int, views: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``[NV, NV]`` positive mask (same label, not self) and the self mask."""
    sample = torch.arange(n, device=device).repeat_interleave(views)  # anchor i * V + k -> i
    if labels is None:
        group = sample
    else:
        group = _check_ids(labels, "labels").to(device)
        if group.shape[0] != n:
            raise ValueError(f"labels must have shape [{n}] to match features [N={n}, V, D], got {tuple(group.shape)}")
        group = group[sample]
    eye = torch.eye(n * views, dtype=torch.bool, device=device)
    positive = (group.unsqueeze(1) == group.unsqueeze(0)) & ~eye
    return positive, eye


def _scale_tensor(scale: float | torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Validate ``scale`` (1 / tau > 0) and return it as a scalar tensor clamped at MAX_SCALE."""
    value = _scalar_value(scale, "scale")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"scale must be finite and > 0, got {value}; pass 1 / tau or the exp of the log scale, not the log itself"
        )
    if value > MAX_SCALE:
        _warn_clamp_once(value)
    if isinstance(scale, torch.Tensor):
        tensor = scale.to(device=device, dtype=dtype).reshape(())
    else:
        tensor = torch.tensor(value, dtype=dtype, device=device)
    return tensor.clamp(max=MAX_SCALE)


def _bias_tensor(bias: float | torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    value = _scalar_value(bias, "bias")
    if not math.isfinite(value):
        raise ValueError(f"bias must be finite, got {value}")
    if isinstance(bias, torch.Tensor):
        return bias.to(device=device, dtype=dtype).reshape(())
    return torch.tensor(value, dtype=dtype, device=device)


def _scalar_value(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().item())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or a scalar tensor, got {type(value).__name__}")
    return float(value)


def _warn_clamp_once(value: float) -> None:
    global _warned_clamp
    if not _warned_clamp:
        logger.warning("scale %g exceeds %g and is clamped to %g (logged once)", value, MAX_SCALE, MAX_SCALE)
        _warned_clamp = True


def _check_features(tensor: Any, name: str, dims: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}; cast with .float()")
    if tensor.dim() != dims:
        layout = "[N, D]" if dims == 2 else "[N, V, D]"
        raise ValueError(f"{name} must be {layout}, got shape {tuple(tensor.shape)}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], loss: str) -> int:
    """Validate two ``[N, D]`` feature tensors paired row by row and return N (at least 2)."""
    _check_features(a, names[0], 2)
    _check_features(b, names[1], 2)
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape [N, D], got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    _check_batch_size(a.shape[0], loss)
    return a.shape[0]


def _check_supcon_features(features: torch.Tensor) -> int:
    _check_features(features, "features", 3)
    n_anchors = features.shape[0] * features.shape[1]
    _check_batch_size(n_anchors, "supcon_loss")
    return n_anchors


def _check_batch_size(n: int, loss: str) -> None:
    if n < 2:
        raise ValueError(
            f"{loss} needs a batch of at least 2, got {n}: a batch of one has no in-batch negatives; "
            "raise the batch size, or pass drop_last=True to the DataLoader to skip a last batch of one"
        )


def _check_square(energy: Any, name: str) -> int:
    if not isinstance(energy, torch.Tensor) or not energy.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(energy).__name__}")
    if energy.dim() != 2 or energy.shape[0] != energy.shape[1]:
        raise ValueError(f"{name} must be a square [N, N] matrix of paired rows, got shape {tuple(energy.shape)}")
    _check_batch_size(energy.shape[0], "the in-batch loss")
    return energy.shape[0]


def _positive_or_eye(mask: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.eye(n, dtype=torch.bool, device=device)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"positive_mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != (n, n):
        raise ValueError(f"positive_mask must have shape [{n}, {n}], got {tuple(mask.shape)}")
    return mask.to(device)


def _check_every_row_and_column_positive(positive: torch.Tensor) -> None:
    for axis, name in ((1, "row"), (0, "column")):
        empty = ~positive.any(dim=axis)
        if bool(empty.any()):
            index = int(empty.nonzero()[0])
            raise ValueError(
                f"positive_mask {name} {index} has no positive; InfoNCE needs at least one positive per "
                "row and column (set the diagonal of the mask to True)"
            )


def _check_ids(ids: Any, name: str) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
        raise TypeError(f"{name} must hold integers, got dtype {ids.dtype}; map items to integer ids first")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {tuple(ids.shape)}")
    return ids


def _encoder(model: Any, name: str) -> Any:
    encode = getattr(model, name, None)
    if not callable(encode):
        raise TypeError(
            f"{type(model).__name__} has no {name}(inputs) -> [N, D]; contrastive objectives need a model "
            "with encode_x, encode_y and scale, such as ContrastiveEnergy"
        )
    return encode


def _model_scale(model: Any) -> torch.Tensor:
    scale = getattr(model, "scale", None)
    if scale is None:
        raise TypeError(f"{type(model).__name__} has no scale property (exp of its clamped log scale)")
    return scale if isinstance(scale, torch.Tensor) else torch.tensor(float(scale))


def _unpack_pairs(batch: Any) -> tuple[Any, Any, Any]:
    if not isinstance(batch, Sequence) or len(batch) not in (2, 3):
        raise ValueError(f"a pair batch must be (x, y) or (x, y, ids), got {type(batch).__name__}")
    return batch[0], batch[1], batch[2] if len(batch) == 3 else None


def _unpack_views(batch: Any) -> tuple[Sequence[Any], Any]:
    if not isinstance(batch, Sequence) or len(batch) < 2:
        raise ValueError(
            f"a view batch must be (view1, view2) or ((view1, ..., viewV), labels), got {type(batch).__name__}"
        )
    if isinstance(batch[0], (tuple, list)):
        return batch[0], batch[1]
    return batch, None


def _encode_pairs(
    model: Any, x: Any, y: Any, ids: Any, gather: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Encode both sides, gather them (and the ids) across ranks, and build the positive mask."""
    fx, fy = _encoder(model, "encode_x")(x), _encoder(model, "encode_y")(y)
    if ids is not None:
        ids = _check_ids(ids, "ids").to(fx.device)
    if gather:
        fx, fy = gather_with_grad(fx), gather_with_grad(fy)
        ids = None if ids is None else gather_without_grad(ids)
    mask = None if ids is None else positive_mask_from_ids(ids)
    return fx, fy, mask, _model_scale(model)
