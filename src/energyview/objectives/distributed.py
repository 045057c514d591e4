"""Cross-rank gathering of in-batch negatives, and the gradient reduction that makes it exact.

In-batch contrastive losses get their negatives from the batch, so under data parallelism every
rank must see the features of every other rank. The contract, in one place:

1. Each rank encodes its local batch and calls :func:`gather_with_grad` on the features (and
   :func:`gather_without_grad` on labels or item ids). Both return the global batch, the
   concatenation of all ranks' tensors in rank order, identical on every rank.
2. Each rank computes the loss of the whole global batch, so the loss value on every rank equals
   the single-process loss L on the concatenated batch.
3. The backward of :func:`gather_with_grad` all-reduces the incoming gradient with SUM and keeps
   the local slice. Each rank's loss is L, so rank r receives W * dL/df_r for its own features
   f_r (W = world size), and its parameter gradient is W * dL/df_r * df_r/dtheta plus
   dL/dtheta through parameters used after the gather (a learnable scale or bias).
4. After ``loss.backward()`` the trainer calls ``reduce_gradients(parameters, op="mean")``.
   The average over ranks of W * dL/df_r * df_r/dtheta is sum_r dL/df_r * df_r/dtheta, which is
   dL/dtheta, and the average of the identical scale and bias gradients is their value. So every
   rank ends up with the gradient of the single-process loss.

The mean reduction is the DistributedDataParallel convention, so a model wrapped in DDP gets the
same gradients without calling :func:`reduce_gradients`. ``op="sum"`` is for objectives whose
per-rank losses are shares of the global loss (sum over ranks of loss_r = L).

Outside ``torch.distributed`` (not initialised, or world size 1) every function here is the
identity or a no-op, so single-process code needs no branches.
"""

from __future__ import annotations

import logging
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["gather_with_grad", "gather_without_grad", "reduce_gradients", "world_info"]

logger = logging.getLogger(__name__)

# Rank-to-rank shape exchange: one slot for the number of dimensions, then the sizes.
_MAX_DIMS = 8


def world_info() -> tuple[int, int]:
    """Return ``(rank, world_size)``, or ``(0, 1)`` when ``torch.distributed`` is not initialised.

    Example:
        >>> world_info()
        (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, keeping the gradient path to each rank.

    Ranks may hold different numbers of rows (an uneven last batch), but the trailing dimensions
    must agree. Returns ``[sum of rows over ranks, ...]`` in rank order. The backward all-reduces
    the gradient with SUM and returns this rank's slice, so every rank must run backward through
    every gather it made, in the same order (see the module docstring for why this is exact).
    Returns ``tensor`` itself when not distributed.

    Example:
        >>> import torch
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> gather_with_grad(x) is x  # a single process gathers nothing
        True
    """
    _check_tensor(tensor, "gather_with_grad")
    if world_info()[1] == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def gather_without_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, without gradients (labels, item ids).

    Same layout as :func:`gather_with_grad`; returns ``tensor`` itself when not distributed.
    """
    _check_tensor(tensor, "gather_without_grad")
    if world_info()[1] == 1:
        return tensor
    with torch.no_grad():
        gathered, _ = _all_gather_rows(tensor.detach())
    return gathered


def reduce_gradients(parameters: Iterable[torch.Tensor] | nn.Module, op: str = "mean") -> None:
    """All-reduce the ``.grad`` of ``parameters`` across ranks in place, averaged or summed.

    Call it after ``loss.backward()`` and before the optimizer step, on every rank, with the
    parameters in the same order (the model's and the objective's). ``op="mean"`` is what makes
    :func:`gather_with_grad` exact. A parameter that has a gradient on some ranks but none on
    others gets a zero gradient first, so every rank takes part in the same collectives.
    Does nothing when not distributed.

    Args:
        parameters: an ``nn.Module`` or an iterable of parameters.
        op: ``"mean"`` (DistributedDataParallel's convention) or ``"sum"``.
    """
    if op not in ("mean", "sum"):
        raise ValueError(f"op must be 'mean' or 'sum', got {op!r}; use 'mean' with gather_with_grad")
    params = list(parameters.parameters() if isinstance(parameters, nn.Module) else parameters)
    world_size = world_info()[1]
    if world_size == 1 or not params:
        return
    with torch.no_grad():
        grads = _aligned_gradients(params)
        for group in _group_by_device_and_dtype(grads):
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            if op == "mean":
                flat /= world_size
            offset = 0
            for g in group:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and returns the local slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        gathered, sizes = _all_gather_rows(tensor)
        rank = dist.get_rank()
        ctx.start = sum(sizes[:rank])
        ctx.rows = sizes[rank]
        return gathered

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad_output.contiguous().clone()  # all_reduce works in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.start + ctx.rows]


def _check_tensor(tensor: object, caller: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{caller} expects a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == 0 or tensor.dim() > _MAX_DIMS:
        raise ValueError(
            f"{caller} concatenates along dim 0, so the tensor needs 1 to {_MAX_DIMS} dimensions; "
            f"got shape {tuple(tensor.shape)}"
        )


def _all_gather_shapes(tensor: torch.Tensor) -> list[tuple[int, ...]]:
    """Exchange every rank's shape, so that uneven batches can be padded and cut back."""
    descriptor = torch.zeros(_MAX_DIMS + 1, dtype=torch.long, device=tensor.device)
    descriptor[0] = tensor.dim()
    descriptor[1 : tensor.dim() + 1] = torch.tensor(tensor.shape, dtype=torch.long)
    slots = [torch.empty_like(descriptor) for _ in range(dist.get_world_size())]
    dist.all_gather(slots, descriptor)
    return [tuple(int(v) for v in s[1 : int(s[0]) + 1].tolist()) for s in slots]


def _all_gather_rows(tensor: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Return the rank-ordered concatenation along dim 0 and the row count of each rank."""
    shapes = _all_gather_shapes(tensor)
    if any(shape[1:] != shapes[0][1:] for shape in shapes):
        # All ranks have the same list of shapes, so all of them raise here and none waits in a collective.
        raise ValueError(
            f"gathered tensors must agree in all but dim 0 across ranks, got shapes {shapes} "
            "(rank order); check that every rank builds its batch the same way"
        )
    sizes = [shape[0] for shape in shapes]
    padded = tensor.contiguous()
    if tensor.shape[0] < max(sizes):
        filler = tensor.new_zeros((max(sizes) - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([padded, filler])
    slots = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(slots, padded)
    return torch.cat([slot[:rows] for slot, rows in zip(slots, sizes)]), sizes


def _aligned_gradients(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Return one gradient per parameter that has a gradient on any rank, zero-filling the rest."""
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    grads = []
    for param, anywhere in zip(params, has_grad.tolist()):
        if not anywhere:
            continue
        if param.grad is None:
            logger.debug("parameter of shape %s has no gradient on this rank; reducing zeros", tuple(param.shape))
            param.grad = torch.zeros_like(param)
        if param.grad.is_sparse:
            raise TypeError("reduce_gradients supports dense gradients only; disable sparse gradients in the model")
        grads.append(param.grad)
    return grads


def _group_by_device_and_dtype(grads: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for grad in grads:
        groups.setdefault((grad.device, grad.dtype), []).append(grad)
    return list(groups.values())
