"""One rank of the 2-process gather check, launched by tests/test_distributed_gather.py.

Run as ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUT_DIR``. Each
rank encodes its share of a fixed global batch, gathers with gradients, computes every case's
loss, back-propagates, reduces the gradients with the mean, and saves the loss and gradients to
``OUT_DIR/rank{rank}.pt``. The test recomputes each case in one process on the whole batch with
the same functions, where every gather is the identity.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from energyview.objectives.contrastive import (
    CLIPObjective,
    clip_loss,
    nt_xent_loss,
    positive_mask_from_ids,
    siglip_loss,
    supcon_loss,
)
from energyview.objectives.distributed import gather_with_grad, gather_without_grad, reduce_gradients, world_info

GLOBAL_BATCH = 8
CASES = ("clip", "clip_uneven", "siglip", "nt_xent", "supcon", "clip_objective")
# Rows of the global batch that each of the 2 ranks holds.
EVEN_ROWS = (slice(0, 4), slice(4, 8))
UNEVEN_ROWS = (slice(0, 3), slice(3, 8))


class PairEncoder(nn.Module):
    """Linear encoders with a learnable log scale and a SigLIP bias, all in float64."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.x_encoder = nn.Linear(5, 4, dtype=torch.float64)
        self.y_encoder = nn.Linear(6, 4, dtype=torch.float64)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07), dtype=torch.float64))
        self.bias = nn.Parameter(torch.tensor(-10.0, dtype=torch.float64))

    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
        return self.x_encoder(x)

    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_encoder(y)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(100)).exp()


def make_data() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(GLOBAL_BATCH, 5, generator=generator, dtype=torch.float64),
        "x2": torch.randn(GLOBAL_BATCH, 5, generator=generator, dtype=torch.float64),
        "y": torch.randn(GLOBAL_BATCH, 6, generator=generator, dtype=torch.float64),
        "labels": torch.tensor([0, 1, 2, 0, 1, 2, 0, 3]),
        "ids": torch.tensor([0, 1, 2, 3, 0, 4, 5, 1]),  # duplicates across the two ranks
    }


def case_loss(case: str, model: PairEncoder, data: dict[str, torch.Tensor], rows: slice) -> torch.Tensor:
    """Return the loss of ``case`` from the features of ``rows``, gathered over all ranks."""
    x, x2, y = data["x"][rows], data["x2"][rows], data["y"][rows]
    if case == "clip_objective":
        return CLIPObjective()(model, (x, y, data["ids"][rows]))["loss"]
    if case in ("clip", "clip_uneven", "siglip"):
        fx, fy = gather_with_grad(model.encode_x(x)), gather_with_grad(model.encode_y(y))
        if case == "siglip":
            return siglip_loss(fx, fy, model.scale, model.bias)["loss"]
        mask = positive_mask_from_ids(gather_without_grad(data["ids"][rows]))
        return clip_loss(fx, fy, model.scale, positive_mask=mask)["loss"]
    if case == "nt_xent":
        return nt_xent_loss(gather_with_grad(model.encode_x(x)), gather_with_grad(model.encode_x(x2)), 0.3)["loss"]
    if case == "supcon":
        features = gather_with_grad(torch.stack([model.encode_x(x), model.encode_x(x2)], dim=1))
        return supcon_loss(features, gather_without_grad(data["labels"][rows]), temperature=0.2)["loss"]
    raise ValueError(f"unknown case {case!r}; expected one of {CASES}")


def run_case(case: str, rows: slice) -> dict[str, object]:
    """Return the loss and the (reduced) parameter gradients of one case."""
    model = PairEncoder()
    loss = case_loss(case, model, make_data(), rows)
    loss.backward()
    reduce_gradients(model.parameters(), op="mean")
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {"loss": loss.detach().clone(), "grads": grads}


def reduce_checks(rank: int) -> dict[str, object]:
    """Reduce gradients that differ by rank (one exists on rank 0 only) and gather mismatched shapes."""
    shared = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    rank_zero_only = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    unused = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    shared.grad = torch.full((3,), float(rank + 1), dtype=torch.float64)  # 1 on rank 0, 2 on rank 1
    if rank == 0:
        rank_zero_only.grad = torch.full((2,), 4.0, dtype=torch.float64)
    reduce_gradients([shared, rank_zero_only, unused], op="mean")
    mean_shared, mean_rank_zero_only = shared.grad.clone(), rank_zero_only.grad.clone()
    shared.grad = torch.full((3,), float(rank + 1), dtype=torch.float64)
    reduce_gradients([shared], op="sum")
    try:
        gather_with_grad(torch.zeros(2, 3 + rank))  # trailing sizes differ between the ranks
        mismatch_message = ""
    except ValueError as error:
        mismatch_message = str(error)
    return {
        "mismatch_message": mismatch_message,
        "mean_shared": mean_shared,
        "mean_rank_zero_only": mean_rank_zero_only,
        "unused_grad_is_none": torch.tensor(unused.grad is None),
        "sum_shared": shared.grad.clone(),
    }


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank, world_size = world_info()
    if world_size != 2:
        raise ValueError(f"this check splits the batch over 2 ranks, got world size {world_size}")
    results = {}
    for case in CASES:
        rows = UNEVEN_ROWS[rank] if case == "clip_uneven" else EVEN_ROWS[rank]
        results[case] = run_case(case, rows)
    results["reduce_checks"] = reduce_checks(rank)
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
